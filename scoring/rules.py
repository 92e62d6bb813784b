"""Rule sets: validation, defaults and conversion to and from documents.

A rule set maps event types to integer points and carries the cap, the floor,
the decay settings and the stage thresholds. Durations travel as text
(``30s``, ``15m``, ``12h``, ``7d``) and are held here in whole seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from scorestream.config import format_duration, parse_duration
from scorestream.errors import ConfigError, ValidationError

MAX_POINTS = 1_000_000
_FIELDS = {"points", "cap", "floor", "decay", "stages", "note"}
_SERVER_FIELDS = {"version", "published_at", "published_by"}
_DECAY_FIELDS = {"after", "every", "points"}


@dataclass(frozen=True)
class Decay:
    """Decay settings: lose ``points`` for every full ``every`` after ``after`` idle."""

    after: int = 7 * 86400
    every: int = 86400
    points: int = 5


@dataclass(frozen=True)
class RuleSet:
    """One published (or candidate) version of the scoring rules."""

    version: int = 0
    points: Mapping[str, int] = field(default_factory=dict)
    cap: int = 1000
    floor: int = 0
    decay: Decay = field(default_factory=Decay)
    stages: Mapping[str, int] = field(default_factory=dict)
    note: str = ""
    published_at: datetime | None = None
    published_by: str | None = None

    def stage_for(self, score: int) -> str | None:
        """Return the highest stage whose threshold the score reaches, or None."""
        reached = None
        for name, threshold in sorted(self.stages.items(), key=lambda item: item[1]):
            if score >= threshold:
                reached = name
        return reached

    def to_document(self) -> dict[str, Any]:
        """Return the API and MongoDB shape, with durations as text."""
        return {
            "version": self.version,
            "points": dict(self.points),
            "cap": self.cap,
            "floor": self.floor,
            "decay": {
                "after": format_duration(self.decay.after),
                "every": format_duration(self.decay.every),
                "points": self.decay.points,
            },
            "stages": dict(self.stages),
            "note": self.note,
            "published_at": self.published_at,
            "published_by": self.published_by,
        }


DEFAULT_RULES = RuleSet(
    version=1,
    points={
        "email_open": 2,
        "email_click": 5,
        "page_view": 1,
        "pricing_view": 10,
        "form_submit": 25,
        "demo_request": 60,
        "purchase": 100,
        "unsubscribe": -50,
    },
    stages={"mql": 100, "sql": 400},
    note="default rules",
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(errors: list[dict[str, str]], path: str, value: Any, low: int, high: int) -> None:
    if not _is_int(value):
        errors.append({"field": path, "message": f"{value!r} is not an integer"})
    elif not low <= value <= high:
        errors.append({"field": path, "message": f"{value} is outside {low}..{high}"})


def parse_rule_set(payload: Any, version: int = 0) -> RuleSet:
    """Validate a rule-set payload (the PUT body) and build a :class:`RuleSet`.

    Missing fields take the defaults of :data:`DEFAULT_RULES`; ``version`` and
    ``published_*`` in the payload are ignored because the server sets them.
    Raise :class:`ValidationError` listing every invalid field.
    """
    if not isinstance(payload, Mapping):
        raise ValidationError(
            "the rule set must be a JSON object with points, cap, floor, decay and stages"
        )
    errors: list[dict[str, str]] = []
    unknown = sorted(set(payload) - _FIELDS - _SERVER_FIELDS)
    for name in unknown:
        errors.append(
            {"field": name, "message": f"unknown field; allowed: {', '.join(sorted(_FIELDS))}"}
        )

    points = payload.get("points", DEFAULT_RULES.points)
    if not isinstance(points, Mapping) or not points:
        errors.append({"field": "points", "message": "must be a non-empty object of type to integer"})
        points = {}
    for event_type, value in points.items():
        if not isinstance(event_type, str) or not 1 <= len(event_type) <= 64:
            errors.append({"field": f"points.{event_type}", "message": "type names are 1 to 64 characters"})
        _check_int(errors, f"points.{event_type}", value, -MAX_POINTS, MAX_POINTS)

    cap = payload.get("cap", DEFAULT_RULES.cap)
    floor = payload.get("floor", DEFAULT_RULES.floor)
    _check_int(errors, "cap", cap, -MAX_POINTS, MAX_POINTS)
    _check_int(errors, "floor", floor, -MAX_POINTS, MAX_POINTS)
    if _is_int(cap) and _is_int(floor) and floor > cap:
        errors.append({"field": "floor", "message": f"floor {floor} is above cap {cap}"})

    decay = _parse_decay(payload.get("decay", {}), errors)

    stages = payload.get("stages", DEFAULT_RULES.stages)
    if not isinstance(stages, Mapping):
        errors.append({"field": "stages", "message": "must be an object of stage name to threshold"})
        stages = {}
    for name, threshold in stages.items():
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            errors.append({"field": f"stages.{name}", "message": "stage names are 1 to 64 characters"})
        _check_int(errors, f"stages.{name}", threshold, -MAX_POINTS, MAX_POINTS)
    thresholds = [value for value in stages.values() if _is_int(value)]
    if len(set(thresholds)) != len(thresholds):
        errors.append({"field": "stages", "message": "two stages share a threshold; make each distinct"})

    note = payload.get("note", "")
    if not isinstance(note, str) or len(note) > 500:
        errors.append({"field": "note", "message": "must be text of at most 500 characters"})

    if errors:
        summary = "; ".join(f"{error['field']}: {error['message']}" for error in errors[:5])
        raise ValidationError(f"invalid rule set: {summary}", details=errors)
    return RuleSet(
        version=version,
        points=dict(points),
        cap=cap,
        floor=floor,
        decay=decay,
        stages=dict(stages),
        note=note,
    )


def _parse_decay(raw: Any, errors: list[dict[str, str]]) -> Decay:
    if not isinstance(raw, Mapping):
        errors.append({"field": "decay", "message": "must be an object with after, every and points"})
        return Decay()
    for name in sorted(set(raw) - _DECAY_FIELDS):
        errors.append({"field": f"decay.{name}", "message": "unknown field; allowed: after, every, points"})
    seconds = {}
    for name in ("after", "every"):
        value = raw.get(name, format_duration(getattr(Decay(), name)))
        try:
            seconds[name] = parse_duration(value, f"decay.{name}")
        except ConfigError as error:
            errors.append({"field": f"decay.{name}", "message": str(error)})
            seconds[name] = getattr(Decay(), name)
    if seconds["every"] <= 0:
        errors.append({"field": "decay.every", "message": "must be longer than 0s"})
    points = raw.get("points", Decay().points)
    _check_int(errors, "decay.points", points, 0, MAX_POINTS)
    return Decay(after=seconds["after"], every=seconds["every"], points=points if _is_int(points) else 0)


def rule_set_from_document(document: Mapping[str, Any]) -> RuleSet:
    """Build a :class:`RuleSet` from a stored ``rule_sets`` document."""
    decay = document.get("decay") or {}
    return RuleSet(
        version=int(document["version"]),
        points={str(key): int(value) for key, value in document["points"].items()},
        cap=int(document["cap"]),
        floor=int(document["floor"]),
        decay=Decay(
            after=parse_duration(decay.get("after", "7d")),
            every=parse_duration(decay.get("every", "1d")),
            points=int(decay.get("points", 5)),
        ),
        stages={str(key): int(value) for key, value in (document.get("stages") or {}).items()},
        note=document.get("note") or "",
        published_at=document.get("published_at"),
        published_by=document.get("published_by"),
    )
