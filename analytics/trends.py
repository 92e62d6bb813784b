"""Trends over loaded frames: scores over time, cohorts, distributions, funnels.

Every function takes Polars frames shaped like the loaders' output
(:mod:`analytics.loaders`), so the same code serves MongoDB data, a fold's
history (:func:`analytics.fold.fold_frame` with ``history=True``) and tests.
Periods are truncated in UTC, weeks starting on Monday; ``every`` takes
Polars durations such as ``"1d"``, ``"1w"`` or ``"1mo"``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import numpy as np
import polars as pl

from scoring.rules import RuleSet

Cohort = Literal["first_week", "source"]


def _periods(history: pl.DataFrame, every: str) -> pl.DataFrame:
    """Return one row per lead and period from the lead's first row's period to the last period."""
    if history.height == 0:
        return pl.DataFrame(
            schema={"lead_id": pl.String, "period": history.schema["at"], "period_end": history.schema["at"]}
        )
    first = history.group_by("lead_id").agg(pl.col("at").min().dt.truncate(every).alias("first"))
    last_period = history.select(pl.col("at").max().dt.truncate(every)).item()
    return (
        first.with_columns(
            pl.datetime_ranges(pl.col("first"), pl.lit(last_period), every, closed="both").alias("period")
        )
        .explode("period")
        .select("lead_id", "period", pl.col("period").dt.offset_by(every).alias("period_end"))
    )


def score_over_time(history: pl.DataFrame, every: str = "1d", lead_ids: list[str] | None = None) -> pl.DataFrame:
    """Return each lead's score at the end of every period since its first change.

    Parameters
    ----------
    history : polars.DataFrame
        ``score_history`` rows with ``lead_id``, ``seq``, ``at`` and
        ``score_after``.
    every : str
        Period length, a Polars duration.
    lead_ids : list of str, optional
        Keep only these leads.

    Returns
    -------
    polars.DataFrame
        ``lead_id``, ``period`` (start), ``score``: the score after the last
        change before the period's end, sorted by lead and period.

    Notes
    -----
    NOTE: the engine writes one decay row per idle gap, stamped at the gap's
    last step that changed the score. A period that ends inside such a gap
    therefore shows the score before the gap's decay, not the partly decayed
    score a read at that time would have returned.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> at = [datetime(2024, 1, 1, 9, tzinfo=timezone.utc), datetime(2024, 1, 3, 9, tzinfo=timezone.utc)]
    >>> history = pl.DataFrame({"lead_id": ["a", "a"], "seq": [0, 1], "at": at, "score_after": [10, 25]})
    >>> score_over_time(history)["score"].to_list()
    [10, 10, 25]
    """
    if lead_ids is not None:
        history = history.filter(pl.col("lead_id").is_in(lead_ids))
    rows = history.select("lead_id", "seq", "at", "score_after").sort("at", "lead_id", "seq")
    grid = _periods(rows, every).sort("period_end")
    # A change stamped exactly at a period's end belongs to the next period.
    joined = grid.join_asof(
        rows, left_on="period_end", right_on="at", by="lead_id", strategy="backward",
        allow_exact_matches=False, check_sortedness=False,
    )
    return joined.select("lead_id", "period", pl.col("score_after").fill_null(0).alias("score")).sort(
        "lead_id", "period"
    )


def lead_cohorts(events: pl.DataFrame, by: Cohort = "first_week") -> pl.DataFrame:
    """Assign each lead a cohort: the Monday of its first event's week, or that event's source.

    ``events`` needs ``lead_id``, ``occurred_at`` and, for ``by="source"``,
    ``source``. Returns ``lead_id`` and ``cohort`` (text).
    """
    first = events.sort("occurred_at", "lead_id").group_by("lead_id", maintain_order=True).first()
    if by == "first_week":
        cohort = pl.col("occurred_at").dt.truncate("1w").dt.strftime("%Y-%m-%d")
    elif by == "source":
        cohort = pl.col("source")
    else:
        raise ValueError(f"cohort {by!r} is not supported; use 'first_week' or 'source'")
    return first.select("lead_id", cohort.alias("cohort")).sort("lead_id")


def cohort_score_over_time(
    history: pl.DataFrame, events: pl.DataFrame, by: Cohort = "first_week", every: str = "1w"
) -> pl.DataFrame:
    """Return the mean and median score per cohort at the end of every period.

    A lead counts in a period from its first score change on.

    Returns
    -------
    polars.DataFrame
        ``cohort``, ``period``, ``leads``, ``mean_score``, ``median_score``.
    """
    scores = score_over_time(history, every)
    return (
        scores.join(lead_cohorts(events, by), on="lead_id", how="inner")
        .group_by("cohort", "period")
        .agg(
            pl.len().alias("leads"),
            pl.col("score").mean().alias("mean_score"),
            pl.col("score").median().alias("median_score"),
        )
        .sort("cohort", "period")
    )


def score_distribution(leads: pl.DataFrame, bins: int | list[int] = 10) -> pl.DataFrame:
    """Count leads per score bin ``[low, high)``; the last bin also includes its high edge.

    ``bins`` is a number of equal-width bins over the scores' range, or the
    bin edges in ascending order.

    >>> score_distribution(pl.DataFrame({"score": [0, 10, 50, 100]}), [0, 50, 100]).rows()
    [(0, 50, 2), (50, 100, 2)]
    """
    scores = leads.get_column("score").to_numpy()
    if isinstance(bins, int):
        if bins < 1:
            raise ValueError(f"bins={bins!r}; use 1 or more")
        low, high = (int(scores.min()), int(scores.max())) if scores.size else (0, 0)
        width = max(1, -(-(high - low) // bins))
        edges = low + width * np.arange(bins + 1)
    else:
        edges = np.asarray(bins, dtype=np.int64)
        if edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError(f"bin edges {list(bins)!r} must be at least two ascending numbers")
    counts, _ = np.histogram(scores, edges)
    return pl.DataFrame(
        {"low": edges[:-1], "high": edges[1:], "leads": counts},
        schema={"low": pl.Int64, "high": pl.Int64, "leads": pl.Int64},
    )


def events_per_type(events: pl.DataFrame, every: str = "1d") -> pl.DataFrame:
    """Count events per type and period (on ``occurred_at``).

    >>> from datetime import datetime, timezone
    >>> day = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> events_per_type(pl.DataFrame({"type": ["a", "a", "b"], "occurred_at": [day] * 3})).rows()[0][1:]
    ('a', 2)
    """
    return (
        events.group_by(pl.col("occurred_at").dt.truncate(every).alias("period"), "type")
        .agg(pl.len().alias("events"))
        .sort("period", "type")
    )


def _stage_order(rules: RuleSet) -> list[tuple[str, int]]:
    if not rules.stages:
        raise ValueError(f"rule set {rules.version} has no stages, so there is no funnel")
    return sorted(rules.stages.items(), key=lambda item: item[1])


def _first_reached(history: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """Return ``lead_id``, ``stage``, ``reached_at`` for the first time each lead reached each stage.

    Reaching a higher stage counts as reaching every lower one too, so a
    lead that jumps from no stage to ``sql`` has also reached ``mql``.
    """
    order = _stage_order(rules)
    rank = {name: index for index, (name, _) in enumerate(order)}
    ranked = history.select(
        "lead_id", "at",
        pl.col("stage_after").replace_strict(rank, default=None, return_dtype=pl.Int64).alias("rank"),
    ).filter(pl.col("rank").is_not_null())
    frames = [
        ranked.filter(pl.col("rank") >= index)
        .group_by("lead_id")
        .agg(pl.col("at").min().alias("reached_at"))
        .with_columns(pl.lit(name).alias("stage"))
        for index, (name, _) in enumerate(order)
    ]
    return pl.concat(frames).select("lead_id", "stage", "reached_at")


def stage_funnel(history: pl.DataFrame, rules: RuleSet, total_leads: int | None = None) -> pl.DataFrame:
    """Count leads that ever reached each stage and the conversion between stages.

    Parameters
    ----------
    history : polars.DataFrame
        ``score_history`` rows with ``lead_id``, ``at`` and ``stage_after``.
    rules : RuleSet
        Gives the stages and their order (by threshold).
    total_leads : int, optional
        Leads entering the funnel; by default the leads with any history row.

    Returns
    -------
    polars.DataFrame
        ``stage`` (``"all"`` first), ``threshold``, ``leads``,
        ``from_previous`` and ``from_all`` (fractions, null when the base
        is 0).
    """
    reached = _first_reached(history, rules).group_by("stage").agg(pl.len().alias("leads"))
    start = total_leads if total_leads is not None else history.get_column("lead_id").n_unique()
    rows = [("all", None, start)]
    counts = dict(reached.iter_rows())
    rows += [(name, threshold, counts.get(name, 0)) for name, threshold in _stage_order(rules)]
    frame = pl.DataFrame(rows, schema={"stage": pl.String, "threshold": pl.Int64, "leads": pl.Int64}, orient="row")
    return frame.with_columns(
        _ratio(pl.col("leads"), pl.col("leads").shift()).alias("from_previous"),
        _ratio(pl.col("leads"), pl.lit(start)).alias("from_all"),
    )


def _ratio(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    return pl.when(denominator > 0).then(numerator / denominator)


def time_to_stage(history: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """Return how long each lead took from its first score change to each stage.

    Returns
    -------
    polars.DataFrame
        ``lead_id``, ``stage``, ``reached_at``, ``elapsed`` (a duration),
        for the stages each lead reached.
    """
    started = history.group_by("lead_id").agg(pl.col("at").min().alias("started_at"))
    return (
        _first_reached(history, rules)
        .join(started, on="lead_id")
        .with_columns((pl.col("reached_at") - pl.col("started_at")).alias("elapsed"))
        .select("lead_id", "stage", "reached_at", "elapsed")
        .sort("lead_id", "reached_at")
    )


def time_to_stage_summary(history: pl.DataFrame, rules: RuleSet) -> pl.DataFrame:
    """Summarise :func:`time_to_stage` per stage: leads, median and mean days."""
    order = {name: index for index, (name, _) in enumerate(_stage_order(rules))}
    days = pl.col("elapsed").dt.total_seconds(fractional=True) / 86_400
    return (
        time_to_stage(history, rules)
        .group_by("stage")
        .agg(pl.len().alias("leads"), days.median().alias("median_days"), days.mean().alias("mean_days"))
        .sort(pl.col("stage").replace_strict(order, return_dtype=pl.Int64))
    )


def stage_counts(leads: pl.DataFrame, rules: RuleSet | None = None) -> pl.DataFrame:
    """Count leads per current stage, in threshold order when ``rules`` is given."""
    counts = leads.group_by("stage").agg(pl.len().alias("leads"))
    if rules is None:
        return counts.sort("stage", nulls_last=True)
    order = {name: index for index, (name, _) in enumerate(_stage_order(rules))}
    return counts.sort(pl.col("stage").replace_strict(order, default=None, return_dtype=pl.Int64), nulls_last=False)


def window(frame: pl.DataFrame, column: str, start: datetime | None, end: datetime | None) -> pl.DataFrame:
    """Keep rows whose ``column`` falls in ``[start, end)``; None leaves a side open."""
    if start is not None:
        frame = frame.filter(pl.col(column) >= start)
    if end is not None:
        frame = frame.filter(pl.col(column) < end)
    return frame
