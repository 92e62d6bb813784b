"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ingest.events_api import runtime

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    """Answer 200 while the process serves requests."""
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    """Answer 200 when MongoDB and Redis both answer, else 503 naming the one that does not."""
    rt = runtime()
    checks = {}
    try:
        rt.mongo.admin.command("ping")
        checks["mongodb"] = "ok"
    except Exception as error:  # any failure means not ready
        checks["mongodb"] = f"down: {type(error).__name__}"
    try:
        rt.redis.ping()
        checks["redis"] = "ok"
    except Exception as error:
        checks["redis"] = f"down: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    response = jsonify({"status": "ready" if ready else "unavailable", "checks": checks})
    response.status_code = 200 if ready else 503
    if not ready:
        response.headers["Retry-After"] = "5"
    return response
