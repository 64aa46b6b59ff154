"""The W365_WORK_QUEUE trigger: a Dataverse Service Bus step (RemoteExecutionContext, JSON format) goes to the same
handlers as the webhook; our own queued work goes to its work handler; a failure raises so that Service Bus
redelivers the message (and dead-letters it after MaxDeliveryCount)."""
import uuid

import pytest
from azure.functions.servicebus import ServiceBusMessage

from core.errors import PlatformUnavailable
from app.capabilities import registry
from core.queue import encode_work
from core.steps import Outcome
from standins import payloads as messages
from app.platform import work_queue

done: list = []


def _work(payload, services):
    if payload.get("fail"):
        raise RuntimeError("try again")
    done.append(payload)


def _queued_step(context, services):
    done.append(context.message_name)
    return Outcome.succeeded("Queued step ran.")



registry().work("test.queue_trigger", _work)
registry().step("w365_TestQueued", "invoice", _queued_step)

def _deliver(body: bytes, **properties):
    message = ServiceBusMessage(body=body, message_id=str(uuid.uuid4()), content_type="application/json",
                                application_properties=properties, user_properties=properties, delivery_count=1)
    return work_queue.build().get_user_function()(message)


@pytest.fixture(autouse=True)
def _clear():
    done.clear()


def test_our_queued_work_runs_its_handler(world):
    _deliver(encode_work("test.queue_trigger", {"n": 1}))
    assert done == [{"n": 1}]


def test_a_failing_work_handler_raises_so_service_bus_redelivers(world):
    with pytest.raises(RuntimeError):
        _deliver(encode_work("test.queue_trigger", {"fail": True}))


def test_a_dataverse_context_from_a_service_bus_step_is_dispatched_and_writes_its_operation_row(world):
    request_id = str(uuid.uuid4())
    body = messages.custom_api("w365_TestQueued", "invoice", world.ids["invoice1"], {}, request_id=request_id,
                               user_id=world.ids["admin"])
    _deliver(messages.dumps(body), **{"http://schemas.microsoft.com/xrm/2011/Claims/RequestName": "w365_TestQueued"})
    assert done == ["w365_TestQueued"]
    assert world.operation(request_id)["w365_message"] == "Queued step ran."


def test_dataverse_throttling_abandons_the_message_for_a_later_delivery(world):
    world.standin.fail_next(20, status=503, retry_after=1)
    body = messages.custom_api("w365_TestQueued", "invoice", world.ids["invoice1"], {})
    with pytest.raises(PlatformUnavailable):
        _deliver(messages.dumps(body))


def test_a_context_from_another_organisation_is_completed_without_running_anything(world, caplog):
    body = messages.custom_api("w365_TestQueued", "invoice", world.ids["invoice1"], {}, user_id=world.ids["admin"])
    body["OrganizationId"] = "0d6f3a2b-9c8e-4f71-b5a4-3e2d1c0b9a88"
    _deliver(messages.dumps(body))                  # completed: no exception, so no redelivery
    assert done == [] and world.rows("w365_operation") == []
    assert any("organization" in r.getMessage().lower() for r in caplog.records)


# --- poison messages: a redelivery would fail the same way, so each is logged once and completed -----------------

@pytest.mark.parametrize("body", [b"\xff\xfe not json", b"{\"half\": ", b"[1, 2]", b"{\"MessageName\": 7}",
                                  b"{\"w365_work_kind\": \"no.such.work\", \"payload\": {}}"])
def test_a_poison_message_is_logged_once_with_its_id_and_completed(world, caplog, body):
    message = ServiceBusMessage(body=body, message_id="poison-42", content_type="application/json",
                                application_properties={}, user_properties={}, delivery_count=1)
    work_queue.build().get_user_function()(message)          # no exception: Service Bus completes it
    said = [r for r in caplog.records if "poison-42" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "ERROR"
    assert done == [] and world.rows("w365_operation") == []


@pytest.mark.parametrize("message, status", [("w365_NoSuchMessage", 404), ("w365_TestQueued", 400)])
def test_refused_contexts_on_the_queue_are_logged_and_completed(world, caplog, message, status):
    body = messages.custom_api(message, "invoice", world.ids["invoice1"], {}, user_id=world.ids["admin"])
    if status == 400:
        body["InputParameters"] = [p for p in body["InputParameters"] if p["key"] != "RequestId"]
    _deliver(messages.dumps(body))
    assert any(f"refused with {status}" in r.getMessage() for r in caplog.records)
    assert done == []
