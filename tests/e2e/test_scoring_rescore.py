"""Publishing with ``?rescore=1`` re-folds every lead under the new version."""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from scorestream.runtime import Runtime
from scoring import engine
from scoring.store import event_from_document, utcnow
from tests.conftest import Api, wait_until
from tests.e2e.conftest import WsListener, wait_settled
from tests.scoring.replay import assert_matches_fold

pytestmark = pytest.mark.usefixtures("history_replays_after")

BEFORE = {
    "points": {"page_view": 1, "email_open": 2, "pricing_view": 10, "unsubscribe": -30},
    "stages": {"mql": 40, "sql": 120},
    "note": "rescore test, before",
}
AFTER = {
    "points": {"page_view": 3, "email_open": 1, "pricing_view": 25, "unsubscribe": -10, "webinar": 20},
    "stages": {"mql": 30, "sql": 90},
    "note": "rescore test, after: webinars now score",
}
KINDS = ["page_view", "email_open", "pricing_view", "unsubscribe", "webinar"]


def upload(api: Api, events: list[dict[str, Any]]) -> None:
    lines = ["event_id,lead_id,type,occurred_at"]
    lines += [f"{e['event_id']},{e['lead_id']},{e['type']},{e['occurred_at']}" for e in events]
    response = api.post("/api/events/batch", data="\n".join(lines) + "\n", headers={"Content-Type": "text/csv"})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == len(events)


def make_events(rng: random.Random, lead_ids: list[str], count: int, token: str) -> list[dict[str, Any]]:
    start = datetime.now(timezone.utc) - timedelta(hours=5)
    return [
        {
            "event_id": f"{token}-{uuid.uuid4().hex[:10]}",
            "lead_id": rng.choice(lead_ids),
            "type": rng.choice(KINDS),
            "occurred_at": (start + timedelta(seconds=rng.randint(0, 4 * 3600))).isoformat(),
        }
        for _ in range(count)
    ]


def test_rescore_refolds_every_lead(scoring_api: Api, runtime: Runtime, listener: WsListener) -> None:
    rng = random.Random(11)
    store = runtime.store
    token = uuid.uuid4().hex[:8]
    lead_ids = [f"rescore-{token}-{number:03d}" for number in range(150)]
    webinar_only = f"rescore-{token}-webinars"
    assert scoring_api.put("/api/scoring-rules", json=BEFORE).status_code == 200
    upload(scoring_api, make_events(rng, lead_ids, 900, token))
    webinars = [
        {"event_id": f"{token}-w{number}", "lead_id": webinar_only, "type": "webinar", "occurred_at": (utcnow() - timedelta(minutes=30 + number)).isoformat()}
        for number in range(3)
    ]
    upload(scoring_api, webinars)
    wait_settled(runtime)
    unknown = scoring_api.get(f"/api/leads/{webinar_only}").json()
    assert (unknown["score"], unknown["event_count"]) == (0, 3)
    assert store.lead_history(webinar_only) == []

    statuses: list[int] = []
    stop = threading.Event()

    def read_while_rescoring() -> None:
        client = Api(scoring_api.base_url)
        while not stop.is_set():
            statuses.append(client.get("/api/leads?limit=50").status_code)
            statuses.append(client.get(f"/api/leads/{rng.choice(lead_ids)}").status_code)
        client.close()

    reader = threading.Thread(target=read_while_rescoring)
    reader.start()
    response = scoring_api.put("/api/scoring-rules?rescore=1", json=AFTER)
    assert response.status_code == 200, response.text
    version = response.json()["rules"]["version"]
    job = response.json()["rescore"]
    # New events keep arriving for the same leads while the rescore runs.
    upload(scoring_api, make_events(rng, lead_ids, 150, token + "-during"))

    def finished() -> dict[str, Any] | None:
        progress = scoring_api.get(job["progress_url"]).json()
        return progress if progress["finished"] else None

    progress = wait_until(finished, timeout=150, interval=0.3, message=f"rescore {job['job_id']} finished")
    stop.set()
    reader.join(30)
    wait_settled(runtime)

    assert progress["done"] == progress["total"] == job["total"]
    assert progress["version"] == version
    assert progress["finished_at"]
    assert statuses and set(statuses) == {200}
    messages = [m for m in listener.of_type("rescore.progress") if m["job_id"] == job["job_id"]]
    assert messages
    assert messages[-1]["done"] == messages[-1]["total"] == job["total"]
    assert [m["done"] for m in messages] == sorted(m["done"] for m in messages)

    now = utcnow()
    rules = store.rules_by_version([version])
    for lead_id in lead_ids + [webinar_only]:
        documents = store.lead_events(lead_id)
        assert {doc["rules_version"] for doc in documents} == {version}
        # A fresh fold of the whole history under the new version alone.
        events = [replace(event_from_document(doc), rules_version=version) for doc in documents]
        expected, expected_rows = engine.fold(lead_id, events, rules, now)
        state = assert_matches_fold(store, lead_id, now)
        assert (state.score, state.stage) == (expected.score, expected.stage)
        assert state.row_count == len(expected_rows)
    rescored = store.lead_history(webinar_only)
    assert [(row["cause"], row["points"], row["rules_version"]) for row in rescored] == [("rescore", 20, version)] * 3
    assert scoring_api.get(f"/api/leads/{webinar_only}").json()["score"] == 60
    for lead in store.leads.find({}, {"lead_id": 1}):
        assert_matches_fold(store, lead["lead_id"], now)
