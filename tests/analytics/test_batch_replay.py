"""The as-lived fold reproduces leads scored by the production batch path.

Events go through :func:`scoring.batch.score_events` in chunks of 500 event
ids, the size the ingest path enqueues, in a shuffled arrival order so that
late events force re-folds. A rule change halfway through and a run of the
periodic decay job make the stored history as varied as in production.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any, Callable

import polars as pl
from pymongo.database import Database

from analytics.audit import replay_check
from analytics.fold import HISTORY_COLUMNS, fold_frame
from analytics.loaders import FOLD_COLUMNS, load_events, load_history, load_leads, load_rule_sets
from scoring.batch import score_events
from scoring.rules import RuleSet
from scoring.store import Store
from scoring.worker import run_decay

from conftest import CDNOW_RULES, NOW, cdnow_documents, cdnow_frame

CHUNK = 500
LEADS = 400
COMPARED = [name for name in HISTORY_COLUMNS if name not in ("event_type", "source")]


def score_in_chunks(store: Store, documents: list[dict[str, Any]], when: datetime) -> int:
    """Score the documents by id in chunks; return how many leads were re-folded."""
    ids = [document["_id"] for document in documents]
    refolds = 0
    for start in range(0, len(ids), CHUNK):
        refolds += score_events(store, ids[start : start + CHUNK], now=when).refolds
    return refolds


def test_batch_scored_leads_replay_as_lived(new_db: Callable[[], Database]) -> None:
    db = new_db()
    store = Store(db)
    first = store.publish_rules(CDNOW_RULES, published_by="tests")
    documents = cdnow_documents(cdnow_frame(LEADS), first.version)
    random.Random(7).shuffle(documents)
    half = len(documents) // 2

    store.insert_events(documents[:half])
    refolds = score_in_chunks(store, documents[:half], NOW)
    changed = RuleSet(
        points={"purchase": 25, "refund": -10}, cap=120, floor=-20,
        decay=CDNOW_RULES.decay, stages={"mql": 40, "sql": 100},
    )
    second = store.publish_rules(changed, published_by="tests")
    for document in documents[half:]:
        document["rules_version"] = second.version
    store.insert_events(documents[half:])
    refolds += score_in_chunks(store, documents[half:], NOW)
    assert refolds > 0
    # The periodic job extends each lead's open decay row in place.
    later = NOW + timedelta(days=90)
    assert run_decay(store, later) > 0

    leads = load_leads(db, columns=["lead_id", "score", "stage", "row_count", "decayed_until"]).sort("lead_id")
    folded = fold_frame(
        load_events(db, columns=FOLD_COLUMNS, sort=True),
        load_rule_sets(db),
        later,
        mode="as_lived",
        history=True,
        until=leads.select("lead_id", pl.col("decayed_until").alias("until")),
    )
    lived = folded.leads.sort("lead_id")

    assert leads.height == LEADS
    assert lived.get_column("lead_id").to_list() == leads.get_column("lead_id").to_list()
    assert lived.get_column("score").to_list() == leads.get_column("score").to_list()
    assert lived.get_column("stage").to_list() == leads.get_column("stage").to_list()
    assert lived.get_column("row_count").to_list() == leads.get_column("row_count").to_list()

    assert folded.history is not None
    stored_rows = load_history(db, columns=COMPARED).sort("lead_id", "seq")
    folded_rows = folded.history.select(COMPARED).sort("lead_id", "seq")
    assert stored_rows.height == folded_rows.height
    assert stored_rows.filter(pl.col("cause") == "decay").height > 0
    differ = stored_rows.join(
        folded_rows.with_columns(pl.col("at").dt.cast_time_unit("ms")),
        on=COMPARED, how="anti", nulls_equal=True,
    )
    assert differ.height == 0, differ

    report = replay_check(db)
    assert report.leads.height == LEADS
    assert report.mismatches.height == 0, report.mismatches
    assert report.ok
