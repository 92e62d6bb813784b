"""The lead audit explorer: one lead's events, score changes and replay check.

Every event is listed, including those of types the rules do not know (they
change no score). Every score change shows its cause, event, rule version
and points. The replay check (:func:`analytics.audit.replay_check`) confirms
that the history rows and an as-lived fold both reproduce the stored score.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
import panel as pn
import param
import polars as pl

from analytics import charts, trends
from analytics.audit import ReplayReport, audit_trail, replay_check
from analytics.loaders import load_events
from dashboards.context import DashboardContext

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ["occurred_at", "type", "event_id", "source", "rules_version", "received_at"]


@dataclass
class LeadAudit:
    """What the explorer shows for one lead."""

    lead: dict[str, Any] | None
    events: pl.DataFrame
    trail: pl.DataFrame
    replay: ReplayReport


def read_audit(context: DashboardContext, lead_id: str) -> LeadAudit:
    """Load one lead's document, events, audit trail and replay check."""
    db = context.db
    lead = db["leads"].find_one({"lead_id": lead_id}, {"_id": 0})
    events = load_events(db, lead_ids=[lead_id], columns=EVENT_COLUMNS).sort("occurred_at", "event_id")
    return LeadAudit(lead, events, audit_trail(db, lead_id), replay_check(db, lead_id))


def _table(name: str) -> pn.widgets.Tabulator:
    return pn.widgets.Tabulator(
        pd.DataFrame(), pagination="remote", page_size=15, disabled=True, show_index=False,
        sizing_mode="stretch_width", name=name,
    )


class LeadAuditView(param.Parameterized):
    """Pick a lead and see how its score came to be."""

    lead_id = param.String(default="", doc="Lead to audit: type its id or click it on the leaderboard.")

    def __init__(self, context: DashboardContext, **params: Any) -> None:
        super().__init__(**params)
        self.context = context
        self.summary = pn.pane.Markdown("Pick a lead to see its audit trail.", name="audit summary")
        self.replay = pn.pane.Alert("", alert_type="light", visible=False, name="replay check")
        self.events = _table("events")
        self.trail = _table("score changes")
        self.chart = pn.pane.Vega(None, name="lead score over time")

    @param.depends("lead_id", watch=True)
    def _lead_changed(self) -> None:
        pn.state.execute(self.refresh)

    async def refresh(self) -> None:
        """Load the lead in a worker thread and fill the tables."""
        lead_id = self.lead_id.strip()
        if not lead_id:
            return
        self.summary.object = f"Loading `{lead_id}` ..."
        try:
            audit = await asyncio.to_thread(read_audit, self.context, lead_id)
        except Exception as error:
            logger.exception("audit: loading lead %s failed", lead_id)
            self.summary.object = f"Loading lead `{lead_id}` failed: {error}"
            return
        self.show(lead_id, audit)

    def show(self, lead_id: str, audit: LeadAudit) -> None:
        """Display a loaded audit."""
        if audit.lead is None:
            self.summary.object = f"Lead `{lead_id}` does not exist."
            self.replay.visible = False
            self.events.value = pd.DataFrame()
            self.trail.value = pd.DataFrame()
            self.chart.object = None
            return
        lead = audit.lead
        self.summary.object = (
            f"### {lead_id}\n"
            f"Stored score **{lead.get('score')}**, stage **{lead.get('stage') or '-'}**, "
            f"{lead.get('event_count', 0)} scored events ({audit.events.height} stored), "
            f"{audit.trail.height} score changes, last activity {lead.get('last_activity_at')}."
        )
        row = audit.replay.leads.row(0, named=True) if audit.replay.leads.height else {}
        if audit.replay.ok:
            self.replay.object = (
                f"Replay check passed: history sums to {row.get('history_sum')} and the as-lived fold "
                f"gives {row.get('as_lived_score')} over {row.get('as_lived_rows')} rows, as stored."
            )
            self.replay.alert_type = "success"
        else:
            self.replay.object = f"Replay check failed: {row}"
            self.replay.alert_type = "danger"
        self.replay.visible = True
        self.events.value = audit.events.to_pandas()
        self.trail.value = audit.trail.to_pandas()
        scores = trends.score_over_time(audit.trail.select("lead_id", "seq", "at", "score_after"), "1d")
        self.chart.object = charts.score_over_time_chart(scores, title=f"Score of {lead_id} by day")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.widgets.TextInput.from_param(self.param.lead_id, name="Lead id", width=400),
            self.summary,
            self.replay,
            pn.pane.Markdown("#### Score changes (cause, event, rule version, points)"),
            self.trail,
            pn.pane.Markdown("#### Events"),
            self.events,
            self.chart,
            name="Lead audit",
            sizing_mode="stretch_width",
        )
