"""Unit tests of the pure scoring engine."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from scoring import engine
from scoring.engine import Event, fold
from scoring.rules import Decay, RuleSet

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
RULES = RuleSet(version=1, points={"buy": 100, "view": 1, "unsub": -50}, stages={"mql": 100, "sql": 400})


def event(name: str, kind: str, days_ago: float, version: int = 1) -> Event:
    return Event("lead", name, kind, NOW - timedelta(days=days_ago), version)


def test_cap_keeps_recording_zero_changes() -> None:
    events = [event(f"e{n:02d}", "buy", 1 - n / 100) for n in range(11)]
    state, rows = fold("lead", events, {1: RULES}, NOW)
    assert state.score == 1000
    assert [row.points for row in rows] == [100] * 10 + [0]


def test_floor_stops_negative_points() -> None:
    state, rows = fold("lead", [event("a", "view", 2), event("b", "unsub", 1)], {1: RULES}, NOW)
    assert state.score == 0
    assert [row.points for row in rows] == [1, -1]


def test_unknown_type_scores_nothing_and_is_not_activity() -> None:
    events = [event("a", "buy", 10), event("b", "mystery", 2)]
    state, rows = fold("lead", events, {1: RULES}, NOW)
    assert state.event_count == 2
    assert state.last_activity_at == NOW - timedelta(days=10)
    assert state.score == 85


def test_ten_idle_days_lose_fifteen_points() -> None:
    state, rows = fold("lead", [event("a", "buy", 10)], {1: RULES}, NOW)
    assert state.score == 85
    assert rows[-1].cause == "decay"
    assert rows[-1].points == -15


def test_decay_stops_at_zero() -> None:
    state, _ = fold("lead", [event("a", "view", 30)], {1: RULES}, NOW)
    assert state.score == 0


def test_decay_stops_at_positive_floor() -> None:
    rules = RuleSet(version=1, points={"buy": 100}, floor=90)
    state, _ = fold("lead", [event("a", "buy", 30)], {1: rules}, NOW)
    assert state.score == 90


def test_decay_is_same_however_often_applied() -> None:
    state, _ = fold("lead", [event("a", "buy", 20)], {1: RULES}, NOW - timedelta(days=12))
    for hours in range(0, 12 * 24, 7):
        state, _ = engine.apply_decay("lead", state, {1: RULES}, NOW - timedelta(days=12) + timedelta(hours=hours))
    state, _ = engine.apply_decay("lead", state, {1: RULES}, NOW)
    once, _ = fold("lead", [event("a", "buy", 20)], {1: RULES}, NOW)
    assert state.score == once.score
    assert state.row_count == once.row_count


def test_stage_crossings_recorded() -> None:
    events = [event("a", "buy", 3), event("b", "unsub", 2), event("c", "buy", 1)]
    _, rows = fold("lead", events, {1: RULES}, NOW)
    crossings = [(row.stage_before, row.stage_after) for row in rows if row.stage_before != row.stage_after]
    assert crossings == [(None, "mql"), ("mql", None), (None, "mql")]


def test_late_event_refold_matches_in_order() -> None:
    events = [event("a", "buy", 20), event("b", "view", 15), event("c", "buy", 1)]
    state, rows = fold("lead", [events[0], events[2]], {1: RULES}, NOW)
    update = engine.score_new_events("lead", state, [events[1]], events, {1: RULES}, NOW)
    merged = rows[: update.from_seq] + update.rows
    expected_state, expected_rows = fold("lead", events, {1: RULES}, NOW)
    assert update.refolded
    assert update.state == expected_state
    assert merged == expected_rows


@pytest.mark.parametrize("points", [0, 5])
def test_decay_points_zero_disables(points: int) -> None:
    rules = RuleSet(version=1, points={"buy": 100}, decay=Decay(points=points))
    state, _ = fold("lead", [event("a", "buy", 30)], {1: rules}, NOW)
    assert state.score == (100 if points == 0 else 0)
