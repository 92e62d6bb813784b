"""The store and the workers against the embedded MongoDB: flags, history writes, races."""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from ingest.validation import normalise_event
from scorestream.runtime import Runtime
from scoring import batch, engine, worker
from scoring.engine import Event
from scoring.rules import RuleSet
from scoring.store import HistoryWrite, Store, lead_document, utcnow
from tests.scoring.replay import assert_history_replays, assert_matches_fold

DAY = timedelta(days=1)
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def store(runtime: Runtime) -> Store:
    return runtime.store


def test_scored_flag_query_after_mark(store: Store) -> None:
    lead_id = f"flag-{uuid.uuid4().hex[:8]}"
    document = normalise_event(
        {"lead_id": lead_id, "type": "page_view", "occurred_at": utcnow().isoformat()}, utcnow(), 1
    )
    store.insert_events([document])
    assert len(store.unscored_events(lead_id)) == 1

    store.mark_scored([document])

    assert store.unscored_events(lead_id) == []
    assert len(list(store.events.find({"lead_id": lead_id, "scored": True}))) == 1


def _chain(lead_id: str) -> tuple[list[HistoryWrite], list[engine.Change], engine.LeadState]:
    """Three updates of one lead: a fold, a late event that drops rows, an append."""
    rules = {1: RuleSet(version=1, points={"buy": 100, "view": 0, "unsub": -100})}
    a = Event(lead_id, "a", "buy", START, 1)
    b = Event(lead_id, "b", "unsub", START + DAY, 1)
    c = Event(lead_id, "c", "view", START + 20 * DAY, 1)
    e = Event(lead_id, "e", "view", START + 40 * DAY, 1)
    f = Event(lead_id, "f", "buy", START + 42 * DAY, 1)

    first, rows = engine.fold(lead_id, [a, c, e], rules, START + 41 * DAY)
    late = engine.score_new_events(lead_id, first, [b], [a, b, c, e], rules, START + 41 * DAY)
    append = engine.score_new_events(lead_id, late.state, [f], None, rules, START + 42 * DAY)
    writes = [
        HistoryWrite(lead_id, 1, 0, rows),
        HistoryWrite(lead_id, 2, late.from_seq, late.rows),
        HistoryWrite(lead_id, 3, append.from_seq, append.rows),
    ]
    final_state, final_rows = engine.fold(lead_id, [a, b, c, e, f], rules, START + 42 * DAY)
    # The late unsubscribe takes the score to 0, so the two decay rows go.
    assert (len(rows), late.state.row_count) == (5, 4)
    return writes, final_rows, final_state


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))), ids=lambda order: "".join(map(str, order)))
def test_history_writes_any_order_settle(store: Store, order: tuple[int, ...]) -> None:
    lead_id = f"order-{uuid.uuid4().hex[:8]}"
    writes, final_rows, final_state = _chain(lead_id)
    # Every compare-and-set happened first; the row writes then interleave.
    store.leads.insert_one(lead_document(lead_id, final_state, {}, utcnow(), created_at=utcnow(), revision=3))

    for index in order:
        store.write_history(writes[index].lead_id, writes[index].revision, writes[index].from_seq, writes[index].rows)

    stored = store.lead_history(lead_id)
    assert [row["seq"] for row in stored] == list(range(len(final_rows)))
    assert [(row["event_id"], row["points"], row["score_after"]) for row in stored] == [
        (row.event_id, row.points, row.score_after) for row in final_rows
    ]
    assert_history_replays(store, [lead_id])


def _documents(lead_id: str, count: int, now: datetime) -> list[dict]:
    kinds = ["page_view", "email_open", "pricing_view", "unsubscribe", "mystery"]
    rng = random.Random(lead_id)
    documents = []
    for number in range(count):
        raw = {
            "event_id": f"{lead_id}-{number:04d}",
            "lead_id": lead_id,
            "type": rng.choice(kinds),
            "occurred_at": (now - timedelta(minutes=rng.randint(1, 300))).isoformat(),
        }
        documents.append(normalise_event(raw, now, 1))
    return documents


def test_racing_workers_match_full_fold(store: Store) -> None:
    store.live_rules()
    lead_id = f"race-{uuid.uuid4().hex[:8]}"
    now = utcnow()
    documents = _documents(lead_id, 160, now)
    random.Random(7).shuffle(documents)
    errors: list[BaseException] = []
    done = threading.Event()

    def score_loop(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not done.is_set() or store.unscored_events(lead_id):
                pending = store.unscored_events(lead_id)
                if seed % 2 and pending:
                    chunk = rng.sample(pending, min(len(pending), rng.randint(1, 8)))
                    batch.score_events(store, [doc["_id"] for doc in chunk])
                else:
                    worker.score_lead(store, lead_id)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=score_loop, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for start in range(0, len(documents), 8):
        chunk = [dict(doc) for doc in documents[start : start + 8]]
        store.insert_events(chunk)
    done.set()
    for thread in threads:
        thread.join(120)

    assert not errors, errors
    assert store.unscored_events(lead_id) == []
    assert_matches_fold(store, lead_id, utcnow())
    assert_history_replays(store, [lead_id])
