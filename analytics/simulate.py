"""What-if simulation: replay the whole event history under candidate rules.

:func:`simulate` folds every event under a candidate rule set as if it had
always been live (:mod:`analytics.fold`) and compares the result with the
live scores, the stored ones brought to ``now`` with pending decay as the API
reports them. The comparison covers each lead's old and new score, rank and
stage, counts per stage, the stage moves, the distribution shift and the top
movers.

With an ``outcome`` event type (for example ``purchase`` or ``deal_won``) it
also backtests both rule sets: how well reaching ``stage`` predicted the
outcome. Each lead's history is cut at its first outcome, and outcome events
are left out of the fold, so a stage reached by the outcome's own points does
not count as a prediction. A lead is flagged when its score reaches the
stage's threshold before that cut. A flag is a hit when the outcome follows
within ``within_days`` of it, or at any later time when ``within_days`` is
None. Precision is hits over flagged leads, recall is hits over leads with
an outcome, and lift is precision over the base rate of outcomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import numpy as np
import polars as pl
from pymongo.database import Database

from analytics.fold import fold_frame, decay_stored_leads
from analytics.loaders import FOLD_COLUMNS, live_rule_set, load_events, load_leads, load_rule_sets
from scoring.rules import RuleSet, parse_rule_set

LEAD_COLUMNS = ("lead_id", "score", "stage", "last_activity_at", "anchor_version", "decayed_until")


@dataclass
class SimulationResult:
    """The impact of a candidate rule set on every lead.

    Attributes
    ----------
    now : datetime
        The time both scores are evaluated at.
    live_version : int
        Version of the live rule set the candidate is compared with.
    candidate : RuleSet
        The candidate rules.
    leads : polars.DataFrame
        One row per lead: ``lead_id``, ``old_score``, ``new_score``,
        ``delta``, ``old_rank``, ``new_rank``, ``rank_change`` (positive
        means the lead moved up), ``old_stage``, ``new_stage``.
    stage_counts : polars.DataFrame
        ``stage`` (null for no stage), ``before``, ``after``.
    stage_changes : polars.DataFrame
        ``old_stage``, ``new_stage``, ``leads`` for every pair that differs.
    distribution : polars.DataFrame
        ``low``, ``high``, ``before``, ``after``: lead counts per score bin
        ``[low, high)``, the last bin closed.
    summary : dict
        Lead count, changed scores, changed stages, and mean, median, 90th
        percentile and maximum score before and after.
    backtest : list of dict
        With an outcome, one entry per rule set (``live``, ``candidate``):
        ``stage``, ``threshold`` (under the newest version), ``leads``, ``outcomes``, ``flagged``,
        ``hits``, ``precision``, ``recall``, ``base_rate``, ``lift``.
    """

    now: datetime
    live_version: int
    candidate: RuleSet
    leads: pl.DataFrame
    stage_counts: pl.DataFrame
    stage_changes: pl.DataFrame
    distribution: pl.DataFrame
    summary: dict[str, Any]
    backtest: list[dict[str, Any]] = field(default_factory=list)

    def top_movers(self, n: int = 10) -> dict[str, pl.DataFrame]:
        """Return the ``n`` leads whose score rose most and the ``n`` that fell most."""
        ordered = self.leads.sort(["delta", "lead_id"], descending=[True, False])
        up = ordered.filter(pl.col("delta") > 0).head(n)
        down = ordered.filter(pl.col("delta") < 0).sort(["delta", "lead_id"]).head(n)
        return {"up": up, "down": down}

    def to_dict(self, top: int = 10, include_leads: bool = False) -> dict[str, Any]:
        """Return a JSON-serialisable summary (times as ISO 8601 with offset).

        ``include_leads`` adds every lead's row, which may be large.
        """
        movers = self.top_movers(top)
        result: dict[str, Any] = {
            "now": self.now.isoformat(),
            "live_version": self.live_version,
            "candidate": _jsonable(self.candidate.to_document()),
            "summary": self.summary,
            "stage_counts": self.stage_counts.to_dicts(),
            "stage_changes": self.stage_changes.to_dicts(),
            "distribution": self.distribution.to_dicts(),
            "top_movers": {name: frame.to_dicts() for name, frame in movers.items()},
            "backtest": self.backtest,
        }
        if include_leads:
            result["leads"] = self.leads.to_dicts()
        return result


def _jsonable(document: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in document.items()
    }


def as_rule_set(candidate: RuleSet | Mapping[str, Any]) -> RuleSet:
    """Return ``candidate`` as a RuleSet, validating a payload like the rules PUT body.

    Raises :class:`scorestream.errors.ValidationError` on an invalid payload.

    >>> as_rule_set({"points": {"demo_request": 80}}).points
    {'demo_request': 80}
    """
    if isinstance(candidate, RuleSet):
        return candidate
    return parse_rule_set(candidate, version=0)


def simulate(
    db: Database,
    candidate: RuleSet | Mapping[str, Any],
    now: datetime | None = None,
    outcome: str | None = None,
    within_days: float | None = None,
    stage: str | None = None,
    bins: int = 10,
) -> SimulationResult:
    """Fold the whole event history under ``candidate`` and compare with live scores.

    Parameters
    ----------
    db : pymongo.database.Database
        The ScoreStream database.
    candidate : RuleSet or mapping
        The candidate rules, or a payload shaped like the ``PUT
        /api/scoring-rules`` body (validated; missing fields take defaults).
    now : datetime, optional
        Evaluation time (aware), the current time by default.
    outcome : str, optional
        Event type that marks success, for the backtest.
    within_days : float, optional
        Days after reaching the stage within which the outcome counts.
    stage : str, optional
        Stage whose reaching is the prediction; the live rule set's lowest
        stage by default.
    bins : int
        Number of equal-width bins of the score distribution.

    Returns
    -------
    SimulationResult
    """
    rules = as_rule_set(candidate)
    rule_sets = load_rule_sets(db)
    events = load_events(db, columns=FOLD_COLUMNS, sort=True)
    leads = load_leads(db, columns=LEAD_COLUMNS)
    return simulate_frames(
        events, leads, rule_sets, rules, now,
        outcome=outcome, within_days=within_days, stage=stage, bins=bins,
    )


def simulate_frames(
    events: pl.DataFrame,
    leads: pl.DataFrame,
    rule_sets: Mapping[int, RuleSet],
    candidate: RuleSet | Mapping[str, Any],
    now: datetime | None = None,
    *,
    outcome: str | None = None,
    within_days: float | None = None,
    stage: str | None = None,
    bins: int = 10,
) -> SimulationResult:
    """Run :func:`simulate` on frames already loaded (see its parameters).

    ``events`` needs the :data:`analytics.loaders.FOLD_COLUMNS` and
    ``leads`` the stored lead fields ``lead_id``, ``score``, ``stage``,
    ``last_activity_at``, ``anchor_version`` and ``decayed_until``.
    """
    rules = as_rule_set(candidate)
    now = now or datetime.now(timezone.utc)
    live = live_rule_set(rule_sets)

    new = fold_frame(events, rules, now, mode="candidate").leads.select(
        "lead_id", pl.col("score").alias("new_score"), pl.col("stage").alias("new_stage")
    )
    old = (
        decay_stored_leads(leads.select(LEAD_COLUMNS), rule_sets, now)
        if leads.height
        else leads.select(LEAD_COLUMNS)
    ).select("lead_id", pl.col("score").alias("old_score"), pl.col("stage").alias("old_stage"))

    compared = (
        old.join(new, on="lead_id", how="full", coalesce=True)
        .sort("lead_id")
        .with_columns(pl.col("old_score").fill_null(0), pl.col("new_score").fill_null(0))
        .with_columns(
            (pl.col("new_score") - pl.col("old_score")).alias("delta"),
            _rank("old_score").alias("old_rank"),
            _rank("new_score").alias("new_rank"),
        )
        .with_columns((pl.col("old_rank") - pl.col("new_rank")).alias("rank_change"))
        .select(
            "lead_id", "old_score", "new_score", "delta", "old_rank", "new_rank",
            "rank_change", "old_stage", "new_stage",
        )
    )

    result = SimulationResult(
        now=now,
        live_version=live.version,
        candidate=rules,
        leads=compared,
        stage_counts=_stage_counts(compared),
        stage_changes=(
            compared.filter(pl.col("old_stage").ne_missing(pl.col("new_stage")))
            .group_by("old_stage", "new_stage")
            .agg(pl.len().alias("leads"))
            .sort("leads", "old_stage", "new_stage", descending=[True, False, False], nulls_last=True)
        ),
        distribution=score_histogram(compared, bins),
        summary=_summary(compared),
    )
    if outcome is not None:
        result.backtest = backtest(
            events, {"live": rule_sets, "candidate": rules}, outcome, within_days,
            stage or _lowest_stage(live), now,
        )
    return result


def _rank(column: str) -> pl.Expr:
    """Leaderboard rank: score descending, ties by lead id, so ranks are unique.

    The frame must be sorted by ``lead_id``: the row index then breaks ties,
    and one int64 key (score times the row count, plus the index) ranks
    faster than a struct of score and text.
    """
    key = -pl.col(column).cast(pl.Int64) * pl.len().cast(pl.Int64) + pl.int_range(pl.len(), dtype=pl.Int64)
    return key.rank("ordinal").cast(pl.Int64)


def _lowest_stage(rules: RuleSet) -> str:
    if not rules.stages:
        raise ValueError(f"rule set {rules.version} has no stages; pass stage= for the backtest")
    return min(rules.stages.items(), key=lambda item: item[1])[0]


def _stage_counts(compared: pl.DataFrame) -> pl.DataFrame:
    before = compared.group_by(pl.col("old_stage").alias("stage")).agg(pl.len().alias("before"))
    after = compared.group_by(pl.col("new_stage").alias("stage")).agg(pl.len().alias("after"))
    return (
        before.join(after, on="stage", how="full", coalesce=True, nulls_equal=True)
        .with_columns(pl.col("before").fill_null(0), pl.col("after").fill_null(0))
        .sort("stage", nulls_last=True)
    )


def score_histogram(compared: pl.DataFrame, bins: int = 10) -> pl.DataFrame:
    """Count leads per equal-width score bin, before and after.

    >>> frame = pl.DataFrame({"old_score": [0, 5, 10], "new_score": [10, 10, 10]})
    >>> score_histogram(frame, 2).rows()
    [(0, 5, 1, 0), (5, 10, 2, 3)]
    """
    if bins < 1:
        raise ValueError(f"bins={bins!r}; use 1 or more")
    old = compared.get_column("old_score").to_numpy()
    new = compared.get_column("new_score").to_numpy()
    both = np.concatenate([old, new])
    low, high = (int(both.min()), int(both.max())) if both.size else (0, 0)
    width = max(1, math.ceil((high - low) / bins)) if high > low else 1
    edges = low + width * np.arange(bins + 1)
    counts_old, _ = np.histogram(old, edges)
    counts_new, _ = np.histogram(new, edges)
    return pl.DataFrame(
        {"low": edges[:-1], "high": edges[1:], "before": counts_old, "after": counts_new},
        schema={"low": pl.Int64, "high": pl.Int64, "before": pl.Int64, "after": pl.Int64},
    )


def _summary(compared: pl.DataFrame) -> dict[str, Any]:
    def stats(column: str) -> dict[str, float | None]:
        series = compared.get_column(column)
        if series.len() == 0:
            return {"mean": None, "median": None, "p90": None, "max": None}
        return {
            "mean": round(float(series.mean()), 3),  # type: ignore[arg-type]
            "median": float(series.median()),  # type: ignore[arg-type]
            "p90": float(series.quantile(0.9, "nearest")),  # type: ignore[arg-type]
            "max": float(series.max()),  # type: ignore[arg-type]
        }

    return {
        "leads": compared.height,
        "scores_changed": int((compared.get_column("delta") != 0).sum()),
        "stages_changed": int(compared.select(pl.col("old_stage").ne_missing(pl.col("new_stage")).sum()).item()),
        "before": stats("old_score"),
        "after": stats("new_score"),
    }


def backtest(
    events: pl.DataFrame,
    rule_sets: Mapping[str, RuleSet | Mapping[int, RuleSet]],
    outcome: str,
    within_days: float | None,
    stage: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """Measure how well reaching ``stage`` predicted ``outcome`` under each rule set.

    ``rule_sets`` maps a label to one RuleSet (folded as a candidate) or to
    the published versions (folded as lived). The module docstring defines
    flags, hits, precision, recall and lift.
    """
    if within_days is not None and within_days <= 0:
        raise ValueError(f"within_days={within_days!r}; use a positive number of days or None")
    first_outcome = (
        events.filter(pl.col("type") == outcome)
        .group_by("lead_id")
        .agg(pl.col("occurred_at").min().dt.cast_time_unit("us").alias("outcome_at"))
    )
    all_leads = events.select("lead_id").unique()
    behaviour = (
        events.filter(pl.col("type") != outcome)
        .join(first_outcome, on="lead_id", how="left")
        .filter(pl.col("outcome_at").is_null() | (pl.col("occurred_at") <= pl.col("outcome_at")))
        .drop("outcome_at")
    )
    window = timedelta(days=within_days) if within_days is not None else None

    results = []
    for label, rules in rule_sets.items():
        mode = "candidate" if isinstance(rules, RuleSet) else "as_lived"
        versions = {rules.version: rules} if isinstance(rules, RuleSet) else dict(rules)
        thresholds = {v: r.stages[stage] for v, r in versions.items() if stage in r.stages}
        entry: dict[str, Any] = {"rule_set": label, "stage": stage}
        if not thresholds:
            entry["error"] = f"stage {stage!r} is not in this rule set"
            results.append(entry)
            continue
        history = fold_frame(behaviour, rules, now, mode=mode, history=True).history
        assert history is not None
        flags = (
            history.with_columns(
                pl.col("rules_version")
                .replace_strict(thresholds, default=None, return_dtype=pl.Int64)
                .alias("threshold")
            )
            .filter(pl.col("score_after") >= pl.col("threshold"))
            .group_by("lead_id")
            .agg(pl.col("at").min().alias("flagged_at"))
        )
        scored = all_leads.join(first_outcome, on="lead_id", how="left").join(flags, on="lead_id", how="left")
        hit = pl.col("flagged_at").is_not_null() & pl.col("outcome_at").is_not_null()
        hit = hit & (pl.col("outcome_at") >= pl.col("flagged_at"))
        if window is not None:
            hit = hit & (pl.col("outcome_at") <= pl.col("flagged_at") + window)
        counts = scored.select(
            pl.len().alias("leads"),
            pl.col("outcome_at").is_not_null().sum().alias("outcomes"),
            pl.col("flagged_at").is_not_null().sum().alias("flagged"),
            hit.sum().alias("hits"),
        ).row(0, named=True)
        precision = counts["hits"] / counts["flagged"] if counts["flagged"] else None
        recall = counts["hits"] / counts["outcomes"] if counts["outcomes"] else None
        base_rate = counts["outcomes"] / counts["leads"] if counts["leads"] else None
        lift = precision / base_rate if precision is not None and base_rate else None
        entry.update(
            threshold=thresholds[max(thresholds)],
            within_days=within_days,
            **{key: int(value) for key, value in counts.items()},
            precision=precision,
            recall=recall,
            base_rate=base_rate,
            lift=lift,
        )
        results.append(entry)
    return results
