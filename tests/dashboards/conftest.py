"""Fixtures for the browser tests: demo data, a dashboard server and headless Chromium.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright (the
Playwright-managed browsers are not used). Without it every browser test is
skipped with the reason.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

from scorestream.services import Services, free_port
from tests.conftest import ROOT, service_env, start_process, stop_process, wait_ready
from tests.dashboards.demo_data import load_cdnow_subset

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(scope="session")
def demo_leads(web: str, worker: subprocess.Popen[bytes]) -> list[str]:
    """Lead ids of a small CDNOW subset uploaded through the batch API and scored."""
    return load_cdnow_subset(web)


@pytest.fixture(scope="session")
def dashboard(services: Services, logs_dir: Path, web: str, demo_leads: list[str]) -> Iterator[str]:
    """``scorestream dashboard`` on a free port, fed by the test web app; yields its URL."""
    port = free_port()
    log = logs_dir / "dashboard.log"
    process = start_process(["dashboard", "--port", str(port), "--api", web], service_env(services), log)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_ready(url, process, log, timeout=90)
        yield url
    finally:
        stop_process(process)


#: The read token of the web app and dashboard started with SCORESTREAM_READ_TOKENS.
READ_TOKEN = "dashboard-test-read-token"


@pytest.fixture(scope="session")
def token_web(services: Services, logs_dir: Path, demo_leads: list[str]) -> Iterator[str]:
    """A second web app that requires a read token on ``/ws``; yields its base URL."""
    port = free_port()
    log = logs_dir / "token-web.log"
    env = service_env(services, SCORESTREAM_READ_TOKENS=f"other-token,{READ_TOKEN}")
    process = start_process(["web", "--port", str(port)], env, log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base_url}/readyz", process, log)
        yield base_url
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def token_dashboard(services: Services, logs_dir: Path, token_web: str) -> Iterator[tuple[str, Path]]:
    """A dashboard with the same read tokens, fed by ``token_web``; yields its URL and log."""
    port = free_port()
    log = logs_dir / "token-dashboard.log"
    env = service_env(services, SCORESTREAM_READ_TOKENS=f"other-token,{READ_TOKEN}")
    process = start_process(["dashboard", "--port", str(port), "--api", token_web], env, log)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_ready(url, process, log, timeout=90)
        yield url, log
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium under Playwright."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed; install Debian's chromium package to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class Page:
    """A browser page on the dashboard that blocks and records non-loopback requests."""

    def __init__(self, browser: Any, url: str, ready: str = ".tabulator-row") -> None:
        self.context = browser.new_context(accept_downloads=True, viewport={"width": 1500, "height": 1000})
        self.external: list[str] = []
        self.requests: list[str] = []
        self.frames: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("websocket", self._record_frames)
        self.page.goto(url)
        self.page.wait_for_selector(ready, timeout=30_000)

    def _record_frames(self, websocket: Any) -> None:
        # Every message the dashboard sends the page, to check what data it held.
        def record(payload: str | bytes) -> None:
            self.frames.append(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))

        websocket.on("framereceived", record)

    def _route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in LOOPBACK_HOSTS:
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def open_tab(self, name: str) -> None:
        """Click the tab called ``name``."""
        self.page.get_by_text(name, exact=True).first.click()

    def screenshot(self, name: str) -> Path:
        """Save a full-page PNG under test-artifacts/."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, dashboard: str) -> Iterator[Page]:
    """A fresh page with the leaderboard rendered."""
    opened = Page(browser, dashboard)
    yield opened
    opened.close()
