"""Running the web app under gunicorn and the Huey consumer in this process."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from scorestream.config import Settings

if TYPE_CHECKING:
    from scorestream.runtime import Runtime

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


def wait_for_mongodb(runtime: "Runtime", interval: float = 1.0) -> None:
    """Create the indexes, retrying while MongoDB is down.

    A worker started or restarted while MongoDB is restarting would
    otherwise exit at once, and nothing would score the queued events.
    """
    from pymongo.errors import PyMongoError

    attempt = 0
    while True:
        try:
            runtime.store.ensure_indexes()
            return
        except PyMongoError as error:
            attempt += 1
            if attempt == 1 or attempt % 30 == 0:
                logger.warning("worker: MongoDB is not responding (%s); retrying every %.0f s", error, interval)
            time.sleep(interval)


def run_worker(settings: Settings, threads: int | None = None) -> None:
    """Run a Huey consumer with the scoring tasks and the periodic decay and sweep."""
    from huey.consumer import Consumer

    from scorestream.runtime import Runtime

    runtime = Runtime(settings)
    wait_for_mongodb(runtime)
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
    sweeper = threading.Thread(
        target=sweep_forever, args=(queue, settings.sweep_after), name="sweep", daemon=True
    )
    sweeper.start()
    consumer.run()


def sweep_forever(queue: Any, interval: int) -> None:
    """Re-enqueue stale unscored events at start and then every ``interval`` seconds.

    Huey's periodic tasks run at most once a minute, and a task lost with a
    killed consumer or a Redis crash leaves its events unscored until the
    next sweep, so the consumer process also sweeps on this shorter cycle.
    A sweep is skipped while tasks are waiting in the queue, because those
    tasks explain the unscored events; re-enqueueing them would only
    repeat work.
    """
    while True:
        try:
            if queue.huey.pending_count() == 0:
                queue.sweep_unscored.call_local()
        except Exception:  # Redis or MongoDB down: the next cycle tries again
            logger.exception("sweep failed; retrying in %d s", interval)
        time.sleep(interval)
