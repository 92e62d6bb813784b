"""The worker's unit of work: fold a lead's unscored events into its score.

Tasks call :func:`score_lead` with lead ids. Scoring a lead is idempotent: it
reads the lead's unscored events, computes the update with the pure engine,
stores it by compare-and-set, writes the history rows and only then marks the
events scored. A crash at any point leaves the events unscored, so the sweep
or the next task for the lead redoes the work and reaches the same result.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

from scoring import engine
from scoring.store import (
    Store,
    event_from_document,
    lead_document,
    state_from_document,
    utcnow,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 200
Publish = Callable[[list[dict[str, Any]]], Any]


@dataclass(frozen=True)
class LeadOutcome:
    """What scoring one lead did."""

    lead_id: str
    score_before: int
    score_after: int
    events: int
    refolded: bool
    attempts: int


def _profile(previous: dict[str, Any], documents: Iterable[dict[str, Any]]) -> dict[str, Any]:
    profile = {key: previous.get(key) for key in ("email", "name", "company")}
    for document in sorted(documents, key=lambda doc: (doc["occurred_at"], doc["event_id"])):
        for key in profile:
            if document.get(key):
                profile[key] = document[key]
    return profile


def score_lead(store: Store, lead_id: str, publish: Publish | None = None, now: datetime | None = None) -> LeadOutcome | None:
    """Fold the lead's unscored events; return None when there was nothing to do."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        pending_docs = store.unscored_events(lead_id)
        if not pending_docs:
            return None
        lead = store.get_lead(lead_id)
        when = now or utcnow()
        if lead is None:
            store.create_lead(lead_id, when)
            continue

        state = state_from_document(lead)
        pending = [event_from_document(doc) for doc in pending_docs]
        ordered = sorted(pending, key=lambda event: event.key)
        all_events = None
        if not engine.is_in_order(state, ordered[0]):
            all_events = [event_from_document(doc) for doc in store.lead_events(lead_id)]
        versions = {event.rules_version for event in all_events or pending}
        if state.anchor_version is not None:
            versions.add(state.anchor_version)
        rules = store.rules_by_version(versions)

        update = engine.score_new_events(lead_id, state, pending, all_events, rules, when)
        revision = lead["revision"] + 1
        document = lead_document(
            lead_id,
            update.state,
            _profile(lead, pending_docs),
            when,
            created_at=lead["created_at"],
            revision=revision,
            next_decay_at=engine.next_decay_at(update.state, rules),
        )
        if not store.replace_lead(document, lead["revision"], lead["_id"]):
            # Another worker updated the lead first; recompute from its result.
            time.sleep(min(0.001 * attempt, 0.05))
            continue

        store.write_history(lead_id, revision, update.from_seq, update.rows, state.row_count)
        store.mark_scored(pending_docs)
        outcome = LeadOutcome(
            lead_id=lead_id,
            score_before=state.score,
            score_after=update.state.score,
            events=len(pending),
            refolded=update.refolded,
            attempts=attempt,
        )
        if publish is not None:
            publish(score_messages(outcome, state, update, ordered[-1], revision=revision))
        return outcome
    raise RuntimeError(f"lead {lead_id!r}: gave up after {MAX_ATTEMPTS} compare-and-set conflicts")


def score_messages(
    outcome: LeadOutcome,
    before: engine.LeadState,
    update: engine.Update,
    last_event: engine.Event | None,
    cause: str = "event",
    revision: int | None = None,
) -> list[dict[str, Any]]:
    """Build the real-time messages for one lead update.

    One ``score.updated`` per update (even when the effective change is 0, so
    clients see that the event was scored) and one ``stage.changed`` per
    crossing, as :func:`stage_crossings` finds them.
    """
    messages: list[dict[str, Any]] = [
        {
            "type": "score.updated",
            "lead_id": outcome.lead_id,
            # Concurrent updates of one lead may reach the stream out of
            # order; the highest revision carries the current score.
            "revision": revision,
            "old_score": outcome.score_before,
            "new_score": outcome.score_after,
            "delta": outcome.score_after - outcome.score_before,
            "cause": cause,
            "event_id": last_event.event_id if last_event else None,
            "event_type": last_event.type if last_event else None,
            "rules_version": last_event.rules_version if last_event else update.state.anchor_version,
            "events": outcome.events,
            "stage": update.state.stage,
        }
    ]
    for old, new in stage_crossings(before, update):
        messages.append({"type": "stage.changed", "lead_id": outcome.lead_id, "old_stage": old, "new_stage": new})
    return messages


def stage_crossings(before: engine.LeadState, update: engine.Update) -> list[tuple[str | None, str | None]]:
    """Return the ``(old, new)`` stage changes to announce for one update.

    The rows are walked from the stage the lead had, not from each row's
    ``stage_before``: an extended decay row keeps the ``stage_before`` of its
    first step, and that crossing was announced when the row was written.
    """
    if update.refolded:
        return [(before.stage, update.state.stage)] if before.stage != update.state.stage else []
    crossings = []
    current = before.stage
    for row in update.rows:
        if row.stage_after != current:
            crossings.append((current, row.stage_after))
            current = row.stage_after
    return crossings


def decay_lead(store: Store, lead_id: str, now: datetime, publish: Publish | None = None) -> LeadOutcome | None:
    """Write the decay steps due by ``now`` for one lead; None when none were due."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        lead = store.get_lead(lead_id)
        if lead is None:
            return None
        state = state_from_document(lead)
        if state.anchor_version is None:
            return None
        rules = store.rules_by_version([state.anchor_version])
        new_state, rows = engine.apply_decay(lead_id, state, rules, now)
        if not rows and new_state == state:
            return None
        revision = lead["revision"] + 1
        document = dict(lead)
        document.pop("_id", None)
        document.update(
            lead_document(
                lead_id,
                new_state,
                lead,
                lead["updated_at"],
                created_at=lead["created_at"],
                revision=revision,
                next_decay_at=engine.next_decay_at(new_state, rules),
            )
        )
        if not store.replace_lead(document, lead["revision"], lead["_id"]):
            continue
        from_seq = rows[0].seq if rows else new_state.row_count
        store.write_history(lead_id, revision, from_seq, rows, state.row_count)
        outcome = LeadOutcome(lead_id, state.score, new_state.score, 0, False, attempt)
        if publish is not None and rows:
            update = engine.Update(new_state, rows, from_seq, False)
            publish(score_messages(outcome, state, update, None, cause="decay", revision=revision))
        return outcome
    raise RuntimeError(f"lead {lead_id!r}: decay gave up after {MAX_ATTEMPTS} conflicts")


def run_decay(store: Store, now: datetime | None = None, publish: Publish | None = None, limit: int = 10_000) -> int:
    """Decay every lead whose next step is due; return how many leads changed."""
    when = now or utcnow()
    changed = 0
    while True:
        due = [doc["lead_id"] for doc in store.leads.find({"next_decay_at": {"$lte": when}}, {"lead_id": 1}).limit(limit)]
        if not due:
            return changed
        changed_now = sum(1 for lead_id in due if decay_lead(store, lead_id, when, publish) is not None)
        changed += changed_now
        if len(due) < limit or changed_now == 0:
            return changed
