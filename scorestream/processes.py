"""Running the web app under gunicorn and the Huey consumer in this process."""

from __future__ import annotations

import logging
from typing import Any

from scorestream.config import Settings

logger = logging.getLogger(__name__)


def run_web(settings: Settings, port: int, host: str = "127.0.0.1", workers: int = 2) -> None:
    """Serve the Flask app with gunicorn's threaded workers until stopped.

    gthread workers keep one thread per open WebSocket, which flask-sock
    needs; waitress cannot hand the socket over, so it is not an option.
    """
    from gunicorn.app.base import BaseApplication

    from ingest.app import create_app

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "worker_class": "gthread",
                "threads": settings.web_threads,
                "timeout": 120,
                "graceful_timeout": 10,
                "accesslog": None,
                "loglevel": settings.log_level.lower(),
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):  # type: ignore[no-untyped-def]
            return create_app(settings)

    Server().run()


def run_worker(settings: Settings, threads: int | None = None) -> None:
    """Run a Huey consumer with the scoring tasks and the periodic decay and sweep."""
    from huey.consumer import Consumer

    from scorestream.runtime import Runtime

    runtime = Runtime(settings)
    runtime.store.ensure_indexes()
    queue = runtime.queue
    consumer = Consumer(
        queue.huey,
        workers=threads or settings.worker_threads,
        worker_type="thread",
        periodic=True,
        initial_delay=0.05,
        max_delay=0.5,
        check_worker_health=True,
    )
    consumer.run()
