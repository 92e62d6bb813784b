"""The vectorised fold agrees with scoring.engine.fold, row for row."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.fold import decay_stored_leads, fold_frame
from scoring import engine
from scoring.rules import Decay, RuleSet

BASE = datetime(2024, 1, 1, tzinfo=timezone.utc)
TYPES = ["open", "click", "form", "buy", "other"]
EVENT_SCHEMA = {
    "lead_id": pl.String,
    "event_id": pl.String,
    "source": pl.String,
    "type": pl.String,
    "occurred_at": pl.Datetime("ms", "UTC"),
    "rules_version": pl.Int64,
}


@st.composite
def rule_sets(draw: st.DrawFn, version: int) -> RuleSet:
    floor = draw(st.integers(-50, 40))
    cap = draw(st.integers(max(floor, 1), 300))
    types = draw(st.lists(st.sampled_from(TYPES[:4]), min_size=1, max_size=4, unique=True))
    thresholds = draw(st.lists(st.integers(-20, 250), min_size=0, max_size=3, unique=True))
    return RuleSet(
        version=version,
        points={name: draw(st.integers(-80, 120)) for name in types},
        cap=cap,
        floor=floor,
        decay=Decay(
            after=draw(st.sampled_from([0, 60, 3600, 86400, 7 * 86400])),
            every=draw(st.sampled_from([1, 60, 3600, 86400])),
            points=draw(st.integers(0, 40)),
        ),
        stages={f"s{index}": value for index, value in enumerate(thresholds)},
    )


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[engine.Event], dict[int, RuleSet], datetime]:
    versions = {version: draw(rule_sets(version)) for version in (1, 2, 3)}
    size = draw(st.integers(0, 40))
    events = [
        engine.Event(
            lead_id=draw(st.sampled_from(["a", "b", "c"])),
            # Few distinct ids and times so that ties in the fold order occur.
            event_id=f"{draw(st.integers(0, 5))}-{index}",
            type=draw(st.sampled_from(TYPES)),
            occurred_at=BASE + timedelta(seconds=draw(st.sampled_from([0, 1, 3600]) | st.integers(0, 40 * 86400))),
            rules_version=draw(st.sampled_from([1, 2, 3])),
            source=draw(st.sampled_from(["api", "hook"])),
        )
        for index in range(size)
    ]
    now = BASE + timedelta(seconds=draw(st.integers(0, 60 * 86400)))
    return events, versions, now


def events_frame(events: list[engine.Event]) -> pl.DataFrame:
    rows = [
        (event.lead_id, event.event_id, event.source, event.type, event.occurred_at, event.rules_version)
        for event in events
    ]
    return pl.DataFrame(rows, schema=EVENT_SCHEMA, orient="row")


def engine_rows(rows: list[engine.Change]) -> list[tuple]:
    return [
        (
            row.seq, row.at, row.cause, row.event_id,
            row.event_type, row.source, row.rule_points, row.points, row.score_before,
            row.score_after, row.stage_before, row.stage_after, row.rules_version,
        )
        for row in rows
    ]


def check_agreement(
    events: list[engine.Event],
    versions: dict[int, RuleSet],
    now: datetime,
    mode: str,
    cause: str | None = None,
) -> None:
    if mode == "candidate":
        rules: RuleSet | dict[int, RuleSet] = versions[2]
        events = [engine.Event(e.lead_id, e.event_id, e.type, e.occurred_at, 2, e.source) for e in events]
        by_version = {2: versions[2]}
    else:
        rules = by_version = versions
    result = fold_frame(events_frame(events), rules, now, mode=mode, history=True, cause=cause)  # type: ignore[arg-type]
    assert result.history is not None

    for lead_id in sorted({event.lead_id for event in events}):
        lead_events = [e for e in events if e.lead_id == lead_id]
        state, rows = engine.fold(lead_id, lead_events, by_version, now, cause=cause)
        lead = result.leads.filter(pl.col("lead_id") == lead_id).row(0, named=True)
        assert lead["score"] == state.score
        assert lead["stage"] == state.stage
        assert lead["event_count"] == state.event_count
        assert lead["row_count"] == state.row_count
        assert lead["rules_version"] == state.anchor_version
        assert lead["last_activity_at"] == state.last_activity_at
        history = result.history.filter(pl.col("lead_id") == lead_id).drop("lead_id")
        assert history.rows() == engine_rows(rows)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_fold_as_lived_matches_engine(case: tuple) -> None:
    check_agreement(*case, mode="as_lived")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_fold_candidate_matches_engine(case: tuple) -> None:
    check_agreement(*case, mode="candidate")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_fold_rescore_cause_matches_engine(case: tuple) -> None:
    check_agreement(*case, mode="as_lived", cause="rescore")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.lists(st.integers(0, 60 * 86400), max_size=4), st.randoms(use_true_random=False))
def test_fold_until_matches_incremental_scoring(case: tuple, checks: list[int], random) -> None:
    # Score in three shuffled arrival batches with decay runs between them, as
    # workers do; the as-lived fold up to decayed_until must give the same rows.
    events, versions, now = case
    arrivals = list(events)
    random.shuffle(arrivals)
    moments = sorted(BASE + timedelta(seconds=value) for value in checks)
    stored: dict[str, tuple[engine.LeadState, dict[int, engine.Change]]] = {}
    for lead_id in sorted({event.lead_id for event in events}):
        state = engine.LeadState()
        rows: dict[int, engine.Change] = {}
        seen: list[engine.Event] = []
        clock = BASE
        for index in range(3):
            pending = [event for event in arrivals[index::3] if event.lead_id == lead_id]
            seen += pending
            moment = moments[index] if index < len(moments) else now
            # Time only moves forward, and no event is scored before it occurred.
            clock = max([clock, moment, *(event.occurred_at for event in seen)])
            update = engine.score_new_events(lead_id, state, pending, seen, versions, clock)
            for seq in [seq for seq in rows if seq >= update.from_seq]:
                del rows[seq]
            rows.update({row.seq: row for row in update.rows})
            state = update.state
            # The periodic decay job runs before the next arrivals and extends
            # the open row; an event older than its steps then forces a re-fold.
            clock += timedelta(seconds=random.randint(0, 20 * 86400))
            state, decay_rows = engine.apply_decay(lead_id, state, versions, clock)
            rows.update({row.seq: row for row in decay_rows})
        stored[lead_id] = (state, rows)

    until = pl.DataFrame(
        [(lead_id, state.decayed_until) for lead_id, (state, _) in stored.items()],
        schema={"lead_id": pl.String, "until": pl.Datetime("us", "UTC")},
        orient="row",
    )
    result = fold_frame(events_frame(events), versions, now, mode="as_lived", history=True, until=until)
    assert result.history is not None
    for lead_id, (state, rows) in stored.items():
        lead = result.leads.filter(pl.col("lead_id") == lead_id).row(0, named=True)
        assert lead["score"] == state.score
        assert lead["row_count"] == state.row_count
        history = result.history.filter(pl.col("lead_id") == lead_id).drop("lead_id")
        assert history.rows() == engine_rows([rows[seq] for seq in sorted(rows)])


@settings(max_examples=100, deadline=None)
@given(histories(), st.integers(0, 30 * 86400))
def test_decay_stored_leads_matches_current_score(case: tuple, later: int) -> None:
    events, versions, now = case
    result = fold_frame(events_frame(events), versions, now, mode="as_lived")
    states = {
        lead_id: engine.fold(lead_id, [e for e in events if e.lead_id == lead_id], versions, now)[0]
        for lead_id in result.leads.get_column("lead_id")
    }
    stored = pl.DataFrame(
        [
            (lead_id, s.score, s.stage, s.last_activity_at, s.anchor_version, s.decayed_until)
            for lead_id, s in states.items()
        ],
        schema={
            "lead_id": pl.String, "score": pl.Int64, "stage": pl.String,
            "last_activity_at": pl.Datetime("us", "UTC"), "anchor_version": pl.Int64,
            "decayed_until": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )
    when = now + timedelta(seconds=later)
    decayed = decay_stored_leads(stored, versions, when)
    for lead_id, state in states.items():
        row = decayed.filter(pl.col("lead_id") == lead_id).row(0, named=True)
        assert row["score"] == engine.current_score(state, versions, when)


def test_fold_clamps_each_step_not_cumsum() -> None:
    rules = RuleSet(version=1, points={"up": 70, "down": -50}, cap=100, floor=0)
    events = [
        engine.Event("a", str(index), kind, BASE + timedelta(minutes=index), 1)
        for index, kind in enumerate(["up", "up", "down", "up"])
    ]
    result = fold_frame(events_frame(events), rules, BASE + timedelta(hours=1))
    # Clamped running score: 70, 100, 50, 100; a clipped cumulative sum gives 90.
    assert result.leads.get_column("score").to_list() == [100]


def test_fold_unknown_rule_version_raises() -> None:
    events = [engine.Event("a", "1", "open", BASE, 9)]
    with pytest.raises(LookupError, match=r"\[9\]"):
        fold_frame(events_frame(events), {1: RuleSet(version=1, points={"open": 1})}, BASE, mode="as_lived")


def test_fold_empty_frame_gives_no_leads() -> None:
    result = fold_frame(events_frame([]), RuleSet(version=1, points={"open": 1}), BASE, history=True)
    assert result.leads.height == 0
    assert result.history is not None
    assert result.history.height == 0
