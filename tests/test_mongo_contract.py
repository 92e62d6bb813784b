"""Contract tests: every MongoDB behaviour ScoreStream relies on.

They run against whatever ``MONGO_URI`` the session uses (the embedded
nx-27017 by default), so a difference between it and MongoDB shows up here
first. Known gaps of the embedded server are asserted as what the code
avoids, not as what it uses.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timezone
from typing import Iterator

import pytest
from pymongo import ASCENDING, DESCENDING, MongoClient, ReplaceOne
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from scorestream.services import Services


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[MongoClient]:
    mongo = MongoClient(services.mongo_uri, tz_aware=True)
    yield mongo
    mongo.close()


@pytest.fixture
def collection(client: MongoClient) -> Collection:
    return client["contract"][f"c{uuid.uuid4().hex[:8]}"]


def test_unique_index_raises_duplicate_key(collection: Collection) -> None:
    collection.create_index([("source", ASCENDING), ("event_id", ASCENDING)], unique=True)
    collection.insert_one({"source": "a", "event_id": "1"})
    with pytest.raises(DuplicateKeyError):
        collection.insert_one({"source": "a", "event_id": "1"})
    collection.insert_one({"source": "b", "event_id": "1"})
    assert collection.count_documents({}) == 2


def test_unordered_insert_reports_each_duplicate(collection: Collection) -> None:
    collection.create_index([("source", ASCENDING), ("event_id", ASCENDING)], unique=True)
    collection.insert_one({"source": "a", "event_id": "1"})
    documents = [{"source": "a", "event_id": "0"}, {"source": "a", "event_id": "1"}, {"source": "a", "event_id": "2"}]
    with pytest.raises(BulkWriteError) as caught:
        collection.insert_many(documents, ordered=False)
    errors = caught.value.details["writeErrors"]
    assert [error["index"] for error in errors] == [1]
    assert errors[0]["code"] == 11000
    assert sorted(doc["event_id"] for doc in collection.find()) == ["0", "1", "2"]


def test_insert_keeps_datetimes(collection: Collection) -> None:
    moment = datetime(2025, 3, 1, 12, 30, 15, 123000, tzinfo=timezone.utc)
    collection.insert_one({"k": 1, "at": moment})
    assert collection.find_one({"at": {"$gte": moment}})["at"] == moment


def test_replace_keeps_datetimes(collection: Collection) -> None:
    moment = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
    collection.insert_one({"k": 1, "revision": 0})
    collection.replace_one({"k": 1, "revision": 0}, {"k": 1, "revision": 1, "at": moment})
    found = collection.find_one({"at": {"$lte": moment}})
    assert found is not None
    assert found["at"] == moment


def test_compare_and_set_replace_loses_stale_revision(collection: Collection) -> None:
    collection.insert_one({"lead_id": "a", "revision": 0, "score": 0})
    assert collection.replace_one({"lead_id": "a", "revision": 0}, {"lead_id": "a", "revision": 1, "score": 5}).matched_count == 1
    assert collection.replace_one({"lead_id": "a", "revision": 0}, {"lead_id": "a", "revision": 1, "score": 9}).matched_count == 0
    assert collection.find_one({"lead_id": "a"})["score"] == 5


def test_compare_and_set_loses_no_update(collection: Collection) -> None:
    collection.insert_one({"lead_id": "a", "revision": 0, "score": 0})

    def add_ones() -> None:
        for _ in range(30):
            while True:
                current = collection.find_one({"lead_id": "a"})
                new = {"lead_id": "a", "revision": current["revision"] + 1, "score": current["score"] + 1}
                if collection.replace_one({"lead_id": "a", "revision": current["revision"]}, new).matched_count:
                    break

    threads = [threading.Thread(target=add_ones) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert collection.find_one({"lead_id": "a"})["score"] == 120


def test_bulk_replace_counts_matches(collection: Collection) -> None:
    collection.insert_many([{"lead_id": str(n), "revision": 0} for n in range(3)])
    operations = [
        ReplaceOne({"lead_id": "0", "revision": 0}, {"lead_id": "0", "revision": 1}),
        ReplaceOne({"lead_id": "1", "revision": 5}, {"lead_id": "1", "revision": 6}),
        ReplaceOne({"lead_id": "2", "revision": 0}, {"lead_id": "2", "revision": 1}),
    ]
    assert collection.bulk_write(operations, ordered=False).matched_count == 2


def test_leaderboard_sort_is_stable(collection: Collection) -> None:
    collection.create_index([("score", DESCENDING), ("lead_id", ASCENDING)])
    collection.insert_many([{"lead_id": name, "score": score} for name, score in [("b", 5), ("a", 5), ("c", 9), ("d", -1)]])
    ordered = [doc["lead_id"] for doc in collection.find().sort([("score", DESCENDING), ("lead_id", ASCENDING)])]
    assert ordered == ["c", "a", "b", "d"]


def test_cursor_page_query_with_or(collection: Collection) -> None:
    collection.insert_many([{"lead_id": name, "score": score} for name, score in [("a", 5), ("b", 5), ("c", 3)]])
    query = {"$or": [{"score": {"$lt": 5}}, {"score": 5, "lead_id": {"$gt": "a"}}]}
    found = [doc["lead_id"] for doc in collection.find(query).sort([("score", DESCENDING), ("lead_id", ASCENDING)])]
    assert found == ["b", "c"]


def test_in_query_and_update_many(collection: Collection) -> None:
    collection.insert_many([{"lead_id": str(n), "scored": False} for n in range(5)])
    ids = [doc["_id"] for doc in collection.find({"lead_id": {"$in": ["1", "3"]}})]
    collection.update_many({"_id": {"$in": ids}}, {"$set": {"scored": True}})
    assert sorted(doc["lead_id"] for doc in collection.find({"scored": False})) == ["0", "2", "4"]


def test_delete_many_by_range(collection: Collection) -> None:
    collection.insert_many([{"lead_id": "a", "seq": n, "revision": n % 2} for n in range(6)])
    collection.delete_many({"lead_id": "a", "seq": {"$gte": 2}, "revision": {"$lt": 1}})
    assert [doc["seq"] for doc in collection.find().sort("seq", ASCENDING)] == [0, 1, 3, 5]


def test_distinct_and_projection(collection: Collection) -> None:
    collection.insert_many([{"lead_id": "a", "x": 1}, {"lead_id": "a", "x": 2}, {"lead_id": "b", "x": 3}])
    assert sorted(collection.distinct("lead_id")) == ["a", "b"]
    assert collection.find_one({"x": 3}, {"_id": 0, "lead_id": 1}) == {"lead_id": "b"}


def test_compare_and_set_by_id_and_revision(collection: Collection) -> None:
    document_id = collection.insert_one({"lead_id": "a", "revision": 0}).inserted_id
    assert collection.replace_one({"_id": document_id, "revision": 0}, {"lead_id": "a", "revision": 1}).matched_count == 1
    assert collection.replace_one({"_id": document_id, "revision": 0}, {"lead_id": "a", "revision": 2}).matched_count == 0
    assert collection.find_one({"lead_id": "a"})["_id"] == document_id
    assert collection.find_one({"lead_id": "a"})["revision"] == 1
