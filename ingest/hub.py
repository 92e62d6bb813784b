"""The WebSocket hub: tail the Redis updates stream and fan out to clients.

Each web process runs one tailing thread for all of its clients, so the
number of Redis connections does not grow with the number of browsers.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any

import redis

from scoring.updates import SEQ_KEY, STREAM_KEY, decode_entry

logger = logging.getLogger(__name__)

CLIENT_QUEUE_SIZE = 10_000
BACKLOG_LIMIT = 100_000


class Hub:
    """One stream reader feeding every connected client's queue."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._clients: set[queue.Queue[dict[str, Any] | None]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def subscribe(self) -> "queue.Queue[dict[str, Any] | None]":
        """Register a client queue; start the reader thread on first use."""
        inbox: queue.Queue[dict[str, Any] | None] = queue.Queue(CLIENT_QUEUE_SIZE)
        with self._lock:
            self._clients.add(inbox)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ws-hub", daemon=True)
                self._thread.start()
        return inbox

    def unsubscribe(self, inbox: "queue.Queue[dict[str, Any] | None]") -> None:
        """Forget a client queue."""
        with self._lock:
            self._clients.discard(inbox)

    def latest_seq(self) -> int:
        """Return the newest sequence number handed out so far."""
        return int(self.client.get(SEQ_KEY) or 0)

    def backlog(self, since: int) -> tuple[list[dict[str, Any]], bool]:
        """Return the messages after ``since`` and whether a resync is needed instead.

        A resync is needed when some message after ``since`` is no longer in
        the stream (it was trimmed) or there are more than the backlog limit.
        """
        latest = self.latest_seq()
        if since >= latest:
            return [], False
        entries = self.client.xrange(STREAM_KEY, min=f"{since + 1}-0", max="+", count=BACKLOG_LIMIT + 1)
        messages = [decode_entry(entry_id, fields) for entry_id, fields in entries]
        if not messages or messages[0]["seq"] != since + 1 or len(messages) > BACKLOG_LIMIT:
            return [], True
        return messages, False

    def _run(self) -> None:
        last_id = "$"
        while True:
            with self._lock:
                if not self._clients:
                    self._thread = None
                    return
            try:
                response = self.client.xread({STREAM_KEY: last_id}, block=1000, count=1000)
            except redis.RedisError as error:
                logger.warning("hub: reading the updates stream failed (%s); retrying in 1 s", error)
                time.sleep(1)
                continue
            for _stream, entries in response or []:
                for entry_id, fields in entries:
                    last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    self._fan_out(decode_entry(entry_id, fields))

    def _fan_out(self, message: dict[str, Any]) -> None:
        with self._lock:
            clients = list(self._clients)
        for inbox in clients:
            try:
                inbox.put_nowait(message)
            except queue.Full:
                # A client this far behind is cut off; it reconnects with
                # ?since= and gets the backlog or a resync.
                self.unsubscribe(inbox)
                inbox.put(None) if inbox.empty() else None
                logger.warning("hub: a client fell %d messages behind and was disconnected", CLIENT_QUEUE_SIZE)


def serve_client(ws: Any, hub: Hub, since: int | None) -> None:
    """Send a client its missed messages (or a resync), then live messages until it leaves."""
    inbox = hub.subscribe()
    try:
        last_sent = hub.latest_seq() if since is None else since
        ws.send(json.dumps({"type": "hello", "seq": last_sent}))
        if since is not None:
            missed, resync = hub.backlog(since)
            if since > hub.latest_seq():
                # A seq this server never issued (another stream, or a reset
                # Redis): start over from now instead of waiting for it.
                resync = True
            if resync:
                last_sent = hub.latest_seq()
                ws.send(json.dumps({"type": "resync", "seq": last_sent, "since": since}))
            for message in missed:
                ws.send(json.dumps(message))
                last_sent = message["seq"]
        while ws.connected:
            try:
                message = inbox.get(timeout=5)
            except queue.Empty:
                continue
            if message is None:
                return
            if message["seq"] <= last_sent:
                continue
            ws.send(json.dumps(message))
            last_sent = message["seq"]
    finally:
        hub.unsubscribe(inbox)
