"""Fixtures for the scoring end-to-end tests: more consumers, /ws, settled data."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import websocket

from scorestream.runtime import Runtime
from scorestream.services import Services
from tests.conftest import Api, service_env, start_process, stop_process, wait_until
from tests.scoring.replay import assert_history_replays

EXTRA_WORKERS = 3


@pytest.fixture(scope="session")
def consumers(
    services: Services, logs_dir: Path, worker: subprocess.Popen[bytes]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Four Huey consumer processes in all: the session's worker and three more."""
    extra = [
        start_process(["worker"], service_env(services), logs_dir / f"worker-{number}.log")
        for number in range(1, EXTRA_WORKERS + 1)
    ]
    # A consumer is ready once it has connected; give them a moment to start.
    time.sleep(2)
    for process in extra:
        assert process.poll() is None, f"worker exited with {process.returncode}"
    yield [worker, *extra]
    for process in extra:
        stop_process(process)


@pytest.fixture
def scoring_api(api: Api, consumers: list[subprocess.Popen[bytes]]) -> Api:
    """An HTTP client with four consumers scoring."""
    return api


def wait_settled(runtime: Runtime, timeout: float = 90) -> None:
    """Wait until no accepted event is left unscored."""
    store = runtime.store
    wait_until(
        lambda: store.events.find_one({"scored": False}, {"_id": 1}) is None,
        timeout=timeout,
        interval=0.2,
        message="every accepted event scored",
    )


@pytest.fixture
def history_replays_after(runtime: Runtime) -> Iterator[None]:
    """After the test, check every lead's rows replay to its stored score."""
    yield
    wait_settled(runtime)
    assert assert_history_replays(runtime.store) > 0


class WsListener:
    """Collect /ws messages in a background thread."""

    def __init__(self, base_url: str) -> None:
        self.messages: list[dict[str, Any]] = []
        self.socket = websocket.create_connection(base_url.replace("http", "ws", 1) + "/ws", timeout=60)
        hello = json.loads(self.socket.recv())
        assert hello["type"] == "hello"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                self.messages.append(json.loads(self.socket.recv()))
        except (websocket.WebSocketException, OSError, ValueError):
            # Closed by the test or the server; an empty frame is not JSON.
            return

    def of_type(self, kind: str, lead_id: str | None = None) -> list[dict[str, Any]]:
        """Return the messages of one type, for one lead when given."""
        return [
            message
            for message in list(self.messages)
            if message["type"] == kind and (lead_id is None or message.get("lead_id") == lead_id)
        ]

    def close(self) -> None:
        self.socket.close()
        self.thread.join(5)


@pytest.fixture
def listener(scoring_api: Api) -> Iterator[WsListener]:
    """A /ws client connected before the test sends anything."""
    client = WsListener(scoring_api.base_url)
    yield client
    client.close()
