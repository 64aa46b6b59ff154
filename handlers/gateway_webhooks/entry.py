"""POST /api/authorizenet/webhook. Anonymous at the Functions level: the X-ANET-Signature is the authentication.

Order matters: size, then signature over the raw bytes (`get_body()`, never re-serialized JSON), then parsing. A
refused request changes nothing and logs neither its body nor its signature.
"""
from __future__ import annotations

import logging

import azure.functions as func

from app.composition import get_services, signature_key
from app.responses import json_response
from core.errors import BadRequest, ConfigurationError
from gateway.signature import verify_signature
from core.steps import Registry
from handlers.gateway_webhooks import profile_events
from handlers.gateway_webhooks.notifications import handle_notification, parse_notification
from core import telemetry

log = logging.getLogger(__name__)
bp = func.Blueprint()

# Authorize.Net notifications are a few hundred bytes; anything near this is not one of them.
MAX_BODY_BYTES = 16 * 1024
SIGNATURE_HEADER = "X-ANET-Signature"


@bp.route(route="authorizenet/webhook", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@telemetry.invocation
def authorizenet_webhook(req: func.HttpRequest, context: func.Context = None) -> func.HttpResponse:
    body = req.get_body() or b""
    if len(body) > MAX_BODY_BYTES:
        log.warning("gateway webhook: refused a %d-byte body", len(body))
        return json_response(413, {"status": "failed", "message": f"The body is larger than {MAX_BODY_BYTES} bytes."})
    services = get_services()
    try:
        key = signature_key(services.settings)
    except ConfigurationError as exc:
        log.error("gateway webhook: %s", exc)
        return json_response(500, {"status": "failed", "message": "The webhook signature key is not configured."})
    if not verify_signature(body, req.headers.get(SIGNATURE_HEADER), key):
        log.warning("gateway webhook: refused a request with a missing or wrong %s", SIGNATURE_HEADER)
        return json_response(401, {"status": "failed", "message": f"Missing or wrong {SIGNATURE_HEADER}."})
    try:
        note = parse_notification(body)
    except BadRequest as exc:
        return json_response(400, {"status": "failed", "message": str(exc)})
    try:
        handled = handle_notification(services, note)
    except Exception:  # noqa: BLE001 - answer like the Functions host, without details; Authorize.Net redelivers
        log.exception("gateway webhook %s %s failed", note.notification_id, note.event_type)
        return json_response(500, {"status": "failed", "message": "The service failed; see its logs."})
    headers = {"Retry-After": str(handled.retry_after)} if handled.retry_after else {}
    return json_response(handled.http_status, {"status": handled.status, "message": handled.message,
                                       "notificationId": note.notification_id}, headers)



def register(registry: Registry) -> None:
    registry.blueprint(bp)
    registry.work(profile_events.IMPORT_WORK, profile_events.import_profiles)
