"""Session fixtures: real embedded Valkey and nx-27017, the web app under
gunicorn and a Huey consumer, each as its own process, as in production."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from scorestream.config import Settings, load_settings
from scorestream.runtime import Runtime
from scorestream.services import Services, free_port, start_embedded

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Start the embedded Redis and MongoDB servers once per test session."""
    started = start_embedded(load_settings(env={}, data_dir=tmp_path_factory.mktemp("services")))
    yield started
    started.stop()


@pytest.fixture(scope="session")
def settings(services: Services) -> Settings:
    """Settings pointing at the session's servers."""
    return load_settings(env={"MONGO_URI": services.mongo_uri, "REDIS_URL": services.redis_url})


@pytest.fixture(scope="session")
def runtime(settings: Settings) -> Iterator[Runtime]:
    """Clients for checking the stored data directly."""
    rt = Runtime(settings)
    rt.store.ensure_indexes()
    yield rt
    rt.close()


def service_env(services: Services, **extra: str) -> dict[str, str]:
    """The environment of a child process using the session's servers."""
    env = dict(os.environ, MONGO_URI=services.mongo_uri, REDIS_URL=services.redis_url, **extra)
    env.pop("SCORESTREAM_API_KEYS", None)
    env.pop("SCORESTREAM_WEBHOOK_SECRET", None)
    env.update(extra)
    return env


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m scorestream ARGS`` with output to ``log``."""
    handle = open(log, "ab")
    process = subprocess.Popen([sys.executable, "-m", "scorestream", *args], env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    handle.close()
    return process


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Wait until ``url`` answers 200, failing with the log if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a child with SIGTERM, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder for the child processes' logs."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def web(services: Services, logs_dir: Path) -> Iterator[str]:
    """The web app under gunicorn on a free port; yields its base URL."""
    port = free_port()
    log = logs_dir / "web.log"
    process = start_process(["web", "--port", str(port)], service_env(services), log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base_url}/readyz", process, log)
        yield base_url
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def worker(services: Services, logs_dir: Path, web: str) -> Iterator[subprocess.Popen[bytes]]:
    """One Huey consumer process."""
    process = start_process(["worker"], service_env(services), logs_dir / "worker.log")
    yield process
    stop_process(process)


@pytest.fixture
def api(web: str, worker: subprocess.Popen[bytes]) -> Iterator["Api"]:
    """An HTTP client for the running app, with a worker consuming."""
    client = Api(web)
    yield client
    client.close()


class Api(requests.Session):
    """A requests session that prefixes the base URL."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", 60)
        return super().request(method, f"{self.base_url}{url!s}", *args, **kwargs)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Return a function making ids unique to this test."""
    token = uuid.uuid4().hex[:10]
    return lambda name: f"{name}-{token}"


def wait_until(condition: Callable[[], Any], timeout: float = 60, interval: float = 0.1, message: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{message} did not happen within {timeout} s")
