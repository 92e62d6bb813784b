"""API keys for writes, read tokens for ``/ws``, and Standard Webhooks signatures.

Keys are kept only as SHA-256 digests and compared with
``hmac.compare_digest``, so neither the comparison time nor a memory dump of
the settings gives the key away.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import time
from typing import Iterable

from flask import Request

from ingest.errors import ApiError

logger = logging.getLogger(__name__)

WEBHOOK_TOLERANCE_SECONDS = 5 * 60


def digest(secret: str) -> bytes:
    """Return the SHA-256 digest under which a key is kept."""
    return hashlib.sha256(secret.encode()).digest()


class KeyRing:
    """Digests of the accepted keys; checks every one so timing reveals nothing."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [digest(key) for key in keys]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def matches(self, candidate: str) -> bool:
        """Tell whether ``candidate`` is one of the keys."""
        candidate_digest = digest(candidate)
        found = False
        for known in self._digests:
            found |= hmac.compare_digest(known, candidate_digest)
        return found


def is_loopback(address: str | None) -> bool:
    """Tell whether a peer address is on the loopback network."""
    try:
        return ipaddress.ip_address((address or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def bearer_token(request: Request) -> str | None:
    """Return the token of an ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def require_write_access(request: Request, keys: KeyRing) -> None:
    """Raise 401/403 unless the request may write.

    Without configured keys the server is in local demo mode and accepts
    writes from loopback peers only.
    """
    if not keys:
        if is_loopback(request.remote_addr):
            return
        raise ApiError(
            403,
            "forbidden",
            "writes from other hosts need an API key; set SCORESTREAM_API_KEYS on the server "
            "and send 'Authorization: Bearer <key>'",
        )
    token = bearer_token(request)
    if token is None:
        raise ApiError(
            401,
            "unauthorized",
            "this endpoint needs an API key; send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": 'Bearer realm="scorestream"'},
        )
    if not keys.matches(token):
        logger.warning("write rejected: invalid API key from %s %s", request.remote_addr, request.path)
        raise ApiError(403, "forbidden", "the API key is not valid; check SCORESTREAM_API_KEYS on the server")


def require_read_access(request: Request, tokens: KeyRing, keys: KeyRing) -> None:
    """Raise 401 unless the request carries a read token (or API key) when tokens are set."""
    if not tokens:
        return
    candidate = bearer_token(request) or request.args.get("token")
    if candidate and (tokens.matches(candidate) or keys.matches(candidate)):
        return
    raise ApiError(401, "unauthorized", "a read token is needed; pass ?token=<token> or 'Authorization: Bearer <token>'")


def _secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign_webhook(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``v1,<base64>`` signature of a Standard Webhooks message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    mac = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_webhook(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> str:
    """Verify a Standard Webhooks signature; return the ``webhook-id``.

    The timestamp must lie within five minutes either way, and any of the
    space-separated ``v1,`` signatures may match (several are sent while a
    secret is being rotated).
    """
    message_id = headers.get("webhook-id")
    timestamp_text = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not message_id or not timestamp_text or not signatures:
        raise ApiError(
            401,
            "invalid_signature",
            "the webhook lacks webhook-id, webhook-timestamp or webhook-signature; sign it per Standard Webhooks",
        )
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise ApiError(401, "invalid_signature", f"webhook-timestamp {timestamp_text!r} is not whole epoch seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > WEBHOOK_TOLERANCE_SECONDS:
        raise ApiError(
            401,
            "invalid_signature",
            f"webhook-timestamp {timestamp} is more than 5 minutes from server time {int(current)}; "
            "check the sender's clock or resend with a fresh timestamp",
        )
    try:
        expected = sign_webhook(secret, message_id, timestamp, body).split(",", 1)[1].encode()
    except (ValueError, TypeError):
        raise ApiError(500, "misconfigured", "the server's webhook secret is not valid base64") from None
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return message_id
    raise ApiError(401, "invalid_signature", "no webhook-signature matches the body; check the signing secret")
