"""One Authorize.Net notification: parse it, handle it at most once, say what happened.

De-duplication (research/gateway.md §4: deliveries are retried, so the same notificationId can come twice, to any
instance): the notificationId is claimed by creating a `w365_operation` row with `w365_requestid` = notificationId and
`w365_messagename` = the event type, before anything else happens. The row's alternate key makes a concurrent or later
duplicate fail to create it (DuplicateRecord), and that delivery is answered from the row without running again. The
claim is written "Failed / being processed" and completed with the outcome; when handling fails (a platform down, a
bug) the claim is deleted so Authorize.Net's redelivery runs it. A claim left behind by an instance that died is
taken over after STALE_CLAIM. The handlers are idempotent on their own as well (alternate key on w365_refid, ETags),
so a takeover or a lost claim never moves money twice.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable

from core import dates, footprint, jsonutil, odata
from core.text import require_valid_text
from core.errors import (BadRequest, ConcurrencyConflict, ConflictInProgress, DataverseError, DuplicateRecord,
                         GatewayUnavailable, PlatformUnavailable)
from core.services import Services
from core.steps import Outcome
from handlers.gateway_webhooks import profile_events, transaction_events

log = logging.getLogger(__name__)

OPERATIONS = "w365_operations"
PROCESSING = "Authorize.Net notification received; being processed."
STALE_CLAIM = dt.timedelta(minutes=10)
DEFAULT_RETRY_AFTER = 60
_NOTIFICATION_ID = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_GATEWAY_ID = re.compile(r"^\d{1,20}$")

EVENTS: dict[str, Callable[[Services, "Notification"], Outcome]] = {
    "net.authorize.customer.paymentProfile.created": profile_events.created,
    "net.authorize.customer.paymentProfile.updated": profile_events.updated,
    "net.authorize.customer.paymentProfile.deleted": profile_events.deleted,
    "net.authorize.payment.authcapture.created": transaction_events.charge_or_refund,
    "net.authorize.payment.refund.created": transaction_events.charge_or_refund,
    "net.authorize.payment.fraud.held": transaction_events.charge_or_refund,
    "net.authorize.payment.fraud.approved": transaction_events.charge_or_refund,
    "net.authorize.payment.fraud.declined": transaction_events.charge_or_refund,
    "net.authorize.payment.void.created": transaction_events.void,
}


@dataclass(frozen=True)
class Notification:
    """The parts of a delivery we use. Only a hint: the handlers re-read the gateway's own records."""
    notification_id: str
    event_type: str
    entity_id: str                   # payload.id: a transId, or a customer payment profile id
    customer_profile_id: str = ""    # payload.customerProfileId (payment profile events)


@dataclass(frozen=True)
class Handled:
    http_status: int
    status: str                      # succeeded, duplicate, ignored, failed
    message: str
    retry_after: int | None = None


def parse_notification(raw: bytes) -> Notification:
    """The signed body as a Notification; anything we cannot use is a BadRequest naming what is wrong."""
    try:
        document = jsonutil.loads(raw)
    except RecursionError:
        raise BadRequest("The body is nested too deeply to be a notification.") from None
    except ValueError:
        raise BadRequest("The body is not JSON.") from None
    if not isinstance(document, dict):
        raise BadRequest("The body is not a JSON object.")
    require_valid_text(document)
    notification_id, event_type = document.get("notificationId"), document.get("eventType")
    payload = document.get("payload")
    if not isinstance(notification_id, str) or not _NOTIFICATION_ID.match(notification_id):
        raise BadRequest("notificationId is missing or malformed.")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise BadRequest("eventType is missing or malformed.")
    if not isinstance(payload, dict):
        raise BadRequest("payload is missing.")
    entity_id = _gateway_id(payload.get("id"))
    customer_profile_id = _gateway_id(payload.get("customerProfileId"))
    if event_type in EVENTS and not entity_id:
        raise BadRequest("payload.id is missing or not an Authorize.Net id.")
    return Notification(notification_id, event_type, entity_id, customer_profile_id)


def handle_notification(services: Services, note: Notification) -> Handled:
    handler = EVENTS.get(note.event_type)
    if handler is None:
        return Handled(200, "ignored", f"{note.event_type} is not an event this service acts on.")
    claim = _claim(services, note)
    if isinstance(claim, Handled):
        return claim
    try:
        outcome = handler(services, note)
    except (PlatformUnavailable, GatewayUnavailable) as exc:
        _release(services, claim)
        log.warning("gateway webhook %s: a platform is unavailable (%s)", note.notification_id, type(exc).__name__)
        retry_after = int(getattr(exc, "retry_after", None) or DEFAULT_RETRY_AFTER)
        return Handled(503, "failed", "Dynamics 365 or Authorize.Net is busy; deliver it again later.", retry_after)
    except (ConflictInProgress, ConcurrencyConflict):
        _release(services, claim)
        return Handled(409, "failed", "The record changed while this was handled; deliver it again later.")
    except BaseException:
        _release(services, claim)
        raise
    try:
        services.dataverse.update(OPERATIONS, claim, {
            "w365_status": _status("Succeeded" if outcome.ok else "Failed"), "w365_message": outcome.message[:4000],
            "w365_regardingtable": str(outcome.data.get("regarding_table") or "")[:100] or None,
            "w365_regardingid": str(outcome.data.get("regarding_id") or "")[:36] or None})
    except DataverseError as exc:
        # Done, but not marked done: the redelivery after STALE_CLAIM takes the claim over and finds nothing to do.
        log.warning("gateway webhook %s: could not complete its claim (%s)", note.notification_id, type(exc).__name__)
        return Handled(503, "failed", "Handled, but Dynamics 365 could not record it; deliver it again later.",
                       DEFAULT_RETRY_AFTER)
    log.info("gateway webhook %s %s: %s", note.notification_id, note.event_type, outcome.status)
    return Handled(200, outcome.status, outcome.message)


def _claim(services: Services, note: Notification) -> str | Handled:
    """The new w365_operation row's id, or the answer for a duplicate."""
    try:
        return services.dataverse.create(OPERATIONS, {
            "w365_name": f"Authorize.Net {note.event_type}"[:100], "w365_requestid": note.notification_id,
            "w365_messagename": note.event_type, "w365_status": _status("Failed"), "w365_message": PROCESSING})
    except DuplicateRecord:
        pass
    rows = services.dataverse.query(OPERATIONS, select=("w365_operationid", "w365_message", "createdon"),
                                    filter=odata.eq("w365_requestid", note.notification_id), top=1)
    if not rows:                         # released meanwhile: let the sender try again
        return Handled(409, "failed", "This notification is being handled; deliver it again later.")
    earlier = rows[0]
    if earlier.get("w365_message") != PROCESSING:
        return Handled(200, "duplicate", f"Already handled: {earlier.get('w365_message') or ''}".strip())
    if _age(services, earlier) < STALE_CLAIM:
        return Handled(409, "failed", "This notification is being handled; deliver it again later.")
    log.warning("gateway webhook %s: taking over a claim left unfinished", note.notification_id)
    return str(earlier["w365_operationid"])


def _release(services: Services, claim: str) -> None:
    try:
        services.dataverse.delete(OPERATIONS, claim)
    except DataverseError as exc:        # it goes stale and a redelivery after STALE_CLAIM takes it over
        log.warning("gateway webhook: could not release claim %s (%s)", claim, type(exc).__name__)


def _age(services: Services, row: dict[str, Any]) -> dt.timedelta:
    created = row.get("createdon")
    if not created:
        return dt.timedelta()
    return services.clock.now() - dates.parse(created)


def _status(label: str) -> int:
    return footprint.choice("w365_operation", "w365_status", label)


def _gateway_id(value: Any) -> str:
    """Authorize.Net ids are digits (sent as a string or a number); anything else is treated as absent."""
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return text if _GATEWAY_ID.match(text) else ""
