"""Configuration from ``SCORESTREAM_*``, ``MONGO_URI`` and ``REDIS_URL``.

Every entry point builds one :class:`Settings` with :func:`load_settings`, so
the variables are read and validated in this module only. Each variable is
listed with its default in ``docs/configuration.md``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

from scorestream.errors import ConfigError

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, name: str = "duration") -> int:
    """Parse ``30s``, ``15m``, ``12h`` or ``7d`` into whole seconds."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(
            f"{name} {text!r} is not a duration; write a whole number followed "
            "by s, m, h or d, for example '30s', '15m', '12h' or '7d'"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    """Format whole seconds with the largest unit that divides them exactly."""
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Settings:
    """Validated settings shared by the web app, the workers and the tools."""

    mongo_uri: str | None = None
    redis_url: str | None = None
    data_dir: Path = Path("var")
    database: str = "scorestream"
    api_keys: tuple[str, ...] = ()
    read_tokens: tuple[str, ...] = ()
    webhook_secret: str | None = None
    decay_interval: int = 60
    max_body_bytes: int = 100 * 1024 * 1024
    max_webhook_bytes: int = 4 * 1024 * 1024
    max_webhook_events: int = 2000
    max_upload_rows: int = 1_000_000
    chunk_size: int = 500
    sweep_after: int = 60
    stream_maxlen: int = 100_000
    web_threads: int = 32
    worker_threads: int = 2
    log_level: str = "INFO"
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def demo_mode(self) -> bool:
        """True when no API key is configured: loopback-only, unauthenticated writes."""
        return not self.api_keys

    def with_services(self, mongo_uri: str, redis_url: str) -> "Settings":
        """Return a copy that points at the given MongoDB and Redis."""
        return replace(self, mongo_uri=mongo_uri, redis_url=redis_url)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number; set it to an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is below the minimum {minimum}; raise it")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name, "")
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read and validate the settings; raise :class:`ConfigError` on a bad value.

    ``overrides`` (from command-line flags) win over the environment.
    """
    env = os.environ if env is None else env

    mongo_uri = env.get("MONGO_URI") or None
    if mongo_uri and not mongo_uri.startswith(("mongodb://", "mongodb+srv://")):
        raise ConfigError(
            f"MONGO_URI={mongo_uri!r} is not a MongoDB URI; it must start with "
            "mongodb:// or mongodb+srv://, or be unset to use the embedded server"
        )
    redis_url = env.get("REDIS_URL") or None
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"REDIS_URL={redis_url!r} is not a Redis URL; it must start with "
            "redis://, rediss:// or unix://, or be unset to use the embedded server"
        )

    secret = env.get("SCORESTREAM_WEBHOOK_SECRET") or None
    if secret is not None and not secret.startswith("whsec_"):
        raise ConfigError(
            "SCORESTREAM_WEBHOOK_SECRET must be a Standard Webhooks secret that "
            "starts with 'whsec_' followed by base64; generate one with "
            "`scorestream secret`"
        )

    interval_raw = env.get("SCORESTREAM_DECAY_INTERVAL", "1m")
    interval = parse_duration(interval_raw, "SCORESTREAM_DECAY_INTERVAL")
    if interval < 60 or interval % 60:
        raise ConfigError(
            f"SCORESTREAM_DECAY_INTERVAL={interval_raw!r} must be a whole number "
            "of minutes, at least '1m', because the periodic scheduler ticks once a minute"
        )

    level = env.get("SCORESTREAM_LOG_LEVEL", "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(
            f"SCORESTREAM_LOG_LEVEL={level!r} is not a level; use DEBUG, INFO, WARNING or ERROR"
        )

    settings = Settings(
        mongo_uri=mongo_uri,
        redis_url=redis_url,
        data_dir=Path(env.get("SCORESTREAM_DATA_DIR") or "var"),
        database=env.get("SCORESTREAM_DATABASE") or "scorestream",
        api_keys=_list(env, "SCORESTREAM_API_KEYS"),
        read_tokens=_list(env, "SCORESTREAM_READ_TOKENS"),
        webhook_secret=secret,
        decay_interval=interval,
        max_body_bytes=_int(env, "SCORESTREAM_MAX_BODY_BYTES", 100 * 1024 * 1024),
        max_webhook_bytes=_int(env, "SCORESTREAM_MAX_WEBHOOK_BYTES", 4 * 1024 * 1024),
        max_webhook_events=_int(env, "SCORESTREAM_MAX_WEBHOOK_EVENTS", 2000),
        max_upload_rows=_int(env, "SCORESTREAM_MAX_UPLOAD_ROWS", 1_000_000),
        chunk_size=_int(env, "SCORESTREAM_CHUNK_SIZE", 500),
        sweep_after=_int(env, "SCORESTREAM_SWEEP_AFTER", 60),
        stream_maxlen=_int(env, "SCORESTREAM_STREAM_MAXLEN", 100_000, minimum=100),
        web_threads=_int(env, "SCORESTREAM_WEB_THREADS", 32),
        worker_threads=_int(env, "SCORESTREAM_WORKER_THREADS", 2),
        log_level=level,
    )
    clean = {key: value for key, value in overrides.items() if value is not None}
    if "data_dir" in clean:
        clean["data_dir"] = Path(str(clean["data_dir"]))
    return replace(settings, **clean)  # type: ignore[arg-type]
