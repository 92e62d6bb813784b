"""Property tests: incremental scoring in any delivery order equals a full fold.

The simulation below mirrors what the workers do with MongoDB: events are
inserted once per ``(source, event_id)``, scored in random chunks in arrival
order (in-order chunks are appended, late ones re-fold the lead), stored rows
are replaced from ``from_seq`` on, and the periodic decay job runs at random
times in between. Whatever the order, the result must be the fold of the
sorted history as of the same ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring import engine
from scoring.engine import Change, Event, LeadState
from scoring.rules import Decay, RuleSet

BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = 3600
TYPES = ["view", "click", "buy", "unsub", "mystery"]
LEAD = "lead"


@st.composite
def rule_sets(draw: st.DrawFn, version: int) -> RuleSet:
    """Rules with negative points, any floor and cap, decay including 0 points."""
    known = draw(st.lists(st.sampled_from(TYPES[:4]), min_size=1, max_size=4, unique=True))
    points = {name: draw(st.integers(-60, 120)) for name in known}
    floor = draw(st.integers(-50, 40))
    cap = draw(st.integers(max(floor, 0), floor + 400))
    decay = Decay(
        after=draw(st.sampled_from([0, 6, 24, 72, 168])) * HOUR,
        every=draw(st.sampled_from([1, 6, 24])) * HOUR,
        points=draw(st.sampled_from([0, 1, 5, 20])),
    )
    thresholds = draw(st.lists(st.integers(-20, 300), max_size=3, unique=True))
    stages = {f"stage{value}": value for value in thresholds}
    return RuleSet(version=version, points=points, cap=cap, floor=floor, decay=decay, stages=stages)


@st.composite
def histories(draw: st.DrawFn) -> tuple[dict[int, RuleSet], list[Event]]:
    """A rule version per event out of one to three versions, and unique events."""
    count = draw(st.integers(1, 3))
    rules = {version: draw(rule_sets(version)) for version in range(1, count + 1)}
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(["api", "web"]), st.integers(0, 29)),
            min_size=1,
            max_size=24,
            unique=True,
        )
    )
    events = []
    for source, number in keys:
        # Hours drawn from a small range so that equal times (ties) are common.
        hours = draw(st.integers(0, 40 * 24))
        events.append(
            Event(
                lead_id=LEAD,
                event_id=f"e{number:02d}",
                type=draw(st.sampled_from(TYPES)),
                occurred_at=BASE + timedelta(hours=hours),
                rules_version=draw(st.integers(1, count)),
                source=source,
            )
        )
    return rules, events


@dataclass
class SimulatedLead:
    """One lead's stored state, history rows and events, as MongoDB holds them."""

    rules: dict[int, RuleSet]
    state: LeadState = field(default_factory=LeadState)
    rows: dict[int, Change] = field(default_factory=dict)
    events: dict[tuple[str, str], Event] = field(default_factory=dict)
    unscored: list[tuple[str, str]] = field(default_factory=list)

    def insert(self, event: Event) -> None:
        """Insert an event once; a repeat of ``(source, event_id)`` is a duplicate."""
        key = (event.source, event.event_id)
        if key not in self.events:
            self.events[key] = event
            self.unscored.append(key)

    def replace_rows(self, from_seq: int, rows: list[Change]) -> None:
        """Replace the rows from ``from_seq`` on, as ``Store.write_history`` does."""
        for seq in [seq for seq in self.rows if seq >= from_seq]:
            del self.rows[seq]
        for row in rows:
            self.rows[row.seq] = row

    def score(self, keys: list[tuple[str, str]], now: datetime) -> None:
        """Score some unscored events, as ``worker.score_lead`` does."""
        if not keys:
            return
        pending = [self.events[key] for key in keys]
        first = min(pending, key=lambda event: event.key)
        all_events = None
        if not engine.is_in_order(self.state, first):
            all_events = list(self.events.values())
        update = engine.score_new_events(LEAD, self.state, pending, all_events, self.rules, now)
        self.state = update.state
        self.replace_rows(update.from_seq, update.rows)
        self.unscored = [key for key in self.unscored if key not in keys]

    def decay(self, now: datetime) -> None:
        """Run the periodic decay job, as ``worker.decay_lead`` does."""
        self.state, rows = engine.apply_decay(LEAD, self.state, self.rules, now)
        if rows:
            self.replace_rows(rows[0].seq, rows)


@st.composite
def deliveries(draw: st.DrawFn, events: list[Event]) -> list[tuple[str, object]]:
    """A random arrival order with duplicates, random scoring chunks and decay runs.

    Half the orders are shuffled; the rest arrive in time order with a few
    events moved later, which is what senders do and what makes the decay
    job's rows meet late events.
    """
    if draw(st.booleans()):
        arrivals = list(draw(st.permutations(events)))
    else:
        arrivals = sorted(events, key=lambda event: event.key)
        for _ in range(draw(st.integers(0, 3))):
            if len(arrivals) > 1:
                moved = arrivals.pop(draw(st.integers(0, len(arrivals) - 1)))
                arrivals.insert(draw(st.integers(0, len(arrivals))), moved)
    if events:
        repeats = draw(st.lists(st.sampled_from(events), max_size=6))
        for repeat in repeats:
            arrivals.insert(draw(st.integers(0, len(arrivals))), repeat)
    steps: list[tuple[str, object]] = []
    for event in arrivals:
        if draw(st.integers(0, 2)) == 0:
            # The decay job ran after the event happened but before it
            # arrived, up to ten days later.
            offset = draw(st.integers(0, 10 * 24))
            hours = (event.occurred_at - BASE) // timedelta(hours=1) + offset
            steps.append(("decay", min(hours, 40 * 24)))
        steps.append(("insert", event))
        action = draw(st.sampled_from(["none", "score-all", "score-all", "score-some"]))
        if action == "score-all":
            steps.append(("score", None))
        elif action == "score-some":
            steps.append(("score", draw(st.integers(1, 3))))
    return steps


def run(simulated: SimulatedLead, steps: list[tuple[str, object]], now: datetime) -> None:
    """Play the delivery steps, then score what is left and decay to ``now``."""
    clock = BASE
    for kind, argument in steps:
        if kind == "insert":
            simulated.insert(argument)  # type: ignore[arg-type]
        elif kind == "score":
            keys = simulated.unscored if argument is None else simulated.unscored[: int(argument)]  # type: ignore[call-overload]
            # The worker's clock: never before the events it scores, at most 5 minutes.
            newest = max(simulated.events[key].occurred_at for key in keys) if keys else clock
            clock = max(clock, newest - timedelta(minutes=5))
            simulated.score(list(keys), clock)
        else:
            clock = max(clock, BASE + timedelta(hours=int(argument)))  # type: ignore[call-overload]
            simulated.decay(clock)
    simulated.score(list(simulated.unscored), max(clock, now))
    simulated.decay(now)


def assert_rows_replay(state: LeadState, rows: list[Change]) -> None:
    assert [row.seq for row in rows] == list(range(len(rows)))
    assert state.row_count == len(rows)
    assert sum(row.points for row in rows) == state.score
    previous = 0
    for row in rows:
        assert row.score_before == previous
        assert row.score_after == row.score_before + row.points
        previous = row.score_after


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), history=histories(), extra_days=st.integers(0, 30))
def test_any_delivery_order_equals_full_fold(data: st.DataObject, history, extra_days: int) -> None:
    rules, events = history
    steps = data.draw(deliveries(events))
    now = BASE + timedelta(days=40 + extra_days)

    simulated = SimulatedLead(rules)
    run(simulated, steps, now)
    expected_state, expected_rows = engine.fold(LEAD, events, rules, now)
    rows = [simulated.rows[seq] for seq in sorted(simulated.rows)]

    assert simulated.state.score == expected_state.score
    assert simulated.state.stage == expected_state.stage
    assert simulated.state == expected_state
    assert rows == expected_rows
    assert_rows_replay(simulated.state, rows)


@settings(max_examples=200, deadline=None)
@given(history=histories(), extra_days=st.integers(0, 30))
def test_fold_rows_replay_to_score(history, extra_days: int) -> None:
    rules, events = history
    now = BASE + timedelta(days=40 + extra_days)
    state, rows = engine.fold(LEAD, events, rules, now)

    assert_rows_replay(state, rows)
    assert state.event_count == len(events)
    known = [e for e in events if e.type in rules[e.rules_version].points]
    assert len([row for row in rows if row.cause == "event"]) == len(known)
    for row in rows:
        rule_set = rules[row.rules_version]
        if row.cause == "event":
            assert rule_set.floor <= row.score_after <= rule_set.cap
        else:
            # Decay moves a positive score toward 0, never below 0 or the floor.
            assert row.points < 0
            assert row.score_after >= max(0, rule_set.floor)
        assert row.stage_after == rule_set.stage_for(row.score_after)


@settings(max_examples=200, deadline=None)
@given(history=histories(), hours=st.lists(st.integers(0, 70 * 24), max_size=8))
def test_decay_runs_do_not_change_result(history, hours: list[int]) -> None:
    rules, events = history
    now = BASE + timedelta(days=70)
    state, rows = engine.fold(LEAD, events, rules, BASE + timedelta(days=40))
    stored = {row.seq: row for row in rows}
    for hour in sorted(hours) + [70 * 24, 70 * 24]:
        state, new_rows = engine.apply_decay(LEAD, state, rules, BASE + timedelta(hours=hour))
        for row in new_rows:
            stored[row.seq] = row
    expected_state, expected_rows = engine.fold(LEAD, events, rules, now)

    assert state == expected_state
    assert [stored[seq] for seq in sorted(stored)] == expected_rows
