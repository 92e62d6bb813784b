"""Re-folding every lead under a newly published rule version, in the background.

A rescore raises each event's ``rules_version`` to the new version (never
lowers it, so an older rescore finishing late cannot undo a newer one), then
re-folds the lead's whole history with ``rescore`` as the cause of its rows.
Leads are handed to Huey in chunks; progress lives in a Redis hash and goes
out as ``rescore.progress`` messages.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scoring import engine
from scoring.store import Store, event_from_document, lead_document, state_from_document, utcnow
from scoring.worker import MAX_ATTEMPTS, LeadOutcome, Publish, score_messages

if TYPE_CHECKING:
    from scorestream.runtime import Runtime

logger = logging.getLogger(__name__)

CHUNK_LEADS = 200
JOB_KEY = "scorestream:rescore:{job_id}"
JOB_TTL_SECONDS = 7 * 86400


def rescore_lead(store: Store, lead_id: str, version: int, now: datetime | None = None, publish: Publish | None = None) -> LeadOutcome | None:
    """Re-fold one lead with every event at ``version`` or newer."""
    store.events.update_many({"lead_id": lead_id, "rules_version": {"$lt": version}}, {"$set": {"rules_version": version}})
    for attempt in range(1, MAX_ATTEMPTS + 1):
        lead = store.get_lead(lead_id)
        if lead is None:
            return None
        when = now or utcnow()
        documents = store.lead_events(lead_id)
        events = [event_from_document(doc) for doc in documents]
        rules = store.rules_by_version({event.rules_version for event in events} | {version})
        state, rows = engine.fold(lead_id, events, rules, when, cause="rescore")
        before = state_from_document(lead)
        revision = lead["revision"] + 1
        document = lead_document(
            lead_id,
            state,
            lead,
            when,
            created_at=lead["created_at"],
            revision=revision,
            next_decay_at=engine.next_decay_at(state, rules),
        )
        if not store.replace_lead(document, lead["revision"], lead["_id"]):
            continue
        store.write_history(lead_id, revision, 0, rows, before.row_count)
        # Events scored by this fold need no further work from the sweep.
        store.mark_scored([doc for doc in documents if not doc.get("scored")])
        outcome = LeadOutcome(lead_id, before.score, state.score, len(events), True, attempt)
        changed = before.score != state.score or before.stage != state.stage
        if publish is not None and changed:
            update = engine.Update(state, rows, 0, True)
            publish(score_messages(outcome, before, update, None, cause="rescore", revision=revision))
        return outcome
    raise RuntimeError(f"lead {lead_id!r}: rescore gave up after {MAX_ATTEMPTS} conflicts")


def start_rescore(runtime: "Runtime", version: int) -> dict[str, Any]:
    """Enqueue the rescore of every lead under ``version``; return the job's progress."""
    job_id = uuid.uuid4().hex
    lead_ids = [document["lead_id"] for document in runtime.store.leads.find({}, {"lead_id": 1})]
    key = JOB_KEY.format(job_id=job_id)
    runtime.redis.hset(
        key,
        mapping={"job_id": job_id, "version": version, "total": len(lead_ids), "done": 0, "started_at": utcnow().isoformat()},
    )
    runtime.redis.expire(key, JOB_TTL_SECONDS)
    for start in range(0, len(lead_ids), CHUNK_LEADS):
        runtime.queue.rescore_leads(job_id, version, lead_ids[start : start + CHUNK_LEADS])
    logger.info("rescore %s: %d leads under rule set %d enqueued", job_id, len(lead_ids), version)
    progress = rescore_progress(runtime, job_id)
    assert progress is not None
    return progress


def run_chunk(runtime: "Runtime", job_id: str, version: int, lead_ids: list[str]) -> int:
    """Rescore one chunk of leads and record the progress; return the leads done."""
    publish = runtime.publisher.publish
    for lead_id in lead_ids:
        rescore_lead(runtime.store, lead_id, version, publish=publish)
    key = JOB_KEY.format(job_id=job_id)
    done = int(runtime.redis.hincrby(key, "done", len(lead_ids)))
    total = int(runtime.redis.hget(key, "total") or 0)
    if done >= total:
        runtime.redis.hsetnx(key, "finished_at", utcnow().isoformat())
    publish([{"type": "rescore.progress", "job_id": job_id, "version": version, "done": done, "total": total}])
    return done


def rescore_progress(runtime: "Runtime", job_id: str) -> dict[str, Any] | None:
    """Return ``{job_id, version, total, done, finished, started_at, finished_at}`` or None."""
    raw = runtime.redis.hgetall(JOB_KEY.format(job_id=job_id))
    if not raw:
        return None
    fields = {key.decode(): value.decode() for key, value in raw.items()}
    total, done = int(fields["total"]), int(fields["done"])
    return {
        "job_id": job_id,
        "version": int(fields["version"]),
        "total": total,
        "done": min(done, total),
        "finished": done >= total,
        "started_at": fields.get("started_at"),
        "finished_at": fields.get("finished_at"),
        "progress_url": f"/api/scoring-rules/rescore/{job_id}",
    }
