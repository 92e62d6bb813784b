"""The pure scoring engine: fold a lead's events into a score and history.

Nothing here touches Flask, Redis or MongoDB, so the workers, the simulator's
cross-checks, the notebooks and the tests all run the same functions.

Semantics (``docs/scoring.md`` explains each choice):

* Events fold in ``(occurred_at, event_id, source)`` order.
* A step first applies decay for the idle time since the previous activity,
  then adds the type's points and clamps into ``[floor, cap]``.
* Unknown types are kept and counted but add nothing and are not activity.
* Decay happens in discrete steps at ``last_activity + after + k * every``
  (``k >= 1``). Each step lowers a positive score by ``decay.points`` but never
  below ``max(0, floor)``. The decay of one idle gap is one ``decay`` row,
  stamped with the time of its last effective step and extended in place
  while the gap lasts. History rows are therefore a function of the events,
  their rule versions and the time of evaluation, not of when or how often a
  job ran.
* Decay after an activity follows the rule version that activity was scored
  under.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Iterable, Mapping, Sequence

from scoring.rules import RuleSet

_MICRO = timedelta(microseconds=1)

EventKey = tuple[datetime, str, str]


@dataclass(frozen=True, slots=True)
class Event:
    """An accepted event as the engine sees it (times are aware UTC)."""

    lead_id: str
    event_id: str
    type: str
    occurred_at: datetime
    rules_version: int
    source: str = "api"

    @property
    def key(self) -> EventKey:
        """The fold order: time, then event id, then source as a tie-break."""
        return (self.occurred_at, self.event_id, self.source)


@dataclass(frozen=True, slots=True)
class LeadState:
    """Everything the engine needs to continue a lead's fold incrementally."""

    score: int = 0
    stage: str | None = None
    last_activity_at: datetime | None = None
    anchor_version: int | None = None
    decayed_until: datetime | None = None
    last_key: EventKey | None = None
    event_count: int = 0
    row_count: int = 0
    # (seq, score_before, stage_before) of the decay row of the current idle
    # gap, which further decay extends instead of adding a row.
    open_decay: tuple[int, int, str | None] | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One ``score_history`` row; ``points`` is the effective change."""

    lead_id: str
    seq: int
    at: datetime
    cause: str
    event_id: str | None
    event_type: str | None
    source: str | None
    rule_points: int
    points: int
    score_before: int
    score_after: int
    stage_before: str | None
    stage_after: str | None
    rules_version: int


@dataclass(frozen=True, slots=True)
class Update:
    """The result of scoring: the new state and the rows from ``from_seq`` on.

    The caller replaces the stored rows whose ``seq >= from_seq`` with ``rows``.
    """

    state: LeadState
    rows: list[Change]
    from_seq: int
    refolded: bool


def clamp(value: int, floor: int, cap: int) -> int:
    """Clamp ``value`` into ``[floor, cap]``."""
    return max(floor, min(cap, value))


def decay_floor(rules: RuleSet) -> int:
    """Return the lowest score decay may reach: 0, or the floor when it is higher."""
    return max(0, rules.floor)


def decay_steps_between(
    last_activity_at: datetime, start: datetime, end: datetime, rules: RuleSet
) -> range:
    """Return the step numbers ``k`` whose time falls in ``(start, end]``."""
    decay = rules.decay
    after_us = decay.after * 1_000_000
    every_us = decay.every * 1_000_000
    done_us = (start - last_activity_at) // _MICRO
    end_us = (end - last_activity_at) // _MICRO
    first = max(1, (done_us - after_us) // every_us + 1)
    last = (end_us - after_us) // every_us
    return range(first, last + 1)


def decay_step_time(last_activity_at: datetime, k: int, rules: RuleSet) -> datetime:
    """Return the time of decay step ``k`` after an activity."""
    return last_activity_at + timedelta(seconds=rules.decay.after + k * rules.decay.every)


def apply_decay(
    lead_id: str,
    state: LeadState,
    rules_by_version: Mapping[int, RuleSet],
    until: datetime,
    cause: str = "decay",
) -> tuple[LeadState, list[Change]]:
    """Apply every decay step due up to ``until``; return the state and its rows.

    All the decay of one idle gap is one row. While the gap is still open
    (no activity since), later steps extend that row in place: the returned
    row keeps its ``seq`` and replaces the stored one.
    """
    if state.last_activity_at is None or state.anchor_version is None:
        return state, []
    rules = rules_by_version[state.anchor_version]
    start = state.decayed_until or state.last_activity_at
    if until <= start or rules.decay.points <= 0:
        return state, []
    steps = decay_steps_between(state.last_activity_at, start, until, rules)
    if not steps:
        return state, []

    lower = decay_floor(rules)
    last_step_at = decay_step_time(state.last_activity_at, steps[-1], rules)
    if state.score <= lower:
        return replace(state, decayed_until=last_step_at), []
    # Steps until the score reaches the lower bound; later ones change nothing.
    needed = -(-(state.score - lower) // rules.decay.points)
    effective = min(len(steps), needed)
    after = max(state.score - effective * rules.decay.points, lower)
    stage = rules.stage_for(after)

    if state.open_decay is not None:
        seq, score_before, stage_before = state.open_decay
        row_count = state.row_count
    else:
        seq, score_before, stage_before = state.row_count, state.score, state.stage
        row_count = state.row_count + 1
    row = Change(
        lead_id=lead_id,
        seq=seq,
        at=decay_step_time(state.last_activity_at, steps[0] + effective - 1, rules),
        cause=cause,
        event_id=None,
        event_type=None,
        source=None,
        rule_points=after - score_before,
        points=after - score_before,
        score_before=score_before,
        score_after=after,
        stage_before=stage_before,
        stage_after=stage,
        rules_version=rules.version,
    )
    new_state = replace(
        state,
        score=after,
        stage=stage,
        decayed_until=last_step_at,
        row_count=row_count,
        open_decay=(seq, score_before, stage_before),
    )
    return new_state, [row]


def apply_event(
    state: LeadState,
    event: Event,
    rules_by_version: Mapping[int, RuleSet],
    cause: str = "event",
) -> tuple[LeadState, list[Change]]:
    """Fold one event that sorts after every event already in ``state``."""
    rules = rules_by_version[event.rules_version]
    last_key = event.key if state.last_key is None else max(state.last_key, event.key)
    state = replace(state, event_count=state.event_count + 1, last_key=last_key)
    if event.type not in rules.points:
        return state, []

    decay_cause = "rescore" if cause == "rescore" else "decay"
    state, rows = apply_decay(event.lead_id, state, rules_by_version, event.occurred_at, decay_cause)
    before = state.score
    rule_points = rules.points[event.type]
    after = clamp(before + rule_points, rules.floor, rules.cap)
    stage = rules.stage_for(after)
    rows.append(
        Change(
            lead_id=event.lead_id,
            seq=state.row_count,
            at=event.occurred_at,
            cause=cause,
            event_id=event.event_id,
            event_type=event.type,
            source=event.source,
            rule_points=rule_points,
            points=after - before,
            score_before=before,
            score_after=after,
            stage_before=state.stage,
            stage_after=stage,
            rules_version=rules.version,
        )
    )
    state = replace(
        state,
        score=after,
        stage=stage,
        last_activity_at=event.occurred_at,
        anchor_version=event.rules_version,
        decayed_until=event.occurred_at,
        row_count=state.row_count + 1,
        open_decay=None,
    )
    return state, rows


def fold(
    lead_id: str,
    events: Iterable[Event],
    rules_by_version: Mapping[int, RuleSet],
    now: datetime,
    cause: str | None = None,
) -> tuple[LeadState, list[Change]]:
    """Fold a lead's whole history from zero, as of ``now``.

    ``cause`` overrides the row causes (a rescore records ``rescore`` rows).
    """
    state = LeadState()
    rows: list[Change] = []
    for event in sorted(events, key=lambda item: item.key):
        state, new_rows = apply_event(state, event, rules_by_version, cause or "event")
        rows.extend(new_rows)
    state, new_rows = apply_decay(lead_id, state, rules_by_version, now, cause or "decay")
    rows.extend(new_rows)
    return state, _last_per_seq(rows)


def is_in_order(state: LeadState, event: Event) -> bool:
    """Tell whether ``event`` can be appended to ``state`` without a re-fold.

    It must sort after the newest folded event and not predate decay rows
    already written, because those would change if it had arrived in time.
    """
    if state.last_key is not None and event.key <= state.last_key:
        return False
    if state.decayed_until is not None and event.occurred_at < state.decayed_until:
        return False
    return True


def score_new_events(
    lead_id: str,
    state: LeadState,
    new_events: Sequence[Event],
    all_events: Sequence[Event] | None,
    rules_by_version: Mapping[int, RuleSet],
    now: datetime,
) -> Update:
    """Score events that were not yet folded into ``state``: the worker's step.

    In-order events are applied one by one. When any of them is late,
    ``all_events`` (every event of the lead, including the new ones) is
    re-folded from zero and the rows from the late event's position on
    replace the stored ones; rows before that position are unchanged because
    the fold is deterministic.
    """
    ordered = sorted(new_events, key=lambda item: item.key)
    if not ordered or is_in_order(state, ordered[0]):
        rows: list[Change] = []
        for event in ordered:
            state, new_rows = apply_event(state, event, rules_by_version)
            rows.extend(new_rows)
        state, new_rows = apply_decay(lead_id, state, rules_by_version, now)
        rows.extend(new_rows)
        from_seq = min((row.seq for row in rows), default=state.row_count)
        return Update(state=state, rows=_last_per_seq(rows), from_seq=from_seq, refolded=False)

    if all_events is None:
        raise ValueError("a late event needs all_events to re-fold the lead")
    new_state, all_rows = fold(lead_id, all_events, rules_by_version, now)
    late_at = ordered[0].occurred_at
    from_seq = sum(1 for row in all_rows if row.at < late_at)
    if from_seq and all_rows[from_seq - 1].event_id is None:
        # The late event splits an idle gap, so that gap's decay row changes too.
        from_seq -= 1
    return Update(state=new_state, rows=all_rows[from_seq:], from_seq=from_seq, refolded=True)


def _last_per_seq(rows: list[Change]) -> list[Change]:
    """Keep the final version of each row; an extended decay row repeats its seq."""
    latest: dict[int, Change] = {}
    for row in rows:
        latest[row.seq] = row
    return [latest[seq] for seq in sorted(latest)]


def current_score(state: LeadState, rules_by_version: Mapping[int, RuleSet], now: datetime) -> int:
    """Return the score as of ``now``, including decay not yet written."""
    decayed, _ = apply_decay("", state, rules_by_version, now)
    return decayed.score


def next_decay_at(state: LeadState, rules_by_version: Mapping[int, RuleSet]) -> datetime | None:
    """Return when the next decay step is due, or None when decay cannot lower the score."""
    if state.last_activity_at is None or state.anchor_version is None:
        return None
    rules = rules_by_version[state.anchor_version]
    if rules.decay.points <= 0 or state.score <= decay_floor(rules):
        return None
    start = state.decayed_until or state.last_activity_at
    far = start + timedelta(seconds=rules.decay.after + 2 * rules.decay.every)
    steps = decay_steps_between(state.last_activity_at, start, far, rules)
    return decay_step_time(state.last_activity_at, steps[0], rules)
