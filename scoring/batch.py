"""Scoring a chunk of events in a few round trips.

The per-lead path in :mod:`scoring.worker` costs several queries per lead.
Here one chunk of events costs a handful of queries in all: load the events,
load (or create) their leads, replace every lead by compare-and-set in one
bulk write, write all history rows together, and mark the events scored.
Leads with late events, and leads whose compare-and-set lost a race, fall
back to the per-lead path, which gives the same result because scoring is a pure
function of the events.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from bson import ObjectId
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError

from scoring import engine
from scoring.store import (
    DUPLICATE_KEY,
    HistoryWrite,
    Store,
    event_from_document,
    lead_document,
    state_from_document,
    utcnow,
)
from scoring.worker import LeadOutcome, Publish, _profile, score_lead, score_messages

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchOutcome:
    """Counts of one chunk."""

    events: int
    leads: int
    fallbacks: int
    refolds: int


def _object_ids(ids: Sequence[Any]) -> list[ObjectId]:
    return [value if isinstance(value, ObjectId) else ObjectId(value) for value in ids]


def score_events(store: Store, ids: Sequence[Any], publish: Publish | None = None, now: datetime | None = None) -> BatchOutcome:
    """Score the given events (by ``_id``) that are still unscored."""
    when = now or utcnow()
    documents = list(store.events.find({"_id": {"$in": _object_ids(ids)}, "scored": False}))
    if not documents:
        return BatchOutcome(0, 0, 0, 0)
    by_lead: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for document in documents:
        by_lead[document["lead_id"]].append(document)

    leads = {lead["lead_id"]: lead for lead in store.leads.find({"lead_id": {"$in": list(by_lead)}})}
    missing = [lead_id for lead_id in by_lead if lead_id not in leads]
    if missing:
        _create_leads(store, missing, when)
        for lead in store.leads.find({"lead_id": {"$in": missing}}):
            leads[lead["lead_id"]] = lead

    write_id = uuid.uuid4().hex
    plans: dict[str, tuple[dict[str, Any], engine.LeadState, engine.Update, dict[str, Any]]] = {}
    fallback: list[str] = []
    for lead_id, pending_docs in by_lead.items():
        lead = leads.get(lead_id)
        if lead is None:
            fallback.append(lead_id)
            continue
        state = state_from_document(lead)
        pending = [event_from_document(doc) for doc in pending_docs]
        first = min(pending, key=lambda event: event.key)
        if not engine.is_in_order(state, first):
            # Late events re-fold the lead, which the per-lead path handles.
            fallback.append(lead_id)
            continue
        versions = {event.rules_version for event in pending}
        if state.anchor_version is not None:
            versions.add(state.anchor_version)
        rules = store.rules_by_version(versions)
        update = engine.score_new_events(lead_id, state, pending, None, rules, when)
        document = lead_document(
            lead_id,
            update.state,
            _profile(lead, pending_docs),
            when,
            created_at=lead["created_at"],
            revision=lead["revision"] + 1,
            next_decay_at=engine.next_decay_at(update.state, rules),
        )
        document["write_id"] = write_id
        plans[lead_id] = (lead, state, update, document)

    succeeded = _replace_all(store, plans, write_id)
    fallback.extend(lead_id for lead_id in plans if lead_id not in succeeded)

    store.write_histories(
        [
            HistoryWrite(
                lead_id,
                plans[lead_id][3]["revision"],
                plans[lead_id][2].from_seq,
                plans[lead_id][2].rows,
                previous_row_count=plans[lead_id][1].row_count,
            )
            for lead_id in succeeded
        ]
    )
    store.mark_scored([doc for lead_id in succeeded for doc in by_lead[lead_id]])

    if publish is not None:
        messages: list[dict[str, Any]] = []
        for lead_id in succeeded:
            _, state, update, _ = plans[lead_id]
            pending = sorted((event_from_document(doc) for doc in by_lead[lead_id]), key=lambda event: event.key)
            outcome = LeadOutcome(lead_id, state.score, update.state.score, len(pending), False, 1)
            messages.extend(score_messages(outcome, state, update, pending[-1], revision=plans[lead_id][3]["revision"]))
        publish(messages)

    refolds = 0
    for lead_id in fallback:
        outcome = score_lead(store, lead_id, publish, now)
        refolds += bool(outcome and outcome.refolded)
    return BatchOutcome(len(documents), len(by_lead), len(fallback), refolds)


def _create_leads(store: Store, lead_ids: list[str], when: datetime) -> None:
    documents = [lead_document(lead_id, engine.LeadState(), {}, when, created_at=when, revision=0) for lead_id in lead_ids]
    try:
        store.leads.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
            raise


def _replace_all(store: Store, plans: dict[str, Any], write_id: str) -> set[str]:
    """Compare-and-set every planned lead in one bulk write; return the lead ids that won."""
    if not plans:
        return set()
    operations = [
        # By _id, which the embedded server finds through its primary key.
        ReplaceOne({"_id": lead["_id"], "revision": lead["revision"]}, document)
        for lead_id, (lead, _state, _update, document) in plans.items()
    ]
    result = store.leads.bulk_write(operations, ordered=False)
    if result.matched_count == len(operations):
        return set(plans)
    # Some lost a race. A lead that still carries this write id was ours.
    # One that a later writer replaced already is treated as lost too: its
    # events are still unscored, so the per-lead path re-folds it correctly.
    won = set()
    for lead in store.leads.find({"lead_id": {"$in": list(plans)}}, {"lead_id": 1, "write_id": 1}):
        if lead.get("write_id") == write_id:
            won.add(lead["lead_id"])
    return won
