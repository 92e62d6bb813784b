"""The ``scorestream`` command: ``up``, ``web``, ``worker`` and the tools."""

from __future__ import annotations

import argparse
import base64
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import requests

from scorestream.config import Settings, load_settings
from scorestream.errors import ScoreStreamError
from scorestream.services import Services, resolve_services, start_embedded, write_services_file

logger = logging.getLogger("scorestream")


class Stop(Exception):
    """Raised by the SIGTERM handler so that clean-up runs as for Ctrl-C."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Stop()


def configure_logging(level: str) -> None:
    """Send log lines to stderr with time, level and logger name."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(data_dir=getattr(args, "data_dir", None))


def _services_env(services: Services) -> dict[str, str]:
    return dict(os.environ, MONGO_URI=services.mongo_uri, REDIS_URL=services.redis_url)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until ``url`` answers 200; raise if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ScoreStreamError(f"the process serving {url} exited with code {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise ScoreStreamError(f"{url} was not ready within {timeout:.0f} s")


def _print_summary(base_url: str, report: object) -> None:
    from scorestream.demo import DemoReport

    assert isinstance(report, DemoReport)
    leaderboard = requests.get(f"{base_url}/api/leads/leaderboard?limit=10", timeout=30).json()["leads"]
    print()
    print(f"Demo data loaded: {report.sent} events sent, {report.accepted} accepted, "
          f"{report.duplicates} duplicates, {report.rejected} rejected")
    print(f"  upload {report.upload_seconds:.1f} s, all scored after {report.scored_seconds:.1f} s "
          f"({report.events_per_second:.0f} events/s); dates shifted by {report.shift} days")
    print("Top 10 leads:")
    for rank, lead in enumerate(leaderboard, start=1):
        print(f"  {rank:2d}. {lead['lead_id']:<16} score {lead['score']:>5}  stage {lead['stage'] or '-':<4} "
              f"events {lead['event_count']}")
    print()


def command_up(args: argparse.Namespace) -> int:
    """Start the embedded services, the web app, a worker and the dashboard."""
    settings = _settings(args)
    signal.signal(signal.SIGTERM, _on_sigterm)
    services = start_embedded(settings)
    children: list[subprocess.Popen[bytes]] = []
    try:
        env = _services_env(services)
        env["SCORESTREAM_DATA_DIR"] = str(settings.data_dir)
        print(f"redis      {services.redis_url}", flush=True)
        print(f"mongodb    {services.mongo_uri}", flush=True)
        base_url = f"http://127.0.0.1:{args.port}"
        web = subprocess.Popen([sys.executable, "-m", "scorestream", "web", "--port", str(args.port)], env=env)
        children.append(web)
        children.append(subprocess.Popen([sys.executable, "-m", "scorestream", "worker"], env=env))
        addresses = {"mongo_uri": services.mongo_uri, "redis_url": services.redis_url, "web_url": base_url}
        dashboard_port = args.dashboard_port
        if dashboard_port:
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "scorestream", "dashboard", "--port", str(dashboard_port), "--api", base_url],
                    env=env,
                )
            )
            addresses["dashboard_url"] = f"http://127.0.0.1:{dashboard_port}"
        wait_ready(f"{base_url}/readyz", web)
        print(f"web        {base_url}  (WebSocket {base_url.replace('http', 'ws')}/ws)", flush=True)
        print("worker     Huey consumer running", flush=True)
        if dashboard_port:
            print(f"dashboard  {addresses['dashboard_url']}", flush=True)
        write_services_file(settings.data_dir, addresses)

        if not args.no_demo:
            _maybe_load_demo(base_url, args.demo_rows)
        if args.once:
            return 0
        print("Press Ctrl-C to stop.", flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = [child.args for child in children if child.poll() is not None]
        logger.error("a component exited unexpectedly: %s; stopping the rest", failed)
        return 1
    except (KeyboardInterrupt, Stop):
        print("\nStopping...", flush=True)
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()
        (settings.data_dir / "services.json").unlink(missing_ok=True)
        services.stop()


def _maybe_load_demo(base_url: str, limit: int | None) -> None:
    from scorestream.demo import load_demo

    existing = requests.get(f"{base_url}/api/leads?limit=1", timeout=30).json()["leads"]
    if existing:
        print("The database already has leads; skipping the demo load (data is kept between runs).", flush=True)
        return
    print("Loading the CDNOW sample through POST /api/events/batch ...", flush=True)
    report = load_demo(base_url, limit=limit)
    _print_summary(base_url, report)


def command_web(args: argparse.Namespace) -> int:
    """Serve the web app (API and /ws) with gunicorn."""
    from scorestream.processes import run_web

    settings = _settings(args)
    services = resolve_services(settings)
    settings = settings.with_services(services.mongo_uri, services.redis_url)
    try:
        run_web(settings, port=args.port, workers=args.workers)
    finally:
        services.stop()
    return 0


def command_worker(args: argparse.Namespace) -> int:
    """Run a Huey consumer."""
    from scorestream.processes import run_worker

    settings = _settings(args)
    services = resolve_services(settings)
    settings = settings.with_services(services.mongo_uri, services.redis_url)
    try:
        run_worker(settings, threads=args.threads)
    finally:
        services.stop()
    return 0


def command_dashboard(args: argparse.Namespace) -> int:
    """Serve the Panel dashboard."""
    from dashboards.app import serve

    serve(args.port, args.api, args.data_dir)
    return 0


def command_secret(_args: argparse.Namespace) -> int:
    """Print a new Standard Webhooks secret."""
    print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with one sub-command per entry point."""
    parser = argparse.ArgumentParser(prog="scorestream", description="Real-time lead scoring.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--data-dir", type=Path, help="folder for embedded-service data and services.json (default ./var)")
        sub.set_defaults(handler=handler)
        return sub

    up = add("up", command_up, "start embedded services, web app, worker and dashboard; load the demo data")
    up.add_argument("--port", type=int, default=5001, help="web app port on 127.0.0.1 (default 5001)")
    up.add_argument("--dashboard-port", type=int, default=5006, help="dashboard port, 0 to not start it (default 5006)")
    up.add_argument("--no-demo", action="store_true", help="do not load the sample data into an empty database")
    up.add_argument("--once", action="store_true", help="stop everything after start-up and the demo load")
    up.add_argument("--demo-rows", type=int, help="load only the first N CDNOW purchases (default all 69,659)")

    web = add("web", command_web, "serve the HTTP API and /ws")
    web.add_argument("--port", type=int, default=5001, help="port on 127.0.0.1 (default 5001)")
    web.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")

    worker = add("worker", command_worker, "run a Huey consumer that scores events")
    worker.add_argument("--threads", type=int, help="consumer threads (default SCORESTREAM_WORKER_THREADS or 2)")

    dashboard = add("dashboard", command_dashboard, "serve the Panel dashboard (leaderboard, trends, audit, rules, export)")
    dashboard.add_argument("--port", type=int, default=5006, help="port on 127.0.0.1 (default 5006)")
    dashboard.add_argument(
        "--api",
        default="http://127.0.0.1:5001",
        help="base URL of the web app, for /ws and for publishing rules (default http://127.0.0.1:5001)",
    )

    add("secret", command_secret, "print a new whsec_ webhook secret")

    from scorestream import tools

    tools.register(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``scorestream`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings(args)
    except ScoreStreamError as error:
        print(f"scorestream: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        return int(args.handler(args) or 0)
    except ScoreStreamError as error:
        logger.error("%s", error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
