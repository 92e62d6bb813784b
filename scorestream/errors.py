"""The exception tree shared by every ScoreStream package."""

from __future__ import annotations

from typing import Any


class ScoreStreamError(Exception):
    """Base class of every error ScoreStream raises on purpose."""


class ConfigError(ScoreStreamError):
    """An environment variable or flag has an invalid value."""


class ServiceError(ScoreStreamError):
    """An embedded service failed to start or stop."""


class ValidationError(ScoreStreamError):
    """Input (an event, a rule set, an upload) failed validation.

    ``details`` carries machine-readable specifics, for example the field
    path or the rejected rows, and goes into the API's error body.
    """

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class DependencyUnavailable(ScoreStreamError):
    """Redis or MongoDB did not answer, so the request cannot be served now."""
