"""Load ScoreStream collections from MongoDB into Polars.

Every loader goes through pymongoarrow with an explicit Arrow schema, so BSON
is decoded into columns in C without building Python objects, and the filter
and the projection run in the database. Datetimes load as ``Datetime("ms",
"UTC")``, BSON's own precision.

Aggregation happens in Polars after a filtered, projected load. The embedded
MongoDB-compatible server (nx-27017 0.8.1) computes compound ``$group`` keys
and ``$dateTrunc`` inside ``$group`` wrongly, and pymongoarrow's
``aggregate_polars_all`` fails against it, while ``find`` works everywhere.

``properties`` is a free-form object, so its keys and value types differ
between events. Without a schema, pymongoarrow infers one struct from the
values it meets first and turns later values of another type into nulls, and
with a schema it raises on a mismatch. The loaders therefore leave
``properties`` out unless the caller names the keys and their types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Iterator, Mapping, Sequence

import polars as pl
import pyarrow as pa
from pymongo import ASCENDING
from pymongo.collection import Collection
from pymongo.database import Database
from pymongoarrow.api import Schema, find_polars_all
from pymongoarrow.context import PyMongoArrowContext

from scoring.rules import RuleSet, rule_set_from_document

UTC_MS = pa.timestamp("ms", tz="UTC")

#: Arrow types of the ``events`` fields, ``properties`` aside. The worker's
#: ``scored`` flag is left out: it is internal, and nx-27017 0.8.1 stores a
#: ``$set`` boolean as the integer 1, which a typed column would reject.
EVENT_FIELDS: dict[str, pa.DataType] = {
    "source": pa.string(),
    "event_id": pa.string(),
    "lead_id": pa.string(),
    "type": pa.string(),
    "occurred_at": UTC_MS,
    "received_at": UTC_MS,
    "rules_version": pa.int64(),
    "payload_hash": pa.string(),
    "batch_id": pa.string(),
    "email": pa.string(),
    "name": pa.string(),
    "company": pa.string(),
}

#: Arrow types of the ``leads`` fields; ``last_key`` is the engine's internal state.
LEAD_FIELDS: dict[str, pa.DataType] = {
    "lead_id": pa.string(),
    "email": pa.string(),
    "name": pa.string(),
    "company": pa.string(),
    "score": pa.int64(),
    "stage": pa.string(),
    "last_activity_at": UTC_MS,
    "event_count": pa.int64(),
    "created_at": UTC_MS,
    "updated_at": UTC_MS,
    "revision": pa.int64(),
    "anchor_version": pa.int64(),
    "decayed_until": UTC_MS,
    "row_count": pa.int64(),
    "next_decay_at": UTC_MS,
}

#: Arrow types of the ``score_history`` fields.
HISTORY_FIELDS: dict[str, pa.DataType] = {
    "lead_id": pa.string(),
    "seq": pa.int64(),
    "at": UTC_MS,
    "cause": pa.string(),
    "event_id": pa.string(),
    "event_type": pa.string(),
    "source": pa.string(),
    "rule_points": pa.int64(),
    "points": pa.int64(),
    "score_before": pa.int64(),
    "score_after": pa.int64(),
    "stage_before": pa.string(),
    "stage_after": pa.string(),
    "rules_version": pa.int64(),
    "revision": pa.int64(),
}

#: The order of the ``(lead_id, occurred_at, event_id)`` index on ``events``.
EVENT_INDEX_ORDER = [("lead_id", ASCENDING), ("occurred_at", ASCENDING), ("event_id", ASCENDING)]

#: Event columns the fold needs.
FOLD_COLUMNS = ("lead_id", "occurred_at", "event_id", "source", "type", "rules_version")


def build_schema(
    fields: Mapping[str, pa.DataType],
    columns: Sequence[str] | None = None,
    properties: Mapping[str, pa.DataType] | None = None,
) -> Schema:
    """Build a pymongoarrow schema from a subset of ``fields`` and property keys.

    Parameters
    ----------
    fields : mapping of str to pyarrow.DataType
        The collection's known fields, for example :data:`EVENT_FIELDS`.
    columns : sequence of str, optional
        Fields to load, all of them by default. An unknown name raises
        ``ValueError`` listing the allowed ones.
    properties : mapping of str to pyarrow.DataType, optional
        Keys of the event's ``properties`` object to load as a
        ``properties`` struct column.

    Examples
    --------
    >>> list(build_schema(EVENT_FIELDS, ["lead_id", "type"]).typemap)
    ['lead_id', 'type']
    """
    names = list(fields) if columns is None else list(columns)
    unknown = [name for name in names if name not in fields]
    if unknown:
        raise ValueError(f"unknown columns {unknown}; choose from {sorted(fields)}")
    typemap: dict[str, Any] = {name: fields[name] for name in names}
    if properties:
        typemap["properties"] = pa.struct(list(properties.items()))
    return Schema(typemap)


def _time_range(field: str, start: datetime | None, end: datetime | None) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if start is not None:
        bounds["$gte"] = start
    if end is not None:
        bounds["$lt"] = end
    return {field: bounds} if bounds else {}


def _members(field: str, values: Iterable[Any] | None) -> dict[str, Any]:
    if values is None:
        return {}
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{field} filter takes a list of values, not the single string {values!r}")
    return {field: {"$in": list(values)}}


def event_filter(
    start: datetime | None = None,
    end: datetime | None = None,
    types: Iterable[str] | None = None,
    lead_ids: Iterable[str] | None = None,
    sources: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Build the MongoDB filter on ``events`` for a time range and id lists.

    ``start`` is inclusive and ``end`` exclusive, on ``occurred_at``.

    >>> event_filter(types=["purchase"], lead_ids=["a"])
    {'type': {'$in': ['purchase']}, 'lead_id': {'$in': ['a']}}
    """
    return {
        **_time_range("occurred_at", start, end),
        **_members("type", types),
        **_members("lead_id", lead_ids),
        **_members("source", sources),
    }


def load_events(
    db: Database,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    types: Iterable[str] | None = None,
    lead_ids: Iterable[str] | None = None,
    sources: Iterable[str] | None = None,
    columns: Sequence[str] | None = None,
    properties: Mapping[str, pa.DataType] | None = None,
    sort: bool = False,
) -> pl.DataFrame:
    """Load events into a DataFrame, filtered and projected in the database.

    Parameters
    ----------
    db : pymongo.database.Database
        The ScoreStream database.
    start, end : datetime, optional
        ``occurred_at`` range, start inclusive, end exclusive (aware UTC).
    types, lead_ids, sources : iterable of str, optional
        Keep only these event types, leads or sources.
    columns : sequence of str, optional
        Fields of :data:`EVENT_FIELDS` to load; all by default.
    properties : mapping of str to pyarrow.DataType, optional
        ``properties`` keys to load, with their types, as a struct column.
        A stored value of another type raises ``TypeError``.
    sort : bool
        Return rows in ``(lead_id, occurred_at, event_id)`` order, read
        through the index of that name, which makes the fold's own sort
        cheap.

    Returns
    -------
    polars.DataFrame
        One row per event, in no particular order unless ``sort``.
    """
    schema = build_schema(EVENT_FIELDS, columns, properties)
    query = event_filter(start, end, types, lead_ids, sources)
    return _find(db["events"], query, schema, sort=EVENT_INDEX_ORDER if sort else None)


def load_leads(
    db: Database,
    *,
    lead_ids: Iterable[str] | None = None,
    stages: Iterable[str] | None = None,
    min_score: int | None = None,
    columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Load stored leads, optionally only some ids, stages or scores.

    The ``score`` column is the stored score, with decay up to
    ``decayed_until``; :func:`analytics.fold.decay_stored_leads` brings it to
    a given time as the API reports it.
    """
    query = {**_members("lead_id", lead_ids), **_members("stage", stages)}
    if min_score is not None:
        query["score"] = {"$gte": min_score}
    return _find(db["leads"], query, build_schema(LEAD_FIELDS, columns))


def load_history(
    db: Database,
    *,
    lead_ids: Iterable[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    causes: Iterable[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Load ``score_history`` rows, sorted by lead and ``seq`` (replay order)."""
    query = {**_members("lead_id", lead_ids), **_time_range("at", start, end), **_members("cause", causes)}
    frame = _find(db["score_history"], query, build_schema(HISTORY_FIELDS, columns))
    order = [name for name in ("lead_id", "seq") if name in frame.columns]
    return frame.sort(order) if order else frame


def load_rule_sets(db: Database) -> dict[int, RuleSet]:
    """Load every published rule set, keyed by version (a small collection)."""
    documents = db["rule_sets"].find({}, {"_id": 0})
    rule_sets = (rule_set_from_document(document) for document in documents)
    return {rules.version: rules for rules in rule_sets}


def live_rule_set(rule_sets: Mapping[int, RuleSet]) -> RuleSet:
    """Return the live rule set: the highest published version."""
    if not rule_sets:
        raise LookupError("no rule set is published yet; publish one first")
    return rule_sets[max(rule_sets)]


def iter_frames(
    collection: Collection,
    query: Mapping[str, Any],
    schema: Schema,
    *,
    batch_size: int = 50_000,
    sort: Sequence[tuple[str, int]] | None = None,
) -> Iterator[pl.DataFrame]:
    """Yield the query's documents as DataFrames of at most ``batch_size`` rows.

    One cursor serves every chunk, and each raw BSON batch from the server is
    converted on its own, so memory contains one chunk at a time whatever the
    collection's size. This uses pymongoarrow's conversion context, the same
    one ``find_arrow_all`` drives, because pymongoarrow has no public
    streaming reader.
    """
    projection = {name: True for name in schema.typemap} | {"_id": False}
    cursor = collection.find_raw_batches(
        dict(query), projection=projection, batch_size=batch_size, sort=sort
    )
    empty = True
    for batch in cursor:
        context = PyMongoArrowContext(schema, codec_options=collection.codec_options)
        context.process_bson_stream(batch)
        table = context.finish()
        if table.num_rows:
            empty = False
            yield pl.from_arrow(table)  # type: ignore[misc]
    if empty:
        yield pl.from_arrow(schema.to_arrow().empty_table())  # type: ignore[misc]


def _find(
    collection: Collection,
    query: Mapping[str, Any],
    schema: Schema,
    sort: Sequence[tuple[str, int]] | None = None,
) -> pl.DataFrame:
    options = {"sort": list(sort)} if sort else {}
    frame = find_polars_all(collection, dict(query), schema=schema, **options)
    assert isinstance(frame, pl.DataFrame)
    return frame
