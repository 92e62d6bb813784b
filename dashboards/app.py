"""Assemble the dashboard's views into one page and serve it with Panel.

Every JavaScript and CSS file comes from this server: Bokeh's own files are
served from ``/static`` and Panel's extensions (Tabulator, Vega) from its
bundled copies, never from a CDN, so the dashboard works offline and a
browser loading it contacts no other host.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import panel as pn

from dashboards.audit import LeadAuditView
from dashboards.context import DashboardContext
from dashboards.exports import Exports
from dashboards.leaderboard import Leaderboard
from dashboards.rules import RuleEditor
from dashboards.trends import Trends
from scorestream.config import load_settings
from scorestream.runtime import Runtime
from scorestream.services import resolve_services

logger = logging.getLogger(__name__)

TITLE = "ScoreStream"
TAB_NAMES = ("Leaderboard", "Trends", "Lead audit", "Rule editor", "Export")


def configure_resources() -> None:
    """Load the extensions and make Bokeh and Panel serve every file themselves."""
    # Bokeh reads BOKEH_RESOURCES when it renders a page; "server" serves
    # BokehJS from this process's /static instead of cdn.bokeh.org.
    os.environ["BOKEH_RESOURCES"] = "server"
    pn.config.resources = "server"
    pn.extension("tabulator", "vega", sizing_mode="stretch_width", notifications=False)


def build_dashboard(context: DashboardContext) -> pn.Column:
    """Build one session's page: the five views in tabs, later tabs loaded when opened."""
    leaderboard = Leaderboard(context)
    trends = Trends(context)
    audit = LeadAuditView(context)
    rules = RuleEditor(context)
    exports = Exports(context)
    tabs = pn.Tabs(
        *(pn.panel(view) for view in (leaderboard, trends, audit, rules, exports)),
        dynamic=True,
        name="views",
    )

    def on_tab(event: Any) -> None:
        if event.new == TAB_NAMES.index("Trends"):
            trends.ensure_loaded()
        elif event.new == TAB_NAMES.index("Rule editor"):
            rules.ensure_loaded()

    def on_lead(event: Any) -> None:
        audit.lead_id = event.new
        trends.add_lead(event.new)

    tabs.param.watch(on_tab, "active")
    leaderboard.param.watch(on_lead, "selected_lead")
    header = pn.pane.Markdown(
        f"## {TITLE}\nLive lead scores from `{context.api_url}`. Click a lead to audit it.",
        sizing_mode="stretch_width",
    )
    return pn.Column(header, tabs, sizing_mode="stretch_width")


def open_context(api_url: str, data_dir: Path | None = None) -> tuple[DashboardContext, Any]:
    """Connect to MongoDB (environment, services.json, else embedded) and start the feed."""
    settings = load_settings(data_dir=data_dir)
    services = resolve_services(settings)
    runtime = Runtime(settings.with_services(services.mongo_uri, services.redis_url))
    context = DashboardContext(runtime, api_url)
    context.start_feed()
    return context, services


def serve(port: int, api_url: str, data_dir: Path | None = None, address: str = "127.0.0.1") -> None:
    """Serve the dashboard on ``address:port`` until interrupted."""
    configure_resources()
    context, services = open_context(api_url, data_dir)
    origins = [f"127.0.0.1:{port}", f"localhost:{port}"]
    logger.info("dashboard serving http://%s:%d with live data from %s", address, port, api_url)
    try:
        pn.serve(
            {"/": lambda: build_dashboard(context)},
            port=port,
            address=address,
            allow_websocket_origin=origins,
            show=False,
            title=TITLE,
            threaded=False,
        )
    finally:
        if context.feed is not None:
            context.feed.stop()
        context.runtime.close()
        services.stop()
