"""Limits and bad input: clear 4xx answers in the error shape, never a 5xx."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from scorestream.services import Services, free_port
from tests.conftest import Api, service_env, start_process, stop_process, wait_ready

LIMITS = {
    "SCORESTREAM_MAX_BODY_BYTES": "65536",
    "SCORESTREAM_MAX_WEBHOOK_BYTES": "8192",
    "SCORESTREAM_MAX_WEBHOOK_EVENTS": "5",
    "SCORESTREAM_MAX_UPLOAD_ROWS": "10",
}
MOMENT = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()


@pytest.fixture(scope="module")
def small(services: Services, logs_dir: Path, worker: object) -> Iterator[Api]:
    """A web process with small limits, so that the tests stay small."""
    port = free_port()
    log = logs_dir / "small-limits-web.log"
    process = start_process(["web", "--port", str(port)], service_env(services, **LIMITS), log)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process, log)
        client = Api(f"http://127.0.0.1:{port}")
        yield client
        client.close()
    finally:
        stop_process(process)


def event(**fields: Any) -> dict[str, Any]:
    return {"lead_id": "limits-lead", "type": "page_view", "occurred_at": MOMENT, **fields}


def assert_error(response, status: int, code: str | None = None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if code is not None:
        assert error["code"] == code
    return error


JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}
NDJSON = {"Content-Type": "application/x-ndjson"}


def test_body_over_limit_gets_413(small: Api) -> None:
    response = small.post("/api/events/batch", data=b"x" * 70_000, headers=CSV)
    error = assert_error(response, 413)
    assert "65536" in error["message"]


def test_webhook_body_over_limit_gets_413(small: Api) -> None:
    # A new connection: the session's pooled one may be the one the server
    # closed after the previous test's oversized body.
    response = requests.post(
        f"{small.base_url}/api/events/webhook", data=b"[" + b" " * 9000 + b"]", headers=JSON, timeout=30
    )
    assert_error(response, 413, "too_large")


def test_webhook_events_over_limit_gets_413(small: Api) -> None:
    response = small.post("/api/events/webhook", json=[event()] * 6)
    error = assert_error(response, 413, "too_many_events")
    assert "limit is 5" in error["message"]


def test_upload_rows_over_limit_gets_413(small: Api) -> None:
    rows = "\n".join(f"r{n},limits-lead,page_view,{MOMENT}" for n in range(11))
    response = small.post("/api/events/batch", data="event_id,lead_id,type,occurred_at\n" + rows, headers=CSV)
    error = assert_error(response, 413, "too_many_rows")
    assert "limit is 10" in error["message"]


@pytest.mark.parametrize(
    "fields, words",
    [
        pytest.param({"event_id": "e" * 129}, "event_id is 129", id="long-event-id"),
        pytest.param({"lead_id": "l" * 257}, "lead_id is 257", id="long-lead-id"),
        pytest.param({"type": "t" * 65}, "type", id="long-type"),
        pytest.param({"name": "n" * 257}, "name is 257", id="long-name"),
        pytest.param({"properties": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}, "nested deeper", id="deep-properties"),
        pytest.param({"properties": {"big": 2**64}}, "64-bit", id="huge-integer"),
        pytest.param({"properties": {"$where": 1}}, "property name", id="dollar-key"),
        pytest.param({"properties": {"a\u0000b": 1}}, "property name", id="nul-key"),
        pytest.param({"properties": {"blob": "x" * 17000}}, "16384", id="large-properties"),
        pytest.param({"occurred_at": 10**30}, "out of range", id="huge-epoch"),
        pytest.param({"occurred_at": "2026-01-01T00:00:00"}, "offset", id="no-offset"),
        pytest.param({"occurred_at": True}, "occurred_at", id="boolean-time"),
        pytest.param({"surprise": 1}, "allowed fields", id="unknown-field"),
        pytest.param({"lead_id": None, "email": None}, "neither", id="no-lead"),
    ],
)
def test_invalid_event_gets_400_naming_field(api: Api, fields: dict[str, Any], words: str) -> None:
    response = api.post("/api/events/manual", json=event(**fields))
    error = assert_error(response, 400, "invalid")
    assert words in error["message"]


@pytest.mark.parametrize(
    "path, body, headers, status",
    [
        pytest.param("/api/events/manual", b"", JSON, 400, id="empty-body"),
        pytest.param("/api/events/manual", b"\xff\xfe\x00", JSON, 400, id="invalid-utf8"),
        pytest.param("/api/events/manual", b'{"type": NaN}', JSON, 400, id="nan"),
        pytest.param("/api/events/manual", b'{"a": 1e999}', JSON, 400, id="huge-float"),
        pytest.param("/api/events/manual", b"[" * 5000 + b"]" * 5000, JSON, 400, id="deep-json"),
        pytest.param("/api/events/manual", b'{"type": "x"', JSON, 400, id="truncated-json"),
        pytest.param("/api/events/manual", b"[1, 2]", JSON, 400, id="array-to-manual"),
        pytest.param("/api/events/manual", b"{}", {"Content-Type": "text/plain"}, 415, id="text-plain"),
        pytest.param("/api/events/webhook", b"[1, \"x\", null]", JSON, 422, id="non-object-items"),
        pytest.param("/api/events/webhook", b"[]", JSON, 400, id="empty-array"),
        pytest.param("/api/events/webhook", b'{"a":' * 3000 + b"1" + b"}" * 3000, JSON, 400, id="deep-webhook"),
        pytest.param("/api/events/batch", b"", CSV, 400, id="empty-csv"),
        pytest.param("/api/events/batch", b"a,b\n1,2\n", CSV, 400, id="csv-without-columns"),
        pytest.param("/api/events/batch", b"type,occurred_at,lead_id\n\xff,1,x\n", CSV, 400, id="csv-not-utf8"),
        pytest.param("/api/events/batch", b"type,occurred_at,lead_id\nx,\x00,y\n", CSV, 422, id="csv-nul"),
        pytest.param("/api/events/batch", b'{"not": "an array"', JSON, 400, id="broken-json-upload"),
        pytest.param("/api/events/batch", b"42", JSON, 400, id="number-upload"),
        pytest.param("/api/events/batch", b"[1]", JSON, 422, id="non-object-upload"),
        pytest.param("/api/events/batch", b"", NDJSON, 400, id="empty-ndjson"),
        pytest.param("/api/events/batch", b"{\n[\n", NDJSON, 422, id="broken-ndjson"),
        pytest.param("/api/events/batch", b"--x\r\n\r\n", {"Content-Type": "multipart/form-data"}, 400, id="multipart-no-boundary"),
        pytest.param(
            "/api/events/batch",
            b"--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n",
            {"Content-Type": "multipart/form-data; boundary=b"},
            400,
            id="multipart-no-file",
        ),
        pytest.param(
            "/api/events/batch",
            b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\nx\r\n--b--\r\n",
            {"Content-Type": "multipart/form-data; boundary=b"},
            415,
            id="multipart-unknown-format",
        ),
        pytest.param("/api/events/batch", b"<xml/>", {"Content-Type": "application/xml"}, 415, id="xml"),
        pytest.param("/api/simulations", b'{"rules": {"points": {}}, "bins": null}', JSON, 400, id="simulation-null-bins"),
    ],
)
def test_bad_input_gets_4xx_error_shape(api: Api, path: str, body: bytes, headers: dict[str, str], status: int) -> None:
    response = api.post(path, data=body, headers=headers)
    assert_error(response, status)


@pytest.mark.parametrize(
    "url",
    [
        "/api/leads?cursor=WzFlOTk5LCJ4Il0",
        "/api/leads?cursor=%%%",
        "/api/leads?limit=%C2%B2",
        "/api/leads?min_score=99999999999999999999",
        "/api/leads/leaderboard?limit=0",
        "/api/utils/export/events?start=%C2%B2",
        "/api/utils/export/leads?min_score=1e9",
        "/api/utils/export/leads?format=parquet&min_score=191662576394305208320",
        "/api/events/batch/does-not-exist",
    ],
)
def test_bad_query_gets_4xx(api: Api, url: str) -> None:
    response = api.get(url)
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)


@pytest.mark.parametrize("name", ["a\u0000b", "$set"])
def test_rules_with_unstorable_name_get_400(api: Api, name: str) -> None:
    response = api.put("/api/scoring-rules", json={"points": {name: 1}})
    assert_error(response, 400, "invalid")


def test_mixed_batch_keeps_good_rows(api: Api, unique) -> None:
    good = event(event_id=unique("good"), lead_id=unique("mixed"))
    body = [good, {"type": "x"}, 7, event(properties={"big": 2**70})]
    response = api.post("/api/events/webhook", json=body)
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert [item["status"] for item in results] == ["accepted", "rejected", "rejected", "rejected"]
    assert all(item["error"] for item in results[1:])
