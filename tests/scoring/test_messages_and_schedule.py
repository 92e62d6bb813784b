"""Stage announcements of worker updates, and the decay job's schedule."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from scoring import engine, worker
from scoring.engine import Event
from scoring.rules import RuleSet
from scoring.tasks import every_minutes

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
RULES = {1: RuleSet(version=1, points={"buy": 100, "unsub": -50}, stages={"mql": 100})}


def buy(name: str, days_ago: float, kind: str = "buy") -> Event:
    return Event("lead", name, kind, NOW - timedelta(days=days_ago), 1)


def test_extended_decay_row_announced_once() -> None:
    state, _ = engine.fold("lead", [buy("a", 20)], RULES, NOW - timedelta(days=13.5))
    # The first decay run crosses mql -> None; a later run extends that row.
    first = engine.score_new_events("lead", state, [], None, RULES, NOW - timedelta(days=11))
    second = engine.score_new_events("lead", first.state, [], None, RULES, NOW)

    assert worker.stage_crossings(state, first) == [("mql", None)]
    assert second.rows[0].seq == first.rows[0].seq
    assert second.rows[0].stage_before == "mql"
    assert worker.stage_crossings(first.state, second) == []


def test_each_crossing_announced_in_order() -> None:
    update = engine.score_new_events(
        "lead", engine.LeadState(), [buy("a", 3), buy("b", 2, "unsub"), buy("c", 1)], None, RULES, NOW
    )

    assert worker.stage_crossings(engine.LeadState(), update) == [(None, "mql"), ("mql", None), (None, "mql")]


def test_refold_announces_final_stage_only() -> None:
    state, _ = engine.fold("lead", [buy("a", 3), buy("c", 1)], RULES, NOW)
    events = [buy("a", 3), buy("b", 2, "unsub"), buy("c", 1)]
    update = engine.score_new_events("lead", state, [events[1]], events, RULES, NOW)

    # History now dips below mql and comes back, but the lead stayed in mql.
    assert update.refolded
    assert [row.stage_after for row in update.rows] == [None, "mql"]
    assert worker.stage_crossings(state, update) == []


@pytest.mark.parametrize("minutes", [1, 7, 90])
def test_decay_schedule_exact_interval(minutes: int) -> None:
    is_due = every_minutes(minutes)
    start = datetime(2026, 3, 1, 22, 0)
    due = [start + timedelta(minutes=step) for step in range(3 * 24 * 60) if is_due(start + timedelta(minutes=step))]

    gaps = {later - earlier for earlier, later in zip(due, due[1:])}
    assert gaps == {timedelta(minutes=minutes)}
