"""The web log never shows a key, a token, the webhook secret or a payload."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import websocket
from standardwebhooks.webhooks import Webhook

from tests.conftest import wait_until
from tests.security.conftest import API_KEYS, READ_TOKEN, WEBHOOK_SECRET, KeyedWeb


def test_web_log_has_no_secrets(keyed_web: KeyedWeb, unique) -> None:
    marker = f"payload-marker-{uuid.uuid4().hex}"
    moment = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
    event = {"event_id": unique("log"), "lead_id": unique("log-lead"), "type": "page_view", "occurred_at": moment}
    event["properties"] = {"note": marker}
    client = keyed_web.client()
    for key in (*API_KEYS, "sk-wrong-key-value-1234"):
        client.post("/api/events/manual", json=dict(event, event_id=unique(key[:8])), headers={"Authorization": f"Bearer {key}"})
    body = json.dumps([event])
    message_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(timezone.utc)
    signature = Webhook(WEBHOOK_SECRET).sign(message_id, now, body)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    assert client.post("/api/events/webhook", data=body, headers=headers).status_code == 202
    connection = websocket.create_connection(f"{keyed_web.ws_url}?token={READ_TOKEN}", timeout=10)
    connection.close()
    wait_until(lambda: message_id in keyed_web.log.read_text(), message="the webhook's log line")

    log = keyed_web.log.read_text()
    assert "POST /api/events/manual -> 202" in log
    for secret in (*API_KEYS, "sk-wrong-key-value-1234", READ_TOKEN, WEBHOOK_SECRET, WEBHOOK_SECRET[6:], signature):
        assert secret not in log, f"{secret[:6]}... appears in the web log"
    assert marker not in log
