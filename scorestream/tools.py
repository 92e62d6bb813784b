"""Sub-commands for analysts: ``export`` and ``simulate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from scorestream.config import load_settings
from scorestream.runtime import Runtime
from scorestream.services import resolve_services


def _runtime(args: argparse.Namespace) -> tuple[Runtime, Any]:
    settings = load_settings(data_dir=args.data_dir)
    services = resolve_services(settings)
    return Runtime(settings.with_services(services.mongo_uri, services.redis_url)), services


def command_export(args: argparse.Namespace) -> int:
    """Write leads, events or history to a CSV or Parquet file."""
    from analytics.export import write_export

    runtime, services = _runtime(args)
    try:
        filters: dict[str, Any] = {}
        if args.lead_ids:
            filters["lead_ids"] = args.lead_ids.split(",")
        written = write_export(runtime.store.db, args.kind, args.output, fmt=args.format, tz=args.tz, **filters)
        print(f"wrote {written} bytes of {args.kind} to {args.output}")
    finally:
        runtime.close()
        services.stop()
    return 0


def command_simulate(args: argparse.Namespace) -> int:
    """Simulate a candidate rule set (a JSON file) against the full history."""
    from analytics.simulate import simulate

    try:
        candidate = json.loads(Path(args.rules).read_text())
    except (OSError, ValueError) as error:
        print(f"scorestream simulate: cannot read rules from {args.rules!r}: {error}", file=sys.stderr)
        return 2
    runtime, services = _runtime(args)
    try:
        result = simulate(runtime.store.db, candidate, outcome=args.outcome, within_days=args.within_days, stage=args.stage)
        json.dump(result.to_dict(top=args.top), sys.stdout, indent=2, default=str)
        print()
    finally:
        runtime.close()
        services.stop()
    return 0


def register(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the analyst sub-commands to the parser."""
    export = add("export", command_export, "write leads, events or history to CSV or Parquet")
    export.add_argument("kind", choices=["leads", "events", "history"], help="what to export")
    export.add_argument("output", type=Path, help="output file; .csv or .parquet chooses the format")
    export.add_argument("--format", choices=["csv", "parquet"], help="format when the suffix does not tell")
    export.add_argument("--tz", default="UTC", help="IANA time zone for timestamps (default UTC)")
    export.add_argument("--lead-ids", help="comma-separated lead ids to export (default all)")

    sim = add("simulate", command_simulate, "what-if: fold the full history under candidate rules")
    sim.add_argument("--rules", required=True, help="JSON file with the candidate rule set (PUT /api/scoring-rules shape)")
    sim.add_argument("--outcome", help="event type that marks success, for the backtest (for example purchase)")
    sim.add_argument("--within-days", type=float, help="days after reaching the stage within which the outcome counts")
    sim.add_argument("--stage", help="stage whose reaching is the prediction (default the lowest stage)")
    sim.add_argument("--top", type=int, default=10, help="number of top movers to print (default 10)")
