"""The Flask application factory."""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request
from flask_sock import Sock

from ingest import analytics_api, events_api, health, leads_api, rules_api
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

    app = Flask("scorestream")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 25}
    app.extensions["scorestream"] = runtime
    runtime.store.ensure_indexes()
    runtime.store.live_rules()
    if settings.demo_mode:
        logger.warning("no SCORESTREAM_API_KEYS set: local demo mode, writes accepted from loopback only")

    register_error_handlers(app)
    for module in (events_api, leads_api, rules_api, analytics_api, health):
        app.register_blueprint(module.blueprint)

    hub = Hub(runtime.redis)
    sock = Sock(app)

    @sock.route("/ws")
    def websocket(ws):  # type: ignore[no-untyped-def]
        require_read_access(request, runtime.read_tokens, runtime.keys)
        since_text = request.args.get("since")
        since = None
        if since_text is not None:
            if not since_text.isdigit():
                ws.close(reason=1008, message="since must be a whole sequence number")
                return
            since = int(since_text)
        serve_client(ws, hub, since)

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response):  # type: ignore[no-untyped-def]
        if request.path.startswith("/api/"):
            elapsed = time.perf_counter() - g.get("started", time.perf_counter())
            logger.info("%s %s -> %d in %.3f s", request.method, request.path, response.status_code, elapsed)
        return response

    return app


__all__ = ["create_app", "ApiError"]
