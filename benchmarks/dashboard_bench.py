"""Time the dashboard's first render against 100,000 leads and 1,000,000 events.

Usage::

    .venv/bin/python benchmarks/dashboard_bench.py [--leads N] [--events N] [--data-dir DIR] [--no-browser]

The first run builds the data set in a fresh embedded MongoDB (nx-27017)
under ``--data-dir`` (default ``var/bench-dashboard``) by inserting
synthetic lead and event documents directly, without scoring them, because
the embedded server writes only a few thousand documents per second. Later
runs reuse it. Two things are then timed, and nothing else:

- server side: building one session's page (the leaderboard query, decay to
  now, every view and its Bokeh models), as Panel does for each new browser
  session;
- in the browser (Debian's ``/usr/bin/chromium``, headless): from navigation
  to the first leaderboard row on screen, against ``scorestream dashboard``,
  with an empty browser cache and with a cached reload.

The dashboard runs without a web app here, so its ``/ws`` feed only retries.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from scorestream.config import load_settings
from scorestream.runtime import Runtime
from scorestream.services import free_port, start_embedded
from scoring.rules import DEFAULT_RULES

ROOT = Path(__file__).resolve().parent.parent
TYPES = sorted(DEFAULT_RULES.points)
BATCH = 20_000


def build(runtime: Runtime, leads: int, events: int) -> None:
    """Insert synthetic leads and events unless the data set is already there."""
    db = runtime.store.db
    if db["leads"].estimated_document_count() >= leads and db["events"].estimated_document_count() >= events:
        return
    runtime.store.ensure_indexes()
    runtime.store.live_rules()
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    documents = []
    for number in range(leads):
        score = min(1000, int(rng.paretovariate(1.2) * 10) - 10)
        when = now - timedelta(hours=rng.randint(1, 24 * 300))
        documents.append({
            "lead_id": f"bench-{number:06d}", "score": score, "stage": DEFAULT_RULES.stage_for(score),
            "last_activity_at": when, "event_count": events // leads, "created_at": when,
            "updated_at": when, "revision": 1, "anchor_version": 1, "decayed_until": when, "row_count": 1,
        })
        if len(documents) == BATCH:
            db["leads"].insert_many(documents, ordered=False)
            documents = []
    if documents:
        db["leads"].insert_many(documents, ordered=False)
    print(f"built {leads:,} leads in {time.perf_counter() - started:.0f} s", flush=True)

    started = time.perf_counter()
    for first in range(0, events, BATCH):
        batch = []
        for number in range(first, min(first + BATCH, events)):
            when = now - timedelta(minutes=rng.randint(1, 60 * 24 * 365))
            batch.append({
                "source": "bench", "event_id": f"e{number}", "lead_id": f"bench-{rng.randrange(leads):06d}",
                "type": rng.choice(TYPES), "occurred_at": when, "received_at": when, "rules_version": 1,
                "payload_hash": f"{number:016x}",
            })
        db["events"].insert_many(batch, ordered=False)
        if first % 200_000 == 0:
            print(f"  {first + len(batch):,} events after {time.perf_counter() - started:.0f} s", flush=True)
    print(f"built {events:,} events in {time.perf_counter() - started:.0f} s", flush=True)


def time_server_side(runtime: Runtime, runs: int) -> list[float]:
    """Time building one session's page and its Bokeh models, ``runs`` times.

    Each page is built as the current document, as in a served session, so
    the work deferred until the page is on screen (the rest of the
    leaderboard window) is queued and not timed, as in the browser figure.
    """
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    from dashboards.app import build_dashboard, configure_resources
    from dashboards.context import DashboardContext

    configure_resources()
    context = DashboardContext(runtime, "http://127.0.0.1:9")
    timings = []
    for _ in range(runs):
        document = Document()
        started = time.perf_counter()
        with set_curdoc(document):
            page = build_dashboard(context)
            page.get_root(document)
        timings.append(time.perf_counter() - started)
    return timings


# The leaderboard's status line once the whole window is read; before that
# it reads "showing the top 25. Loading the top 1,000 ...".
WINDOW_LOADED = "text=/showing the top [0-9,]+\\. Feed/"


def _first_row_seconds(page, url: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Load ``url``; return the seconds to the first leaderboard row and to the whole window.

    Waiting for the window also lets the page take every update before it
    is closed or reloaded.
    """
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(".tabulator-row", timeout=60_000)
    first_row = time.perf_counter() - started
    page.wait_for_selector(WINDOW_LOADED, timeout=60_000)
    return first_row, time.perf_counter() - started


def time_browser(mongo_uri: str, redis_url: str, runs: int) -> dict[str, list[float]]:
    """Time navigation to the first leaderboard row in headless Chromium.

    ``cold`` opens a new browser context each time, so every script and
    style sheet is downloaded again. ``cached`` reloads in one context, as a
    returning user would, with the browser's HTTP cache. ``cold, whole
    window`` is the time until the rest of the leaderboard window, read
    after the first page is on screen, has arrived in the cold runs.
    """
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = dict(os.environ, MONGO_URI=mongo_uri, REDIS_URL=redis_url, SCORESTREAM_LOG_LEVEL="ERROR")
    command = [sys.executable, "-m", "scorestream", "dashboard", "--port", str(port), "--api", "http://127.0.0.1:9"]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    timings: dict[str, list[float]] = {"cold": [], "cold, whole window": [], "cached": []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            )
            deadline = time.monotonic() + 60
            warm_up = browser.new_context().new_page()
            while True:
                try:
                    first, _window = _first_row_seconds(warm_up, url)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            # The first load also pays one-time costs (imports, loading the
            # numba decay kernel), so it is reported apart.
            print(f"browser, first load after the server started: {first:.3f} s", flush=True)
            for _ in range(runs):
                context = browser.new_context()
                first_row, window = _first_row_seconds(context.new_page(), url)
                timings["cold"].append(first_row)
                timings["cold, whole window"].append(window)
                context.close()
            for _ in range(runs):
                timings["cached"].append(_first_row_seconds(warm_up, url)[0])
            browser.close()
    finally:
        server.terminate()
        server.wait(15)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000, help="leads in the data set (default 100,000)")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the data set (default 1,000,000)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "bench-dashboard",
                        help="folder of the embedded servers' data (default var/bench-dashboard)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each measurement (default 5)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium measurement")
    args = parser.parse_args()

    print("command:", " ".join([Path(sys.executable).name, *sys.argv]))
    services = start_embedded(load_settings(env={}, data_dir=args.data_dir))
    runtime = Runtime(load_settings(env={"MONGO_URI": services.mongo_uri, "REDIS_URL": services.redis_url}))
    try:
        build(runtime, args.leads, args.events)
        db = runtime.store.db
        print(f"data set: {db['leads'].estimated_document_count():,} leads, "
              f"{db['events'].estimated_document_count():,} events in {args.data_dir}")
        server = time_server_side(runtime, args.runs)
        print(f"server side, one session's page with its Bokeh models: best {min(server):.3f} s, "
              f"median {statistics.median(server):.3f} s over {len(server)} runs")
        if args.no_browser or not Path("/usr/bin/chromium").exists():
            print("browser: skipped (--no-browser, or /usr/bin/chromium is absent)")
        else:
            browser = time_browser(services.mongo_uri, services.redis_url, args.runs)
            for mode, values in browser.items():
                target = "the whole leaderboard window" if "window" in mode else "the first leaderboard row"
                print(f"browser ({mode}), navigation to {target}: best {min(values):.3f} s, "
                      f"median {statistics.median(values):.3f} s, max {max(values):.3f} s over {len(values)} runs; "
                      f"target under 2 s {'met' if statistics.median(values) < 2 else 'missed'} by the median")
    finally:
        runtime.close()
        services.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
