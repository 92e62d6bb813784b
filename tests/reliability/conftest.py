"""A private stack for fault tests: its own Valkey, nx-27017, web and worker.

The fault tests kill and restart these processes, so they must not share
them with the rest of the session.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
import requests

from scorestream.config import load_settings
from scorestream.runtime import Runtime
from scorestream.services import EmbeddedServer, free_port, mongo_server, valkey_server
from tests.conftest import Api, start_process, stop_process, wait_ready, wait_until

import os

RULES = {"points": {"page_view": 1}, "cap": 100_000, "floor": 0, "decay": {"after": "30d", "every": "1d", "points": 1}}
SWEEP_AFTER = 2
BATCH_ROWS = 500


@dataclass
class Stack:
    """The servers and processes of one private deployment."""

    folder: Path
    valkey: EmbeddedServer
    mongo: EmbeddedServer
    web_port: int
    env: dict[str, str]
    runtime: Runtime
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start_web(self) -> None:
        log = self.folder / "web.log"
        self.processes["web"] = start_process(["web", "--port", str(self.web_port)], self.env, log)
        wait_ready(f"{self.base_url}/readyz", self.processes["web"], log)

    def start_worker(self) -> None:
        self.processes["worker"] = start_process(["worker"], self.env, self.folder / "worker.log")

    def kill_worker(self) -> None:
        """SIGKILL the consumer, as a crash or the OOM killer would."""
        process = self.processes.pop("worker")
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process)
        self.runtime.close()
        self.mongo.stop()
        self.valkey.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start a private Valkey, nx-27017, web process and worker."""
    folder = tmp_path_factory.mktemp("fault-stack")
    valkey, mongo = valkey_server(folder), mongo_server(folder)
    valkey.start()
    mongo.start()
    mongo_uri, redis_url = f"mongodb://127.0.0.1:{mongo.port}/", f"redis://127.0.0.1:{valkey.port}/0"
    env = dict(os.environ, MONGO_URI=mongo_uri, REDIS_URL=redis_url, SCORESTREAM_SWEEP_AFTER=str(SWEEP_AFTER))
    for name in ("SCORESTREAM_API_KEYS", "SCORESTREAM_WEBHOOK_SECRET", "SCORESTREAM_READ_TOKENS"):
        env.pop(name, None)
    runtime = Runtime(load_settings(env={"MONGO_URI": mongo_uri, "REDIS_URL": redis_url}))
    deployment = Stack(folder, valkey, mongo, free_port(), env, runtime)
    try:
        deployment.start_web()
        deployment.start_worker()
        assert requests.put(f"{deployment.base_url}/api/scoring-rules", json=RULES, timeout=30).status_code == 200
        yield deployment
    finally:
        deployment.stop()


class Loader:
    """Upload ``leads x per_lead`` page views in CSV batches from a thread, retrying on 503.

    A retry resends the same rows, which the unique (source, event_id) index
    turns into duplicates, so a retried batch can never add an event twice.
    """

    def __init__(self, base_url: str, leads: int, per_lead: int, pause: float = 0.0) -> None:
        self.prefix = f"fault-{uuid.uuid4().hex[:8]}"
        self.lead_ids = [f"{self.prefix}-{n:05d}" for n in range(leads)]
        self.per_lead = per_lead
        self.pause = pause
        self.client = Api(base_url)
        self.statuses: list[int] = []
        self.batches_sent = 0
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def total(self) -> int:
        return len(self.lead_ids) * self.per_lead

    def rows(self) -> list[str]:
        start = datetime.now(timezone.utc) - timedelta(hours=3)
        rows = []
        for round_number in range(self.per_lead):
            moment = (start + timedelta(seconds=round_number)).isoformat()
            rows.extend(f"{lead}-{round_number},{lead},page_view,{moment}" for lead in self.lead_ids)
        return rows

    def _run(self) -> None:
        rows = self.rows()
        for offset in range(0, len(rows), BATCH_ROWS):
            body = "event_id,lead_id,type,occurred_at\n" + "\n".join(rows[offset : offset + BATCH_ROWS]) + "\n"
            deadline = time.monotonic() + 120
            while True:
                try:
                    response = self.client.post("/api/events/batch", data=body, headers={"Content-Type": "text/csv"})
                    self.statuses.append(response.status_code)
                    if response.status_code == 202:
                        break
                    if response.status_code != 503:
                        self.errors.append(f"{response.status_code}: {response.text[:300]}")
                        return
                except requests.RequestException as error:
                    self.statuses.append(0)
                    if time.monotonic() > deadline:
                        self.errors.append(f"gave up: {error}")
                        return
                time.sleep(0.5)
            self.batches_sent += 1
            time.sleep(self.pause)

    def start(self) -> "Loader":
        self.thread.start()
        return self

    def join(self, timeout: float = 300) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the upload did not finish"
        assert self.errors == []


def scored_count(runtime: Runtime, loader: Loader) -> int:
    """Count the loader's events that are marked scored."""
    return sum(1 for _ in runtime.store.events.find({"lead_id": {"$in": loader.lead_ids}, "scored": True}, {"_id": 1}))


def assert_scored_exactly_once(runtime: Runtime, loader: Loader, timeout: float = 240) -> None:
    """Wait until every event is scored, then check events, leads and history agree."""
    wait_until(lambda: scored_count(runtime, loader) == loader.total, timeout=timeout, interval=1, message="all events scored")
    store = runtime.store
    events = list(store.events.find({"lead_id": {"$in": loader.lead_ids}}, {"event_id": 1, "source": 1}))
    assert len(events) == loader.total
    assert len({(event["source"], event["event_id"]) for event in events}) == loader.total

    leads = {lead["lead_id"]: lead for lead in store.leads.find({"lead_id": {"$in": loader.lead_ids}})}
    assert set(leads) == set(loader.lead_ids)
    wrong_counts = {lead_id: lead["event_count"] for lead_id, lead in leads.items() if lead["event_count"] != loader.per_lead}
    assert wrong_counts == {}
    wrong_scores = {lead_id: lead["score"] for lead_id, lead in leads.items() if lead["score"] != loader.per_lead}
    assert wrong_scores == {}

    rows: dict[str, list[dict]] = {lead_id: [] for lead_id in loader.lead_ids}
    for row in store.history.find({"lead_id": {"$in": loader.lead_ids}}):
        rows[row["lead_id"]].append(row)
    for lead_id, lead_rows in rows.items():
        lead_rows.sort(key=lambda row: row["seq"])
        event_ids = [row["event_id"] for row in lead_rows if row["cause"] == "event"]
        assert len(event_ids) == loader.per_lead, f"lead {lead_id} has history rows {event_ids}"
        assert len(set(event_ids)) == loader.per_lead, f"lead {lead_id} has repeated history rows"
        assert sum(row["points"] for row in lead_rows) == leads[lead_id]["score"]
        assert lead_rows[-1]["score_after"] == leads[lead_id]["score"]
