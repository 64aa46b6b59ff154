"""The body of every message we put on W365_WORK_QUEUE (the WorkQueue port's wire format). Both queues, Service Bus
(adapters/servicebus.py) and the in-process one of local mode and tests (standins/queue.py), carry it: at-least-once
delivery (a handler must be idempotent), redelivery when the handler raises, dead-letter after MaxDeliveryCount,
delayed messages for back-off, and duplicate detection on the deterministic `message_id`."""
from __future__ import annotations

import json
from typing import Any, Mapping

# The body of every message we put on W365_WORK_QUEUE carries this key; Dataverse's own messages do not.
WORK_KIND_KEY = "w365_work_kind"
WORK_REQUEST_ID = "w365_request_id"     # application property: the RequestId of the click that queued the work


def encode_work(kind: str, payload: Mapping[str, Any]) -> bytes:
    return json.dumps({WORK_KIND_KEY: kind, "payload": payload}, default=str, separators=(",", ":")).encode()


def decode_work_body(raw: bytes) -> tuple[str, Mapping[str, Any]] | None:
    """Our work from a raw message body; None for anything else (a Dataverse context, not JSON at all)."""
    try:
        body = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return decode_work(body) if isinstance(body, dict) else None


def decode_work(body: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    kind = body.get(WORK_KIND_KEY)
    if not isinstance(kind, str):
        return None
    payload = body.get("payload")
    return kind, payload if isinstance(payload, Mapping) else {}
