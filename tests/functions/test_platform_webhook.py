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
