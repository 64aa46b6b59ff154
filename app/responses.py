"""What the entry answers: the one table that maps a handler's typed errors to an HTTP answer and to the queue's
settle-or-abandon (ERROR_ANSWERS), and the one JSON answer of the HTTP triggers (the Dataverse webhook, health, the
Authorize.Net webhook).

`default=str` keeps any Decimal or GUID in an outcome's data readable as text instead of failing the answer after
the work was done.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import azure.functions as func

from core.errors import (AccessDenied, BadRequest, BusinessRuleViolation, ConfigurationError, ConflictInProgress,
                         DataverseError, GatewayAuthError, GatewayUnavailable, PlatformUnavailable, RecordNotFound)

COMPLETE, ABANDON = "complete", "abandon"      # on W365_WORK_QUEUE: done with the message, or let it be redelivered


@dataclass(frozen=True)
class Answer:
    """`status` 200 is a `failed` business outcome (recorded on the button's w365_operation row); anything else is the
    HTTP error of CONTRACT §2. `message` None: the error's own text, which is written for people. `for_events`: also
    the answer to a table event (False: an event lets it through to the host: 500, and the queue redelivers)."""
    status: int
    message: str | None = None
    for_events: bool = True

    @property
    def queue(self) -> str:
        return queue_settle(self.status)


def queue_settle(http_status: int) -> str:
    """What the W365_WORK_QUEUE trigger does with a message answered `http_status`. Only what may pass on a later
    delivery is abandoned: a busy or unreachable platform (503). A refusal (400, 403, 404, a business outcome) would
    be answered the same every time, so the message is completed."""
    return ABANDON if http_status == 503 else COMPLETE


NOT_CONFIGURED = ("The payment service is not configured correctly; an administrator must check its settings. "
                  "Nothing was charged.")
# First match wins: order subclasses before their base classes.
ERROR_ANSWERS: tuple[tuple[tuple[type[Exception], ...], Answer], ...] = (
    ((BadRequest,), Answer(400)),
    ((BusinessRuleViolation,), Answer(200)),
    ((RecordNotFound,), Answer(200, "A record this action needs does not exist, or you cannot see it.")),
    ((AccessDenied,), Answer(200, "You do not have the Dataverse privileges this action needs.", for_events=False)),
    ((ConflictInProgress,), Answer(409, for_events=False)),
    ((GatewayAuthError, ConfigurationError), Answer(200, NOT_CONFIGURED, for_events=False)),
    ((PlatformUnavailable, GatewayUnavailable),
     Answer(503, "Dataverse or the payment gateway is busy or unavailable; the request will be retried.")),
)
EVENT_RECORD_GONE = "The record of this event no longer exists."


def answer_for(exc: Exception, *, event: bool = False) -> Answer | None:
    """The answer to a handler's error, or None when it is a bug or an unexpected failure (the host's 500)."""
    if isinstance(exc, DataverseError) and not isinstance(exc, (RecordNotFound, AccessDenied, PlatformUnavailable)) \
            and exc.is_transient:          # e.g. the identity platform unreachable: Dataverse retries a 503
        return dict((k, a) for k, a in ERROR_ANSWERS)[(PlatformUnavailable, GatewayUnavailable)]
    for kinds, answer in ERROR_ANSWERS:
        if isinstance(exc, kinds):
            if event and not answer.for_events:
                return None
            if event and isinstance(exc, RecordNotFound):
                return Answer(200, EVENT_RECORD_GONE)
            return answer
    return None


def json_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json",
                             headers=dict(headers or {}))
