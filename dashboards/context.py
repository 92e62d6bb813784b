"""What every dashboard session shares: the database, the web app and the live feed."""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import panel as pn
from pymongo.database import Database

from dashboards.feed import LiveFeed, websocket_url
from scorestream.runtime import Runtime

logger = logging.getLogger(__name__)


@dataclass
class DashboardContext:
    """The process-wide connections of one dashboard server.

    ``api_url`` is the web app that serves ``/ws`` and ``PUT
    /api/scoring-rules``. ``feed`` is None when the dashboard runs without a
    web app, for example in the benchmark.
    """

    runtime: Runtime
    api_url: str
    feed: LiveFeed | None = None
    published_by: str = "dashboard"

    @property
    def db(self) -> Database:
        """The ScoreStream database."""
        return self.runtime.store.db

    def api_headers(self) -> dict[str, str]:
        """Headers for writes: the first configured API key, if any, and the user name."""
        headers = {"X-ScoreStream-User": self.published_by}
        keys = self.runtime.settings.api_keys
        if keys:
            headers["Authorization"] = f"Bearer {keys[0]}"
        return headers

    def start_feed(self) -> LiveFeed:
        """Start the ``/ws`` subscription (once) and return it."""
        if self.feed is None:
            settings = self.runtime.settings
            tokens = settings.read_tokens or settings.api_keys
            self.feed = LiveFeed(websocket_url(self.api_url), tokens[0] if tokens else None)
        return self.feed.start()


@dataclass
class SessionUpdates:
    """Carry live messages from the feed's thread into one browser session.

    ``push`` runs on the feed's thread: it queues the message and asks
    Bokeh to run ``apply`` on the session's event loop with every message
    queued since, so a burst of updates becomes one table refresh.
    ``Document.add_next_tick_callback`` is the Bokeh call that is safe from
    other threads.
    """

    apply: Callable[[list[dict[str, Any]]], None]
    kinds: frozenset[str]
    _pending: deque[dict[str, Any]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _scheduled: bool = False
    _document: Any = None
    _unsubscribe: Callable[[], None] | None = None

    def attach(self, feed: LiveFeed | None) -> None:
        """Subscribe to ``feed`` for the current session and unsubscribe when it closes."""
        self._document = pn.state.curdoc
        if feed is None or self._document is None:
            return
        self._unsubscribe = feed.subscribe(self.push)
        pn.state.on_session_destroyed(lambda _context: self.detach())

    def detach(self) -> None:
        """Stop receiving messages."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def push(self, message: dict[str, Any]) -> None:
        """Queue ``message`` if its type is wanted, and schedule one flush."""
        if message.get("type") not in self.kinds:
            return
        with self._lock:
            self._pending.append(message)
            if self._scheduled:
                return
            self._scheduled = True
        self._document.add_next_tick_callback(self._flush)

    def _flush(self) -> None:
        with self._lock:
            messages = list(self._pending)
            self._pending.clear()
            self._scheduled = False
        if messages:
            self.apply(messages)
