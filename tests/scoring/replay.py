"""Checks that stored leads and history agree with the engine, shared by the suites."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Iterable

from scoring import engine
from scoring.store import Store, event_from_document, state_from_document

# Fields compared between stored rows and the rows of a fresh fold. The cause
# may differ: a rescore writes ``rescore`` rows, and a later re-fold or decay
# rewrites part of them as ``event`` or ``decay`` rows.
ROW_FIELDS = ("seq", "at", "event_id", "points", "score_before", "score_after", "stage_after")


def assert_history_replays(store: Store, lead_ids: Iterable[str] | None = None) -> int:
    """Assert every lead's rows are ``0..row_count-1`` and sum to its stored score.

    Return the number of leads checked.
    """
    query: dict[str, Any] = {} if lead_ids is None else {"lead_id": {"$in": list(lead_ids)}}
    rows_by_lead: dict[str, list[dict[str, Any]]] = defaultdict(list)
    projection = {"lead_id": 1, "seq": 1, "points": 1, "score_before": 1, "score_after": 1}
    for row in store.history.find(query, projection):
        rows_by_lead[row["lead_id"]].append(row)
    checked = 0
    for lead in store.leads.find(query, {"lead_id": 1, "score": 1, "row_count": 1}):
        lead_id = lead["lead_id"]
        rows = sorted(rows_by_lead.pop(lead_id, []), key=lambda row: row["seq"])
        assert [row["seq"] for row in rows] == list(range(lead.get("row_count", 0))), lead_id
        assert sum(row["points"] for row in rows) == lead["score"], lead_id
        previous = 0
        for row in rows:
            assert row["score_before"] == previous, (lead_id, row["seq"])
            assert row["score_after"] == previous + row["points"], (lead_id, row["seq"])
            previous = row["score_after"]
        checked += 1
    assert not rows_by_lead, f"history rows of leads that do not exist: {sorted(rows_by_lead)[:5]}"
    return checked


def expected_fold(store: Store, lead_id: str, now: datetime) -> tuple[engine.LeadState, list[engine.Change]]:
    """Fold the lead's stored events under the versions they carry, as of ``now``."""
    events = [event_from_document(doc) for doc in store.lead_events(lead_id)]
    rules = store.rules_by_version({event.rules_version for event in events})
    return engine.fold(lead_id, events, rules, now)


def stored_as_of(store: Store, lead_id: str, now: datetime) -> tuple[engine.LeadState, list[dict[str, Any]]]:
    """Return the stored state and rows with the decay due by ``now`` applied, as reads do."""
    lead = store.get_lead(lead_id)
    assert lead is not None, f"lead {lead_id!r} was not created"
    state = state_from_document(lead)
    rows = {row["seq"]: row for row in store.lead_history(lead_id)}
    if state.anchor_version is not None:
        rules = store.rules_by_version([state.anchor_version])
        state, extra = engine.apply_decay(lead_id, state, rules, now)
        for row in extra:
            rows[row.seq] = {name: getattr(row, name) for name in ROW_FIELDS}
    return state, [rows[seq] for seq in sorted(rows)]


def assert_matches_fold(store: Store, lead_id: str, now: datetime) -> engine.LeadState:
    """Assert the lead's score, stage, counts and rows equal a fresh fold as of ``now``."""
    expected_state, expected_rows = expected_fold(store, lead_id, now)
    state, rows = stored_as_of(store, lead_id, now)
    assert state.score == expected_state.score, lead_id
    assert state.stage == expected_state.stage, lead_id
    assert state.event_count == expected_state.event_count, lead_id
    assert state.row_count == expected_state.row_count, lead_id
    assert [_row_fields(row) for row in rows] == [_row_fields(vars_of(row)) for row in expected_rows], lead_id
    return state


def vars_of(row: engine.Change) -> dict[str, Any]:
    return {name: getattr(row, name) for name in ROW_FIELDS}


def _row_fields(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(name) for name in ROW_FIELDS)
