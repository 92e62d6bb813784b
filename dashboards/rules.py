"""The rule editor: edit a candidate rule set, preview its impact, publish it.

The what-if preview runs :func:`analytics.simulate.simulate`, which folds the
whole event history under the candidate as if it had always been live and
compares the result with the live scores. Publishing goes through the web
app's ``PUT /api/scoring-rules`` (optionally ``?rescore=1``), the same path
as any API client, and the rescore's progress comes from ``/ws``
``rescore.progress`` messages.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pandas as pd
import panel as pn
import param
import requests

from analytics import charts
from analytics.loaders import live_rule_set, load_rule_sets
from analytics.simulate import SimulationResult, simulate
from dashboards.context import DashboardContext, SessionUpdates
from scorestream.errors import ValidationError
from scoring.rules import RuleSet

logger = logging.getLogger(__name__)


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


class RuleEditor(param.Parameterized):
    """A candidate rule set, its what-if impact and the publish buttons."""

    points = param.Dict(default={}, doc="Points per event type; negative values lower the score.")
    cap = param.Integer(default=1000, doc="Highest score a lead can reach.")
    floor = param.Integer(default=0, doc="Lowest score a lead can reach.")
    decay_after = param.String(default="7d", doc="Idle time before decay starts (30s, 15m, 12h or 7d).")
    decay_every = param.String(default="1d", doc="Decay step length (30s, 15m, 12h or 7d).")
    decay_points = param.Integer(default=5, bounds=(0, None), doc="Points lost per decay step.")
    stages = param.Dict(default={}, doc="Stage name to score threshold, for example mql at 100.")
    note = param.String(default="", doc="Note stored with the published version.")
    outcome = param.Selector(default="", objects=[""], check_on_set=False,
                             doc="Event type that marks success, for the backtest (empty to skip it).")
    within_days = param.Number(default=90, allow_None=True, bounds=(0, None),
                               doc="Days after reaching the stage within which the outcome counts as a hit.")
    backtest_stage = param.String(default="", doc="Stage whose reaching is the prediction (empty: the lowest stage).")
    rescore = param.Boolean(default=False, doc="Re-fold every lead under the new version after publishing.")

    def __init__(self, context: DashboardContext, **params: Any) -> None:
        super().__init__(**params)
        self.context = context
        self.loaded = False
        self.result: SimulationResult | None = None
        self.job_id: str | None = None
        self.points_table = pn.widgets.Tabulator(
            _frame([], ["type", "points"]), show_index=False, name="points", height=280, width=320,
        )
        self.stages_table = pn.widgets.Tabulator(
            _frame([], ["stage", "threshold"]), show_index=False, name="stages", height=160, width=320,
        )
        self.points_table.on_edit(lambda _event: self._read_tables())
        self.stages_table.on_edit(lambda _event: self._read_tables())
        self.new_type = pn.widgets.TextInput(placeholder="new event type", width=200)
        self.add_type = pn.widgets.Button(name="Add type", width=100)
        self.add_type.on_click(self._add_type)
        self.new_stage = pn.widgets.TextInput(placeholder="new stage", width=200)
        self.add_stage = pn.widgets.Button(name="Add stage", width=100)
        self.add_stage.on_click(self._add_stage)
        self.reset_button = pn.widgets.Button(name="Reset to live rules")
        self.reset_button.on_click(lambda _event: self.load_live())

        self.run_button = pn.widgets.Button(name="Run what-if", button_type="primary")
        self.run_button.on_click(lambda _event: pn.state.execute(self.run_what_if))
        self.publish_button = pn.widgets.Button(name="Publish", button_type="danger")
        self.publish_button.on_click(lambda _event: self.publish())

        self.message = pn.pane.Alert("", alert_type="light", visible=False, name="rule editor message")
        self.summary = pn.pane.Markdown("", name="what-if summary")
        self.impact = pn.widgets.Tabulator(_frame([], ["stage", "before", "after"]), disabled=True,
                                           show_index=False, name="impact", width=400)
        self.stage_changes = pn.widgets.Tabulator(_frame([], ["old_stage", "new_stage", "leads"]), disabled=True,
                                                  show_index=False, name="stage changes", width=400)
        self.movers_up = self._movers_table("top movers up")
        self.movers_down = self._movers_table("top movers down")
        self.backtest = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False,
                                             name="backtest", sizing_mode="stretch_width")
        self.distribution = pn.pane.Vega(None, name="distribution shift")
        self.progress = pn.indicators.Progress(value=0, max=1, visible=False, width=400, name="rescore progress")
        self.progress_text = pn.pane.Markdown("", name="rescore status")
        self.session = SessionUpdates(self.apply_messages, frozenset({"rescore.progress", "rules.published"}))
        self.session.attach(context.feed)

    @staticmethod
    def _movers_table(name: str) -> pn.widgets.Tabulator:
        return pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, name=name,
                                    pagination="remote", page_size=10, width=600)

    # Loading and editing

    def ensure_loaded(self) -> None:
        """Fill the form from the live rule set the first time the tab is shown."""
        if not self.loaded:
            self.loaded = True
            self.load_live()

    def load_live(self) -> None:
        """Set every control to the live rule set."""
        self.set_rules(live_rule_set(load_rule_sets(self.context.db)))

    def set_rules(self, rules: RuleSet) -> None:
        """Set every control to ``rules``."""
        document = rules.to_document()
        self.param.update(
            points=dict(document["points"]), cap=document["cap"], floor=document["floor"],
            decay_after=document["decay"]["after"], decay_every=document["decay"]["every"],
            decay_points=document["decay"]["points"], stages=dict(document["stages"]), note="",
        )
        types = sorted(set(self.points) | {"purchase"})
        self.param.outcome.objects = ["", *types]
        self._write_tables()

    def _write_tables(self) -> None:
        self.points_table.value = _frame(
            [{"type": name, "points": value} for name, value in sorted(self.points.items())], ["type", "points"]
        )
        self.stages_table.value = _frame(
            [{"stage": name, "threshold": value} for name, value in sorted(self.stages.items(), key=lambda item: item[1])],
            ["stage", "threshold"],
        )

    def _read_tables(self) -> None:
        points = self.points_table.value.dropna()
        stages = self.stages_table.value.dropna()
        self.points = {str(row.type).strip(): int(row.points) for row in points.itertuples() if str(row.type).strip()}
        self.stages = {str(row.stage).strip(): int(row.threshold) for row in stages.itertuples() if str(row.stage).strip()}

    def _add_type(self, _event: Any) -> None:
        name = self.new_type.value.strip()
        if name and name not in self.points:
            self.points = {**self.points, name: 0}
            self._write_tables()
        self.new_type.value = ""

    def _add_stage(self, _event: Any) -> None:
        name = self.new_stage.value.strip()
        if name and name not in self.stages:
            self.stages = {**self.stages, name: self.cap}
            self._write_tables()
        self.new_stage.value = ""

    def payload(self) -> dict[str, Any]:
        """Return the candidate as a ``PUT /api/scoring-rules`` body."""
        return {
            "points": dict(self.points),
            "cap": self.cap,
            "floor": self.floor,
            "decay": {"after": self.decay_after, "every": self.decay_every, "points": self.decay_points},
            "stages": dict(self.stages),
            "note": self.note,
        }

    def _alert(self, text: str, kind: str) -> None:
        self.message.object = text
        self.message.alert_type = kind
        self.message.visible = True

    # What-if

    async def run_what_if(self) -> None:
        """Simulate the candidate against the full history in a worker thread and show the impact."""
        self._alert("Folding the full event history under the candidate rules ...", "info")
        outcome = self.outcome or None
        try:
            result = await asyncio.to_thread(
                simulate, self.context.db, self.payload(), outcome=outcome,
                within_days=self.within_days if outcome else None, stage=self.backtest_stage or None,
            )
        except ValidationError as error:
            self._alert(f"The candidate is invalid: {error} {getattr(error, 'details', '')}", "danger")
            return
        except (ValueError, LookupError) as error:
            self._alert(f"The what-if failed: {error}", "danger")
            return
        self.show_result(result)

    def show_result(self, result: SimulationResult) -> None:
        """Display a simulation's impact."""
        self.result = result
        summary = result.summary
        self.summary.object = (
            f"**What-if against live version {result.live_version}**: {summary['leads']:,} leads, "
            f"{summary['scores_changed']:,} scores and {summary['stages_changed']:,} stages would change. "
            f"Mean score {summary['before']['mean']} -> {summary['after']['mean']}, "
            f"median {summary['before']['median']} -> {summary['after']['median']}."
        )
        self.impact.value = result.stage_counts.to_pandas()
        self.stage_changes.value = result.stage_changes.to_pandas()
        movers = result.top_movers(10)
        self.movers_up.value = movers["up"].to_pandas()
        self.movers_down.value = movers["down"].to_pandas()
        self.backtest.value = pd.DataFrame(result.backtest or [])
        self.distribution.object = charts.simulation_distribution_chart(result)
        self._alert("What-if done. Review the impact, then publish or keep editing.", "success")

    # Publishing

    def publish(self) -> dict[str, Any] | None:
        """Publish the candidate through ``PUT /api/scoring-rules`` and return the response body."""
        url = f"{self.context.api_url.rstrip('/')}/api/scoring-rules"
        try:
            response = requests.put(
                url, json=self.payload(), params={"rescore": "1"} if self.rescore else None,
                headers=self.context.api_headers(), timeout=60,
            )
        except requests.RequestException as error:
            logger.warning("rule editor: publishing to %s failed: %s", url, error)
            self._alert(f"Publishing failed: the web app at {self.context.api_url} did not respond ({error}).", "danger")
            return None
        if response.status_code != 200:
            self._alert(f"Publishing was rejected ({response.status_code}): {response.text[:1000]}", "danger")
            return None
        body = response.json()
        version = body["rules"]["version"]
        job = body.get("rescore")
        if job:
            self.job_id = job["job_id"]
            self._show_progress(job)
        self._alert(f"Published version {version}{' with a rescore' if job else ''}.", "success")
        logger.info("rule editor: published rule set %s (rescore %s)", version, bool(job))
        return body

    def _show_progress(self, progress: dict[str, Any]) -> None:
        total = int(progress.get("total") or 0)
        done = int(progress.get("done") or 0)
        self.progress.max = max(total, 1)
        self.progress.value = min(done, self.progress.max)
        self.progress.visible = True
        state = "finished" if done >= total else "running"
        self.progress_text.object = f"Rescore `{progress.get('job_id')}`: {done:,} of {total:,} leads, {state}."

    def apply_messages(self, messages: list[dict[str, Any]]) -> None:
        """Show ``rescore.progress`` of this session's job and note new versions."""
        for message in messages:
            if message["type"] == "rescore.progress" and message.get("job_id") == self.job_id:
                self._show_progress(message)
            elif message["type"] == "rules.published":
                self.progress_text.object = (
                    f"Version {message.get('version')} is live." + (
                        f" {self.progress_text.object}" if self.job_id else ""
                    )
                )

    def __panel__(self) -> pn.viewable.Viewable:
        settings = pn.Param(
            self, parameters=["cap", "floor", "decay_after", "decay_every", "decay_points", "note"],
            show_name=False, width=320,
        )
        backtest = pn.Param(
            self, parameters=["outcome", "within_days", "backtest_stage", "rescore"], show_name=False, width=320,
        )
        editor = pn.Row(
            pn.Column("#### Points", self.points_table, pn.Row(self.new_type, self.add_type)),
            pn.Column("#### Stages", self.stages_table, pn.Row(self.new_stage, self.add_stage), settings),
            pn.Column("#### Backtest and publishing", backtest, self.reset_button,
                      pn.Row(self.run_button, self.publish_button), self.progress, self.progress_text),
        )
        impact = pn.Column(
            self.summary,
            pn.Row(pn.Column("#### Stage counts before and after", self.impact),
                   pn.Column("#### Stage changes", self.stage_changes)),
            self.distribution,
            pn.Row(pn.Column("#### Top movers up", self.movers_up), pn.Column("#### Top movers down", self.movers_down)),
            pn.pane.Markdown("#### Backtest (when an outcome is chosen)"),
            self.backtest,
        )
        return pn.Column(editor, self.message, impact, name="Rule editor", sizing_mode="stretch_width")
