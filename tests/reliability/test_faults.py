"""No accepted event is lost or scored twice when a worker, Valkey or nx-27017 dies.

The short run uploads fewer events for the server restarts; ``-m slow``
runs each fault with 10,000 events.
"""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import wait_until
from tests.reliability.conftest import Loader, Stack, assert_scored_exactly_once, scored_count

FULL = pytest.param(10_000, marks=pytest.mark.slow, id="10000-events")


def _probe_rejected_whole(stack: Stack) -> None:
    """Check that a write made while a dependency is down gets 503 and stores nothing."""
    event_id = f"probe-{time.monotonic_ns()}"
    body = {"event_id": event_id, "lead_id": "probe-lead", "type": "page_view", "occurred_at": "2026-01-01T00:00:00Z"}
    response = requests.post(f"{stack.base_url}/api/events/manual", json=body, timeout=60)
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "unavailable"
    ready = requests.get(f"{stack.base_url}/readyz", timeout=60)
    assert ready.status_code == 503
    stack.probe_ids.append(event_id)  # type: ignore[attr-defined]


@pytest.fixture
def probes(stack: Stack):  # type: ignore[no-untyped-def]
    stack.probe_ids = []  # type: ignore[attr-defined]
    yield stack.probe_ids  # type: ignore[attr-defined]
    stored = stack.runtime.store.events.find_one({"event_id": {"$in": stack.probe_ids}})  # type: ignore[attr-defined]
    assert stored is None, "a request answered 503 stored its event"


@pytest.mark.parametrize("events", [pytest.param(2_000, id="2000-events"), FULL])
def test_worker_sigkill_mid_upload_loses_nothing(stack: Stack, events: int) -> None:
    loader = Loader(stack.base_url, leads=events // 10, per_lead=10).start()
    wait_until(lambda: scored_count(stack.runtime, loader) > 0, timeout=120, message="scoring started")
    stack.kill_worker()
    killed_at = scored_count(stack.runtime, loader)
    assert killed_at < loader.total, "the worker finished before it was killed; the test proved nothing"
    time.sleep(1)
    stack.start_worker()
    loader.join()
    assert_scored_exactly_once(stack.runtime, loader)


@pytest.mark.parametrize("events", [pytest.param(2_000, id="2000-events"), FULL])
def test_valkey_restart_under_load_loses_nothing(stack: Stack, probes, events: int) -> None:
    loader = Loader(stack.base_url, leads=events // 10, per_lead=10, pause=0.2).start()
    wait_until(lambda: loader.batches_sent >= 1, timeout=120, message="first batch accepted")
    stack.valkey.kill()
    _probe_rejected_whole(stack)
    time.sleep(2)
    stack.valkey.start()
    wait_until(lambda: requests.get(f"{stack.base_url}/readyz", timeout=30).status_code == 200, message="web ready again")
    loader.join()
    assert_scored_exactly_once(stack.runtime, loader)


@pytest.mark.parametrize("events", [pytest.param(2_000, id="2000-events"), FULL])
def test_mongo_restart_under_load_loses_nothing(stack: Stack, probes, events: int) -> None:
    loader = Loader(stack.base_url, leads=events // 10, per_lead=10, pause=0.2).start()
    wait_until(lambda: loader.batches_sent >= 1, timeout=120, message="first batch accepted")
    stack.mongo.kill()
    _probe_rejected_whole(stack)
    time.sleep(2)
    stack.mongo.start()
    wait_until(lambda: requests.get(f"{stack.base_url}/readyz", timeout=30).status_code == 200, message="web ready again")
    loader.join()
    assert_scored_exactly_once(stack.runtime, loader)
