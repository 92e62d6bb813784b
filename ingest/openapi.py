"""The OpenAPI 3.1 description of the HTTP API, served at ``/openapi.json``.

``tests/ingest/test_openapi.py`` compares the documented paths and methods
with the Flask URL map and validates every example against its schema, so a
route added without documentation fails the tests.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

blueprint = Blueprint("openapi", __name__)

ERROR_STATUSES = {
    "400": "Invalid request: malformed JSON, CSV or parameters.",
    "401": "Missing or invalid credentials (API key, read token or webhook signature).",
    "403": "The API key is not valid, or a write came from another host in demo mode.",
    "404": "The resource does not exist.",
    "409": "The event id was already accepted with a different payload.",
    "413": "The body, the number of events or the number of rows is over its limit.",
    "415": "The Content-Type is not one this endpoint reads.",
    "422": "The request was read, but every item in it was rejected.",
    "503": "MongoDB or Redis is not answering; retry after Retry-After seconds.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {"application/json": media}


def _errors(*statuses: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in statuses:
        response: dict[str, Any] = {"description": ERROR_STATUSES[status], "content": _json(_ref("Error"))}
        if status == "503":
            response["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "Seconds to wait."}}
        responses[status] = response
    return responses


def _ok(description: str, schema_name: str, example: Any, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": _json(_ref(schema_name), example)}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _path(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
TIMESTAMP = {
    "description": "ISO 8601 with an offset, or Unix epoch seconds or milliseconds.",
    "oneOf": [{"type": "string"}, {"type": "number"}],
}
EXAMPLE_TIME = "2026-03-01T12:00:00+00:00"
EXAMPLE_EVENT = {
    "event_id": "evt-1001",
    "lead_id": "ada@example.com",
    "type": "demo_request",
    "occurred_at": EXAMPLE_TIME,
    "properties": {"page": "/pricing"},
}
EXAMPLE_LEAD = {
    "lead_id": "ada@example.com",
    "score": 125,
    "stage": "mql",
    "last_activity_at": EXAMPLE_TIME,
    "event_count": 3,
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "company": "Analytical Engines",
    "created_at": EXAMPLE_TIME,
    "updated_at": EXAMPLE_TIME,
}
EXAMPLE_RESULT = {"index": 0, "line": 1, "status": "accepted", "event_id": "evt-1001", "error": None}
EXAMPLE_COUNTS = {"accepted": 1, "duplicates": 0, "conflicts": 0, "rejected": 0}
EXAMPLE_RULES = {
    "version": 2,
    "points": {"purchase": 100, "page_view": 1, "unsubscribe": -50},
    "cap": 1000,
    "floor": 0,
    "decay": {"after": "7d", "every": "1d", "points": 5},
    "stages": {"mql": 100, "sql": 400},
    "note": None,
    "published_at": EXAMPLE_TIME,
    "published_by": "api-key",
}
EXAMPLE_CHANGE = {
    "lead_id": "ada@example.com",
    "seq": 0,
    "at": EXAMPLE_TIME,
    "cause": "event",
    "event_id": "evt-1001",
    "points": 100,
    "score_before": 25,
    "score_after": 125,
    "rules_version": 2,
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {},
                },
            }
        },
    },
    "Event": {
        "type": "object",
        "required": ["type", "occurred_at"],
        "additionalProperties": False,
        "description": "One interaction of a lead; lead_id or email names the lead.",
        "properties": {
            "event_id": {"type": ["string", "null"], "maxLength": 128},
            "lead_id": {"type": ["string", "null"], "maxLength": 256},
            "type": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_.:\\-]+$"},
            "occurred_at": TIMESTAMP,
            "properties": {"type": "object", "description": "At most 16 KiB as JSON and 5 levels deep."},
            "source": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_.\\-]+$"},
            "email": {"type": ["string", "null"], "maxLength": 256},
            "name": {"type": ["string", "null"], "maxLength": 256},
            "company": {"type": ["string", "null"], "maxLength": 256},
        },
    },
    "ItemResult": {
        "type": "object",
        "required": ["index", "status", "event_id", "error"],
        "properties": {
            "index": {"type": "integer", "minimum": 0},
            "line": {"type": "integer", "minimum": 1},
            "status": {"enum": ["accepted", "duplicate", "conflict", "rejected"]},
            "event_id": NULLABLE_STRING,
            "error": NULLABLE_STRING,
        },
    },
    "Counts": {
        "type": "object",
        "required": ["accepted", "duplicates", "conflicts", "rejected"],
        "properties": {name: {"type": "integer", "minimum": 0} for name in ("accepted", "duplicates", "conflicts", "rejected")},
    },
    "ManualResult": {
        "allOf": [_ref("ItemResult")],
        "properties": {"lead": {"oneOf": [_ref("Lead"), {"type": "null"}]}},
    },
    "WebhookResult": {
        "allOf": [_ref("Counts")],
        "required": ["results"],
        "properties": {"results": {"type": "array", "items": _ref("ItemResult")}},
    },
    "BatchResult": {
        "allOf": [_ref("Counts")],
        "required": ["batch_id", "rows", "rejected_rows", "progress_url"],
        "properties": {
            "batch_id": {"type": "string"},
            "rows": {"type": "integer", "minimum": 0},
            "rejected_rows": {
                "type": "array",
                "maxItems": 1000,
                "items": {
                    "type": "object",
                    "required": ["line", "index", "event_id", "error"],
                    "properties": {
                        "line": {"type": "integer"},
                        "index": {"type": "integer"},
                        "event_id": NULLABLE_STRING,
                        "error": NULLABLE_STRING,
                    },
                },
            },
            "progress_url": {"type": "string"},
        },
    },
    "BatchProgress": {
        "allOf": [_ref("Counts")],
        "required": ["batch_id", "rows", "pending", "scored", "done"],
        "properties": {
            "batch_id": {"type": "string"},
            "format": {"enum": ["csv", "json", "ndjson"]},
            "rows": {"type": "integer"},
            "pending": {"type": "integer"},
            "scored": {"type": "integer"},
            "done": {"type": "boolean"},
            "created_at": {},
        },
    },
    "Lead": {
        "type": "object",
        "required": ["lead_id", "score", "stage", "last_activity_at", "event_count", "created_at", "updated_at"],
        "properties": {
            "lead_id": {"type": "string"},
            "score": {"type": "integer"},
            "stage": NULLABLE_STRING,
            "last_activity_at": NULLABLE_TIME,
            "event_count": {"type": "integer", "minimum": 0},
            "email": NULLABLE_STRING,
            "name": NULLABLE_STRING,
            "company": NULLABLE_STRING,
            "created_at": NULLABLE_TIME,
            "updated_at": NULLABLE_TIME,
        },
    },
    "ScoreChange": {
        "type": "object",
        "required": ["lead_id", "at", "cause", "points", "score_before", "score_after"],
        "properties": {
            "lead_id": {"type": "string"},
            "at": NULLABLE_TIME,
            "cause": {"enum": ["event", "decay", "rescore", "manual"]},
            "event_id": NULLABLE_STRING,
            "points": {"type": "integer"},
            "score_before": {"type": "integer"},
            "score_after": {"type": "integer"},
            "rules_version": {"type": ["integer", "null"]},
        },
    },
    "LeadDetail": {
        "allOf": [_ref("Lead")],
        "required": ["recent_history"],
        "properties": {"recent_history": {"type": "array", "maxItems": 20, "items": _ref("ScoreChange")}},
    },
    "LeadList": {
        "type": "object",
        "required": ["leads", "next"],
        "properties": {"leads": {"type": "array", "items": _ref("Lead")}, "next": NULLABLE_STRING},
    },
    "Leaderboard": {
        "type": "object",
        "required": ["leads"],
        "properties": {"leads": {"type": "array", "maxItems": 100, "items": _ref("Lead")}},
    },
    "LeadHistory": {
        "type": "object",
        "required": ["lead", "events", "changes"],
        "properties": {
            "lead": _ref("Lead"),
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["event_id", "source", "type", "occurred_at", "scored"],
                    "properties": {
                        "event_id": {"type": "string"},
                        "source": {"type": "string"},
                        "type": {"type": "string"},
                        "occurred_at": {"type": "string", "format": "date-time"},
                        "received_at": NULLABLE_TIME,
                        "rules_version": {"type": ["integer", "null"]},
                        "properties": {"type": "object"},
                        "scored": {"type": "boolean"},
                    },
                },
            },
            "changes": {"type": "array", "items": _ref("ScoreChange")},
        },
    },
    "Decay": {
        "type": "object",
        "properties": {
            "after": {"type": "string", "pattern": "^[0-9]+[smhd]$"},
            "every": {"type": "string", "pattern": "^[0-9]+[smhd]$"},
            "points": {"type": "integer"},
        },
    },
    "RuleSetIn": {
        "type": "object",
        "required": ["points"],
        "properties": {
            "points": {"type": "object", "additionalProperties": {"type": "integer"}},
            "cap": {"type": "integer"},
            "floor": {"type": "integer"},
            "decay": _ref("Decay"),
            "stages": {"type": "object", "additionalProperties": {"type": "integer"}},
            "note": NULLABLE_STRING,
        },
    },
    "RuleSet": {
        "type": "object",
        "required": ["version", "points", "cap", "floor", "decay", "stages", "published_at", "published_by"],
        "properties": {
            "version": {"type": "integer", "minimum": 1},
            "points": {"type": "object", "additionalProperties": {"type": "integer"}},
            "cap": {"type": "integer"},
            "floor": {"type": "integer"},
            "decay": _ref("Decay"),
            "stages": {"type": "object", "additionalProperties": {"type": "integer"}},
            "note": NULLABLE_STRING,
            "published_at": NULLABLE_TIME,
            "published_by": NULLABLE_STRING,
        },
    },
    "RuleVersions": {
        "type": "object",
        "required": ["versions"],
        "properties": {"versions": {"type": "array", "items": _ref("RuleSet")}},
    },
    "RescoreProgress": {
        "type": "object",
        "required": ["job_id", "version", "total", "done", "finished", "progress_url"],
        "properties": {
            "job_id": {"type": "string"},
            "version": {"type": "integer"},
            "total": {"type": "integer"},
            "done": {"type": "integer"},
            "finished": {"type": "boolean"},
            "started_at": NULLABLE_STRING,
            "finished_at": NULLABLE_STRING,
            "progress_url": {"type": "string"},
        },
    },
    "PublishResult": {
        "type": "object",
        "required": ["rules", "rescore"],
        "properties": {"rules": _ref("RuleSet"), "rescore": {"oneOf": [_ref("RescoreProgress"), {"type": "null"}]}},
    },
    "SimulationRequest": {
        "type": "object",
        "required": ["rules"],
        "additionalProperties": False,
        "properties": {
            "rules": _ref("RuleSetIn"),
            "outcome": {"type": "string", "description": "Event type that marks success, for the backtest."},
            "within_days": {"type": "number", "exclusiveMinimum": 0},
            "stage": {"type": "string"},
            "top": {"type": "integer", "minimum": 1, "maximum": 1000},
            "include_leads": {"type": "boolean"},
            "bins": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
    },
    "SimulationResult": {
        "type": "object",
        "required": ["now", "live_version", "candidate", "summary", "distribution", "top_movers"],
        "properties": {
            "now": {"type": "string", "format": "date-time"},
            "live_version": {"type": "integer"},
            "candidate": {"type": "object"},
            "summary": {"type": "object"},
            "stage_counts": {"type": "array"},
            "stage_changes": {"type": "array"},
            "distribution": {"type": "array"},
            "top_movers": {"type": "object"},
            "backtest": {},
            "leads": {"type": "array"},
        },
    },
    "Health": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    "Readiness": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"enum": ["ready", "unavailable"]},
            "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
}

WRITE = [{"apiKey": []}]
EXPORT_PARAMETERS = [
    _query("format", "csv (default) or parquet", {"enum": ["csv", "parquet"]}),
    _query("tz", "IANA time zone for the timestamps (default UTC)", {"type": "string"}),
    _query("lead_ids", "comma-separated lead ids", {"type": "string"}),
]
EXPORT_RESPONSES = {
    "200": {
        "description": "The rows, streamed.",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}},
        },
    },
    **_errors("400", "503"),
}
TIME_PARAMETERS = [
    _query("start", "earliest time, ISO 8601 with an offset or epoch seconds", {"type": "string"}),
    _query("end", "latest time, ISO 8601 with an offset or epoch seconds", {"type": "string"}),
]


def _upload_content() -> dict[str, Any]:
    text = {"schema": {"type": "string"}}
    return {
        "text/csv": text,
        "application/json": {"schema": {"oneOf": [{"type": "array", "items": _ref("Event")}, _ref("Event")]}},
        "application/x-ndjson": text,
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}},
            }
        },
    }


PATHS: dict[str, Any] = {
    "/api/events/manual": {
        "post": {
            "summary": "Accept one event",
            "description": "202 once stored and queued; with wait=1, 200 after scoring with the lead's new score.",
            "security": WRITE,
            "parameters": [_query("wait", "1 to score before answering", {"enum": ["1", "true", "yes", "0"]})],
            "requestBody": {"required": True, "content": _json(_ref("Event"), EXAMPLE_EVENT)},
            "responses": {
                **_ok("Scored (wait=1).", "ManualResult", dict(EXAMPLE_RESULT, lead=EXAMPLE_LEAD)),
                **_ok("Stored and queued for scoring.", "ItemResult", EXAMPLE_RESULT, "202"),
                **_errors("400", "401", "403", "409", "413", "415", "503"),
            },
        }
    },
    "/api/events/webhook": {
        "post": {
            "summary": "Accept one event or an array of up to 2,000 events",
            "description": (
                "When the server has a webhook secret, the request must carry a Standard Webhooks "
                "signature (webhook-id, webhook-timestamp, webhook-signature) instead of an API key."
            ),
            "security": [{"apiKey": []}, {"standardWebhooks": []}],
            "requestBody": {
                "required": True,
                "content": _json({"oneOf": [_ref("Event"), {"type": "array", "items": _ref("Event")}]}, [EXAMPLE_EVENT]),
            },
            "responses": {
                **_ok("Per-item results.", "WebhookResult", dict(EXAMPLE_COUNTS, results=[EXAMPLE_RESULT]), "202"),
                **_errors("400", "401", "403", "413", "415", "422", "503"),
            },
        }
    },
    "/api/events/batch": {
        "post": {
            "summary": "Upload CSV, a JSON array or NDJSON (raw or multipart)",
            "security": WRITE,
            "requestBody": {"required": True, "content": _upload_content()},
            "responses": {
                **_ok(
                    "Counts, rejected rows with line numbers, and the batch id.",
                    "BatchResult",
                    dict(EXAMPLE_COUNTS, batch_id="9f1c", rows=1, rejected_rows=[], progress_url="/api/events/batch/9f1c"),
                    "202",
                ),
                **_errors("400", "401", "403", "413", "415", "422", "503"),
            },
        }
    },
    "/api/events/batch/{batch_id}": {
        "get": {
            "summary": "Scoring progress of an upload",
            "parameters": [_path("batch_id", "the batch_id from the upload's answer")],
            "responses": {
                **_ok(
                    "Progress.",
                    "BatchProgress",
                    dict(EXAMPLE_COUNTS, batch_id="9f1c", format="csv", rows=1, pending=0, scored=1, done=True),
                ),
                **_errors("404", "503"),
            },
        }
    },
    "/api/leads": {
        "get": {
            "summary": "List leads by score, highest first, with cursor pagination",
            "parameters": [
                _query("limit", "page size, 1 to 500 (default 50)", {"type": "integer", "minimum": 1, "maximum": 500}),
                _query("stage", "only leads in this stage", {"type": "string"}),
                _query("min_score", "lowest score", {"type": "integer"}),
                _query("max_score", "highest score", {"type": "integer"}),
                _query("cursor", "the next value of the previous page", {"type": "string"}),
            ],
            "responses": {**_ok("One page.", "LeadList", {"leads": [EXAMPLE_LEAD], "next": None}), **_errors("400", "503")},
        }
    },
    "/api/leads/leaderboard": {
        "get": {
            "summary": "Top leads by score; ties in lead id order",
            "parameters": [_query("limit", "1 to 100 (default 10)", {"type": "integer", "minimum": 1, "maximum": 100})],
            "responses": {**_ok("The top leads.", "Leaderboard", {"leads": [EXAMPLE_LEAD]}), **_errors("400", "503")},
        }
    },
    "/api/leads/{lead_id}": {
        "get": {
            "summary": "One lead with its stage and 20 most recent score changes",
            "parameters": [_path("lead_id", "the lead id (e-mail ids are matched lower-cased)")],
            "responses": {
                **_ok("The lead.", "LeadDetail", dict(EXAMPLE_LEAD, recent_history=[EXAMPLE_CHANGE])),
                **_errors("404", "503"),
            },
        }
    },
    "/api/leads/{lead_id}/history": {
        "get": {
            "summary": "A lead's audit trail: its events and every score change",
            "parameters": [_path("lead_id", "the lead id")],
            "responses": {
                **_ok(
                    "The audit trail.",
                    "LeadHistory",
                    {
                        "lead": EXAMPLE_LEAD,
                        "events": [
                            {
                                "event_id": "evt-1001",
                                "source": "api",
                                "type": "purchase",
                                "occurred_at": EXAMPLE_TIME,
                                "received_at": EXAMPLE_TIME,
                                "rules_version": 2,
                                "properties": {},
                                "scored": True,
                            }
                        ],
                        "changes": [EXAMPLE_CHANGE],
                    },
                ),
                **_errors("404", "503"),
            },
        }
    },
    "/api/scoring-rules": {
        "get": {
            "summary": "The live rule set",
            "responses": {**_ok("The live rule set.", "RuleSet", EXAMPLE_RULES), **_errors("503")},
        },
        "put": {
            "summary": "Validate and publish a new rule-set version",
            "security": WRITE,
            "parameters": [_query("rescore", "1 to re-fold every lead under the new version", {"enum": ["1", "true", "yes", "0"]})],
            "requestBody": {"required": True, "content": _json(_ref("RuleSetIn"), {"points": {"purchase": 100}})},
            "responses": {
                **_ok("Published.", "PublishResult", {"rules": EXAMPLE_RULES, "rescore": None}),
                **_errors("400", "401", "403", "413", "415", "503"),
            },
        },
    },
    "/api/scoring-rules/versions": {
        "get": {
            "summary": "Every published version, newest first",
            "responses": {**_ok("The versions.", "RuleVersions", {"versions": [EXAMPLE_RULES]}), **_errors("503")},
        }
    },
    "/api/scoring-rules/rescore/{job_id}": {
        "get": {
            "summary": "Progress of a rescore",
            "parameters": [_path("job_id", "the job_id from the publish answer")],
            "responses": {
                **_ok(
                    "Progress.",
                    "RescoreProgress",
                    {
                        "job_id": "r1",
                        "version": 2,
                        "total": 10,
                        "done": 10,
                        "finished": True,
                        "started_at": EXAMPLE_TIME,
                        "finished_at": EXAMPLE_TIME,
                        "progress_url": "/api/scoring-rules/rescore/r1",
                    },
                ),
                **_errors("404", "503"),
            },
        }
    },
    "/api/simulations": {
        "post": {
            "summary": "What-if: candidate rules against the full history",
            "requestBody": {
                "required": True,
                "content": _json(_ref("SimulationRequest"), {"rules": {"points": {"purchase": 200}}, "top": 5}),
            },
            "responses": {
                **_ok(
                    "The impact summary.",
                    "SimulationResult",
                    {
                        "now": EXAMPLE_TIME,
                        "live_version": 2,
                        "candidate": {"points": {"purchase": 200}},
                        "summary": {"leads": 1, "scores_changed": 1},
                        "stage_counts": [],
                        "stage_changes": [],
                        "distribution": [],
                        "top_movers": {"up": [], "down": []},
                        "backtest": None,
                    },
                ),
                **_errors("400", "415", "422", "503"),
            },
        }
    },
    "/api/utils/export/leads": {
        "get": {
            "summary": "Stream the leads as CSV or Parquet",
            "parameters": [
                *EXPORT_PARAMETERS,
                _query("stages", "comma-separated stages", {"type": "string"}),
                _query("min_score", "lowest score", {"type": "integer"}),
            ],
            "responses": EXPORT_RESPONSES,
        }
    },
    "/api/utils/export/events": {
        "get": {
            "summary": "Stream the events as CSV or Parquet",
            "parameters": [
                *EXPORT_PARAMETERS,
                *TIME_PARAMETERS,
                _query("types", "comma-separated event types", {"type": "string"}),
                _query("sources", "comma-separated sources", {"type": "string"}),
            ],
            "responses": EXPORT_RESPONSES,
        }
    },
    "/api/utils/export/history": {
        "get": {
            "summary": "Stream the score history as CSV or Parquet",
            "parameters": [
                *EXPORT_PARAMETERS,
                *TIME_PARAMETERS,
                _query("causes", "comma-separated causes: event, decay, rescore", {"type": "string"}),
            ],
            "responses": EXPORT_RESPONSES,
        }
    },
    "/healthz": {
        "get": {"summary": "Liveness", "responses": _ok("The process serves requests.", "Health", {"status": "ok"})}
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: MongoDB and Redis both answer",
            "responses": {
                **_ok("Ready.", "Readiness", {"status": "ready", "checks": {"mongodb": "ok", "redis": "ok"}}),
                "503": {
                    "description": "A dependency is down.",
                    "content": _json(
                        _ref("Readiness"),
                        {"status": "unavailable", "checks": {"mongodb": "ok", "redis": "down: ConnectionError"}},
                    ),
                },
            },
        }
    },
    "/ws": {
        "get": {
            "summary": "Real-time score updates over WebSocket",
            "description": (
                "Upgrade to a WebSocket. Messages are JSON with a rising seq: hello, resync, "
                "score.updated, stage.changed, rules.published, rescore.progress. Reconnect with "
                "since=<seq> to receive what was missed. Needs a read token when the server has any."
            ),
            "security": [{}, {"readToken": []}, {"readTokenQuery": []}],
            "parameters": [
                _query("since", "the seq of the last message received", {"type": "string", "pattern": "^[0-9]+$"}),
                _query("token", "a read token, instead of the Authorization header", {"type": "string"}),
            ],
            "responses": {"101": {"description": "Switching to the WebSocket protocol."}, **_errors("400", "401")},
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1.", "content": _json({"type": "object"})}},
        }
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "ScoreStream",
        "version": "0.1.0",
        "description": (
            "Real-time lead scoring. Errors have the shape "
            '{"error": {"code", "message", "details"}}. See docs/api.md.'
        ),
    },
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "apiKey": {"type": "http", "scheme": "bearer", "description": "A key from SCORESTREAM_API_KEYS."},
            "readToken": {"type": "http", "scheme": "bearer", "description": "A token from SCORESTREAM_READ_TOKENS."},
            "readTokenQuery": {"type": "apiKey", "in": "query", "name": "token"},
            "standardWebhooks": {
                "type": "apiKey",
                "in": "header",
                "name": "webhook-signature",
                "description": "Standard Webhooks v1 signature with webhook-id and webhook-timestamp.",
            },
        },
    },
}


@blueprint.get("/openapi.json")
def openapi_document():  # type: ignore[no-untyped-def]
    """Return the OpenAPI 3.1 description of the API."""
    return jsonify(DOCUMENT)
