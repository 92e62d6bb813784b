"""Trends: score distribution, events per type, stage funnel and scores over time.

Nothing is read until the tab is first opened (:meth:`Trends.ensure_loaded`),
and events and history are read only inside the chosen window of days, so
the dashboard's first render never waits for the event history. The reads
run in a worker thread, which keeps the live leaderboard responsive.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import panel as pn
import param
import polars as pl

from analytics import charts, trends
from analytics.fold import decay_stored_leads
from analytics.loaders import load_events, load_history, load_leads, load_rule_sets, live_rule_set
from analytics.simulate import LEAD_COLUMNS
from dashboards.context import DashboardContext

logger = logging.getLogger(__name__)


@dataclass
class TrendFrames:
    """The frames behind the trend charts."""

    distribution: pl.DataFrame
    per_type: pl.DataFrame
    funnel: pl.DataFrame
    scores: pl.DataFrame


def read_trends(context: DashboardContext, days: int, every: str, bins: int, lead_ids: list[str]) -> TrendFrames:
    """Load the data of the last ``days`` days and compute every trend frame."""
    now = datetime.now(timezone.utc)
    start = now - timedelta(days=days)
    db = context.db
    rule_sets = load_rule_sets(db)
    leads = load_leads(db, columns=list(LEAD_COLUMNS))
    if leads.height:
        leads = decay_stored_leads(leads, rule_sets, now)
    events = load_events(db, start=start, columns=["type", "occurred_at"])
    history = load_history(db, start=start, columns=["lead_id", "seq", "at", "stage_after"])
    lead_history = load_history(db, lead_ids=lead_ids, columns=["lead_id", "seq", "at", "score_after"])
    return TrendFrames(
        distribution=trends.score_distribution(leads, bins),
        per_type=trends.events_per_type(events, every),
        funnel=trends.stage_funnel(history, live_rule_set(rule_sets)),
        scores=trends.score_over_time(lead_history, every, lead_ids),
    )


class Trends(param.Parameterized):
    """Charts of the stored data over a window of days."""

    days = param.Integer(default=90, bounds=(1, 3650), doc="Window of events and score changes to chart, in days back from now.")
    every = param.Selector(default="1d", objects=["1h", "1d", "1w", "1mo"], doc="Period of the time charts.")
    bins = param.Integer(default=20, bounds=(2, 100), doc="Bins of the score distribution.")
    lead_ids = param.List(default=[], item_type=str, doc="Leads whose score over time is drawn.")
    loading = param.Boolean(default=False, doc="True while the data is being read.")

    def __init__(self, context: DashboardContext, **params: Any) -> None:
        super().__init__(**params)
        self.context = context
        self.loaded = False
        self.distribution = pn.pane.Vega(None, name="distribution")
        self.per_type = pn.pane.Vega(None, name="events per type")
        self.funnel = pn.pane.Vega(None, name="funnel")
        self.scores = pn.pane.Vega(None, name="score over time")
        self.message = pn.pane.Markdown("Open this tab to load the trends.")
        self.lead_input = pn.widgets.TextInput(
            name="Leads for the score-over-time chart (comma-separated ids)", width=500
        )
        self.lead_input.param.watch(self._set_leads, "value")
        self.refresh_button = pn.widgets.Button(name="Refresh", button_type="primary")
        self.refresh_button.on_click(lambda _event: pn.state.execute(self.refresh))

    def _set_leads(self, event: Any) -> None:
        self.lead_ids = [part.strip() for part in event.new.split(",") if part.strip()]

    def add_lead(self, lead_id: str) -> None:
        """Add ``lead_id`` to the score-over-time chart (from a leaderboard click)."""
        if lead_id and lead_id not in self.lead_ids:
            self.lead_input.value = ", ".join([*self.lead_ids, lead_id])

    def ensure_loaded(self) -> None:
        """Load the charts the first time the tab is shown."""
        if not self.loaded:
            self.loaded = True
            pn.state.execute(self.refresh)

    @param.depends("days", "every", "bins", "lead_ids", watch=True)
    def _changed(self) -> None:
        if self.loaded:
            pn.state.execute(self.refresh)

    async def refresh(self) -> None:
        """Read the window in a worker thread, then redraw every chart."""
        self.loading = True
        self.message.object = f"Loading the last {self.days} days ..."
        started = datetime.now(timezone.utc)
        try:
            frames = await asyncio.to_thread(
                read_trends, self.context, self.days, self.every, self.bins, list(self.lead_ids)
            )
        except Exception as error:
            logger.exception("trends: loading %d days failed", self.days)
            self.message.object = f"Loading the trends failed: {error}"
            return
        finally:
            self.loading = False
        self.distribution.object = charts.distribution_chart(frames.distribution)
        self.per_type.object = charts.events_per_type_chart(frames.per_type)
        self.funnel.object = charts.funnel_chart(frames.funnel, title=f"Stage funnel, last {self.days} days")
        self.scores.object = (
            charts.score_over_time_chart(frames.scores) if self.lead_ids else None
        )
        elapsed = (datetime.now(timezone.utc) - started).total_seconds()
        hint = "" if self.lead_ids else " Pick leads (or click them on the leaderboard) to chart their scores."
        self.message.object = f"Loaded in {elapsed:.1f} s.{hint}"

    def __panel__(self) -> pn.viewable.Viewable:
        controls = pn.Param(
            self, parameters=["days", "every", "bins"], show_name=False, default_layout=pn.Row, width=700
        )
        return pn.Column(
            pn.Row(controls, self.refresh_button),
            self.lead_input,
            self.message,
            pn.Row(self.distribution, self.per_type),
            pn.Row(self.funnel, self.scores),
            name="Trends",
            sizing_mode="stretch_width",
        )
