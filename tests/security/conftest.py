"""A web process started with API keys, read tokens and a webhook secret."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Iterator

import pytest

from scorestream.services import Services, free_port
from tests.conftest import Api, service_env, start_process, stop_process, wait_ready

API_KEYS = ("sk-test-first-3f9a1c7e5b", "sk-test-second-8d2e4f6a0c")
READ_TOKEN = "rt-test-token-6b1d9e3f27"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"scorestream-test-webhook-secret!").decode()


class KeyedWeb:
    """The base URL and log file of the keyed web process."""

    def __init__(self, base_url: str, log: Path) -> None:
        self.base_url = base_url
        self.ws_url = base_url.replace("http", "ws") + "/ws"
        self.log = log

    def client(self) -> Api:
        """Return an HTTP client without credentials."""
        return Api(self.base_url)


@pytest.fixture(scope="session")
def keyed_web(services: Services, logs_dir: Path, worker: object) -> Iterator[KeyedWeb]:
    """A second web process with every credential configured, beside the session worker."""
    port = free_port()
    log = logs_dir / "keyed-web.log"
    env = service_env(
        services,
        SCORESTREAM_API_KEYS=",".join(API_KEYS),
        SCORESTREAM_READ_TOKENS=READ_TOKEN,
        SCORESTREAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        SCORESTREAM_LOG_LEVEL="INFO",
    )
    process = start_process(["web", "--port", str(port)], env, log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base_url}/readyz", process, log)
        yield KeyedWeb(base_url, log)
    finally:
        stop_process(process)
