"""End to end through HTTP, Huey, MongoDB and /ws against real servers."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import websocket

from tests.conftest import Api, wait_until

BASE_RULES = {
    "points": {"purchase": 100, "page_view": 1, "unsubscribe": -50, "form_submit": 25},
    "cap": 1000,
    "floor": 0,
    "decay": {"after": "7d", "every": "1d", "points": 5},
    "stages": {"mql": 100, "sql": 400},
}


def iso(moment: datetime) -> str:
    return moment.isoformat()


def recent(minutes: int = 0) -> str:
    return iso(datetime.now(timezone.utc) - timedelta(minutes=60 - minutes))


@pytest.fixture
def rules(api: Api) -> dict[str, Any]:
    """Publish the rule set these tests assume."""
    response = api.put("/api/scoring-rules", json=BASE_RULES)
    assert response.status_code == 200, response.text
    return response.json()["rules"]


def lead_score(api: Api, lead_id: str) -> int | None:
    response = api.get(f"/api/leads/{lead_id}")
    return response.json()["score"] if response.status_code == 200 else None


class WsListener:
    """Collect /ws messages in a background thread."""

    def __init__(self, url: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self.socket = websocket.create_connection(url, timeout=30)
        hello = json.loads(self.socket.recv())
        assert hello["type"] == "hello"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                self.messages.append(json.loads(self.socket.recv()))
        except Exception:
            return

    def close(self) -> None:
        self.socket.close()


def test_posted_event_reaches_ws_and_leaderboard(api: Api, rules: dict[str, Any], unique) -> None:
    lead_id = unique("ws-lead")
    listener = WsListener(api.base_url.replace("http", "ws") + "/ws")
    try:
        body = {"event_id": unique("e1"), "lead_id": lead_id, "type": "purchase", "occurred_at": recent()}
        assert api.post("/api/events/manual", json=body).status_code == 202
        for extra in range(9):
            event = dict(body, event_id=unique(f"e-more-{extra}"), occurred_at=recent(extra + 1))
            assert api.post("/api/events/manual", json=event).status_code == 202

        def updated() -> list[dict[str, Any]]:
            return [m for m in listener.messages if m["type"] == "score.updated" and m["lead_id"] == lead_id]

        wait_until(lambda: sum(m["delta"] for m in updated()) == 1000, message="score.updated messages summing to 1000")
        seqs = [m["seq"] for m in listener.messages]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
    finally:
        listener.close()

    board = api.get("/api/leads/leaderboard?limit=100").json()["leads"]
    assert any(lead["lead_id"] == lead_id and lead["score"] == 1000 for lead in board)


@pytest.mark.parametrize("endpoint", ["manual", "webhook", "batch"])
def test_duplicate_event_counts_once(api: Api, rules: dict[str, Any], unique, endpoint: str) -> None:
    lead_id = unique(f"dup-{endpoint}")
    event = {"event_id": unique("same"), "lead_id": lead_id, "type": "purchase", "occurred_at": recent()}
    for attempt in range(2):
        if endpoint == "manual":
            response = api.post("/api/events/manual", json=event)
        elif endpoint == "webhook":
            response = api.post("/api/events/webhook", json=[event])
        else:
            csv_body = "event_id,lead_id,type,occurred_at\n" + ",".join(
                [event["event_id"], lead_id, "purchase", event["occurred_at"]]
            ) + "\n"
            response = api.post("/api/events/batch", data=csv_body, headers={"Content-Type": "text/csv"})
        assert response.status_code == 202, response.text
    wait_until(lambda: lead_score(api, lead_id) == 100, message="first purchase scored")
    history = api.get(f"/api/leads/{lead_id}/history").json()
    assert len(history["events"]) == 1
    assert [row["points"] for row in history["changes"]] == [100]
    assert history["lead"]["event_count"] == 1


def test_duplicate_reported_by_wait(api: Api, rules: dict[str, Any], unique) -> None:
    event = {"event_id": unique("w"), "lead_id": unique("wait"), "type": "purchase", "occurred_at": recent()}
    first = api.post("/api/events/manual?wait=1", json=event)
    assert first.status_code == 200
    assert first.json()["status"] == "accepted"
    assert first.json()["lead"]["score"] == 100
    again = api.post("/api/events/manual?wait=1", json=event)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["lead"]["score"] == 100


def test_eleven_purchases_hit_cap(api: Api, rules: dict[str, Any], unique) -> None:
    lead_id = unique("cap")
    rows = ["event_id,lead_id,type,occurred_at"]
    for number in range(11):
        rows.append(f"{unique(f'p{number:02d}')},{lead_id},purchase,{recent(number)}")
    response = api.post("/api/events/batch", data="\n".join(rows) + "\n", headers={"Content-Type": "text/csv"})
    assert response.status_code == 202
    assert response.json()["accepted"] == 11
    wait_until(lambda: lead_score(api, lead_id) == 1000, message="score at cap")
    changes = api.get(f"/api/leads/{lead_id}/history").json()["changes"]
    assert len(changes) == 11
    assert [row["points"] for row in changes[:10]] == [100] * 10
    assert changes[10]["points"] == 0
    assert changes[10]["rule_points"] == 100
    assert changes[10]["score_before"] == changes[10]["score_after"] == 1000


def test_negative_rule_stops_at_floor(api: Api, rules: dict[str, Any], unique) -> None:
    lead_id = unique("floor")
    events = [
        {"event_id": unique("f1"), "lead_id": lead_id, "type": "form_submit", "occurred_at": recent(0)},
        {"event_id": unique("f2"), "lead_id": lead_id, "type": "unsubscribe", "occurred_at": recent(1)},
    ]
    assert api.post("/api/events/webhook", json=events).status_code == 202
    wait_until(lambda: lead_score(api, lead_id) == 0, message="score at floor")
    changes = api.get(f"/api/leads/{lead_id}/history").json()["changes"]
    assert [row["points"] for row in changes] == [25, -25]
    assert changes[1]["rule_points"] == -50


def test_csv_with_bad_rows_keeps_good_ones(api: Api, rules: dict[str, Any], unique) -> None:
    lead_id = unique("csv")
    lines = [
        "event_id,lead_id,type,occurred_at,plan",
        f"{unique('c1')},{lead_id},page_view,{recent(0)},basic",
        f"{unique('c2')},{lead_id},page_view,2026-01-01T00:00:00,basic",
        f"{unique('c3')},{lead_id},page_view,{recent(2)}",
        f"{unique('c4')},{lead_id},page_view,{recent(3)},pro",
        f"{unique('c5')},,page_view,{recent(4)},pro",
    ]
    response = api.post(
        "/api/events/batch",
        files={"file": ("events.csv", "\n".join(lines) + "\n", "text/csv")},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 2
    assert body["rejected"] == 3
    rejected = {row["line"]: row["error"] for row in body["rejected_rows"]}
    assert set(rejected) == {3, 4, 6}
    assert "offset" in rejected[3]
    assert "cells" in rejected[4]
    assert "lead_id" in rejected[6]
    wait_until(lambda: lead_score(api, lead_id) == 2, message="good rows scored")
    progress = api.get(body["progress_url"]).json()
    assert progress["done"] is True
    assert progress["scored"] == 2


def test_oversized_webhook_gets_413(api: Api) -> None:
    body = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    response = api.post("/api/events/webhook", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_too_many_webhook_events_gets_413(api: Api, unique) -> None:
    events = [{"lead_id": "x", "type": "page_view", "occurred_at": recent()}] * 2001
    response = api.post("/api/events/webhook", json=events)
    assert response.status_code == 413
    assert "2000" in response.json()["error"]["message"]


def test_wrong_media_type_gets_415(api: Api) -> None:
    response = api.post("/api/events/batch", data=b"<xml/>", headers={"Content-Type": "application/xml"})
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "text/csv" in error["message"]
    manual = api.post("/api/events/manual", data="type=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert manual.status_code == 415


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"points": {"purchase": 1.5}}, id="fractional-points"),
        pytest.param({"points": {"purchase": "100"}}, id="string-points"),
        pytest.param({"points": {"purchase": 100}, "bonus": 1}, id="unknown-field"),
        pytest.param({"points": {"purchase": 100}, "decay": {"after": "7 days"}}, id="bad-duration"),
        pytest.param({"points": {"purchase": 100}, "floor": 10, "cap": 5}, id="floor-above-cap"),
    ],
)
def test_invalid_rules_rejected_live_unchanged(api: Api, rules: dict[str, Any], payload: dict[str, Any]) -> None:
    before = api.get("/api/scoring-rules").json()
    response = api.put("/api/scoring-rules", json=payload)
    assert response.status_code == 400
    assert response.json()["error"]["details"]
    assert api.get("/api/scoring-rules").json() == before


def test_rule_versions_are_kept(api: Api, rules: dict[str, Any]) -> None:
    versions = api.get("/api/scoring-rules/versions").json()["versions"]
    assert versions[0]["version"] == rules["version"]
    assert [v["version"] for v in versions] == sorted((v["version"] for v in versions), reverse=True)


def test_lead_list_paginates_with_cursor(api: Api, rules: dict[str, Any], unique) -> None:
    seen: list[str] = []
    url = "/api/leads?limit=3"
    for _ in range(4):
        page = api.get(url).json()
        seen.extend(lead["lead_id"] for lead in page["leads"])
        if not page["next"]:
            break
        url = f"/api/leads?limit=3&cursor={page['next']}"
    assert len(seen) == len(set(seen))
    everything = api.get("/api/leads?limit=500").json()["leads"]
    assert seen == [lead["lead_id"] for lead in everything][: len(seen)]


def test_health_and_readiness(api: Api) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz").json()
    assert ready["checks"] == {"mongodb": "ok", "redis": "ok"}
