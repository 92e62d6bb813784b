"""CSV and Parquet exports read back equal to the stored data."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Callable

import polars as pl
import pyarrow as pa
import pytest
from pymongo.database import Database

from analytics.export import stream_export, write_export
from analytics.loaders import load_events, load_history, load_leads
from scoring.rules import RuleSet
from scoring.store import Store

from conftest import NOW, event_document, insert_and_score

TRICKY = ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tTab", "\rCR", 'comma, "quote"', "line\nbreak", "plain"]


@pytest.fixture(scope="module")
def export_db(client) -> Database:
    db = client["analytics_export"]
    client.drop_database(db.name)
    store = Store(db)
    store.ensure_indexes()
    live = store.publish_rules(
        RuleSet(points={"visit": 10, "unsubscribe": -30}, floor=-100, stages={"mql": 5}), published_by="tests"
    )
    day = NOW - timedelta(days=3)
    documents = []
    for index, text in enumerate(TRICKY):
        lead_id = f"lead-{index}"
        documents.append(
            event_document(lead_id, f"{index}-a", "visit", day, live.version, name=text, company=text,
                           properties={"plan": text, "seats": index})
        )
        documents.append(
            event_document(lead_id, f"{index}-b", "unsubscribe", day + timedelta(hours=index), live.version)
        )
    insert_and_score(Store(db), documents)
    return db


def read_csv(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline=""), strict=True))


def test_csv_leads_round_trip(export_db: Database) -> None:
    data = b"".join(stream_export(export_db, "leads", "csv", chunk_rows=4, now=NOW))
    rows = read_csv(data)
    header, body = rows[0], rows[1:]
    stored = load_leads(export_db).sort("lead_id")

    assert data.count(b"\r\n") >= len(rows)
    assert header[:6] == ["lead_id", "email", "name", "company", "score", "stage"]
    assert len(body) == stored.height == len(TRICKY)
    by_id = {row[0]: dict(zip(header, row)) for row in body}
    for lead in stored.iter_rows(named=True):
        row = by_id[lead["lead_id"]]
        assert int(row["score"]) == lead["score"]
        expected = lead["name"] if not lead["name"][0] in "=+-@\t\r" else "'" + lead["name"]
        assert row["name"] == expected


def test_csv_neutralises_formulas_keeps_numbers(export_db: Database) -> None:
    rows = read_csv(b"".join(stream_export(export_db, "leads", "csv", now=NOW)))
    header = rows[0]
    names = {row[header.index("name")] for row in rows[1:]}
    scores = [row[header.index("score")] for row in rows[1:]]

    for cell in ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "'\tTab", "'\rCR"]:
        assert cell in names
    assert 'comma, "quote"' in names
    assert "line\nbreak" in names
    assert "-20" in scores
    assert all(not score.startswith("'") for score in scores)


def test_csv_timestamps_follow_tz(export_db: Database) -> None:
    rows = read_csv(b"".join(stream_export(export_db, "events", "csv", tz="Asia/Kolkata")))
    header = rows[0]
    stamps = [row[header.index("occurred_at")] for row in rows[1:]]
    events = load_events(export_db).sort("lead_id", "occurred_at", "event_id")

    assert all(stamp.endswith("+05:30") for stamp in stamps)
    parsed = [datetime.fromisoformat(stamp) for stamp in stamps]
    assert parsed == events.get_column("occurred_at").to_list()


def test_parquet_round_trip_equal(export_db: Database, tmp_path) -> None:
    for kind, loader, order in [
        ("events", load_events, ["lead_id", "occurred_at", "event_id"]),
        ("history", load_history, ["lead_id", "seq"]),
    ]:
        path = tmp_path / f"{kind}.parquet"
        write_export(export_db, kind, path, tz="Europe/Paris", chunk_rows=5)
        back = pl.read_parquet(path)
        stored = loader(export_db).sort(order).select(back.columns)

        assert back.schema["at" if kind == "history" else "occurred_at"].time_zone == "Europe/Paris"
        assert back.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC")).equals(stored)


def test_parquet_leads_scores_match(export_db: Database) -> None:
    data = b"".join(stream_export(export_db, "leads", "parquet", chunk_rows=2, now=NOW))
    back = pl.read_parquet(io.BytesIO(data))
    stored = load_leads(export_db).sort("lead_id")

    assert back.get_column("lead_id").to_list() == stored.get_column("lead_id").to_list()
    assert back.get_column("score").to_list() == stored.get_column("score").to_list()
    assert back.get_column("name").to_list() == stored.get_column("name").to_list()


def test_export_events_with_properties(export_db: Database) -> None:
    data = b"".join(
        stream_export(export_db, "events", "parquet", properties={"plan": pa.string(), "seats": pa.int64()},
                      types=["visit"])
    )
    back = pl.read_parquet(io.BytesIO(data))

    assert back.height == len(TRICKY)
    assert sorted(back.get_column("properties.seats").to_list()) == list(range(len(TRICKY)))
    assert set(back.get_column("properties.plan")) == set(TRICKY)


def test_export_filters_by_lead(export_db: Database) -> None:
    rows = read_csv(b"".join(stream_export(export_db, "history", "csv", lead_ids=["lead-1"])))

    assert len(rows) == 1 + 2
    assert {row[0] for row in rows[1:]} == {"lead-1"}


def test_export_empty_result_has_header(export_db: Database) -> None:
    rows = read_csv(b"".join(stream_export(export_db, "events", "csv", lead_ids=["nobody"])))

    assert rows[0][0] == "source"
    assert len(rows) == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"kind": "leads", "tz": "Mars/Olympus"}, "Mars/Olympus"),
        ({"kind": "leads", "fmt": "xlsx"}, "xlsx"),
        ({"kind": "deals"}, "deals"),
        ({"kind": "leads", "types": ["visit"]}, "types"),
    ],
    ids=["bad-tz", "bad-format", "bad-kind", "bad-filter"],
)
def test_export_rejects_bad_arguments(export_db: Database, arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stream_export(export_db, **arguments)


def test_export_chunks_stream(new_db: Callable[[], Database]) -> None:
    db = new_db()
    store = Store(db)
    live = store.publish_rules(RuleSet(points={"visit": 1}), published_by="tests")
    day = datetime(2024, 1, 1, tzinfo=timezone.utc)
    store.insert_events([event_document(f"l{i:03d}", str(i), "visit", day, live.version) for i in range(250)])

    chunks = list(stream_export(db, "events", "csv", chunk_rows=100))

    assert len(chunks) == 3
    assert chunks[0].startswith(b"source,")
    assert not chunks[1].startswith(b"source,")
    assert sum(chunk.count(b"\r\n") for chunk in chunks) == 251
