"""Altair charts for the trends in :mod:`analytics.trends` and the simulator.

Each builder takes the frame its trend function returns and gives back an
``altair.Chart``. The Panel dashboard shows them through its Vega pane;
:func:`save_png` renders one to PNG offline with vl-convert, which bundles
Vega and needs neither a browser nor network access.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import polars as pl
import vl_convert as vlc

from analytics.simulate import SimulationResult

WIDTH = 560
HEIGHT = 280


def _base(frame: pl.DataFrame, title: str) -> alt.Chart:
    return alt.Chart(frame.to_arrow(), title=title).properties(width=WIDTH, height=HEIGHT)


def score_over_time_chart(scores: pl.DataFrame, title: str = "Score over time") -> alt.Chart:
    """Draw one step line per lead from :func:`analytics.trends.score_over_time`."""
    return (
        _base(scores, title)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("period:T", title="period"),
            y=alt.Y("score:Q", title="score"),
            color=alt.Color("lead_id:N", title="lead"),
            tooltip=["lead_id:N", "period:T", "score:Q"],
        )
    )


def cohort_chart(cohorts: pl.DataFrame, title: str = "Mean score by cohort") -> alt.Chart:
    """Draw the mean score per cohort from :func:`analytics.trends.cohort_score_over_time`."""
    return (
        _base(cohorts, title)
        .mark_line(point=True)
        .encode(
            x=alt.X("period:T", title="period"),
            y=alt.Y("mean_score:Q", title="mean score"),
            color=alt.Color("cohort:N", title="cohort"),
            tooltip=["cohort:N", "period:T", "leads:Q", "mean_score:Q", "median_score:Q"],
        )
    )


def distribution_chart(distribution: pl.DataFrame, title: str = "Score distribution") -> alt.Chart:
    """Draw a histogram from :func:`analytics.trends.score_distribution`."""
    return (
        _base(distribution, title)
        .mark_bar()
        .encode(
            x=alt.X("low:Q", bin="binned", title="score"),
            x2="high:Q",
            y=alt.Y("leads:Q", title="leads"),
            tooltip=["low:Q", "high:Q", "leads:Q"],
        )
    )


def events_per_type_chart(counts: pl.DataFrame, title: str = "Events per type") -> alt.Chart:
    """Draw stacked bars from :func:`analytics.trends.events_per_type`."""
    return (
        _base(counts, title)
        .mark_bar()
        .encode(
            x=alt.X("period:T", title="period"),
            y=alt.Y("events:Q", title="events", stack="zero"),
            color=alt.Color("type:N", title="type"),
            tooltip=["period:T", "type:N", "events:Q"],
        )
    )


def funnel_chart(funnel: pl.DataFrame, title: str = "Stage funnel") -> alt.Chart:
    """Draw horizontal bars from :func:`analytics.trends.stage_funnel`, in stage order."""
    order = funnel.get_column("stage").to_list()
    bars = (
        _base(funnel, title)
        .mark_bar()
        .encode(
            y=alt.Y("stage:N", sort=order, title="stage"),
            x=alt.X("leads:Q", title="leads"),
            tooltip=["stage:N", "leads:Q", alt.Tooltip("from_previous:Q", format=".1%")],
        )
    )
    labels = bars.mark_text(align="left", dx=4).encode(text=alt.Text("from_previous:Q", format=".1%"))
    return bars + labels  # type: ignore[return-value]


def time_to_stage_chart(summary: pl.DataFrame, title: str = "Median days to stage") -> alt.Chart:
    """Draw the median days per stage from :func:`analytics.trends.time_to_stage_summary`."""
    order = summary.get_column("stage").to_list()
    return (
        _base(summary, title)
        .mark_bar()
        .encode(
            x=alt.X("stage:N", sort=order, title="stage"),
            y=alt.Y("median_days:Q", title="median days"),
            tooltip=["stage:N", "leads:Q", "median_days:Q", "mean_days:Q"],
        )
    )


def simulation_distribution_chart(result: SimulationResult, title: str = "Score distribution before and after") -> alt.Chart:
    """Draw the before and after histograms of a simulation side by side."""
    long = result.distribution.unpivot(index=["low", "high"], variable_name="rules", value_name="leads")
    return (
        _base(long, title)
        .mark_bar(opacity=0.6)
        .encode(
            x=alt.X("low:Q", bin="binned", title="score"),
            x2="high:Q",
            y=alt.Y("leads:Q", title="leads", stack=None),
            color=alt.Color("rules:N", title="rules", sort=["before", "after"]),
            tooltip=["rules:N", "low:Q", "high:Q", "leads:Q"],
        )
    )


def save_png(chart: alt.TopLevelMixin, path: str | Path, scale: float = 1.0) -> Path:
    """Render ``chart`` to a PNG file offline with vl-convert; return the path."""
    target = Path(path)
    png = vlc.vegalite_to_png(chart.to_json(), scale=scale)
    target.write_bytes(png)
    return target
