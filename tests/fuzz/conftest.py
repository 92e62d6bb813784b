"""A web process for fuzzing, on its own database and Redis database number.

Fuzzed rule sets, uploads and rescores then stay away from the data of the
other tests, and no worker consumes the fuzz queue.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from scorestream.config import load_settings
from scorestream.runtime import Runtime
from scorestream.services import Services, free_port
from tests.conftest import service_env, start_process, stop_process, wait_ready

FUZZ_DATABASE = "scorestream_fuzz"
LONG = os.environ.get("SCORESTREAM_FUZZ_LONG") == "1"


@pytest.fixture(scope="session")
def fuzz_redis_url(services: Services) -> str:
    return services.redis_url.rsplit("/", 1)[0] + "/3"


@pytest.fixture(scope="session")
def fuzz_web(services: Services, logs_dir: Path, fuzz_redis_url: str) -> Iterator[str]:
    """Start the fuzz target; yield its base URL."""
    port = free_port()
    log = logs_dir / "fuzz-web.log"
    env = service_env(services, SCORESTREAM_DATABASE=FUZZ_DATABASE)
    env["REDIS_URL"] = fuzz_redis_url
    process = start_process(["web", "--port", str(port)], env, log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base_url}/readyz", process, log)
        yield base_url
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def fuzz_runtime(services: Services, fuzz_redis_url: str) -> Iterator[Runtime]:
    """Clients on the fuzz database, to check what was stored."""
    env = {"MONGO_URI": services.mongo_uri, "REDIS_URL": fuzz_redis_url, "SCORESTREAM_DATABASE": FUZZ_DATABASE}
    runtime = Runtime(load_settings(env=env))
    yield runtime
    runtime.close()


@pytest.fixture(scope="session")
def fuzz_schema(fuzz_web: str):  # type: ignore[no-untyped-def]
    """The served OpenAPI document, loaded by schemathesis."""
    import schemathesis

    return schemathesis.openapi.from_url(f"{fuzz_web}/openapi.json")
