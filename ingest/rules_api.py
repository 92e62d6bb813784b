"""The scoring-rules endpoints: read the live set, publish a new version."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify, request

from ingest.auth import require_write_access
from ingest.errors import ApiError
from ingest.events_api import _require_json, runtime
from scorestream.runtime import Runtime
from scorestream.errors import ValidationError
from scoring.rules import RuleSet, parse_rule_set

logger = logging.getLogger(__name__)

blueprint = Blueprint("rules", __name__)


def rules_json(rules: RuleSet | dict[str, Any]) -> dict[str, Any]:
    """Return the API shape of a rule set, with ISO timestamps."""
    document = rules.to_document() if isinstance(rules, RuleSet) else dict(rules)
    document.pop("_id", None)
    published = document.get("published_at")
    document["published_at"] = published.isoformat() if published is not None else None
    return document


def publish(rt: Runtime, payload: Any, published_by: str, rescore: bool) -> dict[str, Any]:
    """Validate and publish a rule set; optionally start a rescore. Shared by the API and the dashboard."""
    if isinstance(payload, dict) and "points" not in payload:
        # Publishing replaces the live rules whole, so an empty or partial
        # body must not silently fall back to the defaults.
        raise ValidationError(
            "the rule set has no points; send the whole rule set (points, and optionally cap, floor, decay, stages, note)",
            details=[{"field": "points", "message": "missing"}],
        )
    candidate = parse_rule_set(payload)
    published = rt.store.publish_rules(candidate, published_by=published_by)
    body: dict[str, Any] = {"rules": rules_json(published), "rescore": None}
    rt.publisher.publish([{"type": "rules.published", "version": published.version, "rescore": rescore}])
    if rescore:
        from scoring.rescore import start_rescore

        body["rescore"] = start_rescore(rt, published.version)
    return body


def _check_storable_names(payload: Any) -> None:
    """Raise 400 for event-type or stage names that MongoDB cannot store as keys."""
    if not isinstance(payload, dict):
        return
    for field in ("points", "stages"):
        names = payload.get(field)
        if not isinstance(names, dict):
            continue
        for name in names:
            # BSON rejects NUL in keys, and MongoDB reads a leading $ as an operator.
            if "\x00" in name or name.startswith("$"):
                raise ApiError(
                    400, "invalid", f"{field} name {name[:40]!r} is invalid; remove NUL characters and a leading '$'"
                )


@blueprint.get("/api/scoring-rules")
def get_rules():  # type: ignore[no-untyped-def]
    """Return the live rule set."""
    return jsonify(rules_json(runtime().store.live_rules()))


@blueprint.get("/api/scoring-rules/versions")
def get_versions():  # type: ignore[no-untyped-def]
    """Return every published version, newest first."""
    return jsonify({"versions": [rules_json(document) for document in runtime().store.rule_versions()]})


@blueprint.put("/api/scoring-rules")
def put_rules():  # type: ignore[no-untyped-def]
    """Validate and publish a new rule-set version; ``?rescore=1`` re-folds every lead."""
    rt = runtime()
    require_write_access(request, rt.keys)
    payload = _require_json()
    _check_storable_names(payload)
    rescore = request.args.get("rescore") in {"1", "true", "yes"}
    published_by = request.headers.get("X-ScoreStream-User") or ("api-key" if rt.keys else "local")
    body = publish(rt, payload, published_by[:128], rescore)
    return jsonify(body), 200


@blueprint.get("/api/scoring-rules/rescore/<job_id>")
def get_rescore(job_id: str):  # type: ignore[no-untyped-def]
    """Report the progress of a rescore."""
    from scoring.rescore import rescore_progress

    progress = rescore_progress(runtime(), job_id)
    if progress is None:
        raise ApiError(404, "not_found", f"rescore {job_id!r} does not exist")
    return jsonify(progress)
