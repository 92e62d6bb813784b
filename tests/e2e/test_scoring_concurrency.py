"""Concurrent delivery to four Huey consumer processes ends at the in-order fold."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from scorestream.runtime import Runtime
from scoring.store import utcnow
from tests.conftest import Api, wait_until
from tests.scoring.replay import assert_history_replays, assert_matches_fold

pytestmark = pytest.mark.usefixtures("history_replays_after")

RULES = {
    "points": {"page_view": 1, "email_open": 2, "pricing_view": 15, "demo_request": 60, "unsubscribe": -40},
    "cap": 5000,
    "floor": 0,
    "decay": {"after": "7d", "every": "1d", "points": 5},
    "stages": {"mql": 100, "sql": 400},
    "note": "concurrency tests",
}
KINDS = ["page_view", "email_open", "pricing_view", "demo_request", "unsubscribe", "webinar"]


@pytest.fixture
def rules(scoring_api: Api) -> dict[str, Any]:
    response = scoring_api.put("/api/scoring-rules", json=RULES)
    assert response.status_code == 200, response.text
    return response.json()["rules"]


def post_group(api: Api, group: list[dict[str, Any]], endpoint: str) -> list[str]:
    """Post events through one endpoint and return each item's status."""
    if endpoint == "manual":
        statuses = []
        for event in group:
            response = api.post("/api/events/manual", json=event)
            assert response.status_code == 202, response.text
            statuses.append(response.json()["status"])
        return statuses
    if endpoint == "webhook":
        response = api.post("/api/events/webhook", json=group)
        assert response.status_code == 202, response.text
        return [item["status"] for item in response.json()["results"]]
    lines = ["event_id,lead_id,type,occurred_at"]
    lines += [f"{e['event_id']},{e['lead_id']},{e['type']},{e['occurred_at']}" for e in group]
    response = api.post("/api/events/batch", data="\n".join(lines) + "\n", headers={"Content-Type": "text/csv"})
    assert response.status_code == 202, response.text
    body = response.json()
    return ["accepted"] * body["accepted"] + ["duplicate"] * body["duplicates"] + ["other"] * (
        body["rejected"] + body["conflicts"]
    )


def post_concurrently(base_url: str, groups: list[list[dict[str, Any]]], threads: int = 12) -> list[str]:
    """Post the groups from a thread pool, rotating manual, webhook and batch."""
    endpoints = ["manual", "webhook", "batch"]

    def send(numbered: tuple[int, list[dict[str, Any]]]) -> list[str]:
        number, group = numbered
        client = Api(base_url)
        try:
            return post_group(client, group, endpoints[number % 3])
        finally:
            client.close()

    with ThreadPoolExecutor(threads) as pool:
        results = pool.map(send, enumerate(groups))
        return [status for statuses in results for status in statuses]


def wait_scored(runtime: Runtime, lead_id: str, events: int) -> None:
    """Wait until the lead has folded ``events`` events and none is left unscored."""
    store = runtime.store

    def scored() -> bool:
        lead = store.get_lead(lead_id)
        pending = store.events.find_one({"lead_id": lead_id, "scored": False}, {"_id": 1})
        return lead is not None and lead["event_count"] == events and pending is None

    wait_until(scored, timeout=120, interval=0.2, message=f"lead {lead_id} scored {events} events")


def test_shuffled_duplicated_events_match_fold(
    scoring_api: Api, rules: dict[str, Any], runtime: Runtime
) -> None:
    rng = random.Random(20260601)
    lead_id = f"shuffle-{uuid.uuid4().hex[:8]}"
    start = datetime.now(timezone.utc) - timedelta(hours=6)
    events = [
        {
            "event_id": f"{lead_id}-{number:03d}",
            "lead_id": lead_id,
            "type": rng.choice(KINDS),
            # Whole seconds, some shared, so ties are broken by event id.
            "occurred_at": (start + timedelta(seconds=rng.randint(0, 5 * 3600) // 7 * 7)).isoformat(),
        }
        for number in range(500)
    ]
    deliveries = events + rng.sample(events, 120)
    rng.shuffle(deliveries)
    groups: list[list[dict[str, Any]]] = []
    while deliveries:
        size = rng.randint(1, 12)
        groups.append(deliveries[:size])
        deliveries = deliveries[size:]

    statuses = post_concurrently(scoring_api.base_url, groups)

    assert statuses.count("accepted") == 500
    assert statuses.count("duplicate") == 120
    wait_scored(runtime, lead_id, 500)
    now = utcnow()
    state = assert_matches_fold(runtime.store, lead_id, now)
    assert scoring_api.get(f"/api/leads/{lead_id}").json()["score"] == state.score
    history = scoring_api.get(f"/api/leads/{lead_id}/history").json()
    assert sum(row["points"] for row in history["changes"]) == history["lead"]["score"]
    assert len(history["events"]) == 500
    assert_history_replays(runtime.store, [lead_id])


def test_two_hundred_concurrent_increments(scoring_api: Api, rules: dict[str, Any], runtime: Runtime) -> None:
    lead_id = f"plus-one-{uuid.uuid4().hex[:8]}"
    moment = (datetime.now(timezone.utc) - timedelta(minutes=30)).isoformat()
    # All at the same instant: the fold order is the event id alone.
    groups = [
        [{"event_id": f"{lead_id}-{number:03d}", "lead_id": lead_id, "type": "page_view", "occurred_at": moment}]
        for number in range(200)
    ]

    statuses = post_concurrently(scoring_api.base_url, groups, threads=16)

    assert statuses == ["accepted"] * 200
    wait_scored(runtime, lead_id, 200)
    lead = scoring_api.get(f"/api/leads/{lead_id}").json()
    assert lead["score"] == 200
    assert lead["event_count"] == 200
    assert lead["stage"] == "mql"
    state = assert_matches_fold(runtime.store, lead_id, utcnow())
    assert state.row_count == 200


def test_rows_replay_for_many_leads(scoring_api: Api, rules: dict[str, Any], runtime: Runtime) -> None:
    rng = random.Random(7)
    token = uuid.uuid4().hex[:8]
    lead_ids = [f"many-{token}-{number}" for number in range(20)]
    start = datetime.now(timezone.utc) - timedelta(hours=3)
    events = [
        {
            "event_id": f"{token}-{number:04d}",
            "lead_id": rng.choice(lead_ids),
            "type": rng.choice(KINDS),
            "occurred_at": (start + timedelta(seconds=rng.randint(0, 10_000))).isoformat(),
        }
        for number in range(600)
    ]
    rng.shuffle(events)
    groups = [events[index : index + 25] for index in range(0, len(events), 25)]

    statuses = post_concurrently(scoring_api.base_url, groups)

    assert statuses.count("accepted") == 600
    counts = {lead_id: sum(1 for event in events if event["lead_id"] == lead_id) for lead_id in lead_ids}
    for lead_id, count in counts.items():
        if count:
            wait_scored(runtime, lead_id, count)
    now = utcnow()
    for lead_id, count in counts.items():
        if count:
            assert_matches_fold(runtime.store, lead_id, now)
    assert assert_history_replays(runtime.store, [lead_id for lead_id, count in counts.items() if count]) == len(
        [count for count in counts.values() if count]
    )

