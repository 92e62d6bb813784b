"""The Flask application factory."""

from __future__ import annotations

import logging
import time

from flask import Flask, Request, g, request
from flask_sock import Sock

from ingest import analytics_api, events_api, health, leads_api, openapi, rules_api
from ingest.auth import require_read_access
from ingest.errors import ApiError, register_error_handlers
from ingest.hub import Hub, serve_client
from scorestream.config import Settings, load_settings
from scorestream.runtime import Runtime
from scorestream.services import resolve_services

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the web app; without arguments, settings come from the environment."""
    if runtime is None:
        settings = settings or load_settings()
        if not (settings.mongo_uri and settings.redis_url):
            services = resolve_services(settings)
            settings = settings.with_services(services.mongo_uri, services.redis_url)
        runtime = Runtime(settings)
    settings = runtime.settings

    app = Flask("scorestream", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 25}
    app.extensions["scorestream"] = runtime
    runtime.store.ensure_indexes()
    runtime.store.live_rules()
    if settings.demo_mode:
        logger.warning("no SCORESTREAM_API_KEYS set: local demo mode, writes accepted from loopback only")

    register_error_handlers(app)
    for module in (events_api, leads_api, rules_api, analytics_api, health, openapi):
        app.register_blueprint(module.blueprint)

    hub = Hub(runtime.redis)
    sock = Sock(app)

    @sock.route("/ws")
    def websocket(ws):  # type: ignore[no-untyped-def]
        since_text = request.args.get("since")
        since = int(since_text) if since_text is not None else None
        logger.info("ws client %s connected, since=%s", request.remote_addr, since_text or "-")
        serve_client(ws, hub, since)

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.before_request
    def check_websocket_request() -> None:
        # flask-sock completes the upgrade before the route runs, so an error
        # raised inside the route could no longer become an HTTP answer.
        if request.path == "/ws":
            check_websocket_upgrade(request, runtime)

    @app.after_request
    def log_request(response):  # type: ignore[no-untyped-def]
        if request.path not in {"/healthz", "/readyz"}:
            elapsed = time.perf_counter() - g.get("started", time.perf_counter())
            logger.info("%s %s -> %d in %.3f s", request.method, request.path, response.status_code, elapsed)
        return response

    return app


def check_websocket_upgrade(request: Request, runtime: Runtime) -> None:
    """Raise 400 or 401 for a ``/ws`` request that must not be upgraded."""
    require_read_access(request, runtime.read_tokens, runtime.keys)
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise ApiError(
            400,
            "websocket_required",
            "/ws speaks WebSocket only; connect with a WebSocket client (Upgrade: websocket)",
        )
    since_text = request.args.get("since")
    if since_text is not None and not (since_text.isascii() and since_text.isdigit()):
        raise ApiError(
            400,
            "invalid",
            f"since={since_text[:40]!r} is not a sequence number; pass the seq of the last message received",
        )


__all__ = ["create_app", "ApiError"]
