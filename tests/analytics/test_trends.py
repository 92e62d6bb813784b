"""Trends and funnels on small histories with hand-computed results."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

import polars as pl
import pytest
from pymongo.database import Database

from analytics.loaders import load_events, load_history, load_leads
from analytics.trends import (
    cohort_score_over_time,
    events_per_type,
    lead_cohorts,
    score_distribution,
    score_over_time,
    stage_counts,
    stage_funnel,
    time_to_stage,
    time_to_stage_summary,
)
from scoring.rules import Decay, RuleSet
from scoring.store import Store

from conftest import event_document, insert_and_score

MONDAY = datetime(2024, 3, 4, tzinfo=timezone.utc)
NOW = MONDAY + timedelta(days=21)
RULES = RuleSet(
    points={"view": 20, "demo": 60, "unsub": -50},
    cap=150,
    decay=Decay(after=30 * 86400, every=86400, points=1),
    stages={"mql": 50, "sql": 100},
)


@pytest.fixture(scope="module")
def trend_db(client) -> Database:
    """Three leads over three weeks:

    * a (week 1, source web): view d0 20, demo d1 80 (mql), demo d8 140 (sql)
    * b (week 1, source ads): view d2 20, unsub d3 0
    * c (week 2, source web): demo d7 60 (mql), view d7+1h 80, demo d15 140 (sql)
    """
    db = client["analytics_trends"]
    client.drop_database(db.name)
    store = Store(db)
    store.ensure_indexes()
    live = store.publish_rules(RULES, published_by="tests")
    v = live.version
    day = timedelta(days=1)
    documents = [
        event_document("a", "a1", "view", MONDAY, v, source="web"),
        event_document("a", "a2", "demo", MONDAY + day, v, source="web"),
        event_document("a", "a3", "demo", MONDAY + 8 * day, v, source="web"),
        event_document("b", "b1", "view", MONDAY + 2 * day, v, source="ads"),
        event_document("b", "b2", "unsub", MONDAY + 3 * day, v, source="ads"),
        event_document("c", "c1", "demo", MONDAY + 7 * day, v, source="web"),
        event_document("c", "c2", "view", MONDAY + 7 * day + timedelta(hours=1), v, source="web"),
        event_document("c", "c3", "demo", MONDAY + 15 * day, v, source="web"),
    ]
    insert_and_score(store, documents, now=NOW)
    return db


def test_score_over_time_weekly(trend_db: Database) -> None:
    scores = score_over_time(load_history(trend_db), every="1w")
    rows = {(row["lead_id"], row["period"].date().isoformat()): row["score"] for row in scores.iter_rows(named=True)}

    assert rows == {
        ("a", "2024-03-04"): 80, ("a", "2024-03-11"): 140, ("a", "2024-03-18"): 140,
        ("b", "2024-03-04"): 0, ("b", "2024-03-11"): 0, ("b", "2024-03-18"): 0,
        ("c", "2024-03-11"): 80, ("c", "2024-03-18"): 140,
    }


def test_cohorts_by_week_and_source(trend_db: Database) -> None:
    events = load_events(trend_db)
    history = load_history(trend_db)

    assert lead_cohorts(events, "first_week").rows() == [("a", "2024-03-04"), ("b", "2024-03-04"), ("c", "2024-03-11")]
    by_source = cohort_score_over_time(history, events, by="source", every="1w")
    web = by_source.filter(pl.col("cohort") == "web")
    assert web.get_column("leads").to_list() == [1, 2, 2]
    assert web.get_column("mean_score").to_list() == [80.0, 110.0, 140.0]
    ads = by_source.filter(pl.col("cohort") == "ads")
    assert ads.get_column("mean_score").to_list() == [0.0, 0.0, 0.0]


def test_score_distribution_and_stage_counts(trend_db: Database) -> None:
    leads = load_leads(trend_db)

    assert score_distribution(leads, [0, 50, 100, 150]).get_column("leads").to_list() == [1, 0, 2]
    assert stage_counts(leads, RULES).rows() == [(None, 1), ("sql", 2)]


def test_events_per_type_per_week(trend_db: Database) -> None:
    counts = events_per_type(load_events(trend_db), every="1w")
    rows = [(period.date().isoformat(), kind, n) for period, kind, n in counts.iter_rows()]

    assert rows == [
        ("2024-03-04", "demo", 1), ("2024-03-04", "unsub", 1), ("2024-03-04", "view", 2),
        ("2024-03-11", "demo", 2), ("2024-03-11", "view", 1), ("2024-03-18", "demo", 1),
    ]


def test_stage_funnel_conversion(trend_db: Database) -> None:
    funnel = stage_funnel(load_history(trend_db), RULES)

    assert funnel.get_column("stage").to_list() == ["all", "mql", "sql"]
    assert funnel.get_column("leads").to_list() == [3, 2, 2]
    assert funnel.get_column("from_previous").to_list() == [None, pytest.approx(2 / 3), 1.0]
    assert funnel.get_column("from_all").to_list() == [1.0, pytest.approx(2 / 3), pytest.approx(2 / 3)]


def test_time_to_stage_per_lead(trend_db: Database) -> None:
    history = load_history(trend_db)
    times = time_to_stage(history, RULES)
    elapsed = {(row["lead_id"], row["stage"]): row["elapsed"] for row in times.iter_rows(named=True)}

    assert elapsed == {
        ("a", "mql"): timedelta(days=1), ("a", "sql"): timedelta(days=8),
        ("c", "mql"): timedelta(0), ("c", "sql"): timedelta(days=8),
    }
    summary = time_to_stage_summary(history, RULES)
    assert summary.get_column("stage").to_list() == ["mql", "sql"]
    assert summary.get_column("median_days").to_list() == [0.5, 8.0]


def test_funnel_counts_stage_skips(new_db: Callable[[], Database]) -> None:
    db = new_db()
    store = Store(db)
    live = store.publish_rules(RULES, published_by="tests")
    insert_and_score(store, [event_document("x", "x1", "demo", MONDAY, live.version),
                             event_document("x", "x2", "demo", MONDAY + timedelta(hours=1), live.version),
                             event_document("y", "y1", "view", MONDAY, live.version)])
    # Every row of x now shows sql, as if one event jumped past mql.
    db.score_history.update_many({"lead_id": "x"}, {"$set": {"stage_after": "sql"}})

    funnel = stage_funnel(load_history(db), RULES)

    # Reaching sql counts as having passed mql.
    assert funnel.get_column("leads").to_list() == [2, 1, 1]
