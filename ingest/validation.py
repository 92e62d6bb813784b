"""Event validation and normalisation, with msgspec doing the type checks.

An incoming event becomes the stored document: ids trimmed, e-mail lead ids
lower-cased, ``occurred_at`` parsed to UTC, a derived ``event_id`` when the
sender gave none, and a payload hash to tell duplicates from conflicts.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec

from scorestream.errors import ValidationError
from scoring.store import payload_hash

MAX_EVENT_ID = 128
MAX_LEAD_ID = 256
MAX_TYPE = 64
MAX_SOURCE = 64
MAX_TEXT = 256
MAX_PROPERTIES_BYTES = 16 * 1024
MAX_PROPERTIES_DEPTH = 5
MAX_PROPERTY_KEY = 128
# BSON stores integers in at most 64 bits.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_FUTURE = timedelta(minutes=5)
# Epoch values below this are seconds, above it milliseconds: 1e11 seconds is
# the year 5138, while 1e11 milliseconds is March 1973.
EPOCH_MILLIS_FROM = 100_000_000_000

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TYPE = re.compile(r"^[A-Za-z0-9_.:\-]+$")
_SOURCE = re.compile(r"^[A-Za-z0-9_.\-]+$")


class EventIn(msgspec.Struct, forbid_unknown_fields=True):
    """The event shape accepted by every ingest endpoint."""

    type: str
    occurred_at: str | int | float
    event_id: str | None = None
    lead_id: str | None = None
    properties: dict[str, Any] = {}
    source: str = "api"
    email: str | None = None
    name: str | None = None
    company: str | None = None


def parse_timestamp(value: Any, now: datetime) -> datetime:
    """Parse ISO 8601 with an offset, or epoch seconds or milliseconds, into UTC.

    Raise :class:`ValidationError` for a missing offset, a value more than five
    minutes in the future, or anything unparseable.
    """
    if isinstance(value, bool):
        raise ValidationError(f"occurred_at {value!r} is not a timestamp; send ISO 8601 with an offset or epoch seconds")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValidationError(f"occurred_at {value!r} is not a valid epoch time; send a positive number of seconds or milliseconds")
        seconds = value / 1000 if abs(value) >= EPOCH_MILLIS_FROM else value
        try:
            parsed = datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValidationError(f"occurred_at {value!r} is out of range for an epoch time") from None
    else:
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(
                f"occurred_at {value!r} is not ISO 8601; send for example '2026-03-01T12:00:00+00:00' or epoch seconds"
            ) from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise ValidationError(
                f"occurred_at {value!r} has no UTC offset; add one, for example 'Z' or '+02:00'"
            )
        parsed = parsed.astimezone(timezone.utc)
    if parsed - now > MAX_FUTURE:
        raise ValidationError(
            f"occurred_at {value!r} is more than 5 minutes in the future (server time {now.isoformat()}); check the sender's clock"
        )
    # BSON dates hold milliseconds, so round here to keep stored and hashed values equal.
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def decode_json(body: bytes, what: str = "the body") -> Any:
    """Decode JSON, raising :class:`ValidationError` for anything unreadable.

    msgspec raises ``RecursionError`` rather than ``DecodeError`` for JSON
    nested deeper than about 1,000 levels, so that is caught here too.
    """
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as error:
        raise ValidationError(f"{what} is not valid JSON: {error}") from None
    except RecursionError:
        raise ValidationError(f"{what} is JSON nested too deeply to read; flatten it") from None


def check_properties(properties: dict[str, Any]) -> None:
    """Raise :class:`ValidationError` unless ``properties`` can be stored as BSON.

    Walks the value without recursion and checks the nesting depth, the keys
    (BSON rejects NUL in keys, and MongoDB treats a leading ``$`` as an
    operator) and the integers (BSON holds at most 64 bits).
    """
    stack: list[tuple[Any, int, str]] = [(properties, 1, "properties")]
    while stack:
        value, level, path = stack.pop()
        if isinstance(value, dict):
            if level > MAX_PROPERTIES_DEPTH:
                raise ValidationError(
                    f"properties are nested deeper than {MAX_PROPERTIES_DEPTH} levels at {path}; flatten them"
                )
            for key, item in value.items():
                if not 1 <= len(key) <= MAX_PROPERTY_KEY or "\x00" in key or key.startswith("$"):
                    raise ValidationError(
                        f"property name {key[:40]!r} at {path} is invalid; use 1 to {MAX_PROPERTY_KEY} "
                        "characters, without NUL and not starting with '$'"
                    )
                stack.append((item, level + 1, f"{path}.{key}"))
        elif isinstance(value, list):
            if level > MAX_PROPERTIES_DEPTH:
                raise ValidationError(
                    f"properties are nested deeper than {MAX_PROPERTIES_DEPTH} levels at {path}; flatten them"
                )
            stack.extend((item, level + 1, f"{path}[{index}]") for index, item in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(
                f"property {path} is {str(value)[:40]}..., outside the 64-bit integer range; send it as a string"
            )


def _text(name: str, value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise ValidationError(f"{name} is {len(value)} characters long; the limit is {limit}")
    if _CONTROL.search(value):
        # A NUL or other control character in an id would not survive every
        # store and export unchanged, so two ids could end up as one.
        raise ValidationError(f"{name} {value[:80]!r} contains a control character; remove it")
    return value or None


def normalise_event(raw: Any, now: datetime, rules_version: int, batch_id: str | None = None) -> dict[str, Any]:
    """Validate one raw event and return the document to store.

    Raise :class:`ValidationError` naming the field, the value and the fix.
    """
    if not isinstance(raw, dict):
        raise ValidationError(f"an event must be a JSON object, got {type(raw).__name__}")
    try:
        event = msgspec.convert(raw, EventIn)
    except msgspec.ValidationError as error:
        allowed = ", ".join(EventIn.__struct_fields__)
        raise ValidationError(f"invalid event: {error}; allowed fields: {allowed}") from None

    event_type = event.type.strip()
    if not 1 <= len(event_type) <= MAX_TYPE or not _TYPE.match(event_type):
        raise ValidationError(
            f"type {event.type!r} is invalid; use 1 to {MAX_TYPE} letters, digits, '_', '.', ':' or '-'"
        )
    source = event.source.strip()
    if not 1 <= len(source) <= MAX_SOURCE or not _SOURCE.match(source):
        raise ValidationError(f"source {event.source!r} is invalid; use 1 to {MAX_SOURCE} letters, digits, '_', '.' or '-'")

    email = _text("email", event.email, MAX_TEXT)
    email = email.lower() if email else None
    lead_id = _text("lead_id", event.lead_id, MAX_LEAD_ID)
    if lead_id is None:
        if email is None:
            raise ValidationError("the event has neither lead_id nor email; send one of them to name the lead")
        lead_id = email
    elif "@" in lead_id:
        lead_id = lead_id.lower()

    properties = event.properties
    check_properties(properties)
    size = len(msgspec.json.encode(properties))
    if size > MAX_PROPERTIES_BYTES:
        raise ValidationError(f"properties are {size} bytes as JSON; the limit is {MAX_PROPERTIES_BYTES}")

    document: dict[str, Any] = {
        "source": source,
        "lead_id": lead_id,
        "type": event_type,
        "occurred_at": parse_timestamp(event.occurred_at, now),
        "properties": properties,
        "email": email,
        "name": _text("name", event.name, MAX_TEXT),
        "company": _text("company", event.company, MAX_TEXT),
    }
    event_id = _text("event_id", event.event_id, MAX_EVENT_ID)
    document["payload_hash"] = payload_hash(document)
    if event_id is None:
        # A stable id from the content, so a sender's retry is a duplicate.
        event_id = "h-" + hashlib.sha256((source + document["payload_hash"]).encode()).hexdigest()[:40]
    document["event_id"] = event_id
    document.update(received_at=now, rules_version=rules_version, scored=False, batch_id=batch_id)
    return document
