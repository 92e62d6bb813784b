"""Fixtures for the analytics tests: a real embedded MongoDB and scored sample data."""

from __future__ import annotations

import itertools
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import polars as pl
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from scorestream.config import load_settings
from scorestream.services import Services, start_embedded
from scoring.rules import Decay, RuleSet
from scoring.store import Store, payload_hash
from scoring.worker import score_lead

ROOT = Path(__file__).resolve().parents[2]
CDNOW = ROOT / "data" / "cdnow" / "CDNOW_master.txt"
NOW = datetime(2024, 7, 1, 12, tzinfo=timezone.utc)

_names = itertools.count()


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Start the embedded MongoDB and Redis once for the analytics tests."""
    started = start_embedded(load_settings(env={}, data_dir=tmp_path_factory.mktemp("svc")))
    yield started
    started.stop()


@pytest.fixture(scope="session")
def client(services: Services) -> Iterator[MongoClient]:
    """A MongoDB client returning aware UTC datetimes, as the runtime's does."""
    mongo = MongoClient(services.mongo_uri, tz_aware=True)
    yield mongo
    mongo.close()


@pytest.fixture
def new_db(client: MongoClient) -> Callable[[], Database]:
    """Return a factory of empty databases, one per call, with the store's indexes."""

    def make() -> Database:
        db = client[f"analytics_{os.getpid()}_{next(_names)}"]
        Store(db).ensure_indexes()
        return db

    return make


def event_document(
    lead_id: str,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    rules_version: int,
    source: str = "test",
    properties: dict[str, Any] | None = None,
    **profile: Any,
) -> dict[str, Any]:
    """Build an ``events`` document as the ingest path stores it."""
    document: dict[str, Any] = {
        "source": source,
        "event_id": event_id,
        "lead_id": lead_id,
        "type": event_type,
        "occurred_at": occurred_at,
        "received_at": NOW,
        "properties": properties or {},
        "rules_version": rules_version,
        "scored": False,
        "batch_id": None,
        "email": profile.get("email"),
        "name": profile.get("name"),
        "company": profile.get("company"),
    }
    document["payload_hash"] = payload_hash(document)
    return document


def insert_and_score(store: Store, documents: list[dict[str, Any]], now: datetime = NOW) -> None:
    """Insert events and fold them with the worker, as the queue would."""
    store.insert_events(documents)
    for lead_id in sorted({document["lead_id"] for document in documents}):
        score_lead(store, lead_id, now=now)


def cdnow_frame(customers: int) -> pl.DataFrame:
    """Read the first ``customers`` CDNOW customers, dates shifted to end a day before NOW.

    Each row gets its own number in ``row``, later the event id, because the
    purchase log lists some identical purchases twice and both count.
    """
    frame = _read_cdnow()
    frame = frame.filter(pl.col("customer_id").cast(pl.Int64) <= customers)
    shift = NOW - timedelta(days=1) - datetime(1998, 6, 30, tzinfo=timezone.utc)
    return frame.with_columns(
        (pl.col("date").str.to_datetime("%Y%m%d", time_unit="ms", time_zone="UTC") + shift).alias("occurred_at"),
        pl.int_range(pl.len()).alias("row"),
    )


def _read_cdnow() -> pl.DataFrame:
    lines = CDNOW.read_text().split("\n")[1:]
    fields = [line.split() for line in lines if line.strip()]
    return pl.DataFrame(
        fields, schema=["customer_id", "date", "number_of_cds", "dollar_value"], orient="row"
    ).with_columns(pl.col("number_of_cds").cast(pl.Int64), pl.col("dollar_value").cast(pl.Float64))


CDNOW_RULES = RuleSet(
    version=0,
    points={"purchase": 40},
    cap=200,
    floor=0,
    decay=Decay(after=30 * 86400, every=7 * 86400, points=5),
    stages={"mql": 50, "sql": 150},
)


def cdnow_documents(frame: pl.DataFrame, rules_version: int) -> list[dict[str, Any]]:
    """Turn CDNOW rows into events: ``purchase``, or ``refund`` for a dollar value of 0.

    ``refund`` has no points under :data:`CDNOW_RULES`, so the data also
    contains events of an unknown type.
    """
    return [
        event_document(
            f"c{row['customer_id']}",
            f"cdnow-{row['row']}",
            "refund" if row["dollar_value"] == 0 else "purchase",
            row["occurred_at"],
            rules_version,
            source="cdnow",
            properties={"number_of_cds": row["number_of_cds"], "dollar_value": row["dollar_value"]},
        )
        for row in frame.iter_rows(named=True)
    ]


@pytest.fixture(scope="session")
def cdnow_db(client: MongoClient) -> Database:
    """A database with 300 CDNOW customers' events scored by the worker under one rule set."""
    db = client[f"analytics_{os.getpid()}_cdnow"]
    store = Store(db)
    store.ensure_indexes()
    live = store.publish_rules(CDNOW_RULES, published_by="tests")
    insert_and_score(store, cdnow_documents(cdnow_frame(300), live.version))
    return db
