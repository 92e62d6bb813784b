"""The OpenAPI document matches the Flask routes and its examples match its schemas."""

from __future__ import annotations

import re
from typing import Any, Iterator

import jsonschema
import pytest

from ingest.app import create_app
from ingest.openapi import DOCUMENT
from scorestream.config import Settings
from tests.conftest import Api

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _openapi_path(rule: str) -> str:
    # Flask's <path:lead_id> and <job_id> become OpenAPI's {lead_id} and {job_id}.
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _examples(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
            bodies += [(status, response.get("content", {})) for status, response in operation["responses"].items()]
            for where, content in bodies:
                for media_type, media in content.items():
                    if "example" in media:
                        yield f"{method.upper()} {path} {where} {media_type}", media["schema"], media["example"]


def test_openapi_paths_match_url_map(settings: Settings) -> None:
    app = create_app(settings)
    routes = {
        (_openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods - IGNORED_METHODS
    }
    documented = {(path, method) for path, operations in DOCUMENT["paths"].items() for method in operations}
    assert routes - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routes == set(), "documented operations with no route"


def test_openapi_served_at_well_known_path(api: Api) -> None:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    served = response.json()
    assert served["openapi"] == "3.1.0"
    assert served["paths"].keys() == DOCUMENT["paths"].keys()


def test_openapi_schemas_are_valid_json_schema() -> None:
    for schema in DOCUMENT["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("where, schema, example", list(_examples(DOCUMENT)), ids=lambda value: value if isinstance(value, str) else "")
def test_openapi_example_matches_schema(where: str, schema: dict[str, Any], example: Any) -> None:
    root = dict(schema, components=DOCUMENT["components"])
    jsonschema.Draft202012Validator(root).validate(example)


def test_openapi_error_example_from_server(api: Api) -> None:
    response = api.get("/api/leads/no-such-lead-anywhere")
    assert response.status_code == 404
    root = {"$ref": "#/components/schemas/Error", "components": DOCUMENT["components"]}
    jsonschema.Draft202012Validator(root).validate(response.json())
