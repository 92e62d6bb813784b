"""Generate data/generated/engagement_events.csv: synthetic non-purchase events.

The CDNOW log holds only purchases. To show several event types in the demo,
this script invents e-mail, web and form events for a deterministic sample of
CDNOW customers, dated in the days before and after each one's first
purchase. Nothing here is real behaviour; the output file says so in its
header. Run: python scripts/generate_engagement.py
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "data" / "cdnow" / "CDNOW_master.txt"
TARGET = ROOT / "data" / "generated" / "engagement_events.csv"
TYPES = ["email_open", "email_click", "page_view", "pricing_view", "form_submit", "demo_request", "unsubscribe"]
WEIGHTS = [30, 12, 30, 10, 8, 4, 2]


def main() -> None:
    random_source = random.Random(20261204)
    first_purchase: dict[str, datetime] = {}
    with SOURCE.open() as handle:
        next(handle)
        for line in handle:
            customer, day, _cds, _dollars = line.split()
            first_purchase.setdefault(customer, datetime.strptime(day, "%Y%m%d").replace(tzinfo=timezone.utc))
    customers = sorted(first_purchase)[::12]

    lines = [
        "# GENERATED DATA, not real behaviour: synthetic engagement events for the ScoreStream demo,",
        "# made by scripts/generate_engagement.py (seeded, reproducible) for a sample of CDNOW customer ids.",
        "event_id,lead_id,type,occurred_at",
    ]
    number = 0
    for customer in customers:
        for _ in range(random_source.randint(1, 5)):
            offset = timedelta(days=random_source.randint(-20, 60), minutes=random_source.randint(0, 24 * 60 - 1))
            when = first_purchase[customer] + offset
            event_type = random_source.choices(TYPES, WEIGHTS)[0]
            number += 1
            lines.append(f"gen-{number},cdnow-{customer},{event_type},{when.isoformat()}")
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text("\n".join(lines) + "\n")
    print(f"wrote {number} generated events for {len(customers)} customers to {TARGET}")


if __name__ == "__main__":
    main()
