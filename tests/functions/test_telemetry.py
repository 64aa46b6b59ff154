"""Telemetry an operator can use: every log record made while a button's message is handled carries the Dataverse
CorrelationId, the RequestId, the message name and the Functions invocation id as structured dimensions (and the
attempt's refId on the money path), and no parameter value reaches any record. Dataverse calls carry a client
request id of their own."""
from __future__ import annotations

import json
import logging
import re
import uuid

import pytest

from core import telemetry
from standins import payloads as messages
from tests.functions.charging_world import card_on_file, charge, transactions

OUR_LOGGERS = ("app.", "handlers.", "core.", "dataverse.", "gateway.", "adapters.")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def records(caplog):
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):     # whatever level another test left on them
        if name.startswith(OUR_LOGGERS):
            caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def _ours(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(OUR_LOGGERS)]


def _everything_said(record: logging.LogRecord) -> str:
    return record.getMessage() + " " + " ".join(str(v) for v in vars(record).values())


def test_a_charge_logs_with_correlation_request_message_invocation_and_ref_id(world, records):
    card_on_file(world)
    records.clear()
    request_id = str(uuid.uuid4())
    reply = charge(world, "40.00", request_id=request_id)
    assert reply.status == 200 and reply.body["status"] == "succeeded"
    [attempt] = transactions(world)

    logged = _ours(records)
    assert any(r.name.startswith("gateway.") for r in logged) and any(r.name.startswith("dataverse.") for r in logged)
    for record in logged:
        assert record.RequestId == request_id, record.getMessage()
        assert record.MessageName == "w365_ChargeInvoice"
        assert GUID.match(record.CorrelationId)
        assert record.InvocationId == world.invocation.invocation_id
        # and the same, readable where the Functions host forwards only the text
        assert f"RequestId={request_id}" in record.getMessage()
    money = [r for r in logged if r.name.startswith("gateway.")]
    assert money and all(r.RefId == attempt["w365_refid"] for r in money)
    # the dimensions end with the invocation: nothing leaks into what is logged after it
    logging.getLogger("app.platform").info("after the invocation")
    assert not hasattr(records.records[-1], "RequestId") and telemetry.current() == {}


def test_a_bind_outside_an_invocation_is_dropped(records):
    telemetry.bind(ref_id="stray-1")
    logging.getLogger("handlers.charging").warning("outside")
    assert telemetry.current() == {} and not hasattr(records.records[-1], "RefId")
    with telemetry.scope(invocation_id="i-1"):
        telemetry.bind(ref_id="r-1")
        logging.getLogger("handlers.charging").warning("inside")
    assert (records.records[-1].InvocationId, records.records[-1].RefId) == ("i-1", "r-1")


def test_no_parameter_value_reaches_any_log_record(world, records):
    """A card added by Direct Entry: the Accept.js nonce (OpaqueDataValue) and the BillTo JSON are parameters."""
    nonce = world.simulator.issue_nonce("4111111111111111", 12, 2030, "123")
    bill_to = {"firstName": "Zebulon", "lastName": "Quagmire-Xyloph", "company": "Fabrikam", "address": "77 Rue Vexin",
               "city": "Springfield", "state": "IL", "zip": "62701", "country": "US", "phoneNumber": "555-0199"}
    records.clear()
    reply = world.send("w365_AddPaymentProfile", "account", world.ids["account"], ContactId=world.ids["contact"],
                       Method="DirectEntry", OpaqueDataDescriptor=nonce.descriptor, OpaqueDataValue=nonce.value,
                       BillTo=json.dumps(bill_to), SetAsDefault=True)
    assert reply.status == 200, reply.body
    logged = records.records
    assert logged and all(getattr(r, "MessageName", None) == "w365_AddPaymentProfile" for r in _ours(records))
    secrets = [nonce.value, json.dumps(bill_to), "Zebulon", "Quagmire-Xyloph", "77 Rue Vexin", "555-0199",
               "4111111111111111"]
    for record in logged:
        said = _everything_said(record)
        assert not [s for s in secrets if s in said], record.getMessage()


def test_queued_work_keeps_the_correlation_and_request_of_the_click(world):
    """The Service Bus sender stamps the click's CorrelationId and RequestId on the work it queues."""
    from adapters.servicebus import ServiceBusQueue
    from core.queue import WORK_REQUEST_ID

    sent = []

    class Sender:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send_messages(self, message):
            sent.append(message)

    class Client:
        def get_queue_sender(self, queue_name):
            return Sender()

    queue = ServiceBusQueue("Endpoint=sb://x/;SharedAccessKeyName=k;SharedAccessKey=v", "w365-work",
                            client_factory=lambda connection: Client())
    with telemetry.scope(correlation_id="c0ffee00-0000-4000-8000-000000000001", request_id="r-1"):
        queue.send("charging.record", {"transaction_id": "t"}, message_id="charging.record:t")
    queue.send("charging.record", {"transaction_id": "u"}, message_id="charging.record:u")
    assert sent[0].correlation_id == "c0ffee00-0000-4000-8000-000000000001"
    assert sent[0].application_properties[WORK_REQUEST_ID] == "r-1"
    assert sent[1].correlation_id is None and WORK_REQUEST_ID not in sent[1].application_properties


def test_the_work_queue_trigger_binds_them_back(world, records):
    from azure.functions.servicebus import ServiceBusMessage

    from app.platform import work_queue
    from core.queue import WORK_REQUEST_ID, encode_work

    message = ServiceBusMessage(body=encode_work("no.such.work", {}), message_id="m-1",
                                correlation_id="c0ffee00-0000-4000-8000-000000000002",
                                application_properties={WORK_REQUEST_ID: "r-2"}, user_properties={})
    work_queue.build().get_user_function()(message)
    [record] = [r for r in records.records if r.name == "app.platform"]
    assert (record.CorrelationId, record.RequestId) == ("c0ffee00-0000-4000-8000-000000000002", "r-2")


def test_every_dataverse_request_has_its_own_client_request_id(world):
    card_on_file(world)
    world.rsps.calls.reset()
    charge(world, "10.00")
    ids = [c.request.headers.get("x-ms-client-request-id") for c in world.rsps.calls
           if "/api/data/v9.2/" in c.request.url]
    assert len(ids) >= 3 and all(GUID.match(i or "") for i in ids) and len(set(ids)) == len(ids)


def test_host_json_keeps_successful_requests_and_the_service_bus_limits():
    from pathlib import Path

    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    levels = host["logging"]["logLevel"]
    assert levels.get("Host.Results", levels["default"]) in ("Information", "Trace", "Debug")
    assert "Request" in host["logging"]["applicationInsights"]["samplingSettings"]["excludedTypes"]
    assert host["extensions"]["serviceBus"]["maxConcurrentCalls"] == 8
