"""Connections shared by every part of one process: MongoDB, Redis, Huey."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property

import redis
from pymongo import MongoClient

from scorestream.config import Settings
from scoring.store import Store
from scoring.updates import UpdatePublisher

logger = logging.getLogger(__name__)

BATCH_SCORED_KEY = "scorestream:batch:{batch_id}:scored"
BATCH_PROGRESS_TTL = 7 * 86400


@dataclass
class Runtime:
    """Lazily opened clients for one set of settings (whose URLs must be set)."""

    settings: Settings

    @cached_property
    def mongo(self) -> MongoClient:
        """The MongoDB client; datetimes come back aware, in UTC."""
        return MongoClient(
            self.settings.mongo_uri,
            tz_aware=True,
            serverSelectionTimeoutMS=5000,
            connectTimeoutMS=5000,
            appname="scorestream",
        )

    @cached_property
    def store(self) -> Store:
        """The collections of the configured database, counting batch progress in Redis."""
        store = Store(self.mongo[self.settings.database])
        store.on_scored = self.count_scored
        return store

    def count_scored(self, counts: dict[str, int]) -> None:
        """Add newly scored events to their batches' progress counters."""
        pipe = self.redis.pipeline(transaction=False)
        for batch_id, count in counts.items():
            key = BATCH_SCORED_KEY.format(batch_id=batch_id)
            pipe.incrby(key, count)
            pipe.expire(key, BATCH_PROGRESS_TTL)
        pipe.execute()

    @cached_property
    def redis(self) -> redis.Redis:
        """The Redis client for the queue, the updates stream and counters."""
        return redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
        )

    @cached_property
    def publisher(self) -> UpdatePublisher:
        """The writer of real-time messages."""
        return UpdatePublisher(self.redis, self.settings.stream_maxlen)

    @cached_property
    def queue(self):  # type: ignore[no-untyped-def]
        """The Huey queue with ScoreStream's tasks registered."""
        from scoring.tasks import build_queue

        return build_queue(self)

    @cached_property
    def keys(self):  # type: ignore[no-untyped-def]
        """Digests of the API keys that may write."""
        from ingest.auth import KeyRing

        return KeyRing(self.settings.api_keys)

    @cached_property
    def read_tokens(self):  # type: ignore[no-untyped-def]
        """Digests of the tokens that may read ``/ws`` and the dashboard."""
        from ingest.auth import KeyRing

        return KeyRing(self.settings.read_tokens)

    def close(self) -> None:
        """Close the clients that were opened."""
        if "mongo" in self.__dict__:
            self.mongo.close()
        if "redis" in self.__dict__:
            self.redis.close()
