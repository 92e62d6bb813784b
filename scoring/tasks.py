"""The Huey queue and its tasks; bodies stay short and call the worker module.

The queue is built from the settings in :func:`build_queue`, once per
process. Task names are fixed strings so producers and consumers agree
whatever module imported them first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Sequence

from huey import RedisHuey, crontab

from scoring import worker
from scoring.store import utcnow

if TYPE_CHECKING:
    from scorestream.runtime import Runtime

logger = logging.getLogger(__name__)


@dataclass
class Queue:
    """The Huey instance and handles to the tasks registered on it."""

    huey: RedisHuey
    score_leads: Any
    decay_due: Any
    sweep_unscored: Any

    def enqueue_leads(self, lead_ids: Sequence[str], chunk_size: int = 200) -> int:
        """Enqueue scoring tasks for the leads, ``chunk_size`` leads per task."""
        unique = list(dict.fromkeys(lead_ids))
        for start in range(0, len(unique), chunk_size):
            self.score_leads(unique[start : start + chunk_size])
        return (len(unique) + chunk_size - 1) // chunk_size


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

    def score_leads(lead_ids: list[str]) -> None:
        started = time.perf_counter()
        outcomes = [worker.score_lead(runtime.store, lead_id, runtime.publisher.publish) for lead_id in lead_ids]
        done = [outcome for outcome in outcomes if outcome is not None]
        logger.info(
            "score_leads: %d leads, %d updated, %d events, %d re-folds in %.3f s",
            len(lead_ids),
            len(done),
            sum(outcome.events for outcome in done),
            sum(1 for outcome in done if outcome.refolded),
            time.perf_counter() - started,
        )

    def decay_due() -> None:
        started = time.perf_counter()
        changed = worker.run_decay(runtime.store, publish=runtime.publisher.publish)
        logger.info("decay_due: %d leads decayed in %.3f s", changed, time.perf_counter() - started)

    def sweep_unscored() -> None:
        cutoff = utcnow() - timedelta(seconds=settings.sweep_after)
        lead_ids = runtime.store.events.distinct("lead_id", {"scored": False, "received_at": {"$lte": cutoff}})
        if lead_ids:
            logger.warning("sweep: %d leads have events unscored after %d s; re-enqueueing", len(lead_ids), settings.sweep_after)
            queue.enqueue_leads(lead_ids)

    minutes = max(1, settings.decay_interval // 60)
    queue = Queue(
        huey=huey,
        score_leads=huey.task(name="score_leads", retries=3, retry_delay=1)(score_leads),
        decay_due=huey.periodic_task(crontab(minute=f"*/{minutes}"), name="decay_due")(decay_due),
        sweep_unscored=huey.periodic_task(crontab(minute="*"), name="sweep_unscored")(sweep_unscored),
    )
    return queue
