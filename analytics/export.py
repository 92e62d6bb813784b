"""Stream leads, events and score history as CSV or Parquet.

:func:`stream_export` returns an iterator of ``bytes`` that a web response or
a file can consume as it comes. Rows are read from MongoDB one chunk at a
time (:func:`analytics.loaders.iter_frames`), then converted and written
out, so memory stays flat whatever the collection's size. :func:`write_export` saves
the same bytes to a file.

CSV follows RFC 4180: comma separated, CRLF line ends, fields quoted when
they contain a comma, a quote or a line break, quotes doubled. Text cells
that begin with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return are
prefixed with a single quote, because spreadsheet programs run such cells as
formulas. Numeric columns are written as numbers, so ``-5`` stays ``-5``.
Timestamps are ISO 8601 with milliseconds and an explicit offset in the time
zone asked for (``2024-05-01T14:00:00.000+02:00``).

Parquet keeps column types; timestamps carry the requested time zone.
"""

from __future__ import annotations

import io
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pymongo import ASCENDING
from pymongo.database import Database

from analytics.fold import decay_stored_leads
from analytics.loaders import (
    EVENT_FIELDS,
    HISTORY_FIELDS,
    LEAD_FIELDS,
    build_schema,
    event_filter,
    iter_frames,
    load_rule_sets,
)

logger = logging.getLogger(__name__)

Kind = Literal["leads", "events", "history"]
Format = Literal["csv", "parquet"]

KINDS = ("leads", "events", "history")
FORMATS = ("csv", "parquet")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}

#: Columns exported by default, in order.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "leads": (
        "lead_id", "email", "name", "company", "score", "stage", "last_activity_at",
        "event_count", "created_at", "updated_at",
    ),
    "events": (
        "source", "event_id", "lead_id", "type", "occurred_at", "received_at",
        "rules_version", "email", "name", "company", "batch_id",
    ),
    "history": tuple(name for name in HISTORY_FIELDS if name != "revision"),
}

_FIELDS = {"leads": LEAD_FIELDS, "events": EVENT_FIELDS, "history": HISTORY_FIELDS}
_SORT = {
    "leads": [("lead_id", ASCENDING)],
    "events": [("lead_id", ASCENDING), ("occurred_at", ASCENDING), ("event_id", ASCENDING)],
    "history": [("lead_id", ASCENDING), ("seq", ASCENDING)],
}
_FILTERS = {
    "leads": ("lead_ids", "stages", "min_score"),
    "events": ("start", "end", "types", "lead_ids", "sources"),
    "history": ("start", "end", "lead_ids", "causes"),
}
# Spreadsheet programs evaluate a cell beginning with one of these as a formula.
_FORMULA_START = r"^[=+\-@\t\r]"


def check_timezone(tz: str) -> ZoneInfo:
    """Return the IANA time zone ``tz``, or raise ValueError naming it.

    >>> check_timezone("Europe/Paris").key
    'Europe/Paris'
    """
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"time zone {tz!r} is not a valid IANA name; use for example 'UTC' or 'Europe/Paris'"
        ) from None


def neutralise_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix a single quote to text cells that a spreadsheet would run as a formula.

    Only string columns change, so negative numbers stay numbers.

    >>> frame = pl.DataFrame({"name": ["=SUM(A1)", "-x", "ok"], "score": [-5, 1, 2]})
    >>> neutralise_text(frame).rows()
    [("'=SUM(A1)", -5), ("'-x", 1), ('ok', 2)]
    """
    return frame.with_columns(
        pl.when(pl.col(pl.String).str.contains(_FORMULA_START))
        .then(pl.lit("'") + pl.col(pl.String))
        .otherwise(pl.col(pl.String))
        .name.keep()
    )


def localise(frame: pl.DataFrame, tz: str) -> pl.DataFrame:
    """Convert every datetime column to the time zone ``tz`` (naive ones are taken as UTC)."""
    check_timezone(tz)
    datetimes = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)]
    return frame.with_columns(
        (
            pl.col(name).dt.replace_time_zone("UTC")
            if frame.schema[name].time_zone is None  # type: ignore[union-attr]
            else pl.col(name)
        ).dt.convert_time_zone(tz)
        for name in datetimes
    )


def csv_chunk(frame: pl.DataFrame, tz: str, header: bool) -> bytes:
    """Encode one chunk as RFC 4180 CSV with neutralised text and offset timestamps."""
    frame = localise(frame, tz)
    frame = frame.with_columns(
        pl.col(pl.Datetime).dt.to_string("%Y-%m-%dT%H:%M:%S%.3f%:z"),
    )
    frame = neutralise_text(frame.with_columns(pl.col(pl.Struct).struct.json_encode()))
    buffer = io.BytesIO()
    frame.write_csv(buffer, include_header=header, line_terminator="\r\n", quote_style="necessary")
    return buffer.getvalue()


class _ChunkSink(io.RawIOBase):
    """A write-only stream that hands out what was written since the last take.

    Parquet writers record byte offsets from ``tell()``, so the position
    keeps counting across takes instead of restarting at zero.
    """

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def stream_frames(frames: Iterable[pl.DataFrame], fmt: Format = "csv", tz: str = "UTC") -> Iterator[bytes]:
    """Encode a sequence of frames with one schema as one CSV or Parquet stream.

    Each frame becomes a CSV block (the header only before the first) or a
    Parquet row group. ``frames`` is consumed lazily.

    >>> frame = pl.DataFrame({"n": [-5], "s": ["@x"]})
    >>> b"".join(stream_frames([frame], "csv"))
    b"n,s\\r\\n-5,'@x\\r\\n"
    """
    check_timezone(tz)
    if fmt == "csv":
        return _csv_stream(frames, tz)
    if fmt == "parquet":
        return _parquet_stream(frames, tz)
    raise ValueError(f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")


def _csv_stream(frames: Iterable[pl.DataFrame], tz: str) -> Iterator[bytes]:
    header = True
    for frame in frames:
        yield csv_chunk(frame, tz, header)
        header = False


def _parquet_stream(frames: Iterable[pl.DataFrame], tz: str) -> Iterator[bytes]:
    sink = _ChunkSink()
    writer: pq.ParquetWriter | None = None
    for frame in frames:
        table = localise(frame, tz).to_arrow()
        if writer is None:
            writer = pq.ParquetWriter(sink, table.schema, compression="zstd")
        writer.write_table(table)
        data = sink.take()
        if data:
            yield data
    if writer is None:
        return
    writer.close()
    yield sink.take()


def stream_export(
    db: Database,
    kind: Kind,
    fmt: Format = "csv",
    tz: str = "UTC",
    *,
    columns: Sequence[str] | None = None,
    properties: Mapping[str, pa.DataType] | None = None,
    chunk_rows: int = 50_000,
    now: datetime | None = None,
    **filters: Any,
) -> Iterator[bytes]:
    """Stream one collection as CSV or Parquet bytes, read chunk by chunk.

    Every argument is checked before this returns, so a caller can turn a
    ``ValueError`` into a 400 response before sending any byte.

    Parameters
    ----------
    db : pymongo.database.Database
        The ScoreStream database.
    kind : {"leads", "events", "history"}
        What to export. Leads are sorted by ``lead_id``, events by lead and
        fold order, history by lead and ``seq``.
    fmt : {"csv", "parquet"}
        Output format.
    tz : str
        IANA time zone of the timestamps, ``UTC`` by default.
    columns : sequence of str, optional
        Columns to export, :data:`DEFAULT_COLUMNS` by default.
    properties : mapping of str to pyarrow.DataType, optional
        Events only: ``properties`` keys to add as ``properties.<key>``
        columns, with their types.
    chunk_rows : int
        Rows per chunk (per Parquet row group).
    now : datetime, optional
        Leads only: scores are reported as of this time, decay included, as
        the API reports them; the current time by default.
    **filters
        Leads: ``lead_ids``, ``stages``, ``min_score``. Events: ``start``,
        ``end`` (on ``occurred_at``), ``types``, ``lead_ids``, ``sources``.
        History: ``start``, ``end`` (on ``at``), ``lead_ids``, ``causes``.

    Returns
    -------
    iterator of bytes

    Raises
    ------
    ValueError
        For an unknown kind, format, column or filter, or an invalid time zone.
    """
    if kind not in KINDS:
        raise ValueError(f"export kind {kind!r} is not supported; use one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows={chunk_rows!r}; use 1 or more")
    check_timezone(tz)
    unknown = sorted(set(filters) - set(_FILTERS[kind]))
    if unknown:
        raise ValueError(f"unknown {kind} filters {unknown}; allowed: {', '.join(_FILTERS[kind])}")
    if properties and kind != "events":
        raise ValueError("properties= applies to the events export only")

    selected = list(columns or DEFAULT_COLUMNS[kind])
    loaded = list(selected)
    if kind == "leads" and "score" in selected:
        loaded += [name for name in ("stage", "last_activity_at", "anchor_version", "decayed_until") if name not in loaded]
    schema = build_schema(_FIELDS[kind], loaded, properties)
    query = _query(kind, filters)
    frames = iter_frames(db[_collection(kind)], query, schema, batch_size=chunk_rows, sort=_SORT[kind])

    convert: Callable[[pl.DataFrame], pl.DataFrame]
    if kind == "leads" and "score" in selected:
        rule_sets = load_rule_sets(db)
        when = now or datetime.now(timezone.utc)

        def convert(frame: pl.DataFrame) -> pl.DataFrame:
            return decay_stored_leads(frame, rule_sets, when).select(selected)

    else:

        def convert(frame: pl.DataFrame) -> pl.DataFrame:
            if "properties" in frame.columns:
                frame = frame.unnest("properties", separator=".")
            return frame

    logger.info("export %s as %s in %s started, filters %s", kind, fmt, tz, sorted(filters))
    return stream_frames((convert(frame) for frame in frames), fmt, tz)


def _collection(kind: str) -> str:
    return "score_history" if kind == "history" else kind


def _query(kind: str, filters: Mapping[str, Any]) -> dict[str, Any]:
    if kind == "events":
        return event_filter(**filters)
    query: dict[str, Any] = {}
    if filters.get("lead_ids") is not None:
        query["lead_id"] = {"$in": list(filters["lead_ids"])}
    if kind == "leads":
        if filters.get("stages") is not None:
            query["stage"] = {"$in": list(filters["stages"])}
        if filters.get("min_score") is not None:
            query["score"] = {"$gte": filters["min_score"]}
    else:
        if filters.get("causes") is not None:
            query["cause"] = {"$in": list(filters["causes"])}
        bounds = {op: filters[key] for key, op in (("start", "$gte"), ("end", "$lt")) if filters.get(key) is not None}
        if bounds:
            query["at"] = bounds
    return query


def export_filename(kind: Kind, fmt: Format) -> str:
    """Return a download file name such as ``scorestream-leads.csv``."""
    return f"scorestream-{kind}.{fmt}"


def write_export(
    db: Database,
    kind: Kind,
    path: str | Path,
    fmt: Format | None = None,
    tz: str = "UTC",
    **options: Any,
) -> int:
    """Write :func:`stream_export` output to ``path``; return the bytes written.

    ``fmt`` defaults to the file's suffix (``.csv`` or ``.parquet``); the
    other options are those of :func:`stream_export`.
    """
    target = Path(path)
    chosen = fmt or target.suffix.lstrip(".").lower()
    if chosen not in FORMATS:
        raise ValueError(f"cannot tell the format of {str(target)!r}; pass fmt='csv' or fmt='parquet'")
    started = time.perf_counter()
    chunks = stream_export(db, kind, chosen, tz, **options)  # type: ignore[arg-type]
    written = 0
    with target.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
            written += len(chunk)
    logger.info("export %s written to %s: %d bytes in %.3f s", kind, target, written, time.perf_counter() - started)
    return written
