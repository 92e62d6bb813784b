"""API errors and their JSON shape: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from scorestream.errors import DependencyUnavailable, ValidationError

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    """An error answered with a status code and the JSON error shape."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """Build a JSON error response."""
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer every error, including Werkzeug's, with the JSON error shape."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):  # type: ignore[no-untyped-def]
        headers = dict(error.headers)
        if error.status == 413:
            headers.setdefault("Connection", "close")
        return error_response(error.status, error.code, error.message, error.details, headers)

    @app.errorhandler(ValidationError)
    def validation_error(error: ValidationError):  # type: ignore[no-untyped-def]
        return error_response(400, "invalid", error.message, error.details)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        code = (error.name or "error").lower().replace(" ", "_")
        message = error.description or error.name
        if error.code == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            message = f"the request body is larger than the limit of {limit} bytes; split it into smaller requests"
            # The unread body makes the server drop the connection after the
            # answer; saying so stops clients from reusing it for the next
            # request, which would then fail with no response at all.
            return error_response(413, code, message, headers={"Connection": "close"})
        return error_response(error.code or 500, code, message)

    @app.errorhandler(DependencyUnavailable)
    @app.errorhandler(PyMongoError)
    @app.errorhandler(RedisError)
    def dependency_down(error: Exception):  # type: ignore[no-untyped-def]
        logger.warning("dependency unavailable: %s: %s", type(error).__name__, error)
        return error_response(
            503,
            "unavailable",
            "a storage service (MongoDB or Redis) is not answering; retry later",
            {"service": "mongodb" if isinstance(error, PyMongoError) else "redis"},
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
