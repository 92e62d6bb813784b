"""Standard Webhooks signatures, signed by the official standardwebhooks package."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook

from ingest.auth import sign_webhook
from tests.conftest import wait_until
from tests.security.conftest import WEBHOOK_SECRET, KeyedWeb

OTHER_SECRET = "whsec_" + base64.b64encode(b"some-other-secret-of-32-bytes!!!").decode()


def _body(unique, count: int = 1) -> tuple[str, str]:
    lead_id = unique("wh-lead")
    moment = (datetime.now(timezone.utc) - timedelta(minutes=10)).isoformat()
    events = [{"lead_id": lead_id, "type": "page_view", "occurred_at": moment, "properties": {"n": n}} for n in range(count)]
    return lead_id, json.dumps(events)


def _post(keyed_web: KeyedWeb, body: str, message_id: str, when: datetime, signature: str):  # type: ignore[no-untyped-def]
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }
    return keyed_web.client().post("/api/events/webhook", data=body.encode(), headers=headers)


def _sign(secret: str, message_id: str, when: datetime, body: str) -> str:
    return Webhook(secret).sign(message_id, when, body)


def _event_count(keyed_web: KeyedWeb, lead_id: str) -> int | None:
    response = keyed_web.client().get(f"/api/leads/{lead_id}")
    return response.json()["event_count"] if response.status_code == 200 else None


def test_webhook_valid_signature_accepted(keyed_web: KeyedWeb, unique) -> None:
    lead_id, body = _body(unique, 3)
    message_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(timezone.utc)
    response = _post(keyed_web, body, message_id, now, _sign(WEBHOOK_SECRET, message_id, now, body))
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3
    assert [item["event_id"] for item in response.json()["results"]] == [f"{message_id}:{n}" for n in range(3)]
    wait_until(lambda: _event_count(keyed_web, lead_id) == 3, message="signed events scored")


@pytest.mark.parametrize(
    "case, offset, secret",
    [
        ("forged", timedelta(0), OTHER_SECRET),
        ("stale", timedelta(minutes=-6), WEBHOOK_SECRET),
        ("future", timedelta(minutes=6), WEBHOOK_SECRET),
    ],
)
def test_webhook_bad_signature_rejected(keyed_web: KeyedWeb, unique, case: str, offset: timedelta, secret: str) -> None:
    lead_id, body = _body(unique)
    message_id, when = f"msg_{uuid.uuid4().hex}", datetime.now(timezone.utc) + offset
    response = _post(keyed_web, body, message_id, when, _sign(secret, message_id, when, body))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "invalid_signature"
    assert _event_count(keyed_web, lead_id) is None


def test_webhook_tampered_body_rejected(keyed_web: KeyedWeb, unique) -> None:
    _, body = _body(unique)
    message_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(timezone.utc)
    signature = _sign(WEBHOOK_SECRET, message_id, now, body)
    response = _post(keyed_web, body.replace("page_view", "purchase"), message_id, now, signature)
    assert response.status_code == 401


def test_webhook_without_headers_rejected(keyed_web: KeyedWeb, unique) -> None:
    _, body = _body(unique)
    response = keyed_web.client().post("/api/events/webhook", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"


def test_webhook_replay_counts_once(keyed_web: KeyedWeb, unique) -> None:
    lead_id, body = _body(unique)
    message_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(timezone.utc)
    signature = _sign(WEBHOOK_SECRET, message_id, now, body)
    first = _post(keyed_web, body, message_id, now, signature)
    again = _post(keyed_web, body, message_id, now, signature)
    assert first.status_code == 202
    assert first.json()["accepted"] == 1
    assert again.status_code == 202
    assert again.json()["accepted"] == 0
    assert again.json()["duplicates"] == 1
    wait_until(lambda: _event_count(keyed_web, lead_id) == 1, message="replayed webhook scored once")
    history = keyed_web.client().get(f"/api/leads/{lead_id}/history").json()
    assert len(history["events"]) == 1
    assert len(history["changes"]) == 1


def test_webhook_rotation_any_signature_matches(keyed_web: KeyedWeb, unique) -> None:
    _, body = _body(unique)
    message_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(timezone.utc)
    signatures = " ".join([_sign(OTHER_SECRET, message_id, now, body), _sign(WEBHOOK_SECRET, message_id, now, body)])
    response = _post(keyed_web, body, message_id, now, signatures)
    assert response.status_code == 202, response.text


def test_webhook_signer_matches_library() -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    body = '{"type": "x"}'
    ours = sign_webhook(WEBHOOK_SECRET, "msg_1", int(now.timestamp()), body.encode())
    assert ours == _sign(WEBHOOK_SECRET, "msg_1", now, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": ours}
    Webhook(WEBHOOK_SECRET).verify(body, headers)
