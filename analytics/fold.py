"""The vectorised fold: every lead's score from its events in one compiled pass.

The workers fold one lead at a time with :mod:`scoring.engine`. Analytics needs
the same result for every lead at once, for example to replay a year of
history under candidate rules. A clamped running score cannot be computed as
a clipped cumulative sum: once the score hits the cap or the floor, later
points start from the clamped value, and decay between activities depends on
the score reached so far. So the fold runs as one numba loop over columns
sorted by lead and fold order, with the engine's semantics step for step:

* events of a lead are taken in ``(occurred_at, event_id, source)`` order;
* an event whose type has no points under its rule set adds nothing and is
  not activity;
* before each known event, decay step ``k >= 1`` falls at
  ``last_activity + after + k * every`` and lowers a positive score by
  ``decay.points``, never below ``max(0, floor)``, under the rule version of
  the last activity;
* the event's points are added and the sum is clamped into ``[floor, cap]``;
* at the end, decay is applied up to the fold's end time;
* the decay of one idle gap (between two activities, or from the last
  activity to the end time) is one ``decay`` history row. Its ``at`` is the
  time of the gap's last step that changed the score, and its ``points``
  are the gap's total change, so steps after the score reaches
  ``max(0, floor)`` leave no trace.

Two modes choose the rule set of each event. ``"candidate"`` scores every
event under one rule set as if it had always been live. ``"as_lived"``
scores each event under the ``rules_version`` it was stored with, which
reproduces the stored scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, Mapping

import numpy as np
import polars as pl
from numba import njit

from scoring.rules import RuleSet

Mode = Literal["candidate", "as_lived"]

#: Sort order of a lead's events in the fold, as in :mod:`scoring.engine`.
FOLD_ORDER = ["lead_id", "occurred_at", "event_id", "source"]

_NO_TIME = np.iinfo(np.int64).min

#: Columns of a history frame, in the order of ``score_history`` documents.
HISTORY_COLUMNS = [
    "lead_id", "seq", "at", "cause", "event_id", "event_type", "source", "rule_points",
    "points", "score_before", "score_after", "stage_before", "stage_after", "rules_version",
]


@dataclass(frozen=True)
class RuleTable:
    """Rule sets as parallel arrays indexed by a version position.

    Attributes
    ----------
    versions : numpy.ndarray
        Rule-set version numbers, ascending; position ``i`` describes
        ``versions[i]``.
    rule_sets : tuple of RuleSet
        The rule sets in the same order.
    cap, floor, decay_after, decay_every, decay_points : numpy.ndarray
        Per-version settings as int64; durations are in microseconds.
    """

    versions: np.ndarray
    rule_sets: tuple[RuleSet, ...]
    cap: np.ndarray
    floor: np.ndarray
    decay_after: np.ndarray
    decay_every: np.ndarray
    decay_points: np.ndarray

    @classmethod
    def build(cls, rule_sets: Mapping[int, RuleSet]) -> "RuleTable":
        """Build the table from rule sets keyed by version.

        >>> from scoring.rules import DEFAULT_RULES
        >>> RuleTable.build({1: DEFAULT_RULES}).cap.tolist()
        [1000]
        """
        if not rule_sets:
            raise ValueError("no rule sets given; publish one or pass a candidate rule set")
        ordered = [rule_sets[version] for version in sorted(rule_sets)]
        for rules in ordered:
            if rules.decay.every <= 0:
                raise ValueError(
                    f"rule set {rules.version} has decay.every {rules.decay.every!r} s; "
                    "it must be longer than 0s"
                )

        def column(values: list[int]) -> np.ndarray:
            return np.asarray(values, dtype=np.int64)

        return cls(
            versions=column(sorted(rule_sets)),
            rule_sets=tuple(ordered),
            cap=column([rules.cap for rules in ordered]),
            floor=column([rules.floor for rules in ordered]),
            decay_after=column([rules.decay.after * 1_000_000 for rules in ordered]),
            decay_every=column([rules.decay.every * 1_000_000 for rules in ordered]),
            decay_points=column([rules.decay.points for rules in ordered]),
        )

    def points_frame(self) -> pl.DataFrame:
        """Return one row per (version position, event type) with its points."""
        rows = [
            (position, event_type, points)
            for position, rules in enumerate(self.rule_sets)
            for event_type, points in rules.points.items()
        ]
        return pl.DataFrame(
            rows,
            schema={"_vidx": pl.Int32, "type": pl.String, "_points": pl.Int64},
            orient="row",
        )


@njit(cache=True, nogil=True, inline="always")
def _decay_gap(score, last, vidx, end, floor, after, every, dpoints):  # pragma: no cover
    """Return the score after an idle gap's decay and the time of its last effective step.

    The time is ``_NO_TIME`` when no step changes the score. As in the
    engine, step ``k >= 1`` falls at ``last + after + k * every``, and the
    whole gap becomes one row stamped with the last step that changed the
    score.
    """
    if vidx < 0 or dpoints[vidx] <= 0 or end <= last:
        return score, _NO_TIME
    due = (end - last - after[vidx]) // every[vidx]
    lower = max(0, floor[vidx])
    if due <= 0 or score <= lower:
        return score, _NO_TIME
    needed = (score - lower + dpoints[vidx] - 1) // dpoints[vidx]
    applied = min(due, needed)
    return max(score - applied * dpoints[vidx], lower), last + after[vidx] + applied * every[vidx]


@njit(cache=True, nogil=True, inline="always")
def _put_row(out, r, src, ld, at, rule_points, before, after, vidx, cause):  # pragma: no cover
    """Write history row ``r``; return the index of the next row."""
    out[r, 0] = src
    out[r, 1] = ld
    out[r, 2] = at
    out[r, 3] = rule_points
    out[r, 4] = before
    out[r, 5] = after
    out[r, 6] = vidx
    out[r, 7] = cause
    return r + 1


@njit(cache=True, nogil=True)
def _fold_kernel(
    lead, t_us, vidx, known, points, cap, floor, after, every, dpoints, until, n_leads, emit, n_rows
):  # pragma: no cover - compiled; covered through fold_frame
    """Fold sorted rows; with ``emit`` also fill ``n_rows`` history rows.

    Each row of the returned ``(n_rows, 8)`` array holds: source row (-1 for
    decay), lead, time, rule points, score before, score after, version
    position and cause (0 event, 1 decay).
    """
    score = np.zeros(n_leads, np.int64)
    last = np.full(n_leads, _NO_TIME, np.int64)
    anchor = np.full(n_leads, -1, np.int32)
    events = np.zeros(n_leads, np.int64)
    rows_per_lead = np.zeros(n_leads, np.int64)
    out = np.empty((n_rows if emit else 0, 8), np.int64)

    r = 0
    n = lead.shape[0]
    for i in range(n + 1):
        # At a lead change, decay the previous lead up to its end time.
        if i > 0 and (i == n or lead[i] != lead[i - 1]):
            p = lead[i - 1]
            a = anchor[p]
            if until[p] != _NO_TIME:
                before = score[p]
                new, at = _decay_gap(before, last[p], a, until[p], floor, after, every, dpoints)
                if at != _NO_TIME:
                    if emit:
                        r = _put_row(out, r, -1, p, at, new - before, before, new, a, 1)
                    rows_per_lead[p] += 1
                    score[p] = new
        if i == n:
            break

        ld = lead[i]
        events[ld] += 1
        if not known[i]:
            continue
        a = anchor[ld]
        before = score[ld]
        new, at = _decay_gap(before, last[ld], a, t_us[i], floor, after, every, dpoints)
        if at != _NO_TIME:
            if emit:
                r = _put_row(out, r, -1, ld, at, new - before, before, new, a, 1)
            rows_per_lead[ld] += 1
            before = new
        v = vidx[i]
        new = max(floor[v], min(cap[v], before + points[i]))
        if emit:
            r = _put_row(out, r, i, ld, t_us[i], points[i], before, new, v, 0)
        rows_per_lead[ld] += 1
        score[ld] = new
        last[ld] = t_us[i]
        anchor[ld] = v

    return score, last, anchor, events, rows_per_lead, out


@dataclass(frozen=True)
class FoldResult:
    """The outcome of :func:`fold_frame`.

    Attributes
    ----------
    leads : polars.DataFrame
        One row per lead: ``lead_id``, ``score``, ``stage``,
        ``last_activity_at``, ``rules_version`` (of the last activity, null
        without one), ``event_count`` (every event, known or not) and
        ``row_count`` (history rows).
    history : polars.DataFrame or None
        With ``history=True``, rows shaped like ``score_history``: ``lead_id``,
        ``seq``, ``at``, ``cause``, ``event_id``, ``event_type``, ``source``,
        ``rule_points``, ``points``, ``score_before``, ``score_after``,
        ``stage_before``, ``stage_after``, ``rules_version``.
    """

    leads: pl.DataFrame
    history: pl.DataFrame | None = None


def to_micros(value: datetime) -> int:
    """Return an aware datetime as integer microseconds since the Unix epoch.

    >>> to_micros(datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc))
    1000000
    """
    if value.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; pass an aware datetime in UTC")
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def stage_codes(table: RuleTable, scores: np.ndarray, positions: np.ndarray) -> pl.Series:
    """Return the stage name of each score under the rule set at each position.

    A position of -1 (no activity yet) gives null, as the engine leaves
    ``stage`` unset until the first known event.
    """
    labels: list[str | None] = [None]
    codes = np.zeros(scores.shape[0], dtype=np.int64)
    for position, rules in enumerate(table.rule_sets):
        mask = positions == position
        if not rules.stages or not mask.any():
            continue
        ordered = sorted(rules.stages.items(), key=lambda item: item[1])
        thresholds = np.asarray([threshold for _, threshold in ordered], dtype=np.int64)
        reached = np.searchsorted(thresholds, scores[mask], side="right")
        # Code 0 is "no stage"; this version's stages follow the labels so far.
        codes[mask] = np.where(reached > 0, len(labels) - 1 + reached, 0)
        labels.extend(name for name, _ in ordered)
    return pl.Series(labels, dtype=pl.String).gather(codes)


def _rules_mapping(rules: RuleSet | Mapping[int, RuleSet], mode: Mode) -> dict[int, RuleSet]:
    if mode == "candidate":
        if not isinstance(rules, RuleSet):
            raise TypeError("mode 'candidate' takes one RuleSet")
        return {rules.version: rules}
    if mode == "as_lived":
        if isinstance(rules, RuleSet):
            return {rules.version: rules}
        return dict(rules)
    raise ValueError(f"mode {mode!r} is not a fold mode; use 'candidate' or 'as_lived'")


def in_fold_order(events: pl.DataFrame) -> bool:
    """Tell whether ``events`` are already sorted in :data:`FOLD_ORDER`.

    Events loaded through the ``(lead_id, occurred_at, event_id)`` index
    usually are, and this check costs a fraction of a sort. A null in a key
    column counts as out of order.

    >>> in_fold_order(pl.DataFrame({"lead_id": ["a", "b"], "occurred_at": [2, 1],
    ...     "event_id": ["1", "2"], "source": ["api", "api"]}))
    True
    """
    if events.height < 2:
        return True
    # Each row must be >= the previous one in the lexicographic key order,
    # built here from the last key to the first.
    ordered = pl.lit(True)
    for key in reversed(FOLD_ORDER):
        current, previous = pl.col(key), pl.col(key).shift()
        ordered = (current > previous) | ((current == previous) & ordered)
    ordered = ordered.slice(1).fill_null(False).all()
    return bool(events.select(ordered).item())


def prepare_events(events: pl.DataFrame | pl.LazyFrame, table: RuleTable, mode: Mode) -> pl.DataFrame:
    """Sort events into fold order and resolve each row's points and rule version.

    An eager frame already in fold order, as :func:`analytics.loaders.load_events`
    returns with ``sort=True``, is not sorted again.

    ``events`` needs ``lead_id``, ``occurred_at``, ``event_id``, ``source``
    and ``type``, and ``rules_version`` in mode ``"as_lived"``. The result
    adds ``_lead`` (lead position), ``_t`` (microseconds), ``_vidx``
    (version position), ``_points`` and ``_known``.
    """
    frame = events.lazy()
    if not (isinstance(events, pl.DataFrame) and in_fold_order(events)):
        frame = frame.sort(FOLD_ORDER)
    if mode == "candidate":
        rules = table.rule_sets[0]
        frame = frame.with_columns(
            pl.col("type")
            .replace_strict(dict(rules.points), default=None, return_dtype=pl.Int64)
            .alias("_points"),
            pl.lit(0, dtype=pl.Int32).alias("_vidx"),
        )
    else:
        positions = {int(version): index for index, version in enumerate(table.versions)}
        frame = frame.with_columns(
            pl.col("rules_version")
            .replace_strict(positions, default=-1, return_dtype=pl.Int32)
            .alias("_vidx")
        ).join(table.points_frame().lazy(), on=["_vidx", "type"], how="left", maintain_order="left")

    frame = frame.with_columns(
        pl.col("lead_id").rle_id().cast(pl.Int64).alias("_lead"),
        pl.col("occurred_at").dt.cast_time_unit("us").dt.epoch("us").alias("_t"),
        pl.col("_points").is_not_null().alias("_known"),
    ).with_columns(pl.col("_points").fill_null(0))
    prepared = frame.collect()

    if mode == "as_lived":
        missing = prepared.filter(pl.col("_vidx") < 0)
        if missing.height:
            versions = sorted(missing.get_column("rules_version").unique().to_list())
            raise LookupError(
                f"events were scored under rule set versions {versions} that are not "
                "in the rule sets given; load every published version"
            )
    return prepared


def fold_frame(
    events: pl.DataFrame | pl.LazyFrame,
    rules: RuleSet | Mapping[int, RuleSet],
    now: datetime | None = None,
    *,
    mode: Mode = "candidate",
    history: bool = False,
    until: pl.DataFrame | None = None,
    cause: str | None = None,
) -> FoldResult:
    """Fold every lead's events into a score and stage in one compiled pass.

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        Events with ``lead_id``, ``occurred_at`` (UTC datetime), ``event_id``,
        ``source``, ``type`` and, for ``"as_lived"``, ``rules_version``.
        Any order: rows are sorted into fold order here.
    rules : RuleSet or mapping of version to RuleSet
        One candidate rule set, or every version the events were scored
        under for ``"as_lived"``.
    now : datetime, optional
        Fold end time: decay is applied up to it. Defaults to the current
        time. Ignored for leads listed in ``until``.
    mode : {"candidate", "as_lived"}
        ``"candidate"`` scores every event under ``rules`` as if it had
        always been live; ``"as_lived"`` scores each event under its own
        ``rules_version``.
    history : bool
        Also return the history rows, as the engine would write them.
    until : polars.DataFrame, optional
        Per-lead end times (``lead_id``, ``until``), for example a stored
        lead's ``decayed_until``; a null ``until`` applies no final decay.
    cause : str, optional
        The cause of every history row, as ``scoring.engine.fold`` takes it:
        ``"rescore"`` reproduces the rows a rescore writes. By default event
        rows have the cause ``event`` and decay rows ``decay``.

    Returns
    -------
    FoldResult

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from scoring.rules import RuleSet
    >>> rules = RuleSet(version=1, points={"click": 60}, cap=100)
    >>> day = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> events = pl.DataFrame({
    ...     "lead_id": ["a", "a", "b"], "event_id": ["1", "2", "3"],
    ...     "source": ["api"] * 3, "type": ["click", "click", "open"],
    ...     "occurred_at": [day, day, day],
    ... })
    >>> fold_frame(events, rules, now=day).leads.select("lead_id", "score").rows()
    [('a', 100), ('b', 0)]
    """
    mapping = _rules_mapping(rules, mode)
    table = RuleTable.build(mapping)
    prepared = prepare_events(events, table, mode)
    now_us = to_micros(now or datetime.now(timezone.utc))

    lead_ids = prepared.filter(pl.col("_lead").ne_missing(pl.col("_lead").shift())).get_column("lead_id")
    n_leads = lead_ids.len()
    until_us = np.full(n_leads, now_us, dtype=np.int64)
    if until is not None:
        positions = pl.DataFrame({"lead_id": lead_ids, "_pos": np.arange(n_leads)})
        ends = positions.join(until, on="lead_id", how="inner").with_columns(
            pl.col("until").dt.cast_time_unit("us").dt.epoch("us").fill_null(_NO_TIME)
        )
        until_us[ends.get_column("_pos").to_numpy()] = ends.get_column("until").to_numpy()

    arrays = (
        prepared.get_column("_lead").to_numpy(),
        prepared.get_column("_t").to_numpy(),
        prepared.get_column("_vidx").to_numpy(),
        prepared.get_column("_known").to_numpy(),
        prepared.get_column("_points").to_numpy(),
        table.cap,
        table.floor,
        table.decay_after,
        table.decay_every,
        table.decay_points,
        until_us,
        n_leads,
    )
    score, last, anchor, event_count, rows_per_lead, _ = _fold_kernel(*arrays, False, 0)

    active = anchor >= 0
    leads = pl.DataFrame(
        {
            "lead_id": lead_ids,
            "score": score,
            "stage": stage_codes(table, score, anchor),
            "last_activity_at": pl.Series(last).cast(pl.Datetime("us", "UTC")),
            "rules_version": table.versions[np.where(active, anchor, 0)] if n_leads else [],
            "event_count": event_count,
            "row_count": rows_per_lead,
            "_active": active,
        },
        schema_overrides={"rules_version": pl.Int64},
    ).with_columns(
        pl.when("_active").then(pl.col("last_activity_at")).alias("last_activity_at"),
        pl.when("_active").then(pl.col("rules_version")).alias("rules_version"),
    ).drop("_active")
    rows = None
    if history:
        out = _fold_kernel(*arrays, True, int(rows_per_lead.sum()))[-1]
        rows = _history_frame(prepared, table, lead_ids, out, cause)
    return FoldResult(leads=leads, history=rows)


def _history_frame(
    prepared: pl.DataFrame, table: RuleTable, lead_ids: pl.Series, out: np.ndarray, cause: str | None
) -> pl.DataFrame:
    src, lead, at, rule_points, before, after, vidx, code = (out[:, column] for column in range(8))
    vidx = vidx.astype(np.int32)
    is_event = src >= 0
    source_rows = np.where(is_event, src, 0)
    event_cols = prepared.select("event_id", pl.col("type").alias("event_type"), "source")[source_rows]
    causes = {0: cause or "event", 1: cause or "decay"}
    frame = pl.DataFrame(
        {
            "lead_id": lead_ids.gather(lead),
            "at": pl.Series(at).cast(pl.Datetime("us", "UTC")),
            "cause": pl.Series(code).replace_strict(causes, return_dtype=pl.String),
            "_is_event": is_event,
            "rule_points": rule_points,
            "points": after - before,
            "score_before": before,
            "score_after": after,
            "stage_after": stage_codes(table, after, vidx),
            "rules_version": table.versions[vidx],
        }
    ).hstack(event_cols)
    # Rows of a lead are contiguous and in order, so the stage a row starts
    # from is the previous row's stage_after, and null on the lead's first row.
    # A decay row never comes first: it follows the activity that opened its gap.
    frame = frame.with_columns(
        pl.int_range(pl.len()).over("lead_id").alias("seq"),
        pl.col("stage_after").shift().over("lead_id").alias("stage_before"),
        *[pl.when("_is_event").then(pl.col(name)).alias(name) for name in event_cols.columns],
    )
    return frame.select(HISTORY_COLUMNS)


def decay_stored_leads(
    leads: pl.DataFrame, rule_sets: Mapping[int, RuleSet], now: datetime
) -> pl.DataFrame:
    """Bring stored leads' scores and stages to ``now`` with the decay not yet written.

    This is :func:`scoring.engine.current_score` for every lead at once:
    stored scores include decay up to ``decayed_until``, and reads report the
    score as of the request. ``leads`` needs ``score``, ``stage``,
    ``last_activity_at``, ``anchor_version`` and ``decayed_until``; the
    result has the same rows with ``score`` and ``stage`` updated.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from scoring.rules import RuleSet, Decay
    >>> rules = RuleSet(version=1, points={"a": 1}, decay=Decay(after=0, every=86400, points=5))
    >>> day = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> leads = pl.DataFrame({"score": [12], "stage": [None], "last_activity_at": [day],
    ...     "anchor_version": [1], "decayed_until": [day]})
    >>> decay_stored_leads(leads, {1: rules}, datetime(2024, 1, 3, tzinfo=timezone.utc))["score"].to_list()
    [2]
    """
    table = RuleTable.build(rule_sets)
    positions = {int(version): index for index, version in enumerate(table.versions)}
    columns = leads.select(
        pl.col("score").cast(pl.Int64),
        pl.col("last_activity_at").dt.cast_time_unit("us").dt.epoch("us").fill_null(0).alias("last"),
        pl.coalesce("decayed_until", "last_activity_at")
        .dt.cast_time_unit("us")
        .dt.epoch("us")
        .fill_null(0)
        .alias("start"),
        pl.col("anchor_version")
        .replace_strict(positions, default=-1, return_dtype=pl.Int64)
        .fill_null(-1)
        .alias("position"),
    )
    score = columns.get_column("score").to_numpy().copy()
    last = columns.get_column("last").to_numpy()
    start = columns.get_column("start").to_numpy()
    position = columns.get_column("position").to_numpy()
    unknown = (position < 0) & leads.get_column("anchor_version").is_not_null().to_numpy()
    if unknown.any():
        versions = sorted(set(leads.filter(pl.Series(unknown)).get_column("anchor_version").to_list()))
        raise LookupError(f"leads were scored under rule set versions {versions} that are not given")

    active = position >= 0
    pos = np.where(active, position, 0)
    after, every, dpoints = table.decay_after[pos], table.decay_every[pos], table.decay_points[pos]
    lower = np.maximum(0, table.floor[pos])
    end_us = to_micros(now) - last
    # Steps k with a time in (start, now], as scoring.engine.decay_steps_between counts them.
    first = np.maximum(1, (start - last - after) // every + 1)
    final = (end_us - after) // every
    steps = np.maximum(final - first + 1, 0)
    lowers = active & (dpoints > 0) & (to_micros(now) > start) & (score > lower)
    score[lowers] = np.maximum(score - steps * dpoints, lower)[lowers]

    stage = stage_codes(table, score, np.where(active, position, -1))
    stage = pl.select(pl.when(pl.Series(active)).then(stage).otherwise(leads.get_column("stage"))).to_series()
    return leads.with_columns(pl.Series("score", score), stage.alias("stage"))
