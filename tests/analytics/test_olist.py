"""The Olist marketing-funnel loader on the real files, when they are present."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from analytics.fold import fold_frame
from analytics.olist import load_olist, olist_event_payloads
from analytics.simulate import backtest
from scoring.rules import RuleSet

from conftest import ROOT

FOLDER_NAME = "olist_marketing_funnel"


def olist_folder() -> Path | None:
    """Find the Olist CSV folder: SCORESTREAM_OLIST_DIR, else datasets beside the repository."""
    candidates = [Path(os.environ["SCORESTREAM_OLIST_DIR"])] if os.environ.get("SCORESTREAM_OLIST_DIR") else []
    candidates.append(ROOT.parent / "shared" / "datasets" / FOLDER_NAME)
    for folder in candidates:
        if (folder / "olist_marketing_qualified_leads_dataset.csv").is_file():
            return folder
    return None


FOLDER = olist_folder()
needs_olist = pytest.mark.skipif(
    FOLDER is None,
    reason="Olist marketing-funnel CSVs not found; set SCORESTREAM_OLIST_DIR to their folder "
    "(the data is CC BY-NC-SA and not shipped with ScoreStream)",
)


@needs_olist
def test_olist_events_counts() -> None:
    events = load_olist(FOLDER)  # type: ignore[arg-type]

    counts = dict(events.group_by("type").len().iter_rows())
    assert counts == {"form_submit": 8000, "deal_won": 842}
    assert events.get_column("lead_id").n_unique() == 8000
    assert events.select(pl.col("event_id").n_unique()).item() == events.height
    assert events.schema["occurred_at"] == pl.Datetime("ms", "UTC")
    origins = events.filter(pl.col("type") == "form_submit").get_column("properties").struct.field("origin")
    assert origins.value_counts().filter(pl.col("origin") == "organic_search").get_column("count").item() == 2296


@needs_olist
def test_olist_payloads_drop_nulls() -> None:
    payloads = olist_event_payloads(FOLDER)  # type: ignore[arg-type]

    won = next(payload for payload in payloads if payload["type"] == "deal_won")
    assert won["properties"]
    assert set(won["properties"]) <= {"business_segment", "lead_type"}
    assert won["occurred_at"].endswith("+00:00")


@needs_olist
def test_olist_backtest_runs() -> None:
    events = load_olist(FOLDER).with_columns(pl.lit(1, pl.Int64).alias("rules_version"))  # type: ignore[arg-type]
    rules = RuleSet(version=1, points={"form_submit": 25}, stages={"mql": 25})

    (entry,) = backtest(events, {"candidate": rules}, "deal_won", None, "mql", events.get_column("occurred_at").max())

    # Every lead submits a form, so every lead is flagged unless its deal
    # predates the form, and every deal after a form is a hit.
    wide = events.pivot(on="type", index="lead_id", values="occurred_at")
    early = wide.filter(pl.col("deal_won") < pl.col("form_submit")).height
    assert entry["flagged"] == 8000 - early
    assert entry["outcomes"] == 842
    assert entry["hits"] == 842 - early
    assert entry["lift"] == pytest.approx(1.0, abs=0.01)
    assert fold_frame(events, rules, events.get_column("occurred_at").max()).leads.height == 8000


def test_olist_missing_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="olist_marketing_qualified_leads_dataset.csv"):
        load_olist(tmp_path)
