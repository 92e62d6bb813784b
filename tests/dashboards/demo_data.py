"""Load a small CDNOW subset through the real batch API, for the dashboard and notebook tests.

The full demo (69,659 purchases) takes minutes to score on the embedded
servers, so the tests upload only the first rows of the log: enough leads
and repeat purchases for the leaderboard, the trends, a what-if with a
purchase backtest and the exports, in a few seconds.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timezone

import requests

from scorestream.demo import cdnow_rows, shift_days, to_csv

SUBSET_ROWS = 1500


def load_cdnow_subset(base_url: str, rows: int = SUBSET_ROWS, timeout: float = 120) -> list[str]:
    """Upload the first ``rows`` CDNOW purchases, wait until they are scored, return their lead ids.

    Dates are shifted as the demo shifts them, so the last purchase falls on
    today and decay has not taken every score to 0. Re-uploading the same
    rows is harmless: they are duplicates and score nothing.
    """
    shift = shift_days(datetime.now(timezone.utc).date())
    subset = list(itertools.islice(cdnow_rows(shift=shift), rows))
    response = requests.post(
        f"{base_url}/api/events/batch", data=to_csv(subset), headers={"Content-Type": "text/csv"}, timeout=120
    )
    assert response.status_code == 202, response.text
    batch_id = response.json()["batch_id"]

    deadline = time.monotonic() + timeout
    while True:
        progress = requests.get(f"{base_url}/api/events/batch/{batch_id}", timeout=30).json()
        if progress["done"]:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id} still had {progress['pending']} unscored events after {timeout} s")
        time.sleep(0.3)
    return sorted({str(row["lead_id"]) for row in subset})
