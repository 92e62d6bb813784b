"""Loaders push filters and projections to MongoDB and keep UTC types."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

import polars as pl
import pyarrow as pa
import pytest
from pymongo.database import Database

from analytics.loaders import iter_frames, build_schema, EVENT_FIELDS, load_events, load_history, load_rule_sets, live_rule_set
from scoring.rules import RuleSet
from scoring.store import Store

from conftest import event_document

DAY = datetime(2024, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def loader_db(client) -> Database:
    db = client["analytics_loaders"]
    client.drop_database(db.name)
    store = Store(db)
    store.ensure_indexes()
    store.publish_rules(RuleSet(points={"a": 1}), published_by="tests")
    live = store.publish_rules(RuleSet(points={"a": 2}), published_by="tests")
    store.insert_events(
        [
            event_document("l1", "1", "a", DAY, live.version, properties={"plan": "pro", "seats": 3}),
            event_document("l1", "2", "b", DAY + timedelta(days=1), live.version, properties={"plan": 7}),
            event_document("l2", "3", "a", DAY + timedelta(days=2), live.version, source="hook"),
        ]
    )
    return db


def test_load_events_filters_in_database(loader_db: Database) -> None:
    frame = load_events(loader_db, start=DAY + timedelta(hours=1), types=["a", "b"], columns=["event_id", "occurred_at"])

    assert frame.columns == ["event_id", "occurred_at"]
    assert sorted(frame.get_column("event_id")) == ["2", "3"]
    assert frame.schema["occurred_at"] == pl.Datetime("ms", "UTC")
    assert load_events(loader_db, lead_ids=["l2"], sources=["hook"]).height == 1
    assert load_events(loader_db, end=DAY + timedelta(days=1)).get_column("event_id").to_list() == ["1"]


def test_load_events_properties_by_name(loader_db: Database) -> None:
    frame = load_events(loader_db, types=["a"], columns=["event_id"], properties={"seats": pa.int64()})

    seats = dict(zip(frame.get_column("event_id"), frame.get_column("properties").struct.field("seats")))
    assert seats == {"1": 3, "3": None}


def test_load_events_mixed_property_types_raise(loader_db: Database) -> None:
    with pytest.raises(TypeError, match="int32"):
        load_events(loader_db, columns=["event_id"], properties={"plan": pa.string()})


def test_load_events_empty_keeps_schema(loader_db: Database) -> None:
    frame = load_events(loader_db, lead_ids=[])

    assert frame.height == 0
    assert frame.schema["rules_version"] == pl.Int64


def test_unknown_column_lists_allowed(loader_db: Database) -> None:
    with pytest.raises(ValueError, match="occurred_at"):
        load_events(loader_db, columns=["when"])


def test_rule_sets_and_live(loader_db: Database) -> None:
    rule_sets = load_rule_sets(loader_db)

    assert sorted(rule_sets) == [1, 2]
    assert live_rule_set(rule_sets).points == {"a": 2}


def test_iter_frames_chunks(loader_db: Database) -> None:
    schema = build_schema(EVENT_FIELDS, ["event_id"])
    frames = list(iter_frames(loader_db["events"], {}, schema, batch_size=2, sort=[("event_id", 1)]))

    assert [frame.height for frame in frames] == [2, 1]
    assert pl.concat(frames).get_column("event_id").to_list() == ["1", "2", "3"]


def test_load_history_empty(new_db: Callable[[], Database]) -> None:
    assert load_history(new_db()).height == 0
