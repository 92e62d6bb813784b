"""The ``scorestream`` command as a user runs it."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scorestream.config import load_settings
from scorestream.errors import ConfigError
from scorestream.services import free_port

ROOT = Path(__file__).resolve().parent.parent


def run_up(data_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"MONGO_URI", "REDIS_URL"}}
    return subprocess.run(
        [sys.executable, "-m", "scorestream", "up", "--data-dir", str(data_dir), "--port", str(free_port()),
         "--dashboard-port", "0", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
    )


def test_up_loads_demo_and_keeps_data(tmp_path: Path) -> None:
    first = run_up(tmp_path, "--once", "--demo-rows", "300")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "redis      redis://127.0.0.1:" in first.stdout
    assert "mongodb    mongodb://127.0.0.1:" in first.stdout
    assert "web        http://127.0.0.1:" in first.stdout
    assert "Top 10 leads:" in first.stdout
    loaded = re.search(r"(\d+) events sent, (\d+) accepted, 0 duplicates, 0 rejected", first.stdout)
    assert loaded is not None, first.stdout
    assert int(loaded.group(1)) >= 300
    assert loaded.group(1) == loaded.group(2)
    assert not (tmp_path / "services.json").exists()

    second = run_up(tmp_path, "--once")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already has leads" in second.stdout


def test_up_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in {"MONGO_URI", "REDIS_URL"}}
    process = subprocess.Popen(
        [sys.executable, "-m", "scorestream", "up", "--data-dir", str(tmp_path), "--port", str(free_port()),
         "--dashboard-port", "0", "--no-demo"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Press Ctrl-C" in line:
            break
    services = json.loads((tmp_path / "services.json").read_text())
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0, "".join(lines)
    assert not (tmp_path / "services.json").exists()
    port = int(services["redis_url"].rsplit(":", 1)[1].split("/")[0])
    import socket

    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)


@pytest.mark.parametrize(
    "env, fragment",
    [
        pytest.param({"MONGO_URI": "postgres://x"}, "MONGO_URI", id="mongo-uri"),
        pytest.param({"REDIS_URL": "http://x"}, "REDIS_URL", id="redis-url"),
        pytest.param({"SCORESTREAM_DECAY_INTERVAL": "90s"}, "whole number of minutes", id="decay-interval"),
        pytest.param({"SCORESTREAM_CHUNK_SIZE": "lots"}, "not a whole number", id="chunk-size"),
        pytest.param({"SCORESTREAM_WEBHOOK_SECRET": "plain"}, "whsec_", id="webhook-secret"),
    ],
)
def test_bad_settings_rejected_with_fix(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(env=env)


def test_bad_setting_stops_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scorestream", "worker"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env=dict(os.environ, SCORESTREAM_DECAY_INTERVAL="soon"),
    )
    assert result.returncode == 2
    assert "SCORESTREAM_DECAY_INTERVAL" in result.stderr
