"""The demo load: real CDNOW purchases (plus generated engagement events) through the batch API.

CDNOW dates are from 1997-1998. The whole log is shifted by a whole number of
days so that its last purchase falls on the day of the load, keeping every gap
between events; otherwise decay would have taken every lead to 0. The shift is
logged and stored in each event's ``properties.shifted_days``.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import requests

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CDNOW_FILE = DATA_DIR / "cdnow" / "CDNOW_master.txt"
GENERATED_FILE = DATA_DIR / "generated" / "engagement_events.csv"
CDNOW_LAST_DAY = date(1998, 6, 30)
UPLOAD_ROWS = 10_000
CSV_COLUMNS = ["event_id", "lead_id", "type", "occurred_at", "source", "amount", "cds", "shifted_days"]


def shift_days(today: date) -> int:
    """Return the whole days that move the last CDNOW day onto ``today``."""
    return (today - CDNOW_LAST_DAY).days


def cdnow_rows(path: Path = CDNOW_FILE, shift: int = 0) -> Iterator[dict[str, object]]:
    """Yield one ``purchase`` event per CDNOW row, dated ``shift`` days later.

    ``event_id`` is the row's line number, so the 255 rows that repeat another
    row exactly stay separate purchases, as they are in the published log.
    """
    with path.open() as handle:
        next(handle)
        for line_number, line in enumerate(handle, start=2):
            customer, day, cds, dollars = line.split()
            when = datetime.strptime(day, "%Y%m%d").replace(tzinfo=timezone.utc) + timedelta(days=shift)
            yield {
                "event_id": f"cdnow-{line_number}",
                "lead_id": f"cdnow-{customer}",
                "type": "purchase",
                "occurred_at": when.isoformat(),
                "source": "cdnow",
                "amount": dollars,
                "cds": cds,
                "shifted_days": shift,
            }


def generated_rows(path: Path = GENERATED_FILE, shift: int = 0) -> Iterator[dict[str, object]]:
    """Yield the generated engagement events, shifted like the purchases."""
    with path.open(newline="") as handle:
        for row in csv.DictReader(line for line in handle if not line.startswith("#")):
            when = datetime.fromisoformat(row["occurred_at"]) + timedelta(days=shift)
            yield {
                "event_id": row["event_id"],
                "lead_id": row["lead_id"],
                "type": row["type"],
                "occurred_at": when.isoformat(),
                "source": "generated",
                "amount": "",
                "cds": "",
                "shifted_days": shift,
            }


def to_csv(rows: list[dict[str, object]]) -> bytes:
    """Encode rows as CSV with the demo's columns."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode()


@dataclass
class DemoReport:
    """Counts and timings of a demo load."""

    sent: int
    accepted: int
    duplicates: int
    rejected: int
    upload_seconds: float
    scored_seconds: float
    shift: int

    @property
    def events_per_second(self) -> float:
        """Accepted events per second from the first upload until the last was scored."""
        return self.accepted / self.scored_seconds if self.scored_seconds else 0.0


def load_demo(
    base_url: str,
    headers: dict[str, str] | None = None,
    today: date | None = None,
    timeout: float = 1800,
    limit: int | None = None,
) -> DemoReport:
    """Upload the sample data through ``POST /api/events/batch`` and wait until it is scored.

    ``limit`` keeps only the first rows of the CDNOW log and the generated
    events of the same customers, for a quicker look.
    """
    shift = shift_days(today or datetime.now(timezone.utc).date())
    logger.info("demo: shifting CDNOW dates by %d days so the last purchase falls on the load day", shift)
    rows = list(cdnow_rows(shift=shift))
    if limit is not None:
        rows = rows[:limit]
    customers = {row["lead_id"] for row in rows}
    rows.extend(row for row in generated_rows(shift=shift) if row["lead_id"] in customers)
    # Like a historical import, each customer's events go together and in
    # time order, so they fold in order instead of re-folding leads for
    # every generated event older than a purchase.
    rows.sort(key=lambda row: (row["lead_id"], row["occurred_at"], row["event_id"]))

    started = time.perf_counter()
    accepted = duplicates = rejected = 0
    batches: list[str] = []
    session = requests.Session()
    for start in range(0, len(rows), UPLOAD_ROWS):
        body = to_csv(rows[start : start + UPLOAD_ROWS])
        response = session.post(
            f"{base_url}/api/events/batch",
            data=body,
            headers={"Content-Type": "text/csv", **(headers or {})},
            timeout=600,
        )
        if response.status_code != 202:
            raise RuntimeError(f"demo upload failed with {response.status_code}: {response.text[:500]}")
        answer = response.json()
        accepted += answer["accepted"]
        duplicates += answer["duplicates"]
        rejected += answer["rejected"]
        batches.append(answer["batch_id"])
    uploaded = time.perf_counter() - started

    deadline = time.monotonic() + timeout
    for batch_id in batches:
        while True:
            try:
                progress = session.get(f"{base_url}/api/events/batch/{batch_id}", timeout=120).json()
            except requests.Timeout:
                # A busy embedded server can be slow to answer; the load goes on.
                logger.warning("demo: progress request for batch %s timed out after 120 s; retrying", batch_id)
                continue
            if progress["done"]:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"demo batch {batch_id} still has {progress['pending']} unscored events")
            time.sleep(1)
    scored = time.perf_counter() - started
    return DemoReport(len(rows), accepted, duplicates, rejected, uploaded, scored, shift)
