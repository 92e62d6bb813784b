"""What-if simulation and replay checks against leads scored by the worker."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Callable

import polars as pl
import pytest
from pymongo.database import Database

from analytics.audit import audit_trail, replay_check
from analytics.loaders import load_leads, load_rule_sets
from analytics.simulate import simulate
from scorestream.errors import ValidationError
from scoring.rules import RuleSet
from scoring.store import Store

from conftest import CDNOW_RULES, NOW, cdnow_documents, cdnow_frame, event_document, insert_and_score


def test_simulate_live_rules_equal_stored(cdnow_db: Database) -> None:
    live = load_rule_sets(cdnow_db)
    result = simulate(cdnow_db, live[max(live)], now=NOW)
    stored = load_leads(cdnow_db, columns=["lead_id", "score", "stage"]).sort("lead_id")

    assert result.leads.height == stored.height == 300
    assert result.leads.get_column("new_score").to_list() == stored.get_column("score").to_list()
    assert result.leads.get_column("old_score").to_list() == stored.get_column("score").to_list()
    assert result.leads.get_column("new_stage").to_list() == stored.get_column("stage").to_list()
    assert result.summary["scores_changed"] == 0
    assert result.stage_changes.height == 0


def test_simulate_candidate_reports_impact(cdnow_db: Database) -> None:
    payload = {
        "points": {"purchase": 80, "refund": -30},
        "cap": 400,
        "decay": {"after": "30d", "every": "7d", "points": 5},
        "stages": {"mql": 50, "sql": 150},
    }
    result = simulate(cdnow_db, payload, now=NOW, outcome="purchase", within_days=90)
    summary = result.to_dict(top=5)

    json.dumps(summary)
    assert summary["summary"]["leads"] == 300
    assert summary["summary"]["after"]["mean"] > summary["summary"]["before"]["mean"]
    assert len(summary["top_movers"]["up"]) == 5
    ups = [row["delta"] for row in summary["top_movers"]["up"]]
    assert ups == sorted(ups, reverse=True)
    counts = result.stage_counts
    assert counts.get_column("before").sum() == counts.get_column("after").sum() == 300
    assert result.distribution.get_column("before").sum() == 300
    ranks = result.leads.get_column("new_rank").sort().to_list()
    assert ranks == list(range(1, 301))
    assert [entry["rule_set"] for entry in summary["backtest"]] == ["live", "candidate"]
    for entry in summary["backtest"]:
        assert entry["leads"] == 300
        assert 0 <= entry["hits"] <= entry["flagged"]


def test_simulate_rejects_invalid_payload(cdnow_db: Database) -> None:
    with pytest.raises(ValidationError, match="cap"):
        simulate(cdnow_db, {"points": {"purchase": 1}, "cap": "high"}, now=NOW)


def test_backtest_hand_computed(new_db: Callable[[], Database]) -> None:
    db = new_db()
    store = Store(db)
    live = store.publish_rules(
        RuleSet(points={"visit": 30, "deal": 0}, stages={"hot": 50}, cap=1000), published_by="tests"
    )
    day = NOW - timedelta(days=60)
    documents = [
        # a: hot on day 1, deal on day 5 -> hit within 10 days.
        event_document("a", "a1", "visit", day, live.version),
        event_document("a", "a2", "visit", day + timedelta(days=1), live.version),
        event_document("a", "a3", "deal", day + timedelta(days=5), live.version),
        # b: hot on day 1, deal on day 30 -> flagged, no hit within 10 days.
        event_document("b", "b1", "visit", day, live.version),
        event_document("b", "b2", "visit", day + timedelta(days=1), live.version),
        event_document("b", "b3", "deal", day + timedelta(days=30), live.version),
        # c: never hot, deal -> a missed outcome.
        event_document("c", "c1", "visit", day, live.version),
        event_document("c", "c2", "deal", day + timedelta(days=2), live.version),
        # d: never hot, no deal.
        event_document("d", "d1", "visit", day, live.version),
    ]
    insert_and_score(store, documents)
    candidate = RuleSet(points={"visit": 60}, stages={"hot": 50})

    result = simulate(db, candidate, now=NOW, outcome="deal", within_days=10, stage="hot")
    live_entry, candidate_entry = result.backtest

    assert (live_entry["flagged"], live_entry["hits"], live_entry["outcomes"]) == (2, 1, 3)
    assert live_entry["precision"] == pytest.approx(0.5)
    assert live_entry["recall"] == pytest.approx(1 / 3)
    assert live_entry["lift"] == pytest.approx(0.5 / 0.75)
    # Under the candidate one visit is enough: all four leads are flagged on day 0.
    assert (candidate_entry["flagged"], candidate_entry["hits"]) == (4, 2)
    assert candidate_entry["precision"] == pytest.approx(0.5)


def test_replay_check_passes_after_rule_change(new_db: Callable[[], Database]) -> None:
    db = new_db()
    store = Store(db)
    first = store.publish_rules(CDNOW_RULES, published_by="tests")
    frame = cdnow_frame(60)
    cutoff = NOW - timedelta(days=200)
    early = frame.filter(pl.col("occurred_at") < cutoff)
    late = frame.filter(pl.col("occurred_at") >= cutoff)
    insert_and_score(store, cdnow_documents(early, first.version), now=cutoff)
    changed = RuleSet(
        points={"purchase": 25, "refund": -10}, cap=120, floor=-20,
        decay=CDNOW_RULES.decay, stages={"mql": 40, "sql": 100},
    )
    second = store.publish_rules(changed, published_by="tests")
    insert_and_score(store, cdnow_documents(late, second.version), now=NOW)

    report = replay_check(db)

    assert report.leads.height == 60
    assert report.mismatches.height == 0, report.mismatches
    assert report.ok
    versions = set(audit_trail(db, report.leads.get_column("lead_id").to_list()).get_column("rules_version"))
    assert versions == {first.version, second.version}


def test_audit_trail_lists_changes(cdnow_db: Database) -> None:
    lead = load_leads(cdnow_db, columns=["lead_id", "score", "row_count"]).sort("row_count").row(-1, named=True)
    trail = audit_trail(cdnow_db, lead["lead_id"])

    assert trail.height == lead["row_count"]
    assert trail.get_column("seq").to_list() == list(range(trail.height))
    assert trail.get_column("points").sum() == lead["score"]
    assert trail.get_column("score_after").to_list()[-1] == lead["score"]
    events = trail.filter(pl.col("event_id").is_not_null())
    assert events.get_column("occurred_at").null_count() == 0
    assert (events.get_column("at") == events.get_column("occurred_at")).all()
    assert set(trail.get_column("cause")) <= {"event", "decay"}
    assert replay_check(cdnow_db).ok
