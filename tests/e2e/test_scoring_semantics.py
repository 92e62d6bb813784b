"""Decay, stages, conflicts and timestamps through the running service."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from ingest.validation import normalise_event
from scorestream.runtime import Runtime
from scoring import worker
from scoring.store import utcnow
from tests.conftest import Api, wait_until
from tests.e2e.conftest import WsListener
from tests.scoring.replay import assert_matches_fold

pytestmark = pytest.mark.usefixtures("history_replays_after")

RULES = {
    "points": {"purchase": 100, "demo_request": 60, "page_view": 1, "unsubscribe": -40},
    "cap": 1000,
    "floor": 0,
    "stages": {"mql": 100, "sql": 400},
    "note": "semantics tests, default decay",
}


@pytest.fixture
def rules(scoring_api: Api) -> dict[str, Any]:
    response = scoring_api.put("/api/scoring-rules", json=RULES)
    assert response.status_code == 200, response.text
    return response.json()["rules"]


def ago(**delta: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(**delta)


def post_wait(api: Api, event: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/api/events/manual?wait=1", json=event)
    assert response.status_code == 200, response.text
    return response.json()


def insert_scored_in_past(runtime: Runtime, lead_id: str, kind: str, occurred_at: datetime, version: int) -> None:
    """Store one event and score it as a worker would have an hour after it happened."""
    raw = {"event_id": f"{lead_id}-1", "lead_id": lead_id, "type": kind, "occurred_at": occurred_at.isoformat()}
    document = normalise_event(raw, utcnow(), version)
    assert runtime.store.insert_events([document])[0].status == "accepted"
    worker.score_lead(runtime.store, lead_id, now=document["occurred_at"] + timedelta(hours=1))


def stored(runtime: Runtime, lead_id: str) -> dict[str, Any]:
    lead = runtime.store.get_lead(lead_id)
    assert lead is not None
    return lead


# -- decay ---------------------------------------------------------------------


def test_ten_idle_days_lose_fifteen(scoring_api: Api, rules: dict[str, Any], runtime: Runtime) -> None:
    lead_id = f"decay-api-{uuid.uuid4().hex[:8]}"
    event = {"event_id": f"{lead_id}-1", "lead_id": lead_id, "type": "purchase", "occurred_at": ago(days=10, hours=1).isoformat()}

    body = post_wait(scoring_api, event)

    # Steps fall 8, 9 and 10 days after the activity.
    assert body["lead"]["score"] == 85
    assert scoring_api.get(f"/api/leads/{lead_id}").json()["score"] == 85
    before = stored(runtime, lead_id)
    assert before["score"] == 85
    for _ in range(2):
        worker.run_decay(runtime.store)
        after = stored(runtime, lead_id)
        assert after["score"] == 85
        assert after["revision"] == before["revision"]
    changes = scoring_api.get(f"/api/leads/{lead_id}/history").json()["changes"]
    assert [(row["cause"], row["points"]) for row in changes] == [("event", 100), ("decay", -15)]
    assert changes[1]["stage_before"] == "mql"
    assert changes[1]["stage_after"] is None


def test_decay_job_writes_due_steps(scoring_api: Api, rules: dict[str, Any], runtime: Runtime) -> None:
    lead_id = f"decay-job-{uuid.uuid4().hex[:8]}"
    occurred = ago(days=10, hours=1)
    insert_scored_in_past(runtime, lead_id, "purchase", occurred, rules["version"])
    assert stored(runtime, lead_id)["score"] == 100

    # Reads report the score as of the request, before any job ran.
    assert scoring_api.get(f"/api/leads/{lead_id}").json()["score"] == 85
    assert stored(runtime, lead_id)["score"] == 100
    worker.run_decay(runtime.store)
    first = stored(runtime, lead_id)
    worker.run_decay(runtime.store)
    second = stored(runtime, lead_id)

    assert first["score"] == 85
    assert first["stage"] is None
    assert second["revision"] == first["revision"]
    rows = runtime.store.lead_history(lead_id)
    assert [(row["cause"], row["points"], row["score_after"]) for row in rows] == [
        ("event", 100, 100),
        ("decay", -15, 85),
    ]
    assert rows[1]["at"] == occurred.replace(microsecond=occurred.microsecond // 1000 * 1000) + timedelta(days=10)
    assert scoring_api.get(f"/api/leads/{lead_id}").json()["score"] == 85
    assert_matches_fold(runtime.store, lead_id, utcnow())


def test_decay_task_through_huey(scoring_api: Api, rules: dict[str, Any], runtime: Runtime) -> None:
    lead_id = f"decay-huey-{uuid.uuid4().hex[:8]}"
    insert_scored_in_past(runtime, lead_id, "demo_request", ago(days=9, hours=2), rules["version"])
    assert stored(runtime, lead_id)["score"] == 60

    runtime.queue.decay_due()

    wait_until(lambda: stored(runtime, lead_id)["score"] == 50, timeout=30, message="decay_due ran")
    runtime.queue.decay_due()
    time.sleep(1)
    assert stored(runtime, lead_id)["score"] == 50
    assert [row["cause"] for row in runtime.store.lead_history(lead_id)] == ["event", "decay"]


# -- stages ----------------------------------------------------------------------


def stage_changes(listener: WsListener, lead_id: str) -> list[tuple[str | None, str | None]]:
    return [(m["old_stage"], m["new_stage"]) for m in listener.of_type("stage.changed", lead_id)]


def test_stage_crossings_announced_once_each(
    scoring_api: Api, rules: dict[str, Any], runtime: Runtime, listener: WsListener
) -> None:
    lead_id = f"stage-{uuid.uuid4().hex[:8]}"

    def event(number: int, kind: str, minutes_ago: int) -> dict[str, Any]:
        return {"event_id": f"{lead_id}-{number}", "lead_id": lead_id, "type": kind, "occurred_at": ago(minutes=minutes_ago).isoformat()}

    assert post_wait(scoring_api, event(1, "purchase", 50))["lead"]["stage"] == "mql"
    assert post_wait(scoring_api, event(2, "unsubscribe", 40))["lead"]["stage"] is None
    assert post_wait(scoring_api, event(3, "purchase", 30))["lead"]["stage"] == "mql"
    expected = [(None, "mql"), ("mql", None), (None, "mql")]
    wait_until(lambda: len(stage_changes(listener, lead_id)) >= 3, timeout=20, message="three stage.changed messages")
    time.sleep(0.5)
    assert stage_changes(listener, lead_id) == expected
    rows = runtime.store.lead_history(lead_id)
    assert [(r["stage_before"], r["stage_after"]) for r in rows if r["stage_before"] != r["stage_after"]] == expected

    # A late event whose re-fold moves a crossing in history: the lead stayed
    # in mql, so nothing is announced, though the rewritten rows record it.
    assert post_wait(scoring_api, event(4, "unsubscribe", 45))["lead"]["score"] == 120
    assert post_wait(scoring_api, event(5, "unsubscribe", 20))["lead"]["stage"] is None
    # A late event that moves the final stage is announced once.
    assert post_wait(scoring_api, event(6, "demo_request", 25))["lead"]["score"] == 140
    expected += [("mql", None), (None, "mql")]
    wait_until(lambda: len(stage_changes(listener, lead_id)) >= 5, timeout=20, message="five stage.changed messages")
    time.sleep(0.5)
    assert stage_changes(listener, lead_id) == expected
    updates = listener.of_type("score.updated", lead_id)
    assert [m["new_score"] for m in updates] == [100, 60, 160, 120, 80, 140]
    rows = runtime.store.lead_history(lead_id)
    assert [r["stage_after"] for r in rows] == ["mql", None, None, "mql", "mql", "mql"]
    assert_matches_fold(runtime.store, lead_id, utcnow())


# -- conflicts -------------------------------------------------------------------


def test_conflicting_payload_never_applied(scoring_api: Api, rules: dict[str, Any], runtime: Runtime) -> None:
    lead_id = f"conflict-{uuid.uuid4().hex[:8]}"
    first = {"event_id": f"{lead_id}-1", "lead_id": lead_id, "type": "purchase", "occurred_at": ago(minutes=20).isoformat()}
    changed = dict(first, type="demo_request")
    assert post_wait(scoring_api, first)["lead"]["score"] == 100

    manual = scoring_api.post("/api/events/manual", json=changed)
    webhook = scoring_api.post("/api/events/webhook", json=[changed, first])
    csv_body = (
        "event_id,lead_id,type,occurred_at\n"
        f"{changed['event_id']},{lead_id},demo_request,{changed['occurred_at']}\n"
        f"{lead_id}-2,{lead_id},page_view,{ago(minutes=10).isoformat()}\n"
    )
    upload = scoring_api.post("/api/events/batch", data=csv_body, headers={"Content-Type": "text/csv"})

    assert manual.status_code == 409
    assert manual.json()["error"]["code"] == "conflict"
    assert webhook.status_code == 202
    assert [item["status"] for item in webhook.json()["results"]] == ["conflict", "duplicate"]
    assert webhook.json()["conflicts"] == 1
    assert "first payload is kept" in webhook.json()["results"][0]["error"]
    assert upload.status_code == 202
    assert upload.json()["conflicts"] == 1
    assert upload.json()["accepted"] == 1
    assert upload.json()["rejected_rows"][0]["line"] == 2
    stored_events = runtime.store.lead_events(lead_id)
    assert [event["type"] for event in stored_events] == ["purchase", "page_view"]
    wait_until(lambda: stored(runtime, lead_id)["event_count"] == 2, timeout=30, message="page view scored")
    lead = scoring_api.get(f"/api/leads/{lead_id}").json()
    assert lead["score"] == 101
    assert [row["event_id"] for row in runtime.store.lead_history(lead_id)] == [first["event_id"], f"{lead_id}-2"]


# -- timestamps ------------------------------------------------------------------


def test_timestamps_stored_as_utc(scoring_api: Api, rules: dict[str, Any], runtime: Runtime) -> None:
    lead_id = f"times-{uuid.uuid4().hex[:8]}"
    moment = ago(hours=2).replace(microsecond=0)
    local = moment.astimezone(timezone(timedelta(hours=5, minutes=30)))
    sent = {
        "iso-offset": local.isoformat(),
        "iso-z": moment.isoformat().replace("+00:00", "Z"),
        "epoch-s": int(moment.timestamp()),
        "epoch-ms": int(moment.timestamp() * 1000) + 250,
    }
    events = [
        {"event_id": f"{lead_id}-{name}", "lead_id": lead_id, "type": "page_view", "occurred_at": value}
        for name, value in sent.items()
    ]
    naive = dict(events[0], event_id=f"{lead_id}-naive", occurred_at=moment.replace(tzinfo=None).isoformat())
    future = dict(events[0], event_id=f"{lead_id}-future", occurred_at=(utcnow() + timedelta(minutes=6)).isoformat())
    soon = dict(events[0], event_id=f"{lead_id}-soon", occurred_at=(utcnow() + timedelta(minutes=4)).isoformat())

    response = scoring_api.post("/api/events/webhook", json=events + [naive, future, soon])

    statuses = [item["status"] for item in response.json()["results"]]
    assert statuses == ["accepted"] * 4 + ["rejected", "rejected", "accepted"]
    assert "offset" in response.json()["results"][4]["error"]
    assert "future" in response.json()["results"][5]["error"]
    by_id = {doc["event_id"]: doc["occurred_at"] for doc in runtime.store.lead_events(lead_id)}
    for name in ("iso-offset", "iso-z", "epoch-s"):
        assert by_id[f"{lead_id}-{name}"] == moment
        assert by_id[f"{lead_id}-{name}"].utcoffset() == timedelta(0)
    assert by_id[f"{lead_id}-epoch-ms"] == moment + timedelta(milliseconds=250)
    # The lead document appears when a worker scores its first event.
    response = wait_until(
        lambda: (answer := scoring_api.get(f"/api/leads/{lead_id}/history")).status_code == 200 and answer,
        message="lead scored",
    )
    history = response.json()
    assert all(event["occurred_at"].endswith("+00:00") for event in history["events"])
