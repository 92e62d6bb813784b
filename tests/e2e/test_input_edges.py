"""Edge cases of input that a first user found: each gets a clear 4xx."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import websocket

from tests.conftest import Api
from tests.e2e.test_ingest_to_ws import BASE_RULES


def recent() -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()


def test_control_character_in_lead_id_rejected(api: Api, unique) -> None:
    event = {"event_id": unique("nul"), "lead_id": "a\u0000b", "type": "page_view", "occurred_at": recent()}
    response = api.post("/api/events/manual?wait=1", json=event)
    assert response.status_code == 400
    assert "control character" in response.json()["error"]["message"]


def test_huge_within_days_rejected(api: Api) -> None:
    body = {"rules": BASE_RULES, "outcome": "purchase", "within_days": 1_000_000_000_000}
    response = api.post("/api/simulations", json=body)
    assert response.status_code == 400
    assert "within_days" in response.json()["error"]["message"]


def test_empty_rule_set_not_published(api: Api) -> None:
    before = api.get("/api/scoring-rules").json()
    response = api.put("/api/scoring-rules", json={})
    assert response.status_code == 400
    assert "points" in response.json()["error"]["message"]
    assert api.get("/api/scoring-rules").json() == before


def test_future_since_gets_resync(api: Api) -> None:
    url = api.base_url.replace("http", "ws") + "/ws?since=999999999999"
    socket = websocket.create_connection(url, timeout=10)
    try:
        assert json.loads(socket.recv())["type"] == "hello"
        resync = json.loads(socket.recv())
        assert resync["type"] == "resync"
        assert resync["seq"] < 999999999999
    finally:
        socket.close()


def test_csv_export_has_one_charset(api: Api) -> None:
    response = api.get("/api/utils/export/leads?format=csv&lead_ids=nobody")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"


def test_export_rejects_unknown_filter(api: Api) -> None:
    response = api.get("/api/utils/export/leads?lead_id=typo")
    assert response.status_code == 400
    assert "lead_id" in response.json()["error"]["message"]
    assert "lead_ids" in response.json()["error"]["message"]


def test_history_export_filters_by_cause(api: Api) -> None:
    response = api.get("/api/utils/export/history?causes=decay&lead_ids=nobody")
    assert response.status_code == 200
