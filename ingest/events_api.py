"""Ingest endpoints: manual events, webhooks and batch uploads."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from ingest.auth import require_write_access, verify_webhook
from ingest.errors import ApiError
from ingest.intake import IntakeReport, accept_events, check_dependencies
from ingest.uploads import EXTENSIONS, FORMATS, parse_upload
from ingest.validation import decode_json
from scorestream.errors import ValidationError
from scorestream.runtime import BATCH_SCORED_KEY, Runtime
from scoring import worker
from scoring.store import utcnow

logger = logging.getLogger(__name__)

blueprint = Blueprint("events", __name__)

WEBHOOK_REPLAY_SECONDS = 15 * 60


def runtime() -> Runtime:
    """Return the app's runtime (connections and settings)."""
    return current_app.extensions["scorestream"]


def _media_type() -> str:
    return (request.mimetype or "").lower()


def _require_json() -> Any:
    if _media_type() != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type {request.content_type!r} is not supported here; send application/json",
        )
    body = request.get_data(cache=False)
    try:
        return decode_json(body)
    except ValidationError as error:
        raise ApiError(400, "invalid_json", error.message) from None


def _reject_if_nothing_accepted(report: IntakeReport, details: dict[str, Any]) -> None:
    """Raise 400 for an empty request and 422 when every item was rejected.

    A request with at least one accepted or duplicate item gets 202 and its
    per-item results instead, so a sender keeps the good items of a mixed batch.
    """
    if report.accepted or report.duplicates:
        return
    if not report.results:
        raise ApiError(400, "empty", "the request holds no events; send at least one", details)
    raise ApiError(
        422,
        "rejected",
        f"all {len(report.results)} events were rejected; see details for the reason of each",
        details,
    )


@blueprint.post("/api/events/manual")
def post_manual():  # type: ignore[no-untyped-def]
    """Accept one event; with ``?wait=1`` score it before answering."""
    rt = runtime()
    require_write_access(request, rt.keys)
    payload = _require_json()
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid", "send one event as a JSON object; use /api/events/webhook for arrays")
    check_dependencies(rt)
    wait = request.args.get("wait") in {"1", "true", "yes"}
    report = accept_events(rt, [(1, 0, payload, None)], enqueue=not wait)
    result = report.results[0]
    if result["status"] == "rejected":
        raise ApiError(400, "invalid", result["error"], {"field_errors": [result]})
    if result["status"] == "conflict":
        raise ApiError(409, "conflict", result["error"], result)
    if not wait:
        return jsonify(result), 202

    lead_id = report.lead_ids[0]
    worker.score_lead(rt.store, lead_id, rt.publisher.publish)
    from ingest.leads_api import lead_json

    lead = rt.store.get_lead(lead_id)
    return jsonify(dict(result, lead=lead_json(rt, lead) if lead else None)), 200


def _discard_body() -> None:
    """Read and drop the request body before an early error answer.

    Answering while the client is still sending makes the server close the
    connection, and many clients then report a reset instead of the 413.
    The body is read in chunks, never beyond the app's overall body limit.
    """
    stream = request.stream
    while stream.read(64 * 1024):
        pass


@blueprint.post("/api/events/webhook")
def post_webhook():  # type: ignore[no-untyped-def]
    """Accept one event or an array, verifying a Standard Webhooks signature when a secret is set."""
    rt = runtime()
    settings = rt.settings
    length = request.content_length
    if length is not None and length > settings.max_webhook_bytes:
        _discard_body()
        raise ApiError(413, "too_large", f"the webhook body is {length} bytes; the limit is {settings.max_webhook_bytes}")
    body = request.get_data(cache=True)
    if len(body) > settings.max_webhook_bytes:
        raise ApiError(413, "too_large", f"the webhook body is over the limit of {settings.max_webhook_bytes} bytes")

    message_id = None
    if settings.webhook_secret:
        message_id = verify_webhook(settings.webhook_secret, {k.lower(): v for k, v in request.headers.items()}, body)
    else:
        require_write_access(request, rt.keys)
    payload = _require_json()
    items = payload if isinstance(payload, list) else [payload]
    if len(items) > settings.max_webhook_events:
        raise ApiError(
            413,
            "too_many_events",
            f"the webhook carries {len(items)} events; the limit is {settings.max_webhook_events}; "
            "split it or use /api/events/batch",
        )
    check_dependencies(rt)
    if message_id is not None:
        # Events without their own id take the webhook id, so a sender's
        # retry of the same message maps onto the same event ids.
        for position, item in enumerate(items):
            if isinstance(item, dict) and not item.get("event_id"):
                item["event_id"] = message_id if len(items) == 1 else f"{message_id}:{position}"
        first_time = rt.redis.set(f"scorestream:webhook:{message_id}", 1, nx=True, ex=WEBHOOK_REPLAY_SECONDS)
        if not first_time:
            logger.warning("webhook %s replayed; its events count once", message_id)

    started = time.perf_counter()
    report = accept_events(rt, [(index + 1, index, item, None) for index, item in enumerate(items)])
    logger.info(
        "webhook %s: %d items, %d accepted, %d duplicates, %d conflicts, %d rejected in %.3f s",
        message_id or "-", len(items), report.accepted, report.duplicates, report.conflicts, report.rejected,
        time.perf_counter() - started,
    )
    body_json = dict(report.summary(), results=report.results)
    _reject_if_nothing_accepted(report, body_json)
    return jsonify(body_json), 202


def _upload_body() -> tuple[bytes, str]:
    media = _media_type()
    if media == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, "invalid", "the multipart upload has no 'file' part; send the data as file=@events.csv")
        suffix = "." + (upload.filename or "").rsplit(".", 1)[-1].lower() if "." in (upload.filename or "") else ""
        kind = FORMATS.get((upload.mimetype or "").lower()) or EXTENSIONS.get(suffix)
        if kind is None:
            raise ApiError(
                415,
                "unsupported_media_type",
                f"cannot tell the format of file {upload.filename!r} ({upload.mimetype}); "
                "name it .csv, .json or .ndjson or give the part a text/csv, application/json or application/x-ndjson type",
            )
        return upload.read(), kind
    kind = FORMATS.get(media)
    if kind is None:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type {request.content_type!r} is not supported; send text/csv, application/json, "
            "application/x-ndjson or multipart/form-data",
        )
    return request.get_data(cache=False), kind


@blueprint.post("/api/events/batch")
def post_batch():  # type: ignore[no-untyped-def]
    """Accept a CSV, JSON array or NDJSON upload; report rejected rows with line numbers."""
    rt = runtime()
    require_write_access(request, rt.keys)
    body, kind = _upload_body()
    check_dependencies(rt)
    batch_id = uuid.uuid4().hex
    started = time.perf_counter()
    rows = list(parse_upload(body, kind))
    if len(rows) > rt.settings.max_upload_rows:
        raise ApiError(
            413,
            "too_many_rows",
            f"the upload has {len(rows)} rows; the limit is {rt.settings.max_upload_rows}; split it",
        )
    report = accept_events(rt, rows, batch_id=batch_id)
    rejected_rows = [
        {"line": item["line"], "index": item["index"], "event_id": item["event_id"], "error": item["error"]}
        for item in report.results
        if item["status"] in {"rejected", "conflict"}
    ]
    rt.store.batches.insert_one(
        dict(report.summary(), batch_id=batch_id, format=kind, rows=len(rows), created_at=utcnow())
    )
    logger.info(
        "batch %s (%s): %d rows, %d accepted, %d duplicates, %d conflicts, %d rejected in %.3f s",
        batch_id, kind, len(rows), report.accepted, report.duplicates, report.conflicts, report.rejected,
        time.perf_counter() - started,
    )
    body_json = dict(
        report.summary(),
        batch_id=batch_id,
        rows=len(rows),
        rejected_rows=rejected_rows[:1000],
        progress_url=f"/api/events/batch/{batch_id}",
    )
    _reject_if_nothing_accepted(report, body_json)
    return jsonify(body_json), 202


@blueprint.get("/api/events/batch/<batch_id>")
def get_batch(batch_id: str):  # type: ignore[no-untyped-def]
    """Report how many of a batch's accepted events are scored so far."""
    rt = runtime()
    batch = rt.store.batches.find_one({"batch_id": batch_id}, {"_id": 0})
    if batch is None:
        raise ApiError(404, "not_found", f"batch {batch_id!r} does not exist; use the batch_id from the upload's answer")
    counted = rt.redis.get(BATCH_SCORED_KEY.format(batch_id=batch_id))
    if counted is not None:
        pending = max(0, batch["accepted"] - int(counted))
    else:
        # No counter (nothing scored yet, or Redis lost it): count in MongoDB,
        # with a projected find because count_documents is slow on the
        # embedded server.
        pending = sum(1 for _ in rt.store.events.find({"batch_id": batch_id, "scored": False}, {"_id": 1}))
    batch["pending"] = pending
    batch["scored"] = batch["accepted"] - pending
    batch["done"] = pending == 0
    return jsonify(batch)
