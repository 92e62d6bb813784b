"""Export buttons: leads, events and score history as CSV or Parquet.

Each button streams its file from :func:`analytics.export.stream_export`,
with the filters below applied in the database. The browser receives the
whole file over the session's WebSocket, so for very large exports the web
app's streamed ``GET /api/utils/export/<kind>`` is the better path; the
links under the buttons point at it.
"""

from __future__ import annotations

import io
import logging
from datetime import datetime, time, timezone
from typing import Any
from urllib.parse import urlencode

import panel as pn
import param

from analytics.export import export_filename, stream_export
from dashboards.context import DashboardContext

logger = logging.getLogger(__name__)

KINDS = ("leads", "events", "history")
FORMATS = ("csv", "parquet")
#: The filters :func:`analytics.export.stream_export` accepts for each kind.
KIND_FILTERS = {
    "leads": ("lead_ids", "stages", "min_score"),
    "events": ("start", "end", "types", "lead_ids"),
    "history": ("start", "end", "lead_ids", "causes"),
}


def _split(text: str) -> list[str] | None:
    values = [part.strip() for part in text.split(",") if part.strip()]
    return values or None


class Exports(param.Parameterized):
    """Filters shared by the six export buttons."""

    tz = param.String(default="UTC", doc="IANA time zone of exported timestamps, for example Europe/Paris.")
    lead_ids = param.String(default="", doc="Comma-separated lead ids to export (empty for all).")
    stages = param.String(default="", doc="Leads only: comma-separated stages to keep.")
    min_score = param.Integer(default=None, allow_None=True, doc="Leads only: lowest stored score to keep.")
    types = param.String(default="", doc="Events only: comma-separated event types to keep.")
    causes = param.String(default="", doc="History only: comma-separated causes (event, decay, rescore, manual).")
    start = param.CalendarDate(default=None, allow_None=True, doc="Events and history: first day (UTC), inclusive.")
    end = param.CalendarDate(default=None, allow_None=True, doc="Events and history: last day (UTC), exclusive.")

    def __init__(self, context: DashboardContext, **params: Any) -> None:
        super().__init__(**params)
        self.context = context
        self.message = pn.pane.Markdown("", name="export message")
        self.buttons = {
            (kind, fmt): pn.widgets.FileDownload(
                callback=self._callback(kind, fmt),
                filename=export_filename(kind, fmt),
                label=f"{kind.capitalize()} {fmt.upper() if fmt == 'csv' else fmt.capitalize()}",
                button_type="primary",
                width=160,
                name=f"export {kind} {fmt}",
            )
            for kind in KINDS
            for fmt in FORMATS
        }

    def filters(self, kind: str) -> dict[str, Any]:
        """Return the keyword filters of ``kind`` that are set."""
        day_start = (lambda day: datetime.combine(day, time(), timezone.utc) if day else None)
        values = {
            "lead_ids": _split(self.lead_ids),
            "stages": _split(self.stages),
            "min_score": self.min_score,
            "types": _split(self.types),
            "causes": _split(self.causes),
            "start": day_start(self.start),
            "end": day_start(self.end),
        }
        return {name: values[name] for name in KIND_FILTERS[kind] if values[name] is not None}

    def export_bytes(self, kind: str, fmt: str) -> bytes:
        """Run the export of ``kind`` in ``fmt`` with the current filters."""
        chunks = stream_export(self.context.db, kind, fmt, self.tz, **self.filters(kind))  # type: ignore[arg-type]
        return b"".join(chunks)

    def _callback(self, kind: str, fmt: str) -> Any:
        def produce() -> io.BytesIO:
            try:
                data = self.export_bytes(kind, fmt)
            except ValueError as error:
                self.message.object = f"Export of {kind} failed: {error}"
                raise
            self.message.object = f"Exported {len(data):,} bytes of {kind} as {fmt}."
            logger.info("export: %s as %s, %d bytes", kind, fmt, len(data))
            return io.BytesIO(data)

        return produce

    @param.depends("tz", "lead_ids")
    def api_links(self) -> pn.pane.Markdown:
        """Links to the web app's streamed exports with the same filters."""
        base = self.context.api_url.rstrip("/")
        lines = []
        for kind in ("leads", "events"):
            query = {"format": "parquet", "tz": self.tz}
            lead_ids = _split(self.lead_ids)
            if lead_ids:
                query["lead_ids"] = ",".join(lead_ids)
            lines.append(f"- [{kind} (streamed by the web app)]({base}/api/utils/export/{kind}?{urlencode(query)})")
        return pn.pane.Markdown("\n".join(lines))

    def __panel__(self) -> pn.viewable.Viewable:
        controls = pn.Param(
            self, parameters=["tz", "lead_ids", "stages", "min_score", "types", "causes", "start", "end"],
            show_name=False, width=360,
        )
        grid = pn.Column(*[
            pn.Row(*[self.buttons[(kind, fmt)] for fmt in FORMATS]) for kind in KINDS
        ])
        return pn.Row(
            controls,
            pn.Column("#### Download", grid, self.message, self.api_links),
            name="Export",
        )
