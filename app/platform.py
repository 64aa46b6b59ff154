"""The two doors Dataverse uses (POST /api/dataverse and the W365_WORK_QUEUE Service Bus queue), the health probe,
and the dispatch to handlers registered like plugin steps (core.steps). Custom API messages get their w365_operation
row here, once per RequestId, so a button's script can read the outcome and a redelivered message is answered from
the row instead of being run again."""
from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Mapping

import azure.functions as func

from core import dates, footprint, odata, telemetry
from app.composition import get_services, webhook_key
from app.responses import ABANDON, NOT_CONFIGURED, Answer, answer_for, json_response, queue_settle
from core.context import EntityRef, PluginContext
from core.errors import BadRequest, ConfigurationError, DataverseError, DuplicateRecord, PlatformUnavailable
from core.operations import OPERATIONS, OperationRecorder, status_value
from core.queue import WORK_REQUEST_ID, decode_work
from core.services import Services
from core.steps import Outcome, Registry, Step
from dataverse.context import is_guid, parse_context

log = logging.getLogger(__name__)
bp = func.Blueprint()

MAX_DEPTH = 2               # our own chains are one deep; deeper means a loop through someone's plug-ins
DEFAULT_RETRY_AFTER = 30
RECORD_OPERATION = "platform.record_operation"
# Longer than the worst a handler takes (gateway timeout plus Dataverse retries): a claim this old whose outcome was
# never set belongs to a delivery that died, and the next delivery of the RequestId does the work.
CLAIM_LEASE = dt.timedelta(minutes=2)
IN_PROGRESS_MESSAGE = "In progress."
telemetry.install()          # every log line of an invocation carries its dimensions (core/telemetry.py)


@dataclass(frozen=True)
class Dispatched:
    http_status: int
    body: Mapping[str, Any]
    retry_after: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


# --- triggers ----------------------------------------------------------------------------------------------------

@bp.route(route="dataverse", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@telemetry.invocation
def dataverse_webhook(req: func.HttpRequest, context: func.Context = None) -> func.HttpResponse:
    services = get_services()
    try:
        expected = webhook_key(services.settings)
    except ConfigurationError as exc:
        return json_response(500, {"status": "failed", "message": str(exc)})
    given = req.headers.get("x-w365-webhook-key") or ""
    if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8")):
        log.warning("dataverse webhook: refused a request with a missing or wrong x-w365-webhook-key")
        return json_response(401, {"status": "failed", "message": "Missing or wrong x-w365-webhook-key."})
    try:
        plugin = parse_context(req.get_body(),
                               size_exceeded=bool(req.headers.get("x-ms-dynamics-msg-size-exceeded")))
    except BadRequest as exc:
        return json_response(400, {"status": "failed", "message": str(exc)})
    try:
        result = dispatch(plugin, services)
    except Exception:  # noqa: BLE001 - answer like the Functions host, without leaking details to the caller
        log.exception("dataverse webhook: %s on %s failed", plugin.message_name, plugin.primary_entity_name)
        return json_response(500, {"status": "failed", "message": "The service failed; see its logs."})
    headers = dict(result.headers)
    if result.retry_after is not None:
        headers["Retry-After"] = str(int(max(1, round(result.retry_after))))
    return json_response(result.http_status, result.body, headers)


@bp.function_name("work_queue")
@bp.service_bus_queue_trigger(arg_name="message", queue_name="%W365_WORK_QUEUE%", connection="ServiceBusConnection")
@telemetry.invocation
def work_queue(message: func.ServiceBusMessage, context: func.Context = None) -> None:
    """Dataverse's Service Bus steps (a RemoteExecutionContext) and our own queued work share this queue. Raising
    abandons the message: Service Bus redelivers it and dead-letters it after MaxDeliveryCount. So only what may
    pass later raises (a platform busy, a handler's failure); a message no delivery can ever run (poison: not JSON,
    not a context, unknown work) is logged once with its id and completed instead of failing MaxDeliveryCount times."""
    services = get_services()
    # Our own work carries the CorrelationId and RequestId of the click that queued it (adapters/servicebus.py).
    telemetry.bind(correlation_id=getattr(message, "correlation_id", None),
                   request_id=_property(message, WORK_REQUEST_ID))
    body = message.get_body()
    try:
        decoded = json.loads(body.decode("utf-8-sig"))
    except RecursionError:
        decoded = None
    except (UnicodeDecodeError, ValueError):
        log.error("work queue: message %s is not JSON (%d bytes); completed without running", message.message_id,
                  len(body))
        return
    work = decode_work(decoded) if isinstance(decoded, dict) else None
    if work is not None:
        steps = _registry()
        if work[0] not in steps.work_kinds():
            log.error("work queue: message %s asks for unknown work %r; completed without running",
                      message.message_id, work[0][:100])
            return
        telemetry.bind(message_name=work[0])
        steps.run_work(work[0], work[1], services)
        return
    props = getattr(message, "application_properties", None) or {}
    try:
        plugin = parse_context(body, size_exceeded=any("MessageMaxSizeExceeded" in str(k) for k in props))
    except BadRequest as exc:
        log.error("work queue: message %s is not a Dataverse context (%s); completed without running",
                  message.message_id, exc)
        return
    result = dispatch(plugin, services)
    if queue_settle(result.http_status) == ABANDON:
        raise PlatformUnavailable(str(result.body.get("message")), retry_after=result.retry_after)
    if result.http_status >= 400:       # a redelivery would be answered the same: completed, and said once
        log.error("work queue: message %s (%s on %s) refused with %d: %s", message.message_id, plugin.message_name,
                  plugin.primary_entity_name, result.http_status, result.body.get("message"))


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    settings = get_services().settings
    missing = settings.missing()
    return json_response(200, {"status": "ok" if not missing else "degraded",
                       "mode": "local" if settings.is_local else "real", "missingSettings": missing})


# --- dispatch (callable from any entry) --------------------------------------------------------------------------

def dispatch(context: PluginContext, services: Services) -> Dispatched:
    telemetry.bind(correlation_id=context.correlation_id, request_id=context.request_id,
                   message_name=context.message_name)
    refused = _foreign_organization(context, services)
    if refused is not None:
        return refused
    steps = _registry()
    step = steps.find_step(context.message_name, context.primary_entity_name)
    api = _custom_api(context.message_name)
    if step is None and api is not None:
        # A Custom API is bound to one table; a body naming another gets the parameter check's 400, not a 404.
        step = steps.find_step(api.unique_name, api.bound_to)
    if step is None:
        return Dispatched(404, {"status": "failed",
                                "message": f"No handler for message {context.message_name} on "
                                           f"{context.primary_entity_name}."})
    if step.is_custom_api:
        return _dispatch_custom_api(step, context, services)
    return _dispatch_event(step, context, services)


def _dispatch_event(step: Step, context: PluginContext, services: Services) -> Dispatched:
    if context.depth > MAX_DEPTH:
        return Dispatched(200, {"status": "ignored", "message": f"Depth {context.depth} is a loop; ignored."})
    try:
        if context.initiating_user_id and context.initiating_user_id == app_user_id(services):
            return Dispatched(200, {"status": "ignored", "message": "Our own write; ignored."})
        outcome = step.handler(context, services)
    except Exception as exc:  # noqa: BLE001 - mapped by the one table; what it does not know goes to the host
        answer = answer_for(exc, event=True)
        if answer is None:
            raise
        if answer.status != 200:
            return _error(answer, exc)
        outcome = Outcome.failed(answer.message or str(exc))
    return Dispatched(200, {"status": outcome.status, "message": outcome.message, **outcome.data})


def _dispatch_custom_api(step: Step, context: PluginContext, services: Services) -> Dispatched:
    recorder: OperationRecorder | None = None
    try:
        request_id = _validate_custom_api_inputs(context)
        recorder = OperationRecorder(context, request_id)
        if not step.replay_safe:
            earlier = _claim(services, recorder)
            if earlier is not None:
                return earlier
        try:
            try:
                outcome = step.handler(context, replace(services, operation=recorder))
            except DuplicateRecord:
                # The outcome row's alternate key in the handler's final changeset: an earlier delivery of this
                # RequestId did the work and recorded it (the changeset rolled back, so nothing happened twice).
                earlier = _find_operation(services, request_id)
                if earlier is None or earlier.get("w365_status") is None:
                    raise
                return _replayed(earlier, request_id)
        except Exception as exc:  # noqa: BLE001 - business outcomes and 409 here; 400 and 503 below
            answer = answer_for(exc)
            if answer is None or answer.status not in (200, 409):
                raise
            if answer.status == 409:
                _record_operation(services, recorder, Outcome.failed(str(exc)))
                return Dispatched(409, {"status": "failed", "message": str(exc), "requestId": request_id})
            if answer.message == NOT_CONFIGURED:
                log.error("%s: configuration problem: %s", context.message_name, type(exc).__name__)
            outcome = Outcome.failed(answer.message or str(exc))
        if recorder.recorded_message is None:
            outcome = _record_operation(services, recorder, outcome)
        return Dispatched(200, {"status": outcome.status, "message": outcome.message, "requestId": request_id,
                                **outcome.data})
    except Exception as exc:  # noqa: BLE001 - bad input (400) and a busy platform (503); the rest goes to the host
        answer = answer_for(exc)
        if answer is None or answer.status not in (400, 503):
            raise
        if answer.status == 400 and recorder is not None and recorder.claimed_id:
            _release_claim(services, recorder)           # bad input changes nothing, not even the claim
        return _error(answer, exc)


def _claim(services: Services, recorder: OperationRecorder) -> Dispatched | None:
    """CLAIM steps: create the outcome row first, without a status. A redelivery meets the alternate key and is
    answered from the row: its outcome, or "in progress" (409: Dataverse retries) while the first delivery works.
    A claim older than CLAIM_LEASE whose work never finished (a crash, an outage) is taken over."""
    try:
        recorder.claimed_id = services.dataverse.create(OPERATIONS, recorder.row(None, IN_PROGRESS_MESSAGE))
        return None
    except DuplicateRecord:
        pass
    earlier = _find_operation(services, recorder.request_id)
    if earlier is not None and earlier.get("w365_status") is not None:
        return _replayed(earlier, recorder.request_id)
    created = dates.parse(earlier.get("createdon")) if earlier is not None else None
    if created is not None and services.clock.now() - created > CLAIM_LEASE:
        log.warning("%s: taking over the claim of request %s (its work did not finish)",
                    recorder.context.message_name, recorder.request_id)
        recorder.claimed_id = earlier["w365_operationid"]
        return None
    return Dispatched(409, {"status": "failed", "message": "This request is being handled; wait for its outcome.",
                            "requestId": recorder.request_id})


def _release_claim(services: Services, recorder: OperationRecorder) -> None:
    try:
        services.dataverse.delete(OPERATIONS, recorder.claimed_id or "")
    except DataverseError as exc:       # the claim's lease runs out; a redelivery gets the same 400
        log.warning("%s: could not withdraw the claim of request %s (%s)", recorder.context.message_name,
                    recorder.request_id, type(exc).__name__)


def _replayed(earlier: Mapping[str, Any], request_id: str) -> Dispatched:
    return Dispatched(200, {"status": "succeeded" if earlier["w365_status"] == status_value(True) else "failed",
                            "message": earlier.get("w365_message") or "", "requestId": request_id, "replayed": True})


def _validate_custom_api_inputs(context: PluginContext) -> str:
    request_id = context.request_id
    if not request_id or not is_guid(request_id):
        raise BadRequest("RequestId is missing or is not a GUID.")
    api = _custom_api(context.message_name)
    if api is None:
        return request_id
    if api.bound_to:
        target = context.target
        if not isinstance(target, EntityRef) or target.logical_name != api.bound_to:
            raise BadRequest(f"{api.unique_name} needs a Target reference to a {api.bound_to} row.")
    for parameter in api.parameters:
        value = context.param(parameter.name)
        if value is None:
            if not parameter.optional:
                raise BadRequest(f"Parameter {parameter.name} is required.")
            continue
        problem = _parameter_problem(parameter.type, value)
        if problem:
            raise BadRequest(f"Parameter {parameter.name} {problem}.")
    return request_id


def _custom_api(message: str) -> footprint.CustomApi | None:
    return next((a for a in footprint.CUSTOM_APIS if a.unique_name.lower() == message.lower()), None)


MAX_TEXT_PARAMETER = 100_000          # an email body template is the longest thing a button sends


def _parameter_problem(kind: str, value: Any) -> str | None:
    """Type checks of a Custom API parameter, as Dataverse's own would be (a sync step never gets this far)."""
    if kind == "Guid":
        return None if is_guid(value) else "is not a GUID"
    if kind == "Decimal":
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)) or not Decimal(value).is_finite():
            return "is not a number"
        return None
    if kind == "Boolean":
        return None if isinstance(value, bool) else "is not true or false"
    if kind == "DateTime":
        return None if isinstance(value, dt.datetime) else "is not a date and time"
    if not isinstance(value, str):
        return "is not text"
    return None if len(value) <= MAX_TEXT_PARAMETER else f"is longer than {MAX_TEXT_PARAMETER} characters"


def _find_operation(services: Services, request_id: str) -> dict | None:
    rows = services.dataverse.query(OPERATIONS, select=("w365_operationid", "w365_status", "w365_message",
                                                        "createdon"),
                                    filter=odata.eq("w365_requestid", request_id), top=1)
    return rows[0] if rows else None


def _record_operation(services: Services, recorder: OperationRecorder, outcome: Outcome) -> Outcome:
    """Write the outcome once (the claimed row's status, or the row). If a redelivery of the same RequestId wrote
    first, its outcome stands. If Dataverse is busy, the write is queued: the work is done (perhaps money moved), so
    the caller is never told 5xx for it."""
    if recorder.claimed_id:
        change = {"w365_message": outcome.message[:4000], "w365_status": status_value(outcome.ok)}
        try:
            services.dataverse.update(OPERATIONS, recorder.claimed_id, change)
        except PlatformUnavailable:
            log.warning("%s: the w365_operation outcome is queued (Dataverse busy)", recorder.context.message_name)
            services.queue.send(RECORD_OPERATION, {"id": recorder.claimed_id, "change": change},
                                message_id=f"{RECORD_OPERATION}:{recorder.request_id}")
        return outcome
    row = recorder.row(outcome.ok, outcome.message)
    try:
        services.dataverse.create(OPERATIONS, row)
    except DuplicateRecord:
        earlier = _find_operation(services, recorder.request_id)
        if earlier is not None:
            return Outcome("succeeded" if earlier["w365_status"] == status_value(True) else "failed",
                           earlier.get("w365_message") or "", outcome.data)
    except PlatformUnavailable:
        log.warning("%s: the w365_operation row is queued (Dataverse busy)", recorder.context.message_name)
        services.queue.send(RECORD_OPERATION, {"row": row}, message_id=f"{RECORD_OPERATION}:{recorder.request_id}")
    return outcome


def record_queued_operation(payload: Mapping[str, Any], services: Services) -> None:
    if payload.get("id"):
        services.dataverse.update(OPERATIONS, str(payload["id"]), dict(payload["change"]))
        return
    try:
        services.dataverse.create(OPERATIONS, dict(payload["row"]))
    except DuplicateRecord:
        pass                                  # written meanwhile (a redelivery of the same RequestId)


def _error(answer: Answer, exc: Exception) -> Dispatched:
    if answer.status == 503:
        return _unavailable(exc)
    return Dispatched(answer.status, {"status": "failed", "message": answer.message or str(exc)})


def _unavailable(exc: Exception) -> Dispatched:
    retry_after = getattr(exc, "retry_after", None) or DEFAULT_RETRY_AFTER
    log.warning("a platform is throttling or down: %s", type(exc).__name__)
    return Dispatched(503, {"status": "failed", "message": "Dataverse or the payment gateway is busy or unavailable; "
                                                           "the request will be retried."}, retry_after=retry_after)


def _foreign_organization(context: PluginContext, services: Services) -> Dispatched | None:
    """CONTRACT §2: a copy of the environment (UAT restored from production) keeps record ids and service endpoints,
    so its webhooks and queue messages reach us looking genuine; only OrganizationId tells them apart. Checked before
    anything is read or written for the message."""
    try:
        ours = environment(services).organization_id
    except Exception as exc:  # noqa: BLE001 - only a busy platform is answered here (503); the rest goes to the host
        answer = answer_for(exc)
        if answer is None or answer.status != 503:
            raise
        return _error(answer, exc)
    if context.organization_id and context.organization_id == ours:
        return None
    log.error("refused %s on %s from organization %s: this service serves organization %s",
              context.message_name, context.primary_entity_name, context.organization_id or "(none)", ours)
    return Dispatched(403, {"status": "failed", "message": "This message comes from another Dataverse organization "
                                                           "than the one this service is configured for; nothing "
                                                           "was done."})


@dataclass(frozen=True)
class Environment:
    user_id: str                 # the service's own systemuserid
    organization_id: str         # the configured environment's


def environment(services: Services) -> Environment:
    """WhoAmI, asked once per Services (one per worker): who the service is and which organization it serves."""
    cached = getattr(services, "_environment", None)
    if cached is None:
        who = services.dataverse.execute("WhoAmI", is_function=True)
        cached = Environment(str(who["UserId"]).lower(), str(who.get("OrganizationId") or "").lower())
        services._environment = cached
    return cached


def app_user_id(services: Services) -> str:
    """The service's own systemuserid: table events it caused itself are skipped."""
    return environment(services).user_id



def _property(message: Any, name: str) -> str | None:
    """An application property of a Service Bus message (the worker may hand keys over as bytes)."""
    props = getattr(message, "application_properties", None) or {}
    value = props.get(name, props.get(name.encode()))
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _registry() -> Registry:
    from app.capabilities import registry   # here, not at import: app.capabilities imports this module
    return registry()


def register(registry: Registry) -> None:
    registry.blueprint(bp)
    registry.work(RECORD_OPERATION, record_queued_operation)
