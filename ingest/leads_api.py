"""Read endpoints for leads: list, leaderboard, one lead and its audit trail."""

from __future__ import annotations

import base64
import json
from typing import Any

from flask import Blueprint, jsonify, request
from pymongo import ASCENDING, DESCENDING

from ingest.errors import ApiError
from ingest.events_api import runtime
from scorestream.runtime import Runtime
from scoring import engine
from scoring.store import state_from_document, utcnow

blueprint = Blueprint("leads", __name__)

MAX_PAGE = 500
MAX_LEADERBOARD = 100


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def lead_json(rt: Runtime, lead: dict[str, Any], now=None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Return the API shape of a lead, with the score decayed to ``now``."""
    state = state_from_document(lead)
    score = state.score
    stage = lead.get("stage")
    if state.anchor_version is not None:
        rules = rt.store.rules_by_version([state.anchor_version])
        decayed, _ = engine.apply_decay(lead["lead_id"], state, rules, now or utcnow())
        score, stage = decayed.score, decayed.stage
    return {
        "lead_id": lead["lead_id"],
        "score": score,
        "stage": stage,
        "last_activity_at": _iso(lead.get("last_activity_at")),
        "event_count": lead.get("event_count", 0),
        "email": lead.get("email"),
        "name": lead.get("name"),
        "company": lead.get("company"),
        "created_at": _iso(lead.get("created_at")),
        "updated_at": _iso(lead.get("updated_at")),
    }


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid", f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid", f"{name}={value} is outside {low}..{high}")
    return value


def _encode_cursor(lead: dict[str, Any]) -> str:
    raw = json.dumps([lead["score"], lead["lead_id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str) -> tuple[int, str]:
    try:
        padded = text + "=" * (-len(text) % 4)
        score, lead_id = json.loads(base64.urlsafe_b64decode(padded))
        return int(score), str(lead_id)
    except (ValueError, TypeError, OverflowError):
        raise ApiError(400, "invalid", f"cursor {text!r} is not one this server issued; start again without it") from None


@blueprint.get("/api/leads")
def list_leads():  # type: ignore[no-untyped-def]
    """List leads by score (highest first, ties by lead id), with cursor pagination.

    Filters: ``stage``, ``min_score``, ``max_score``; ``limit`` up to 500.
    """
    rt = runtime()
    limit = _int_arg("limit", 50, 1, MAX_PAGE)
    query: dict[str, Any] = {}
    if request.args.get("stage"):
        query["stage"] = request.args["stage"]
    score_range: dict[str, int] = {}
    if "min_score" in request.args:
        score_range["$gte"] = _int_arg("min_score", 0, -10**9, 10**9)
    if "max_score" in request.args:
        score_range["$lte"] = _int_arg("max_score", 0, -10**9, 10**9)
    if score_range:
        query["score"] = score_range
    cursor_text = request.args.get("cursor")
    if cursor_text:
        score, lead_id = _decode_cursor(cursor_text)
        after = {"$or": [{"score": {"$lt": score}}, {"score": score, "lead_id": {"$gt": lead_id}}]}
        query = {"$and": [query, after]} if query else after
    documents = list(
        rt.store.leads.find(query).sort([("score", DESCENDING), ("lead_id", ASCENDING)]).limit(limit + 1)
    )
    page = documents[:limit]
    now = utcnow()
    return jsonify(
        {
            "leads": [lead_json(rt, lead, now) for lead in page],
            "next": _encode_cursor(page[-1]) if len(documents) > limit else None,
        }
    )


@blueprint.get("/api/leads/leaderboard")
def leaderboard():  # type: ignore[no-untyped-def]
    """Return the top leads by stored score; ties in lead id order."""
    rt = runtime()
    limit = _int_arg("limit", 10, 1, MAX_LEADERBOARD)
    documents = rt.store.leads.find({}).sort([("score", DESCENDING), ("lead_id", ASCENDING)]).limit(limit)
    now = utcnow()
    return jsonify({"leads": [lead_json(rt, lead, now) for lead in documents]})


def _row_json(row: dict[str, Any]) -> dict[str, Any]:
    row = {key: value for key, value in row.items() if key not in {"_id", "revision"}}
    row["at"] = _iso(row.get("at"))
    return row


@blueprint.get("/api/leads/<path:lead_id>/history")
def lead_history(lead_id: str):  # type: ignore[no-untyped-def]
    """Return the lead's audit trail: its events and every score change."""
    rt = runtime()
    lead = rt.store.get_lead(lead_id) or rt.store.get_lead(lead_id.strip().lower())
    if lead is None:
        raise ApiError(404, "not_found", f"lead {lead_id!r} does not exist")
    events = [
        {
            "event_id": event["event_id"],
            "source": event["source"],
            "type": event["type"],
            "occurred_at": _iso(event["occurred_at"]),
            "received_at": _iso(event.get("received_at")),
            "rules_version": event.get("rules_version"),
            "properties": event.get("properties") or {},
            # nx-27017 0.8.1 turns a boolean written by $set into 1.
            "scored": bool(event.get("scored", False)),
        }
        for event in rt.store.lead_events(lead["lead_id"])
    ]
    changes = [_row_json(row) for row in rt.store.lead_history(lead["lead_id"])]
    return jsonify({"lead": lead_json(rt, lead), "events": events, "changes": changes})


@blueprint.get("/api/leads/<path:lead_id>")
def get_lead(lead_id: str):  # type: ignore[no-untyped-def]
    """Return one lead with its stage and its 20 most recent score changes."""
    rt = runtime()
    lead = rt.store.get_lead(lead_id) or rt.store.get_lead(lead_id.strip().lower())
    if lead is None:
        raise ApiError(404, "not_found", f"lead {lead_id!r} does not exist")
    body = lead_json(rt, lead)
    body["recent_history"] = [_row_json(row) for row in rt.store.lead_history(lead["lead_id"], limit=20)]
    return jsonify(body)
