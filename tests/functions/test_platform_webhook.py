"""POST /api/dataverse end to end: key check, parsing, dispatch by message and table, w365_operation rows, replays,
loop guard, 503 with Retry-After when Dataverse throttles; and GET /api/health."""
import json
import uuid

import azure.functions as func
import pytest

from app.composition import set_services
from core.services import Services
from core.settings import Settings
from app.capabilities import registry
from core.steps import Outcome
from standins import payloads as messages

INVOICE = "a3e1f0c2-6b7d-4e8f-9a0b-1c2d3e4f5a6b"
calls: list = []


def _echo(context, services):
    calls.append(context)
    if context.param("Refuse"):
        return Outcome.failed("Refused on purpose.")
    return Outcome.succeeded(f"Echo {context.param('Text', '')}", echoed=True)


def _table_event(context, services):
    calls.append(context)
    return Outcome.succeeded("handled")



registry().step("w365_TestEcho", "invoice", _echo)
registry().step("Update", "w365_testtable", _table_event)

@pytest.fixture(autouse=True)
def _clear():
    calls.clear()


def _custom(world, request_id=None, **params):
    body = messages.custom_api("w365_TestEcho", "invoice", INVOICE, params, request_id=request_id or str(uuid.uuid4()),
                               user_id=world.ids["admin"])
    return world.post(messages.dumps(body))


def test_a_custom_api_message_runs_its_handler_and_writes_the_operation_row(world):
    request_id = str(uuid.uuid4())
    reply = _custom(world, request_id, Text="hi")
    assert reply.status == 200
    assert reply.body == {"status": "succeeded", "message": "Echo hi", "requestId": request_id, "echoed": True}
    row = world.operation(request_id)
    assert row["w365_message"] == "Echo hi"
    assert row["w365_status"] == world.choice("w365_operation", "w365_status", "Succeeded")
    assert row["w365_messagename"] == "w365_TestEcho"
    assert row["w365_regardingtable"] == "invoice" and row["w365_regardingid"] == INVOICE
    assert row["w365_initiatinguserid"] == world.ids["admin"]


def test_a_business_refusal_is_a_failed_outcome_with_its_row(world):
    request_id = str(uuid.uuid4())
    reply = _custom(world, request_id, Refuse=True)
    assert (reply.status, reply.body["status"], reply.message) == (200, "failed", "Refused on purpose.")
    assert world.operation(request_id)["w365_status"] == world.choice("w365_operation", "w365_status", "Failed")


def test_the_same_request_id_twice_runs_the_handler_once_and_answers_the_same(world):
    request_id = str(uuid.uuid4())
    first = _custom(world, request_id, Text="once")
    second = _custom(world, request_id, Text="once")
    assert len(calls) == 1
    assert second.body["message"] == first.body["message"] and second.body["replayed"] is True
    assert len(world.rows("w365_operation", w365_requestid=request_id)) == 1


@pytest.mark.parametrize("headers", [{}, {"x-w365-webhook-key": "wrong"}, {"x-w365-webhook-key": ""}])
def test_a_missing_or_wrong_key_is_401_and_nothing_happens(world, headers):
    body = messages.dumps(messages.custom_api("w365_TestEcho", "invoice", INVOICE, {}))
    from app.platform import dataverse_webhook
    request = func.HttpRequest("POST", "http://localhost/api/dataverse", body=body, headers=headers)
    response = dataverse_webhook.build().get_user_function()(request)
    assert response.status_code == 401
    assert calls == [] and world.rows("w365_operation") == []


def test_an_unknown_message_is_404(world):
    body = messages.custom_api("w365_NoSuchThing", "invoice", INVOICE, {})
    reply = world.post(messages.dumps(body))
    assert reply.status == 404 and "w365_NoSuchThing" in reply.message


def test_a_missing_request_id_is_400_and_writes_nothing(world):
    body = messages.custom_api("w365_TestEcho", "invoice", INVOICE, {})
    body["InputParameters"] = [p for p in body["InputParameters"] if p["key"] != "RequestId"]
    reply = world.post(messages.dumps(body))
    assert reply.status == 400 and "RequestId" in reply.message
    assert calls == [] and world.rows("w365_operation") == []


def test_contract_parameters_are_type_checked_before_any_work(world):
    reply = world.send("w365_ChargeInvoice", "invoice", world.ids["invoice1"], Amount="forty")
    assert reply.status == 400 and "Amount" in reply.message
    assert world.rows("w365_operation") == [] and world.simulator.charges() == []


def test_a_bound_message_needs_a_target_of_its_table(world):
    body = messages.custom_api("w365_ChargeInvoice", "account", world.ids["account"], {})
    reply = world.post(messages.dumps(body))
    assert reply.status == 400 and "Target" in reply.message


def test_throttling_while_writing_the_outcome_is_503_with_retry_after(world):
    world.standin.fail_next(10, status=429, retry_after=7)
    reply = _custom(world)
    assert reply.status == 503
    assert reply.headers["Retry-After"] == "7"


def test_table_events_of_our_own_application_user_are_ignored(world):
    record = str(uuid.uuid4())
    reply = world.event("Update", "w365_testtable", record, {"name": "x"}, user=world.standin.app_user_id)
    assert reply.body["status"] == "ignored" and calls == []
    reply = world.event("Update", "w365_testtable", record, {"name": "x"})
    assert reply.body["status"] == "succeeded" and len(calls) == 1


def test_deep_chains_are_ignored_as_loops(world):
    reply = world.event("Update", "w365_testtable", str(uuid.uuid4()), {"name": "x"}, depth=5)
    assert reply.body["status"] == "ignored" and calls == []


def test_health_names_missing_settings_but_never_values(world):
    from app.platform import health
    set_services(Services(dataverse=None, gateway=None, queue=None,
                          settings=Settings({"DATAVERSE_URL": "https://secret-org.crm.dynamics.com"})))
    response = health.build().get_user_function()(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    body = json.loads(response.get_body())
    assert body["status"] == "degraded" and "W365_WEBHOOK_KEY" in body["missingSettings"]
    assert "DATAVERSE_URL" not in body["missingSettings"] and "secret-org" not in response.get_body().decode()


def test_the_identity_platform_unreachable_is_503_not_500(world):
    from core.errors import DataverseAuthError

    def unreachable():
        raise DataverseAuthError("Could not reach login.microsoftonline.com (ConnectionError).", is_transient=True)
    world.services.dataverse._tokens = unreachable
    reply = _custom(world)
    assert reply.status == 503 and reply.headers["Retry-After"]
    assert calls == []


# --- CONTRACT §2: a context from another organisation (a restored copy of the environment) moves nothing ---------

OTHER_ORGANIZATION = "0d6f3a2b-9c8e-4f71-b5a4-3e2d1c0b9a88"


def test_the_stand_in_and_the_payload_builders_agree_on_the_organisation(world):
    body = messages.custom_api("w365_TestEcho", "invoice", INVOICE, {})
    who = world.services.dataverse.execute("WhoAmI", is_function=True)
    assert body["OrganizationId"] == who["OrganizationId"] == world.standin.organization_id


@pytest.mark.parametrize("organization", [OTHER_ORGANIZATION, None])
def test_a_context_from_another_organisation_is_403_and_nothing_happens(world, organization):
    body = messages.custom_api("w365_TestEcho", "invoice", INVOICE, {}, request_id=str(uuid.uuid4()),
                               user_id=world.ids["admin"])
    if organization is None:
        del body["OrganizationId"]
    else:
        body["OrganizationId"] = organization
    reply = world.post(messages.dumps(body))
    assert reply.status == 403 and "organization" in reply.message.lower()
    assert calls == [] and world.rows("w365_operation") == []
    charge = messages.custom_api("w365_ChargeInvoice", "invoice", world.ids["invoice1"], {},
                                 user_id=world.ids["admin"])
    charge["OrganizationId"] = OTHER_ORGANIZATION
    assert world.post(messages.dumps(charge)).status == 403
    assert world.simulator.charges() == [] and world.rows("w365_paymenttransaction") == []


def test_the_environment_is_asked_once_per_worker(world):
    before = sum(1 for _, path in world.standin.requests if "WhoAmI" in path)
    _custom(world)
    _custom(world)
    world.event("Update", "w365_testtable", str(uuid.uuid4()), {"name": "x"})
    assert sum(1 for _, path in world.standin.requests if "WhoAmI" in path) - before == 1


# --- one replay pattern for every button (core/operations.py) ------------------------------------------------------

def _idempotent(context, services):
    """An OUTCOME_ROW step: its work may run twice; its outcome rides in its final changeset."""
    from core.operations import batch_with_outcome
    calls.append(context)
    batch_with_outcome(services, [], f"Done {context.param('Text', '')}")
    return Outcome.succeeded(f"Done {context.param('Text', '')}")


registry().step("w365_TestIdempotent", "invoice", _idempotent, replay_safe=True)


def _send(world, message, request_id, **params):
    body = messages.custom_api(message, "invoice", INVOICE, params, request_id=request_id, user_id=world.ids["admin"])
    return world.post(messages.dumps(body))


def test_a_claim_step_creates_its_row_before_the_work_and_sets_its_outcome_after(world):
    request_id = str(uuid.uuid4())
    seen = []
    registry().step("w365_TestClaimSeen", "invoice", lambda context, services: (
        seen.append(dict(world.operation(request_id) or {})), Outcome.succeeded("Seen."))[1])
    world.standin.reset_counters()
    reply = _send(world, "w365_TestClaimSeen", request_id)
    assert reply.body["status"] == "succeeded"
    assert seen[0]["w365_status"] is None and seen[0]["w365_requestid"] == request_id      # claimed, no outcome yet
    assert world.operation(request_id)["w365_status"] == world.choice("w365_operation", "w365_status", "Succeeded")
    assert ("GET", "w365_operations") not in world.standin.requests                        # no read first


def test_a_redelivery_while_the_claim_is_fresh_is_409_and_runs_nothing(world):
    request_id = str(uuid.uuid4())
    world.standin.seed("w365_operation", {"w365_requestid": request_id, "w365_message": "In progress."})
    reply = _custom(world, request_id, Text="twice?")
    assert reply.status == 409 and calls == []
    assert world.operation(request_id)["w365_status"] is None


def test_a_claim_whose_work_died_is_taken_over_after_its_lease(world):
    import datetime as dt
    request_id = str(uuid.uuid4())
    world.standin.seed("w365_operation", {"w365_requestid": request_id, "w365_message": "In progress."})
    world.clock.advance(dt.timedelta(minutes=3))
    reply = _custom(world, request_id, Text="again")
    assert reply.body["status"] == "succeeded" and len(calls) == 1
    [row] = world.rows("w365_operation", w365_requestid=request_id)
    assert row["w365_message"] == "Echo again"


def test_bad_input_after_a_claim_leaves_no_row(world):
    request_id = str(uuid.uuid4())
    from core.errors import BadRequest

    def refuse(context, services):
        raise BadRequest("Nope.")
    registry().step("w365_TestBadInput", "invoice", refuse)
    assert _send(world, "w365_TestBadInput", request_id).status == 400
    assert world.operation(request_id) is None


def test_an_outcome_row_step_is_not_read_first_and_a_redelivery_answers_from_its_row(world):
    request_id = str(uuid.uuid4())
    world.standin.reset_counters()
    first = _send(world, "w365_TestIdempotent", request_id, Text="x")
    assert first.body["status"] == "succeeded"
    assert [r for r in world.standin.requests if r[0] != "GET" or "WhoAmI" not in r[1]] == [("POST", "$batch")]
    second = _send(world, "w365_TestIdempotent", request_id, Text="x")
    assert second.body["replayed"] is True and second.message == "Done x"
    assert len(world.rows("w365_operation", w365_requestid=request_id)) == 1
