"""MongoDB persistence of events, leads, score history and rule sets.

Leads are updated by compare-and-set on ``revision`` with whole-document
replacement (``replace_one({"_id": ..., "revision": n}, doc)``): a worker
that loses the race reloads and recomputes, so no update is lost and no lock
can be stranded by a crash. Whole-document replacement also keeps datetimes
as BSON dates on servers that store ``$set`` datetimes as strings.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Any, Iterable, Mapping, Sequence

import msgspec
from pymongo import ASCENDING, DESCENDING, IndexModel, ReplaceOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from scoring.engine import Change, Event, LeadState
from scoring.rules import DEFAULT_RULES, RuleSet, rule_set_from_document

logger = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
IDENTITY_FIELDS = ("lead_id", "type", "occurred_at", "properties", "email", "name", "company")


def utcnow() -> datetime:
    """Return the current time, aware, in UTC, at millisecond precision like BSON."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as an aware UTC datetime (PyMongo returns naive UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def payload_hash(document: Mapping[str, Any]) -> str:
    """Hash the fields that identify an event's content, to tell duplicates from conflicts."""
    content = {name: document.get(name) for name in IDENTITY_FIELDS}
    occurred = content["occurred_at"]
    if isinstance(occurred, datetime):
        content["occurred_at"] = as_utc(occurred).isoformat(timespec="milliseconds")
    encoded = msgspec.json.encode(content, order="sorted")
    return hashlib.sha256(encoded).hexdigest()


@dataclass(frozen=True)
class HistoryWrite:
    """The rows one lead update replaces: ``seq >= from_seq``, written at ``revision``."""

    lead_id: str
    revision: int
    from_seq: int
    rows: list[Change]
    # The lead's row count before this update; None when unknown. A write
    # that did not shrink the history needs no trim unless a newer revision
    # was stored meanwhile.
    previous_row_count: int | None = None


@dataclass(frozen=True)
class InsertResult:
    """What happened to one event offered to :meth:`Store.insert_events`."""

    status: str  # accepted, duplicate or conflict
    lead_id: str


class Store:
    """Typed access to the ScoreStream collections of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.events = db["events"]
        self.leads = db["leads"]
        self.history = db["score_history"]
        self.rule_sets = db["rule_sets"]
        self.batches = db["batches"]
        self._rules_cache: dict[int, RuleSet] = {}
        # Called with {batch_id: events newly scored}; the runtime counts
        # batch progress in Redis, because counting unscored events of a
        # batch in MongoDB is slow on the embedded server.
        self.on_scored: Callable[[dict[str, int]], None] | None = None

    # -- set-up -------------------------------------------------------------

    def ensure_indexes(self) -> None:
        """Create the indexes the queries and the uniqueness rules rely on."""
        self.events.create_indexes(
            [
                IndexModel([("source", ASCENDING), ("event_id", ASCENDING)], unique=True),
                IndexModel([("lead_id", ASCENDING), ("occurred_at", ASCENDING), ("event_id", ASCENDING)]),
                # Single-field indexes beside the compound ones: the embedded
                # server (nx-27017 0.8.1) uses only single-field indexes and
                # scans the collection for a compound prefix.
                IndexModel([("lead_id", ASCENDING)]),
                IndexModel([("scored", ASCENDING), ("received_at", ASCENDING)]),
                IndexModel([("batch_id", ASCENDING)]),
            ]
        )
        self.leads.create_indexes(
            [
                IndexModel([("lead_id", ASCENDING)], unique=True),
                IndexModel([("score", DESCENDING), ("lead_id", ASCENDING)]),
                IndexModel([("next_decay_at", ASCENDING)]),
            ]
        )
        self.history.create_indexes(
            [
                IndexModel([("lead_id", ASCENDING), ("seq", ASCENDING)], unique=True),
                IndexModel([("lead_id", ASCENDING)]),
                IndexModel([("at", ASCENDING)]),
            ]
        )
        self.rule_sets.create_indexes([IndexModel([("version", ASCENDING)], unique=True)])
        self.batches.create_indexes([IndexModel([("batch_id", ASCENDING)], unique=True)])

    # -- rule sets ----------------------------------------------------------

    def live_rules(self) -> RuleSet:
        """Return the live rule set (the newest version), publishing defaults on first use."""
        document = self.rule_sets.find_one({}, sort=[("version", DESCENDING)])
        if document is None:
            return self.publish_rules(DEFAULT_RULES, published_by="scorestream")
        rules = rule_set_from_document(document)
        self._rules_cache[rules.version] = rules
        return rules

    def rules_by_version(self, versions: Iterable[int]) -> dict[int, RuleSet]:
        """Return the rule sets of the given versions; published versions never change."""
        missing = sorted({v for v in versions if v not in self._rules_cache})
        if missing:
            for document in self.rule_sets.find({"version": {"$in": missing}}):
                rules = rule_set_from_document(document)
                self._rules_cache[rules.version] = rules
        unknown = [v for v in missing if v not in self._rules_cache]
        if unknown:
            raise LookupError(f"rule set versions {unknown} are not in rule_sets")
        return {v: self._rules_cache[v] for v in set(versions)}

    def publish_rules(self, rules: RuleSet, published_by: str, note: str | None = None) -> RuleSet:
        """Store ``rules`` as the next version and return it as published.

        The unique index on ``version`` makes two concurrent publishers pick
        different numbers: the loser retries with the next one.
        """
        for _ in range(20):
            newest = self.rule_sets.find_one({}, sort=[("version", DESCENDING)])
            version = (newest["version"] + 1) if newest else 1
            published = RuleSet(
                version=version,
                points=rules.points,
                cap=rules.cap,
                floor=rules.floor,
                decay=rules.decay,
                stages=rules.stages,
                note=rules.note if note is None else note,
                published_at=utcnow(),
                published_by=published_by,
            )
            try:
                self.rule_sets.insert_one(published.to_document())
            except DuplicateKeyError:
                continue
            self._rules_cache[version] = published
            logger.info("rule set %d published by %s", version, published_by)
            return published
        raise RuntimeError("could not publish a rule set: version numbers kept colliding")

    def rule_versions(self) -> list[dict[str, Any]]:
        """Return every published version, newest first."""
        return list(self.rule_sets.find({}, {"_id": 0}).sort("version", DESCENDING))

    # -- events -------------------------------------------------------------

    def insert_events(self, documents: Sequence[dict[str, Any]]) -> list[InsertResult]:
        """Insert events once each; report duplicates and conflicting payloads.

        A repeated ``(source, event_id)`` with the same payload hash is a
        duplicate; with a different hash it is a conflict and the first payload
        stays. Both are detected by the unique index, so concurrent senders
        cannot insert the same event twice.
        """
        if not documents:
            return []
        failed: dict[int, Any] = {}
        try:
            self.events.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            for write_error in error.details.get("writeErrors", []):
                if write_error.get("code") != DUPLICATE_KEY:
                    raise
                failed[write_error["index"]] = True
        results = [InsertResult("accepted", doc["lead_id"]) for doc in documents]
        if failed:
            keys = [(documents[i]["source"], documents[i]["event_id"]) for i in failed]
            existing = {
                (doc["source"], doc["event_id"]): doc["payload_hash"]
                for doc in self.events.find(
                    {"$or": [{"source": s, "event_id": e} for s, e in keys]},
                    {"source": 1, "event_id": 1, "payload_hash": 1},
                )
            }
            for index in failed:
                doc = documents[index]
                first_hash = existing.get((doc["source"], doc["event_id"]))
                status = "duplicate" if first_hash == doc["payload_hash"] else "conflict"
                results[index] = InsertResult(status, doc["lead_id"])
        return results

    def unscored_events(self, lead_id: str) -> list[dict[str, Any]]:
        """Return the lead's events that no successful update has marked scored yet."""
        return list(self.events.find({"lead_id": lead_id, "scored": False}))

    def lead_events(self, lead_id: str) -> list[dict[str, Any]]:
        """Return every event of a lead in fold order."""
        cursor = self.events.find({"lead_id": lead_id}).sort(
            [("occurred_at", ASCENDING), ("event_id", ASCENDING)]
        )
        return list(cursor)

    def mark_scored(self, documents: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Flag events as folded into their lead; return how many flipped per batch id.

        ``documents`` need ``_id`` and may carry ``batch_id``. Only events
        still unscored are counted, so concurrent markers of the same event
        count it once, and :attr:`on_scored` (when set) receives the counts.
        """
        by_batch: dict[str | None, list[Any]] = {}
        for document in documents:
            by_batch.setdefault(document.get("batch_id"), []).append(document["_id"])
        counts: dict[str, int] = {}
        for batch_id, ids in by_batch.items():
            result = self.events.update_many({"_id": {"$in": ids}, "scored": False}, {"$set": {"scored": True}})
            if batch_id is not None and result.modified_count:
                counts[batch_id] = result.modified_count
        if counts and self.on_scored is not None:
            self.on_scored(counts)
        return counts

    # -- leads --------------------------------------------------------------

    def get_lead(self, lead_id: str) -> dict[str, Any] | None:
        """Return the stored lead document, or None."""
        return self.leads.find_one({"lead_id": lead_id})

    def create_lead(self, lead_id: str, now: datetime) -> None:
        """Insert an empty lead at revision 0; a concurrent creator's insert wins harmlessly."""
        document = lead_document(lead_id, LeadState(), {}, now, created_at=now, revision=0)
        try:
            self.leads.insert_one(document)
        except DuplicateKeyError:
            pass

    def replace_lead(self, document: dict[str, Any], expected_revision: int, document_id: Any = None) -> bool:
        """Compare-and-set: replace the lead only if it is still at ``expected_revision``.

        Pass the stored ``_id`` when known: the embedded server looks a
        replacement up by ``_id`` through its primary key but scans the
        collection for any other filter.
        """
        key = {"_id": document_id} if document_id is not None else {"lead_id": document["lead_id"]}
        result = self.leads.replace_one({**key, "revision": expected_revision}, document)
        return result.matched_count == 1

    # -- history ------------------------------------------------------------

    def write_history(
        self,
        lead_id: str,
        revision: int,
        from_seq: int,
        rows: Sequence[Change],
        previous_row_count: int | None = None,
    ) -> None:
        """Replace the lead's rows from ``from_seq`` on with ``rows`` written at ``revision``."""
        self.write_histories([HistoryWrite(lead_id, revision, from_seq, list(rows), previous_row_count)])

    def write_histories(self, writes: Sequence[HistoryWrite]) -> None:
        """Write the history rows of several lead updates in a few round trips.

        Each write follows a successful compare-and-set to ``revision``, but
        writers of different revisions may still interleave here. So every
        row is a register keyed by ``(lead_id, seq)`` in which the higher
        revision wins: a row is inserted, or replaces a stored row of a lower
        revision, and never replaces a higher one. Nothing is deleted before
        it is rewritten, so a slow writer cannot slip a stale row in between.
        Last, rows beyond the newest revision's ``row_count`` are trimmed.
        Every writer trims after its own inserts, so whichever finishes last
        removes the rows a refold made obsolete.
        """
        documents = [
            history_document(row, write.revision) for write in writes for row in write.rows
        ]
        clashes: list[dict[str, Any]] = []
        if documents:
            try:
                self.history.insert_many(documents, ordered=False)
            except BulkWriteError as error:
                for write_error in error.details.get("writeErrors", []):
                    if write_error.get("code") != DUPLICATE_KEY:
                        raise
                    clashes.append(documents[write_error["index"]])
        if clashes:
            # The stored rows are found by an indexed query per lead and
            # replaced by _id, because the embedded server scans the whole
            # collection for a replacement filtered on other fields.
            stored: dict[tuple[str, int], Any] = {}
            for lead_id in {doc["lead_id"] for doc in clashes}:
                low = min(doc["seq"] for doc in clashes if doc["lead_id"] == lead_id)
                for row in self.history.find({"lead_id": lead_id, "seq": {"$gte": low}}, {"_id": 1, "seq": 1}):
                    stored[(lead_id, row["seq"])] = row["_id"]
            # insert_many may have set _id on the documents; a replacement must not carry it.
            replacements = [
                ReplaceOne(
                    {"_id": stored[(doc["lead_id"], doc["seq"])], "revision": {"$lt": doc["revision"]}},
                    {key: value for key, value in doc.items() if key != "_id"},
                )
                for doc in clashes
                if (doc["lead_id"], doc["seq"]) in stored
            ]
            if replacements:
                self.history.bulk_write(replacements, ordered=False)
        self._trim_history(writes)

    def _trim_history(self, writes: Sequence[HistoryWrite]) -> None:
        """Delete rows beyond each lead's ``row_count`` left by lower revisions.

        Only leads that may have such rows are looked at: those whose
        history got shorter, or whose stored revision is no longer this
        writer's. Stale rows are found with an indexed query per lead and
        deleted by ``_id``, because the embedded server scans the whole
        collection for a ``delete_many`` with any other filter.
        """
        if not writes:
            return
        by_lead = {write.lead_id: write for write in writes}
        newest = self.leads.find({"lead_id": {"$in": sorted(by_lead)}}, {"lead_id": 1, "revision": 1, "row_count": 1})
        stale: list[Any] = []
        for lead in newest:
            write = by_lead[lead["lead_id"]]
            row_count = int(lead.get("row_count", 0))
            shrank = write.previous_row_count is None or write.previous_row_count > row_count
            if lead["revision"] == write.revision and not shrank:
                continue
            query = {"lead_id": lead["lead_id"], "seq": {"$gte": row_count}, "revision": {"$lt": lead["revision"]}}
            stale.extend(doc["_id"] for doc in self.history.find(query, {"_id": 1}))
        if stale:
            self.history.delete_many({"_id": {"$in": stale}})

    def lead_history(self, lead_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Return the lead's rows in replay order (newest last)."""
        cursor = self.history.find({"lead_id": lead_id}, {"_id": 0}).sort("seq", ASCENDING)
        rows = list(cursor)
        return rows[-limit:] if limit else rows


def event_from_document(document: Mapping[str, Any]) -> Event:
    """Build the engine's view of a stored event."""
    return Event(
        lead_id=document["lead_id"],
        event_id=document["event_id"],
        type=document["type"],
        occurred_at=as_utc(document["occurred_at"]),
        rules_version=int(document["rules_version"]),
        source=document["source"],
    )


def state_from_document(document: Mapping[str, Any]) -> LeadState:
    """Rebuild the engine state stored in a lead document."""
    last_key = document.get("last_key")
    return LeadState(
        score=int(document.get("score", 0)),
        stage=document.get("stage"),
        last_activity_at=_aware(document.get("last_activity_at")),
        anchor_version=document.get("anchor_version"),
        decayed_until=_aware(document.get("decayed_until")),
        last_key=(as_utc(last_key["at"]), last_key["event_id"], last_key["source"]) if last_key else None,
        event_count=int(document.get("event_count", 0)),
        row_count=int(document.get("row_count", 0)),
        open_decay=tuple(document["open_decay"]) if document.get("open_decay") else None,  # type: ignore[arg-type]
    )


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def lead_document(
    lead_id: str,
    state: LeadState,
    profile: Mapping[str, Any],
    now: datetime,
    created_at: datetime,
    revision: int,
    next_decay_at: datetime | None = None,
) -> dict[str, Any]:
    """Build the whole lead document stored by compare-and-set."""
    return {
        "lead_id": lead_id,
        "email": profile.get("email"),
        "name": profile.get("name"),
        "company": profile.get("company"),
        "score": state.score,
        "stage": state.stage,
        "last_activity_at": state.last_activity_at,
        "event_count": state.event_count,
        "created_at": created_at,
        "updated_at": now,
        "revision": revision,
        "anchor_version": state.anchor_version,
        "decayed_until": state.decayed_until,
        "last_key": (
            {"at": state.last_key[0], "event_id": state.last_key[1], "source": state.last_key[2]}
            if state.last_key
            else None
        ),
        "row_count": state.row_count,
        "open_decay": list(state.open_decay) if state.open_decay else None,
        "next_decay_at": next_decay_at,
    }


def history_document(row: Change, revision: int) -> dict[str, Any]:
    """Build a ``score_history`` document from an engine row."""
    return {
        "lead_id": row.lead_id,
        "seq": row.seq,
        "at": row.at,
        "cause": row.cause,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "source": row.source,
        "rule_points": row.rule_points,
        "points": row.points,
        "score_before": row.score_before,
        "score_after": row.score_after,
        "stage_before": row.stage_before,
        "stage_after": row.stage_after,
        "rules_version": row.rules_version,
        "revision": revision,
    }
