"""A background subscription to the web app's ``/ws`` stream of real-time messages.

One :class:`LiveFeed` per dashboard process holds one WebSocket to the web
app and hands every message to the callbacks that browser sessions register.
After a dropped connection it reconnects with ``?since=<seq>``, so the web
app resends what was missed, or a ``resync`` message when that is older than
the stream keeps.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable
from urllib.parse import urlencode

import websocket

logger = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]

RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0)


def websocket_url(api_url: str) -> str:
    """Return the ``/ws`` URL of the web app at ``api_url``.

    >>> websocket_url("http://127.0.0.1:5001/")
    'ws://127.0.0.1:5001/ws'
    """
    base = api_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/ws"
    return "ws://" + base.removeprefix("http://") + "/ws"


class LiveFeed:
    """Read ``/ws`` in a daemon thread and pass each message to the listeners.

    Listeners run on the feed's thread, so they must only queue work for
    their own session (see :meth:`dashboards.session.SessionUpdates.push`).
    """

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.token = token
        self.seq: int | None = None
        self.connected = threading.Event()
        self._listeners: dict[int, Listener] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socket: websocket.WebSocket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "LiveFeed":
        """Start the reader thread (once); return the feed."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dashboard-ws", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Close the WebSocket and end the reader thread."""
        self._stop.set()
        sock = self._socket
        if sock is not None:
            sock.close()
        if self._thread is not None:
            self._thread.join(5)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Register ``listener`` for every message; return the function that removes it."""
        key = id(listener)
        with self._lock:
            self._listeners[key] = listener

        def unsubscribe() -> None:
            with self._lock:
                self._listeners.pop(key, None)

        return unsubscribe

    def _connect_url(self) -> str:
        query: dict[str, Any] = {}
        if self.seq is not None:
            query["since"] = self.seq
        if self.token:
            query["token"] = self.token
        return f"{self.url}?{urlencode(query)}" if query else self.url

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._socket = websocket.create_connection(self._connect_url(), timeout=10)
                self._socket.settimeout(None)
                logger.info("live feed connected to %s (since seq %s)", self.url, self.seq)
                self.connected.set()
                failures = 0
                self._read(self._socket)
            except (OSError, websocket.WebSocketException) as error:
                if self._stop.is_set():
                    break
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                # Log the first failure and then every tenth, so a web app that
                # stays down does not flood the log.
                if failures == 1 or failures % 10 == 0:
                    logger.warning(
                        "live feed from %s lost (%s, %d attempts); reconnecting with since=%s in %.1f s",
                        self.url, error, failures, self.seq, delay,
                    )
                self._stop.wait(delay)
            finally:
                self.connected.clear()
                if self._socket is not None:
                    self._socket.close()
                    self._socket = None

    def _read(self, sock: websocket.WebSocket) -> None:
        while not self._stop.is_set():
            raw = sock.recv()
            if not raw:
                raise websocket.WebSocketConnectionClosedException("the web app closed /ws")
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "hello":
                # The first hello gives the starting point; after a reconnect
                # it repeats our own ``since``.
                if self.seq is None:
                    self.seq = int(message["seq"])
                continue
            if kind == "resync":
                self.seq = int(message["seq"])
            elif "seq" in message:
                self.seq = max(self.seq or 0, int(message["seq"]))
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._listeners.values())
        for listener in listeners:
            try:
                listener(message)
            except Exception:
                logger.exception("live feed listener failed on message seq %s; it stays subscribed", message.get("seq"))
