"""Benchmark the what-if fold, the per-event engine path, a group-by floor and export.

Builds 1,000,000 events from the CDNOW purchase log (``data/cdnow``): the
69,659 real rows are replicated with shifted customer ids and dates until
there are enough, so most rows are copies, and the output reports how many. Each row
is a ``purchase`` event, or ``refund`` when its dollar value is 0.

Everything is timed on frames in memory: MongoDB reads are not part of these
figures. Events are in the ``(lead_id, occurred_at, event_id)`` index order
in which :func:`analytics.simulate.simulate` loads them; one extra line
times the what-if on shuffled rows. Run from the repository root::

    .venv/bin/python benchmarks/simulate_bench.py [--events N] [--baseline-events N]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, TypeVar

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.export import stream_frames  # noqa: E402
from analytics.fold import fold_frame  # noqa: E402
from analytics.simulate import simulate_frames  # noqa: E402
from scoring import engine  # noqa: E402
from scoring.rules import Decay, RuleSet  # noqa: E402

CDNOW = ROOT / "data" / "cdnow" / "CDNOW_master.txt"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
LIVE = RuleSet(
    version=1,
    points={"purchase": 40},
    cap=500,
    decay=Decay(after=30 * 86400, every=7 * 86400, points=5),
    stages={"mql": 50, "sql": 200},
)
CANDIDATE = RuleSet(
    version=2,
    points={"purchase": 70, "refund": -30},
    cap=400,
    floor=-50,
    decay=Decay(after=60 * 86400, every=7 * 86400, points=10),
    stages={"mql": 100, "sql": 250},
)

T = TypeVar("T")


def timed(function: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    """Return the best wall time of ``repeat`` runs and the last result."""
    best = float("inf")
    result: T
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def read_cdnow() -> pl.DataFrame:
    """Read the whitespace-separated log (Polars' CSV reader needs one separator)."""
    lines = CDNOW.read_text().split("\n")[1:]
    rows = [line.split() for line in lines if line.strip()]
    return pl.DataFrame(rows, schema=["customer_id", "date", "number_of_cds", "dollar_value"], orient="row").select(
        pl.col("customer_id").cast(pl.Int64),
        pl.col("date").str.to_datetime("%Y%m%d", time_unit="ms", time_zone="UTC").alias("day"),
        pl.col("dollar_value").cast(pl.Float64),
    )


def build_events(size: int) -> tuple[pl.DataFrame, int]:
    """Replicate the CDNOW rows to ``size`` events; return them and the number of copies."""
    base = read_cdnow().with_row_index("row")
    copies = -(-size // base.height)
    # Copy k gets customer ids offset by k * 100,000 and dates 3k days later.
    # Then all dates move so that the last event falls a day before NOW.
    frames = [
        base.select(
            pl.lit("cdnow").alias("source"),
            pl.format("{}-{}", pl.lit(copy), pl.col("row")).alias("event_id"),
            pl.format("c{}", pl.col("customer_id") + copy * 100_000).alias("lead_id"),
            pl.when(pl.col("dollar_value") == 0).then(pl.lit("refund")).otherwise(pl.lit("purchase")).alias("type"),
            (pl.col("day") + timedelta(days=3 * copy)).alias("occurred_at"),
            pl.lit(LIVE.version, pl.Int64).alias("rules_version"),
        )
        for copy in range(copies)
    ]
    events = pl.concat(frames).head(size)
    shift = NOW - timedelta(days=1) - events.get_column("occurred_at").max()
    return events.with_columns(pl.col("occurred_at") + shift), copies


def per_event_baseline(events: pl.DataFrame, count: int) -> tuple[float, int]:
    """Fold the first leads' events through scoring.engine one event at a time.

    Times the engine calls a worker makes (sort a lead's events, then
    apply_event per event and apply_decay to now) on whole leads adding up
    to about ``count`` events. Building the Event objects is not timed.
    """
    leads = events.group_by("lead_id", maintain_order=True).len().with_columns(pl.col("len").cum_sum().alias("upto"))
    chosen = leads.filter(pl.col("upto") <= count).get_column("lead_id")
    subset = events.filter(pl.col("lead_id").is_in(chosen.implode()))
    by_lead: dict[str, list[engine.Event]] = {}
    for row in subset.iter_rows(named=True):
        event = engine.Event(row["lead_id"], row["event_id"], row["type"], row["occurred_at"], 2, row["source"])
        by_lead.setdefault(row["lead_id"], []).append(event)
    rules = {2: CANDIDATE}

    started = time.perf_counter()
    for lead_id, lead_events in by_lead.items():
        state = engine.LeadState()
        for event in sorted(lead_events, key=lambda item: item.key):
            state, _ = engine.apply_event(state, event, rules)
        engine.apply_decay(lead_id, state, rules, NOW)
    return time.perf_counter() - started, subset.height


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({cpu}), {memory:.1f} GiB RAM, Python {platform.python_version()}, Polars {pl.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to build (default 1,000,000)")
    parser.add_argument(
        "--baseline-events", type=int, default=50_000,
        help="events folded through the per-event engine path, extrapolated linearly (default 50,000)",
    )
    args = parser.parse_args()

    print("command:", " ".join([os.path.relpath(sys.executable), *sys.argv]))
    print("machine:", machine())
    events, copies = build_events(args.events)
    real = read_cdnow().height
    print(
        f"data: {events.height:,} events, {events.get_column('lead_id').n_unique():,} leads: the "
        f"{real:,} real CDNOW rows replicated {copies} times with shifted customer ids and dates "
        f"({events.height - min(real, events.height):,} rows are shifted copies)"
    )
    # simulate() reads events in the order of the (lead_id, occurred_at,
    # event_id) index, so the frames here come in that order too.
    events = events.sort("lead_id", "occurred_at", "event_id")
    shuffled = events.sample(fraction=1.0, shuffle=True, seed=1)

    started = time.perf_counter()
    live = fold_frame(events.head(1000), LIVE, NOW)
    print(f"numba compile or cache load (first call): {time.perf_counter() - started:.2f} s")
    live = fold_frame(events, LIVE, NOW).leads
    stored = live.select(
        "lead_id", "score", "stage", "last_activity_at",
        pl.col("rules_version").alias("anchor_version"),
        pl.when(pl.col("rules_version").is_not_null()).then(pl.lit(NOW)).alias("decayed_until"),
    )

    fold_time, _ = timed(lambda: fold_frame(events, CANDIDATE, NOW))
    whatif_time, result = timed(lambda: simulate_frames(events, stored, {1: LIVE}, CANDIDATE, NOW))
    shuffled_time, _ = timed(lambda: simulate_frames(shuffled, stored, {1: LIVE}, CANDIDATE, NOW))
    print(f"what-if fold of all events (fold_frame): {fold_time:.3f} s")
    print(
        f"what-if simulation (fold + comparison with live scores, simulate_frames): {whatif_time:.3f} s; "
        f"{result.summary['scores_changed']:,} of {result.summary['leads']:,} scores change"
    )
    print(f"what-if simulation on the same events shuffled (full sort in the fold): {shuffled_time:.3f} s")

    baseline_time, baseline_events = per_event_baseline(events, args.baseline_events)
    per_event = baseline_time / baseline_events * events.height
    print(
        f"per-event engine path: {baseline_time:.3f} s for {baseline_events:,} events, "
        f"extrapolated to {events.height:,}: {per_event:.1f} s"
    )

    points = events.with_columns(
        pl.col("type").replace_strict(dict(CANDIDATE.points), default=0, return_dtype=pl.Int64).alias("points")
    )
    floor_time, _ = timed(lambda: points.group_by("lead_id").agg(pl.col("points").sum()))
    print(f"group-by floor (Polars sum of points per lead, points resolved beforehand): {floor_time:.3f} s")

    chunks = [events.slice(offset, 50_000) for offset in range(0, events.height, 50_000)]
    export_time, size = timed(lambda: sum(len(part) for part in stream_frames(chunks, "parquet", "UTC")))
    csv_time, csv_size = timed(lambda: sum(len(part) for part in stream_frames(chunks, "csv", "UTC")), repeat=1)
    print(f"Parquet export of {events.height:,} events (in memory, 50,000-row chunks): {export_time:.3f} s, {size / 2**20:.1f} MiB")
    print(f"CSV export of the same events: {csv_time:.3f} s, {csv_size / 2**20:.1f} MiB")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"peak memory (ru_maxrss): {peak:.0f} MiB")

    checks = [
        ("what-if simulation < 1 s", whatif_time < 1.0),
        (f">= 50x the per-event path ({per_event / whatif_time:.0f}x)", per_event / whatif_time >= 50),
        (f"within 20x of the group-by floor ({whatif_time / floor_time:.1f}x)", whatif_time / floor_time <= 20),
        ("Parquet export < 3 s", export_time < 3.0),
    ]
    for label, passed in checks:
        print(f"target {'met' if passed else 'MISSED'}: {label}")


if __name__ == "__main__":
    main()
