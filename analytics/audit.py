"""Audit trails and replay checks for stored scores.

:func:`audit_trail` lists every score change of one or more leads with its
cause, event, rule version and points. :func:`replay_check` proves the
stored scores in two independent ways:

* the history check: the ``points`` of a lead's ``score_history`` rows (the
  effective changes) add up to the stored score;
* the fold check: folding the lead's events "as lived", each under the rule
  version it was scored with, up to the lead's ``decayed_until`` gives the
  stored score and the stored number of history rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import polars as pl
from pymongo.database import Database

from analytics.fold import fold_frame
from analytics.loaders import FOLD_COLUMNS, load_events, load_history, load_leads, load_rule_sets
from scoring.rules import RuleSet

TRAIL_COLUMNS = [
    "lead_id", "seq", "at", "cause", "event_id", "event_type", "source", "occurred_at",
    "rules_version", "rule_points", "points", "score_before", "score_after",
    "stage_before", "stage_after",
]


def audit_trail(db: Database, lead_ids: str | Iterable[str]) -> pl.DataFrame:
    """Return every score change of the leads, in replay order, with its event.

    Parameters
    ----------
    db : pymongo.database.Database
        The ScoreStream database.
    lead_ids : str or iterable of str
        One lead id or several.

    Returns
    -------
    polars.DataFrame
        :data:`TRAIL_COLUMNS`. ``occurred_at`` is the causing event's time
        (null for decay rows). ``rule_points`` are the points the rule gave,
        and ``points`` the effective change after clamping into the floor and
        the cap.
    """
    ids = _id_list(lead_ids)
    history = load_history(db, lead_ids=ids)
    events = load_events(db, lead_ids=ids, columns=["lead_id", "source", "event_id", "occurred_at"])
    return trail_from_frames(history, events)


def _id_list(lead_ids: str | Iterable[str]) -> list[str]:
    if isinstance(lead_ids, str):
        return [lead_ids]
    return list(lead_ids)


def trail_from_frames(history: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Join history rows with their events' times; see :func:`audit_trail`."""
    return (
        history.join(
            events.select("lead_id", "source", "event_id", "occurred_at"),
            on=["lead_id", "source", "event_id"],
            how="left",
        )
        .select(TRAIL_COLUMNS)
        .sort("lead_id", "seq")
    )


@dataclass
class ReplayReport:
    """The result of :func:`replay_check`.

    Attributes
    ----------
    leads : polars.DataFrame
        One row per lead: ``lead_id``, ``stored_score``, ``history_sum``,
        ``history_rows``, ``as_lived_score``, ``as_lived_rows``,
        ``stored_rows``, ``history_ok``, ``fold_ok``.
    """

    leads: pl.DataFrame

    @property
    def ok(self) -> bool:
        """True when every lead passes both checks."""
        return bool(self.leads.select((pl.col("history_ok") & pl.col("fold_ok")).all()).item())

    @property
    def mismatches(self) -> pl.DataFrame:
        """The leads that fail either check."""
        return self.leads.filter(~(pl.col("history_ok") & pl.col("fold_ok")))

    def to_dict(self, limit: int = 100) -> dict[str, Any]:
        """Return a JSON-serialisable summary with up to ``limit`` mismatching leads."""
        mismatches = self.mismatches
        return {
            "leads": self.leads.height,
            "ok": self.ok,
            "history_failures": int((~self.leads.get_column("history_ok")).sum()),
            "fold_failures": int((~self.leads.get_column("fold_ok")).sum()),
            "mismatches": mismatches.head(limit).to_dicts(),
        }


def replay_check(db: Database, lead_ids: str | Iterable[str] | None = None) -> ReplayReport:
    """Check that history and an as-lived fold both reproduce the stored scores.

    ``lead_ids`` limits the check to some leads; by default every lead is
    checked.
    """
    ids = None if lead_ids is None else _id_list(lead_ids)
    leads = load_leads(
        db, lead_ids=ids, columns=["lead_id", "score", "row_count", "decayed_until"]
    )
    history = load_history(db, lead_ids=ids, columns=["lead_id", "seq", "points"])
    events = load_events(db, lead_ids=ids, columns=FOLD_COLUMNS, sort=True)
    return replay_check_frames(leads, history, events, load_rule_sets(db))


def replay_check_frames(
    leads: pl.DataFrame,
    history: pl.DataFrame,
    events: pl.DataFrame,
    rule_sets: Mapping[int, RuleSet],
) -> ReplayReport:
    """Run :func:`replay_check` on loaded frames.

    ``leads`` needs ``lead_id``, ``score``, ``row_count`` and
    ``decayed_until``; ``history`` needs ``lead_id`` and ``points``;
    ``events`` the fold columns.
    """
    sums = history.group_by("lead_id").agg(
        pl.col("points").sum().alias("history_sum"), pl.len().alias("history_rows")
    )
    folded = fold_frame(
        events,
        rule_sets,
        mode="as_lived",
        until=leads.select("lead_id", pl.col("decayed_until").alias("until")),
    ).leads.select(
        "lead_id", pl.col("score").alias("as_lived_score"), pl.col("row_count").alias("as_lived_rows")
    )
    checked = (
        leads.select("lead_id", pl.col("score").alias("stored_score"), pl.col("row_count").alias("stored_rows"))
        .join(sums, on="lead_id", how="left")
        .join(folded, on="lead_id", how="left")
        .with_columns(pl.col("history_sum", "history_rows", "as_lived_score", "as_lived_rows").fill_null(0))
        .with_columns(
            (pl.col("history_sum") == pl.col("stored_score")).alias("history_ok"),
            (
                (pl.col("as_lived_score") == pl.col("stored_score"))
                & (pl.col("as_lived_rows") == pl.col("stored_rows"))
            ).alias("fold_ok"),
        )
        .sort("lead_id")
    )
    return ReplayReport(leads=checked)
