"""The dashboard in a real browser, against the web app, a worker and demo data."""

from __future__ import annotations

import io
import time
import uuid
from datetime import datetime, timedelta, timezone

import polars as pl
import requests

from tests.dashboards.conftest import Page


def row_text(page: Page, lead_id: str) -> str:
    """Return the text of the leaderboard row of ``lead_id``, or '' when it is not shown."""
    rows = page.page.locator(".tabulator-row", has_text=lead_id)
    return rows.first.inner_text() if rows.count() else ""


def test_leaderboard_renders_demo_rows(page: Page, web: str, demo_leads: list[str]) -> None:
    top = requests.get(f"{web}/api/leads/leaderboard?limit=1", timeout=30).json()["leads"][0]
    text = page.page.locator(".tabulator").first.inner_text()
    assert top["lead_id"] in text
    assert str(top["score"]) in row_text(page, top["lead_id"])
    assert page.page.get_by_text("leads", exact=False).first.is_visible()
    page.screenshot("dashboard-leaderboard.png")


def test_posted_event_updates_leaderboard(page: Page, web: str) -> None:
    lead_id = f"dash-{uuid.uuid4().hex[:8]}"
    event = {
        "event_id": f"{lead_id}-1",
        "lead_id": lead_id,
        "type": "purchase",
        "occurred_at": (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(),
    }
    posted = time.monotonic()
    response = requests.post(f"{web}/api/events/manual?wait=1", json=event, timeout=60)
    assert response.status_code == 200, response.text
    score = response.json()["lead"]["score"]

    page.page.locator(".tabulator-row", has_text=lead_id).first.wait_for(timeout=10_000)
    shown = time.monotonic() - posted
    assert str(score) in row_text(page, lead_id)
    # The update travels worker -> Redis stream -> /ws -> dashboard -> browser.
    assert shown < 3.0, f"the new score took {shown:.2f} s to appear"
    page.screenshot("dashboard-live-update.png")


def test_what_if_shows_impact_table(page: Page) -> None:
    page.open_tab("Rule editor")
    page.page.get_by_text("Run what-if").wait_for(timeout=20_000)
    page.page.locator("select", has=page.page.locator("option", has_text="purchase")).select_option("purchase")
    page.page.get_by_role("button", name="Run what-if").click()
    page.page.get_by_text("What-if done").wait_for(timeout=60_000)
    assert page.page.get_by_text("What-if against live version").count() == 1
    impact = page.page.locator(".tabulator", has_text="before").first
    assert "after" in impact.inner_text()
    backtest = page.page.locator(".tabulator", has_text="precision").first
    assert "candidate" in backtest.inner_text()
    page.screenshot("dashboard-rule-editor.png")


def test_export_button_downloads_csv(page: Page, demo_leads: list[str]) -> None:
    page.open_tab("Export")
    button = page.page.get_by_role("button", name="Leads CSV")
    button.wait_for(timeout=20_000)
    with page.page.expect_download(timeout=60_000) as download:
        button.click()
    frame = pl.read_csv(io.BytesIO(open(download.value.path(), "rb").read()))
    assert download.value.suggested_filename.endswith(".csv")
    assert {"lead_id", "score", "stage"} <= set(frame.columns)
    assert set(demo_leads) <= set(frame.get_column("lead_id").to_list())
    page.screenshot("dashboard-export.png")


def test_export_button_downloads_parquet(page: Page, demo_leads: list[str]) -> None:
    page.open_tab("Export")
    button = page.page.get_by_role("button", name="Events Parquet")
    button.wait_for(timeout=20_000)
    with page.page.expect_download(timeout=60_000) as download:
        button.click()
    frame = pl.read_parquet(download.value.path())
    assert {"event_id", "lead_id", "type", "occurred_at"} <= set(frame.columns)
    assert set(demo_leads) <= set(frame.get_column("lead_id").to_list())


def test_trends_and_audit_render(page: Page, demo_leads: list[str]) -> None:
    page.open_tab("Trends")
    page.page.get_by_text("Loaded in").wait_for(timeout=60_000)
    page.page.locator(".vega-embed").first.wait_for(timeout=20_000)
    page.page.wait_for_timeout(500)
    page.screenshot("dashboard-trends.png")

    page.open_tab("Lead audit")
    field = page.page.get_by_role("textbox").first
    field.fill(demo_leads[0])
    field.press("Enter")
    page.page.get_by_text("Replay check passed").wait_for(timeout=30_000)
    page.page.wait_for_timeout(500)
    page.screenshot("dashboard-audit.png")


def test_no_request_leaves_loopback(page: Page) -> None:
    for tab in ("Trends", "Lead audit", "Rule editor", "Export", "Leaderboard"):
        page.open_tab(tab)
        page.page.wait_for_timeout(1500)
    assert page.requests, "the route handler saw no request at all"
    assert page.external == []
