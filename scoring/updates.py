"""The Redis stream of real-time messages (``score.updated`` and friends).

Workers append; every web process tails the stream and fans out to its own
WebSocket clients. Each message gets a ``seq`` from one Redis counter, and the
stream entry id is ``<seq>-1``, so a client's ``since=<seq>`` maps directly to
a stream range. The counter increment and the append run in one Lua script so
that concurrent writers can never append out of order.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

import redis

STREAM_KEY = "scorestream:updates"
SEQ_KEY = "scorestream:updates:seq"

_APPEND = """
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], seq .. '-1', 'data', ARGV[1])
return seq
"""


class UpdatePublisher:
    """Append messages to the updates stream."""

    def __init__(self, client: redis.Redis, maxlen: int = 100_000) -> None:
        self.client = client
        self.maxlen = maxlen
        self._script = client.register_script(_APPEND)

    def publish(self, messages: Iterable[dict[str, Any]]) -> list[int]:
        """Append each message and return the sequence numbers they were given."""
        messages = list(messages)
        if not messages:
            return []
        pipe = self.client.pipeline(transaction=False)
        for message in messages:
            body = json.dumps(message, default=str, separators=(",", ":"))
            self._script(keys=[STREAM_KEY, SEQ_KEY], args=[body, self.maxlen], client=pipe)
        return [int(seq) for seq in pipe.execute()]


def decode_entry(entry_id: bytes | str, fields: dict[Any, Any]) -> dict[str, Any]:
    """Turn a stream entry into the message sent to clients, with its ``seq``."""
    raw_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    data = fields.get(b"data", fields.get("data"))
    message = json.loads(data)
    message["seq"] = int(raw_id.split("-", 1)[0])
    return message
