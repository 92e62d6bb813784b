"""Chart builders produce Vega-Lite that renders to PNG offline."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from analytics.charts import (
    distribution_chart,
    events_per_type_chart,
    funnel_chart,
    save_png,
    score_over_time_chart,
)
from analytics.trends import events_per_type, score_distribution, score_over_time, stage_funnel
from scoring.rules import RuleSet

DAY = datetime(2024, 1, 1, tzinfo=timezone.utc)
HISTORY = pl.DataFrame(
    {
        "lead_id": ["a", "a", "b"],
        "seq": [0, 1, 0],
        "at": [DAY, DAY + timedelta(days=2), DAY + timedelta(days=1)],
        "score_after": [60, 120, 20],
        "stage_after": ["mql", "sql", None],
    }
)


def test_charts_render_png(tmp_path) -> None:
    rules = RuleSet(points={"x": 1}, stages={"mql": 50, "sql": 100})
    charts = {
        "scores": score_over_time_chart(score_over_time(HISTORY)),
        "distribution": distribution_chart(score_distribution(pl.DataFrame({"score": [0, 60, 120]}), 3)),
        "events": events_per_type_chart(
            events_per_type(pl.DataFrame({"type": ["a", "b"], "occurred_at": [DAY, DAY]}))
        ),
        "funnel": funnel_chart(stage_funnel(HISTORY, rules)),
    }
    for name, chart in charts.items():
        path = save_png(chart, tmp_path / f"{name}.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert path.stat().st_size > 1000, name
