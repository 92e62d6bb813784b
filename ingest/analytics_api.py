"""Endpoints backed by the analytics library: streamed exports and what-if simulations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request, stream_with_context

from ingest.errors import ApiError
from ingest.events_api import _require_json, runtime
from ingest.validation import parse_timestamp
from scorestream.errors import ValidationError
from scoring.store import utcnow

blueprint = Blueprint("analytics", __name__)

MAX_SIMULATION_LEADS = 1000
MAX_WITHIN_DAYS = 36_500
_COMMON_EXPORT = {"format", "tz", "lead_ids"}
EXPORT_PARAMETERS = {
    "leads": _COMMON_EXPORT | {"stages", "min_score"},
    "events": _COMMON_EXPORT | {"start", "end", "types", "sources"},
    "history": _COMMON_EXPORT | {"start", "end", "causes"},
}
MAX_BINS = 1000
MAX_SCORE_FILTER = 10**9


def _list_arg(name: str) -> list[str] | None:
    raw = request.args.get(name)
    return [item.strip() for item in raw.split(",") if item.strip()] if raw else None


def _time_arg(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return parse_timestamp(int(raw) if raw.isascii() and raw.isdigit() else raw, utcnow())
    except ValidationError as error:
        raise ApiError(400, "invalid", f"{name}: {error.message}") from None


def _export(kind: str) -> Response:
    from analytics.export import CONTENT_TYPES, export_filename, stream_export

    allowed = EXPORT_PARAMETERS[kind]
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        # An ignored filter would export far more than the caller meant.
        raise ApiError(
            400, "invalid", f"unknown {kind} export parameters {unknown}; allowed: {', '.join(sorted(allowed))}"
        )
    fmt = request.args.get("format", "csv")
    tz = request.args.get("tz", "UTC")
    filters: dict[str, Any] = {}
    if _list_arg("lead_ids"):
        filters["lead_ids"] = _list_arg("lead_ids")
    if kind == "leads":
        if _list_arg("stages"):
            filters["stages"] = _list_arg("stages")
        if request.args.get("min_score"):
            raw = request.args["min_score"]
            try:
                filters["min_score"] = int(raw)
            except ValueError:
                raise ApiError(400, "invalid", f"min_score={raw!r} is not a whole number") from None
            # Checked here because an error while the export streams can
            # no longer become a JSON answer.
            if abs(filters["min_score"]) > MAX_SCORE_FILTER:
                raise ApiError(400, "invalid", f"min_score={raw!r} is outside -{MAX_SCORE_FILTER}..{MAX_SCORE_FILTER}")
    else:
        for name in ("start", "end"):
            value = _time_arg(name)
            if value is not None:
                filters[name] = value
        if kind == "history" and _list_arg("causes"):
            filters["causes"] = _list_arg("causes")
        if kind == "events":
            if _list_arg("types"):
                filters["types"] = _list_arg("types")
            if _list_arg("sources"):
                filters["sources"] = _list_arg("sources")
    try:
        chunks = stream_export(runtime().store.db, kind, fmt, tz, **filters)  # type: ignore[arg-type]
    except ValueError as error:
        raise ApiError(400, "invalid", str(error)) from None
    return Response(
        stream_with_context(chunks),
        content_type=CONTENT_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{export_filename(kind, fmt)}"'},  # type: ignore[arg-type]
    )


@blueprint.get("/api/utils/export/leads")
def export_leads() -> Response:
    """Stream the leads as CSV or Parquet (``format``, ``tz``, ``stages``, ``min_score``, ``lead_ids``)."""
    return _export("leads")


@blueprint.get("/api/utils/export/events")
def export_events() -> Response:
    """Stream the events as CSV or Parquet (``format``, ``tz``, ``start``, ``end``, ``types``, ``sources``, ``lead_ids``)."""
    return _export("events")


@blueprint.get("/api/utils/export/history")
def export_history() -> Response:
    """Stream the score history as CSV or Parquet (``format``, ``tz``, ``start``, ``end``, ``causes``, ``lead_ids``)."""
    return _export("history")


@blueprint.post("/api/simulations")
def post_simulation():  # type: ignore[no-untyped-def]
    """Run a what-if simulation of candidate rules against the full history.

    Body: ``{"rules": {...}, "outcome": "purchase", "within_days": 30,
    "stage": "mql", "top": 10, "include_leads": false}``; only ``rules`` is
    required. Reads only, so no API key is needed.
    """
    from analytics.simulate import simulate

    payload = _require_json()
    if not isinstance(payload, dict) or "rules" not in payload:
        raise ApiError(400, "invalid", "send {\"rules\": {...}} with the candidate rule set, as for PUT /api/scoring-rules")
    allowed = {"rules", "outcome", "within_days", "stage", "top", "include_leads", "bins"}
    unknown = sorted(set(payload) - allowed)
    if unknown:
        raise ApiError(400, "invalid", f"unknown fields {unknown}; allowed: {', '.join(sorted(allowed))}")
    top = payload.get("top", 10)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_SIMULATION_LEADS:
        raise ApiError(400, "invalid", f"top={top!r} must be a whole number from 1 to {MAX_SIMULATION_LEADS}")
    within = payload.get("within_days")
    if within is not None and (not isinstance(within, (int, float)) or isinstance(within, bool) or not 0 < within <= MAX_WITHIN_DAYS):
        raise ApiError(400, "invalid", f"within_days={within!r} must be a number of days above 0 and at most {MAX_WITHIN_DAYS}")
    outcome = payload.get("outcome")
    if outcome is not None and not isinstance(outcome, str):
        raise ApiError(400, "invalid", f"outcome={outcome!r} must be an event type name")
    stage = payload.get("stage")
    if stage is not None and not isinstance(stage, str):
        raise ApiError(400, "invalid", f"stage={stage!r} must be a stage name")
    bins = payload.get("bins", 10)
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise ApiError(400, "invalid", f"bins={bins!r} must be a whole number from 1 to {MAX_BINS}")
    try:
        result = simulate(
            runtime().store.db,
            payload["rules"],
            outcome=outcome,
            within_days=within,
            stage=stage,
            bins=bins,
        )
    except ValidationError as error:
        raise ApiError(422, "invalid_rules", error.message, error.details) from None
    except ValueError as error:
        raise ApiError(422, "invalid", str(error)) from None
    return jsonify(result.to_dict(top=top, include_leads=bool(payload.get("include_leads"))))
