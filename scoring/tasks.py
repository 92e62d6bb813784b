"""The Huey queue and its tasks; bodies stay short and call the worker module.

The queue is built from the settings in :func:`build_queue`, once per
process. Task names are fixed strings so producers and consumers agree
whatever module imported them first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Sequence

from huey import RedisHuey, crontab
from huey.exceptions import TaskLockedException

from scoring import batch, rescore, worker
from scoring.store import utcnow

if TYPE_CHECKING:
    from scorestream.runtime import Runtime

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1)
_MINUTE = timedelta(minutes=1)


@dataclass
class Queue:
    """The Huey instance and handles to the tasks registered on it."""

    huey: RedisHuey
    score_events: Any
    rescore_leads: Any
    decay_due: Any
    sweep_unscored: Any

    def enqueue_events(self, event_ids: Sequence[Any], chunk_size: int = 500) -> int:
        """Enqueue scoring tasks for stored events, ``chunk_size`` events per task."""
        ids = [str(value) for value in event_ids]
        for start in range(0, len(ids), chunk_size):
            self.score_events(ids[start : start + chunk_size])
        return (len(ids) + chunk_size - 1) // chunk_size


def every_minutes(minutes: int) -> Callable[[datetime], bool]:
    """Return a Huey schedule that runs on every ``minutes``-th minute since the epoch.

    ``crontab(minute="*/7")`` restarts its count each hour (runs at :56 and
    then :00), and ``*/90`` runs hourly; counting from the epoch keeps the
    interval exact for any whole number of minutes. Huey checks periodic
    tasks once a minute, with a naive UTC datetime by default.
    """

    def is_due(moment: datetime) -> bool:
        return ((moment.replace(tzinfo=None) - _EPOCH) // _MINUTE) % minutes == 0

    return is_due


def build_queue(runtime: "Runtime") -> Queue:
    """Create the Huey instance on the runtime's Redis and register the tasks."""
    settings = runtime.settings
    huey = RedisHuey(
        "scorestream",
        url=settings.redis_url,
        results=False,
        # Huey's own blocking read lets a consumer wake as soon as a task lands.
        blocking=True,
    )

    def score_events(event_ids: list[str]) -> None:
        started = time.perf_counter()
        outcome = batch.score_events(runtime.store, event_ids, runtime.publisher.publish)
        logger.info(
            "score_events: %d ids, %d unscored events for %d leads, %d per-lead fallbacks, %d re-folds in %.3f s",
            len(event_ids),
            outcome.events,
            outcome.leads,
            outcome.fallbacks,
            outcome.refolds,
            time.perf_counter() - started,
        )

    def rescore_leads(job_id: str, version: int, lead_ids: list[str]) -> None:
        started = time.perf_counter()
        done = rescore.run_chunk(runtime, job_id, version, lead_ids)
        logger.info("rescore %s: %d leads in %.3f s, %d done", job_id, len(lead_ids), time.perf_counter() - started, done)

    def decay_due() -> None:
        # Every consumer process schedules the periodic tasks, so each tick
        # enqueues one copy per process. The lock lets one copy run and the
        # others that overlap it skip; a copy that starts later finds no
        # leads due, because the decay is a function of time. The lock
        # expires after 10 minutes, so a consumer killed mid-run cannot
        # stop decay for good.
        try:
            with huey.lock_task("decay_due", ttl=600):
                started = time.perf_counter()
                changed = worker.run_decay(runtime.store, publish=runtime.publisher.publish)
                logger.info("decay_due: %d leads decayed in %.3f s", changed, time.perf_counter() - started)
        except TaskLockedException:
            logger.debug("decay_due: another consumer is running it; skipped")

    def sweep_unscored() -> None:
        # While tasks are queued, old unscored events are most likely just
        # waiting their turn; re-enqueueing them would only add load. A lost
        # task (consumer killed, Redis restarted) is found once the queue drains.
        if huey.pending_count() > 0:
            return
        cutoff = utcnow() - timedelta(seconds=settings.sweep_after)
        stale = runtime.store.events.find({"scored": False, "received_at": {"$lte": cutoff}}, {"_id": 1})
        event_ids = [document["_id"] for document in stale]
        if event_ids:
            logger.warning(
                "sweep: %d events still unscored %d s after they were accepted; re-enqueueing them",
                len(event_ids),
                settings.sweep_after,
            )
            queue.enqueue_events(event_ids, settings.chunk_size)

    minutes = max(1, settings.decay_interval // 60)
    queue = Queue(
        huey=huey,
        score_events=huey.task(name="score_events", retries=3, retry_delay=1)(score_events),
        rescore_leads=huey.task(name="rescore_leads", retries=3, retry_delay=1)(rescore_leads),
        decay_due=huey.periodic_task(every_minutes(minutes), name="decay_due")(decay_due),
        sweep_unscored=huey.periodic_task(crontab(minute="*"), name="sweep_unscored")(sweep_unscored),
    )
    return queue
