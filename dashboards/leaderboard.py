"""The live leaderboard: the top leads by score, refreshed by ``/ws`` messages.

The table shows a window of the top ``rows`` leads, read with one sorted,
limited query on the ``(score desc, lead_id)`` index, so the first render
does not depend on the number of leads. The first render reads only the
first page; the rest of the window is read in a worker thread once the page
is on screen (:meth:`Leaderboard.load_window`). Tabulator pages through the
window on the server (``pagination="remote"``), sending the browser one
page at a time. Each ``score.updated`` message re-reads only the leads it
names and merges them into the window. A score that went down, or a
``resync``, reloads the whole window, because another lead may now belong
in it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import panel as pn
from bokeh.models.widgets.tables import NumberFormatter
import param
import polars as pl
from pymongo import ASCENDING, DESCENDING
from pymongoarrow.api import find_polars_all

from analytics.fold import decay_stored_leads
from analytics.loaders import LEAD_FIELDS, build_schema, load_rule_sets
from dashboards.context import DashboardContext, SessionUpdates

logger = logging.getLogger(__name__)

COLUMNS = ["lead_id", "score", "stage", "event_count", "last_activity_at", "email", "company"]
#: Stored fields the score-as-of-now computation needs besides the shown ones.
DECAY_COLUMNS = ["anchor_version", "decayed_until"]
RECENT_COLUMNS = ["seq", "lead_id", "old_score", "new_score", "delta", "cause", "event_type", "rules_version"]
LEADERBOARD_SORT = [("score", DESCENDING), ("lead_id", ASCENDING)]


def top_leads(context: DashboardContext, rows: int, stage: str = "", min_score: int | None = None,
              lead_ids: list[str] | None = None) -> pl.DataFrame:
    """Load the top ``rows`` leads (or only ``lead_ids``), with scores decayed to now."""
    query: dict[str, Any] = {}
    if stage:
        query["stage"] = stage
    if min_score is not None:
        query["score"] = {"$gte": min_score}
    if lead_ids is not None:
        query["lead_id"] = {"$in": lead_ids}
    schema = build_schema(LEAD_FIELDS, COLUMNS + DECAY_COLUMNS)
    frame = find_polars_all(context.db["leads"], query, schema=schema, sort=LEADERBOARD_SORT, limit=rows)
    assert isinstance(frame, pl.DataFrame)
    if frame.height:
        frame = decay_stored_leads(frame, load_rule_sets(context.db), datetime.now(timezone.utc))
    return frame.select(COLUMNS)


class Leaderboard(param.Parameterized):
    """Top leads by score, updated live from ``/ws``."""

    rows = param.Integer(default=1000, bounds=(10, 10_000), doc="Leads kept in the window, highest score first.")
    page_size = param.Integer(default=25, bounds=(5, 200), doc="Rows per table page.")
    stage = param.String(default="", doc="Show only leads in this stage (empty for all).")
    min_score = param.Integer(default=None, allow_None=True, doc="Show only leads with at least this stored score.")
    selected_lead = param.String(default="", doc="Lead id of the clicked row, for the audit view.")
    updates = param.Integer(default=0, doc="score.updated messages applied in this session.")

    def __init__(self, context: DashboardContext, **params: Any) -> None:
        super().__init__(**params)
        self.context = context
        # Bumped by every full read, so a slower read started earlier is dropped.
        self._window_version = 0
        self._changed_during_load: set[str] = set()
        self.window_loaded = False
        self.frame = top_leads(context, min(self.page_size, self.rows), self.stage, self.min_score)
        self.table = pn.widgets.Tabulator(
            self._table_value(),
            pagination="remote",
            page_size=self.page_size,
            disabled=True,
            show_index=False,
            selectable=1,
            sizing_mode="stretch_width",
            name="leaderboard",
            formatters={name: NumberFormatter(format="0") for name in ("rank", "score", "event_count")},
        )
        self.table.on_click(self._on_click)
        self.recent = pn.widgets.Tabulator(
            pd.DataFrame(columns=RECENT_COLUMNS),
            disabled=True,
            show_index=False,
            sizing_mode="stretch_width",
            height=260,
            name="recent changes",
        )
        self.status = pn.pane.Markdown(self._status_text(), name="status")
        self.session = SessionUpdates(self.apply_messages, frozenset({"score.updated", "resync"}))
        self.session.attach(context.feed)
        pn.state.onload(self.load_window)

    def _table_value(self) -> pd.DataFrame:
        # The rank is the position in the window, starting at 1.
        ranked = self.frame.with_row_index("rank", offset=1)
        return ranked.to_pandas()

    def _status_text(self) -> str:
        total = self.context.db["leads"].estimated_document_count()
        feed = self.context.feed
        live = "live" if feed is not None and feed.connected.is_set() else "not connected to /ws"
        loading = "" if self.window_loaded else f" Loading the top {self.rows:,} ..."
        return (
            f"**{total:,} leads**; showing the top {self.frame.height:,}.{loading} "
            f"Feed: {live}, {self.updates:,} updates applied."
        )

    async def load_window(self) -> None:
        """Read the whole window in a worker thread, after the first page is on screen."""
        version = self._window_version
        try:
            frame = await asyncio.to_thread(top_leads, self.context, self.rows, self.stage, self.min_score)
        except Exception:
            logger.exception("leaderboard: reading the top %d leads failed; showing the first page only", self.rows)
            return
        if version != self._window_version:
            return
        # Updates applied during the read may be newer than its rows.
        changed = self._changed_during_load
        self._changed_during_load = set()
        self.frame = frame
        self.window_loaded = True
        if changed:
            self._merge(sorted(changed))
        else:
            self._show()

    @param.depends("rows", "stage", "min_score", watch=True)
    def reload(self) -> None:
        """Read the window again from MongoDB."""
        self._window_version += 1
        self.frame = top_leads(self.context, self.rows, self.stage, self.min_score)
        self.window_loaded = True
        self._show()

    @param.depends("page_size", watch=True)
    def _resize(self) -> None:
        self.table.page_size = self.page_size

    def _show(self) -> None:
        self.table.value = self._table_value()
        self.status.object = self._status_text()

    def _on_click(self, event: Any) -> None:
        if event.row is not None and 0 <= event.row < len(self.table.value):
            self.selected_lead = str(self.table.value.iloc[event.row]["lead_id"])

    def apply_messages(self, messages: list[dict[str, Any]]) -> None:
        """Merge a batch of ``score.updated`` (or ``resync``) messages into the window."""
        updated = [message for message in messages if message["type"] == "score.updated"]
        self.updates += len(updated)
        self._add_recent(updated)
        went_down = any(message.get("delta", 0) < 0 for message in updated)
        if went_down or any(message["type"] == "resync" for message in messages):
            self.reload()
            return
        lead_ids = sorted({message["lead_id"] for message in updated})
        if not self.window_loaded:
            self._changed_during_load.update(lead_ids)
        self._merge(lead_ids)

    def _merge(self, lead_ids: list[str]) -> None:
        fresh = top_leads(self.context, len(lead_ids), self.stage, self.min_score, lead_ids=lead_ids)
        merged = pl.concat([self.frame.filter(~pl.col("lead_id").is_in(lead_ids)), fresh], how="vertical_relaxed")
        self.frame = merged.sort(["score", "lead_id"], descending=[True, False]).head(self.rows)
        self._show()

    def _add_recent(self, updated: list[dict[str, Any]]) -> None:
        if not updated:
            return
        rows = pd.DataFrame([{name: message.get(name) for name in RECENT_COLUMNS} for message in updated[::-1]])
        self.recent.value = pd.concat([rows, self.recent.value], ignore_index=True).head(50)

    def __panel__(self) -> pn.viewable.Viewable:
        controls = pn.Param(
            self, parameters=["rows", "page_size", "stage", "min_score"], show_name=False,
            default_layout=pn.Row, width=900,
        )
        return pn.Column(
            self.status,
            controls,
            self.table,
            pn.pane.Markdown("#### Latest score changes (from /ws)"),
            self.recent,
            sizing_mode="stretch_width",
            name="Leaderboard",
        )
