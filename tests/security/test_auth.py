"""API keys for writes and read tokens for /ws, against a web process with keys set."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import websocket
from flask import Flask, request

from ingest.auth import KeyRing, require_write_access
from ingest.errors import ApiError
from tests.conftest import Api
from tests.security.conftest import API_KEYS, READ_TOKEN, KeyedWeb


def _event(unique, name: str) -> dict[str, object]:
    moment = (datetime.now(timezone.utc) - timedelta(minutes=30)).isoformat()
    return {"event_id": unique(name), "lead_id": unique(f"{name}-lead"), "type": "page_view", "occurred_at": moment}


def _assert_error(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert "details" in error


@pytest.mark.parametrize("path", ["/api/events/manual", "/api/events/batch", "/api/scoring-rules"])
def test_write_without_key_gets_401(keyed_web: KeyedWeb, path: str) -> None:
    client = keyed_web.client()
    method = client.put if path == "/api/scoring-rules" else client.post
    response = method(path, json={})
    _assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_write_with_wrong_key_gets_403(keyed_web: KeyedWeb, unique) -> None:
    client = keyed_web.client()
    headers = {"Authorization": "Bearer sk-not-a-real-key"}
    response = client.post("/api/events/manual", json=_event(unique, "wrong"), headers=headers)
    _assert_error(response, 403, "forbidden")


@pytest.mark.parametrize("key", API_KEYS, ids=["first-key", "second-key"])
def test_write_with_each_key_accepted(keyed_web: KeyedWeb, unique, key: str) -> None:
    client = keyed_web.client()
    response = client.post("/api/events/manual", json=_event(unique, "ok"), headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"


def test_reads_need_no_key(keyed_web: KeyedWeb) -> None:
    assert keyed_web.client().get("/api/leads/leaderboard").status_code == 200


def test_ws_without_token_gets_401_before_upgrade(keyed_web: KeyedWeb) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as raised:
        websocket.create_connection(keyed_web.ws_url, timeout=10)
    assert raised.value.status_code == 401
    assert json.loads(raised.value.resp_body)["error"]["code"] == "unauthorized"


def test_ws_with_wrong_token_gets_401(keyed_web: KeyedWeb) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as raised:
        websocket.create_connection(f"{keyed_web.ws_url}?token=wrong", timeout=10)
    assert raised.value.status_code == 401


@pytest.mark.parametrize("how", ["query", "bearer", "api-key"])
def test_ws_with_token_gets_hello(keyed_web: KeyedWeb, how: str) -> None:
    url, header = keyed_web.ws_url, []
    if how == "query":
        url += f"?token={READ_TOKEN}"
    elif how == "bearer":
        header = [f"Authorization: Bearer {READ_TOKEN}"]
    else:
        header = [f"Authorization: Bearer {API_KEYS[0]}"]
    connection = websocket.create_connection(url, header=header, timeout=10)
    try:
        assert json.loads(connection.recv())["type"] == "hello"
    finally:
        connection.close()


def test_ws_plain_http_gets_400(keyed_web: KeyedWeb) -> None:
    response = keyed_web.client().get(f"/ws?token={READ_TOKEN}")
    _assert_error(response, 400, "websocket_required")


def test_ws_bad_since_gets_400(keyed_web: KeyedWeb) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as raised:
        websocket.create_connection(f"{keyed_web.ws_url}?token={READ_TOKEN}&since=%C2%B2", timeout=10)
    assert raised.value.status_code == 400


@pytest.mark.parametrize("address, allowed", [("127.0.0.1", True), ("::1", True), ("10.1.2.3", False), ("", False)])
def test_demo_mode_allows_loopback_only(address: str, allowed: bool) -> None:
    app = Flask("demo-mode-check")
    with app.test_request_context("/api/events/manual", method="POST", environ_base={"REMOTE_ADDR": address}):
        if allowed:
            require_write_access(request, KeyRing([]))
        else:
            with pytest.raises(ApiError) as raised:
                require_write_access(request, KeyRing([]))
            assert raised.value.status == 403


def test_demo_mode_warns_at_start(api: Api, logs_dir: Path) -> None:
    assert "local demo mode" in (logs_dir / "web.log").read_text()


def test_key_ring_compares_digests() -> None:
    ring = KeyRing(API_KEYS)
    assert ring.matches(API_KEYS[1])
    assert not ring.matches(API_KEYS[1] + "x")
    assert not ring.matches("")
    assert API_KEYS[0].encode() not in repr(ring.__dict__).encode()
