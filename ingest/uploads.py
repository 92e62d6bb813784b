"""Parsing of batch uploads: CSV, JSON arrays and NDJSON, with line numbers.

Each parser yields ``(line, index, raw_event_or_None, error_or_None)`` so
that a bad row is reported with where it was and the good rows still go in.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Iterator

from ingest.validation import decode_json
from scorestream.errors import ValidationError

EVENT_COLUMNS = {"event_id", "lead_id", "type", "occurred_at", "source", "email", "name", "company"}
_NUMBER = re.compile(r"^-?(0|[1-9]\d{0,17})(\.\d+)?$")

Row = tuple[int, int, "dict[str, Any] | None", "str | None"]

FORMATS = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/x-jsonlines": "ndjson",
}
EXTENSIONS = {".csv": "csv", ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson"}


def _cell_value(text: str) -> Any:
    if _NUMBER.match(text):
        return float(text) if "." in text else int(text)
    return text


def parse_csv(body: bytes) -> Iterator[Row]:
    """Parse CSV with a header; unknown columns become ``properties``.

    ``occurred_at`` cells of digits are read as epoch numbers, other property
    cells that look like numbers become numbers, and empty cells are left out.
    A ``properties.`` prefix on a column name is dropped.
    """
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError(f"the CSV is not UTF-8 (invalid byte at offset {error.start}); save it as UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError("the CSV is empty; send a header line and at least one row") from None
    except csv.Error as error:
        raise ValidationError(f"the CSV header line is malformed: {error}") from None
    columns = [name.strip() for name in header]
    if "type" not in columns or "occurred_at" not in columns:
        raise ValidationError(
            f"the CSV header {columns!r} lacks 'type' or 'occurred_at'; the header needs type, occurred_at "
            "and lead_id or email, and may add event_id, source, name, company and property columns"
        )
    if len(set(columns)) != len(columns):
        raise ValidationError(f"the CSV header {columns!r} repeats a column name; make each name unique")

    index = 0
    line = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield line, index, None, f"malformed CSV: {error}"
            index += 1
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        if not cells or cells == [""]:
            continue
        if len(cells) != len(columns):
            yield start, index, None, f"the row has {len(cells)} cells but the header has {len(columns)}"
            index += 1
            continue
        event: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        for name, cell in zip(columns, cells):
            if cell == "":
                continue
            if name in EVENT_COLUMNS:
                event[name] = int(cell) if name == "occurred_at" and cell.isdigit() else cell
            else:
                properties[name.removeprefix("properties.")] = _cell_value(cell)
        if properties:
            event["properties"] = properties
        yield start, index, event, None
        index += 1


def parse_json_array(body: bytes) -> Iterator[Row]:
    """Parse a JSON array of events; line numbers are the item positions from 1."""
    items = decode_json(body)
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise ValidationError("a JSON upload must be an array of event objects")
    for index, item in enumerate(items):
        if isinstance(item, dict):
            yield index + 1, index, item, None
        else:
            yield index + 1, index, None, f"item {index} is {type(item).__name__}, not an event object"


def parse_ndjson(body: bytes) -> Iterator[Row]:
    """Parse one JSON object per line; blank lines are skipped."""
    index = 0
    for number, raw_line in enumerate(body.split(b"\n"), start=1):
        if not raw_line.strip():
            continue
        try:
            item = decode_json(raw_line, "the line")
        except ValidationError as error:
            yield number, index, None, error.message
        else:
            if isinstance(item, dict):
                yield number, index, item, None
            else:
                yield number, index, None, f"the line holds {type(item).__name__}, not an event object"
        index += 1


PARSERS = {"csv": parse_csv, "json": parse_json_array, "ndjson": parse_ndjson}


def parse_upload(body: bytes, kind: str) -> Iterator[Row]:
    """Parse an upload of the given kind (``csv``, ``json`` or ``ndjson``)."""
    return PARSERS[kind](body)
