"""Accepting events: validate, store in MongoDB, then enqueue scoring.

Events are written to MongoDB before the API answers, so an accepted event
survives a worker or Redis failure: if the enqueue is lost, the sweep task
finds the unscored event and enqueues it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

from scorestream.errors import DependencyUnavailable, ValidationError
from scorestream.runtime import Runtime
from ingest.validation import normalise_event
from scoring.store import utcnow

logger = logging.getLogger(__name__)


@dataclass
class IntakeReport:
    """Per-item results and counts of one request."""

    results: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    lead_ids: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        """Return the counts."""
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
        }


def check_dependencies(runtime: Runtime) -> None:
    """Raise DependencyUnavailable unless MongoDB and Redis both answer.

    Checked before anything is written so that a request made while one is
    down is refused whole (503) rather than half accepted.
    """
    try:
        runtime.redis.ping()
    except Exception as error:  # redis raises several unrelated types here
        raise DependencyUnavailable(f"Redis is not responding: {type(error).__name__}") from error
    try:
        runtime.mongo.admin.command("ping")
    except Exception as error:
        raise DependencyUnavailable(f"MongoDB is not responding: {type(error).__name__}") from error


def accept_events(
    runtime: Runtime,
    rows: Iterable[tuple[int, int, Any, str | None]],
    batch_id: str | None = None,
    enqueue: bool = True,
) -> IntakeReport:
    """Validate, store and enqueue parsed rows ``(line, index, raw, parse_error)``.

    Rows go to MongoDB ``chunk_size`` at a time, and each chunk's accepted
    event ids become one scoring task, never one task per event.
    """
    store = runtime.store
    chunk_size = runtime.settings.chunk_size
    now = utcnow()
    version = store.live_rules().version
    report = IntakeReport()
    pending: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        if not pending:
            return
        documents = [document for _, document in pending]
        outcomes = store.insert_events(documents)
        for (position, document), outcome in zip(pending, outcomes):
            result = report.results[position]
            result["status"] = outcome.status
            if outcome.status == "accepted":
                report.accepted += 1
            elif outcome.status == "duplicate":
                report.duplicates += 1
            else:
                report.conflicts += 1
                result["error"] = (
                    f"event {document['event_id']!r} from source {document['source']!r} was "
                    "already accepted with a different payload; the first payload is kept"
                )
        report.lead_ids.extend(doc["lead_id"] for doc, outcome in zip(documents, outcomes) if outcome.status != "conflict")
        accepted_ids = [doc["_id"] for doc, outcome in zip(documents, outcomes) if outcome.status == "accepted"]
        if enqueue and accepted_ids:
            runtime.queue.enqueue_events(accepted_ids, chunk_size)
        pending.clear()

    for line, index, raw, parse_error in rows:
        result: dict[str, Any] = {"index": index, "line": line, "status": "rejected", "event_id": None, "error": parse_error}
        report.results.append(result)
        if parse_error is not None:
            report.rejected += 1
            continue
        if isinstance(raw, dict) and isinstance(raw.get("event_id"), str):
            result["event_id"] = raw["event_id"]
        try:
            document = normalise_event(raw, now, version, batch_id)
        except ValidationError as error:
            result["error"] = error.message
            report.rejected += 1
            continue
        result["event_id"] = document["event_id"]
        result["status"] = "accepted"
        pending.append((len(report.results) - 1, document))
        if len(pending) >= chunk_size:
            flush()
    flush()
    return report
