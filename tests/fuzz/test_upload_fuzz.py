"""Hypothesis-generated CSV, JSON and NDJSON uploads: no 5xx, no valid row lost."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scorestream.runtime import Runtime
from tests.fuzz.conftest import LONG

NOW = datetime.now(timezone.utc)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
VALID_EVENT = st.fixed_dictionaries(
    {
        "lead_id": st.from_regex(r"[A-Za-z0-9_.@-]{1,40}", fullmatch=True),
        "type": st.from_regex(r"[A-Za-z0-9_.:-]{1,20}", fullmatch=True),
        "occurred_at": st.integers(0, 10**6).map(lambda seconds: (NOW - timedelta(seconds=seconds + 60)).isoformat()),
        "plan": st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    }
)
JUNK = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(TEXT, st.one_of(TEXT, st.integers(-(2**70), 2**70), st.none()), max_size=4),
)
ROWS = st.lists(st.one_of(VALID_EVENT.map(lambda event: ("valid", event)), JUNK.map(lambda junk: ("junk", junk))), max_size=25)
CASES = 2500 if LONG else 40


def _as_json(tag: str, item: Any) -> Any:
    if tag != "valid":
        return item
    # CSV turns extra columns into properties; JSON senders nest them.
    event = {key: value for key, value in item.items() if key != "plan"}
    return dict(event, properties={"plan": item["plan"]})


def _body(kind: str, rows: list[tuple[str, Any]]) -> tuple[bytes, str]:
    if kind == "json":
        return json.dumps([_as_json(tag, item) for tag, item in rows]).encode(), "application/json"
    if kind == "ndjson":
        return "\n".join(json.dumps(_as_json(tag, item)) for tag, item in rows).encode(), "application/x-ndjson"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["event_id", "lead_id", "type", "occurred_at", "plan"])
    for _, item in rows:
        if isinstance(item, dict) and {"event_id", "lead_id", "type", "occurred_at", "plan"} <= set(item):
            writer.writerow([item["event_id"], item["lead_id"], item["type"], item["occurred_at"], item["plan"]])
        else:
            writer.writerow([json.dumps(item)])
    return out.getvalue().encode(), "text/csv"


@given(kind=st.sampled_from(["csv", "json", "ndjson"]), rows=ROWS)
@settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=not LONG, database=None)
def _upload_case(base_url: str, runtime: Runtime, kind: str, rows: list[tuple[str, Any]]) -> None:
    for _, item in rows:
        if isinstance(item, dict) and "plan" in item:
            item["event_id"] = f"fz-{uuid.uuid4().hex}"
    body, content_type = _body(kind, rows)
    response = requests.post(f"{base_url}/api/events/batch", data=body, headers={"Content-Type": content_type}, timeout=60)
    assert response.status_code < 500, response.text
    valid_ids = [item["event_id"] for tag, item in rows if tag == "valid"]
    if not valid_ids:
        return
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(valid_ids)
    stored = {doc["event_id"] for doc in runtime.store.events.find({"event_id": {"$in": valid_ids}}, {"event_id": 1})}
    assert stored == set(valid_ids), "a valid row was not stored"


def test_upload_fuzz_keeps_valid_rows(fuzz_web: str, fuzz_runtime: Runtime) -> None:
    _upload_case(fuzz_web, fuzz_runtime)
