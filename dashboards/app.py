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

from dashboards.access import read_access_error, redact_tokens_in_logs, rejection_page, session_token
from dashboards.audit import LeadAuditView
from dashboards.context import DashboardContext
from dashboards.exports import Exports
from dashboards.leaderboard import Leaderboard
from dashboards.rules import RuleEditor
from dashboards.trends import Trends
from dashboards.vega_scripts import VegaScripts
from scorestream.config import load_settings
from scorestream.runtime import Runtime
from scorestream.services import resolve_services

logger = logging.getLogger(__name__)

TITLE = "ScoreStream"
TAB_NAMES = ("Leaderboard", "Trends", "Lead audit", "Rule editor", "Export")
#: Tabs whose views contain Vega charts.
CHART_TABS = ("Trends", "Lead audit", "Rule editor")


def configure_resources() -> None:
    """Register the extensions and make Bokeh and Panel serve every file themselves."""
    # Bokeh reads BOKEH_RESOURCES when it renders a page; "server" serves
    # BokehJS from this process's /static instead of cdn.bokeh.org.
    os.environ["BOKEH_RESOURCES"] = "server"
    pn.config.resources = "server"
    pn.extension("tabulator", "vega", sizing_mode="stretch_width", notifications=False)


class DashboardPage:
    """One session's page: the leaderboard at once, every other view when its tab first opens.

    The views behind the other tabs are built when their tab first opens.
    Those with Vega charts also wait until the browser has loaded the Vega
    scripts (see :mod:`dashboards.vega_scripts`). So the first render builds,
    sends and runs only what the leaderboard needs.
    """

    def __init__(self, context: DashboardContext) -> None:
        self.context = context
        self.leaderboard = Leaderboard(context)
        self.trends: Trends | None = None
        self.audit: LeadAuditView | None = None
        self.rules: RuleEditor | None = None
        self.exports: Exports | None = None
        self.clicked_leads: list[str] = []
        self.scripts = VegaScripts()
        self.placeholders = {
            name: pn.Column(pn.pane.Markdown(f"Loading {name.lower()} ..."), name=name, sizing_mode="stretch_width")
            for name in TAB_NAMES[1:]
        }
        self.tabs = pn.Tabs(pn.panel(self.leaderboard), *self.placeholders.values(), dynamic=True, name="views")
        self.scripts.load_on(self.tabs, [TAB_NAMES.index(name) for name in CHART_TABS])
        self.tabs.param.watch(self._on_tab, "active")
        self.leaderboard.param.watch(self._on_lead, "selected_lead")
        self.scripts.param.watch(self._on_script_error, "error")

    def layout(self) -> pn.Column:
        """Return the page: a header, the tabs and the hidden script status."""
        header = pn.pane.Markdown(
            f"## {TITLE}\nLive lead scores from `{self.context.api_url}`. Click a lead to audit it.",
            sizing_mode="stretch_width",
        )
        return pn.Column(header, self.tabs, self.scripts.status, sizing_mode="stretch_width")

    def _on_tab(self, event: Any) -> None:
        name = TAB_NAMES[event.new]
        if name == "Export":
            self._open_exports()
        elif name in CHART_TABS:
            self.scripts.when_loaded(lambda: self._open_chart_tab(name))

    def _open_chart_tab(self, name: str) -> None:
        if name == "Trends":
            self._build_trends().ensure_loaded()
        elif name == "Lead audit":
            self._build_audit()
        elif name == "Rule editor":
            self._build_rules().ensure_loaded()

    def _show(self, name: str, view: Any) -> None:
        self.placeholders[name].objects = [pn.panel(view)]

    def _build_trends(self) -> Trends:
        if self.trends is None:
            self.trends = Trends(self.context)
            for lead_id in self.clicked_leads:
                self.trends.add_lead(lead_id)
            self._show("Trends", self.trends)
        return self.trends

    def _build_audit(self) -> LeadAuditView:
        if self.audit is None:
            self.audit = LeadAuditView(self.context)
            self._show("Lead audit", self.audit)
            if self.clicked_leads:
                self.audit.lead_id = self.clicked_leads[-1]
        return self.audit

    def _build_rules(self) -> RuleEditor:
        if self.rules is None:
            self.rules = RuleEditor(self.context)
            self._show("Rule editor", self.rules)
        return self.rules

    def _open_exports(self) -> None:
        if self.exports is None:
            self.exports = Exports(self.context)
            self._show("Export", self.exports)

    def _on_lead(self, event: Any) -> None:
        if event.new and event.new not in self.clicked_leads:
            self.clicked_leads.append(event.new)
        if self.audit is not None:
            self.audit.lead_id = event.new
        if self.trends is not None:
            self.trends.add_lead(event.new)

    def _on_script_error(self, event: Any) -> None:
        text = f"The browser could not load the chart scripts ({event.new}); reload the page to try again."
        for name in CHART_TABS:
            self.placeholders[name].objects = [pn.pane.Alert(text, alert_type="danger")]


def build_dashboard(context: DashboardContext) -> pn.Column:
    """Build one session's page: the leaderboard first, later tabs when opened.

    When read tokens are configured and the session has no valid one, the
    page shows only the reason, and no view is built, so no data is read.
    """
    token = session_token()
    error = read_access_error(context, token)
    if error is not None:
        logger.warning("dashboard session rejected: %s read token", "invalid" if token else "missing")
        return rejection_page(TITLE, error)

    # Named inside the session, the extensions decide which scripts this
    # page loads: Tabulator now, Vega when a chart tab opens.
    pn.extension("tabulator")
    return DashboardPage(context).layout()


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
    redact_tokens_in_logs()
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
