"""Export and simulation endpoints against the running app."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import polars as pl

from tests.conftest import Api, wait_until
from tests.e2e.test_ingest_to_ws import BASE_RULES, lead_score


def test_leads_export_is_safe_csv(api: Api, unique) -> None:
    assert api.put("/api/scoring-rules", json=BASE_RULES).status_code == 200
    lead_id = unique("=HYPERLINK(1)")
    moment = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    event = {"event_id": unique("x"), "lead_id": lead_id, "type": "purchase", "occurred_at": moment, "name": "@evil"}
    assert api.post("/api/events/manual?wait=1", json=event).status_code == 200
    response = api.get(f"/api/utils/export/leads?format=csv&lead_ids={lead_id}&tz=Europe/Paris")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    assert rows[0]["lead_id"] == "'" + lead_id
    assert rows[0]["name"] == "'@evil"
    assert rows[0]["score"] == "100"
    assert rows[0]["last_activity_at"].endswith(("+01:00", "+02:00"))


def test_events_export_parquet_reads_back(api: Api, unique) -> None:
    assert api.put("/api/scoring-rules", json=BASE_RULES).status_code == 200
    lead_id = unique("pq")
    moment = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    event = {"event_id": unique("x"), "lead_id": lead_id, "type": "page_view", "occurred_at": moment}
    assert api.post("/api/events/manual?wait=1", json=event).status_code == 200
    response = api.get(f"/api/utils/export/events?format=parquet&lead_ids={lead_id}")
    assert response.status_code == 200
    frame = pl.read_parquet(io.BytesIO(response.content))
    assert frame["lead_id"].to_list() == [lead_id]
    assert frame["type"].to_list() == ["page_view"]


def test_export_rejects_bad_timezone(api: Api) -> None:
    response = api.get("/api/utils/export/leads?tz=Mars/Olympus")
    assert response.status_code == 400
    assert "Mars/Olympus" in response.json()["error"]["message"]


def test_simulation_of_live_rules_changes_nothing(api: Api, unique) -> None:
    assert api.put("/api/scoring-rules?rescore=1", json=BASE_RULES).status_code == 200
    lead_id = unique("sim")
    moment = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    event = {"event_id": unique("x"), "lead_id": lead_id, "type": "purchase", "occurred_at": moment}
    assert api.post("/api/events/manual?wait=1", json=event).status_code == 200
    wait_until(lambda: lead_score(api, lead_id) == 100)
    response = api.post("/api/simulations", json={"rules": BASE_RULES, "top": 5, "include_leads": True})
    assert response.status_code == 200, response.text
    same = response.json()
    ours = [lead for lead in same["leads"] if lead["lead_id"] == lead_id]
    assert ours[0]["old_score"] == ours[0]["new_score"] == 100
    doubled = dict(BASE_RULES, points={**BASE_RULES["points"], "purchase": 200})
    changed = api.post("/api/simulations", json={"rules": doubled, "include_leads": True}).json()
    ours = [lead for lead in changed["leads"] if lead["lead_id"] == lead_id]
    assert ours[0]["new_score"] == 200
    assert changed["summary"]["scores_changed"] >= 1


def test_simulation_rejects_invalid_rules(api: Api) -> None:
    response = api.post("/api/simulations", json={"rules": {"points": {"purchase": "lots"}}})
    assert response.status_code == 422
    assert response.json()["error"]["details"]
