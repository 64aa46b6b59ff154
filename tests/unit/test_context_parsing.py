"""The RemoteExecutionContext parser: Dataverse's wire format in, plain values out; anything else refused."""
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from core.context import EntityImage, EntityRef
from core.errors import BadRequest
from dataverse.context import parse_context
from standins import payloads as messages

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"


def _sample(name: str) -> bytes:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} is not beside the repository")
    return path.read_bytes()


def test_the_custom_api_sample_gives_target_request_id_and_an_exact_amount():
    context = parse_context(_sample("custom-api-charge-invoice.json"))
    assert context.message_name == "w365_ChargeInvoice"
    assert context.primary_entity_name == "invoice"
    assert context.target == EntityRef("invoice", "a3e1f0c2-6b7d-4e8f-9a0b-1c2d3e4f5a6b")
    assert context.request_id == "8b7a6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d"
    assert context.param("Amount") == Decimal("40.00")
    assert isinstance(context.param("Amount"), Decimal)
    assert context.mode == 0 and context.stage == 30


def test_the_account_update_sample_gives_target_entity_and_pre_image():
    context = parse_context(_sample("account-update-creditonhold.json"))
    assert isinstance(context.target, EntityImage)
    assert context.target.get("creditonhold") is False
    assert context.target.get("modifiedon") == dt.datetime(2025, 11, 21, 4, 40, tzinfo=dt.timezone.utc)
    assert context.target.get("modifiedby") == EntityRef("systemuser", "75c2dd85-e89e-e711-8122-000d3aa2331c")
    assert context.pre_image().get("creditonhold") is True
    assert context.post_image().get("name") == "Fabrikam"


def test_money_option_set_and_dates_with_offsets_are_converted():
    body = messages.table_event("Update", "invoice", "a3e1f0c2-6b7d-4e8f-9a0b-1c2d3e4f5a6b", {
        "totalamount": messages.money("2154.32"), "statuscode": messages.option(100002)})
    raw = json.loads(messages.dumps(body))
    raw["InputParameters"][0]["value"]["Attributes"].append({"key": "duedate", "value": "/Date(1506384247000-0700)/"})
    context = parse_context(json.dumps(raw).encode())
    assert context.target.get("totalamount") == Decimal("2154.32")
    assert context.target.get("statuscode") == 100002
    assert context.target.get("duedate").year == 2017


def test_size_exceeded_flag_is_carried():
    body = messages.dumps(messages.custom_api("w365_SyncPaymentProfile", "w365_paymentprofile",
                                              "a3e1f0c2-6b7d-4e8f-9a0b-1c2d3e4f5a6b"))
    assert parse_context(body, size_exceeded=True).size_exceeded


@pytest.mark.parametrize("body, fragment", [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b"{}", "MessageName"),
    (json.dumps({"MessageName": "x", "PrimaryEntityId": "not-a-guid"}).encode(), "PrimaryEntityId"),
    (json.dumps({"MessageName": "x", "InputParameters": [{"key": "Target", "value": {
        "__type": "EntityReference:x", "Id": "nope", "LogicalName": "invoice"}}]}).encode(), "EntityReference"),
    (json.dumps({"MessageName": "x", "InputParameters": [{"key": "Amount", "value": {
        "__type": "Money:x", "Value": "12"}}]}).encode(), "not a number"),
    (json.dumps({"MessageName": "x", "InputParameters": "nope"}).encode(), "InputParameters"),
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (json.dumps({"MessageName": "x", "InputParameters": [{"key": "a", "value": [[[[[[[[[[[[[[1]]]]]]]]]]]]]]}]}).encode(),
     "nested too deeply"),
])
def test_malformed_bodies_are_refused_with_a_message_naming_the_problem(body, fragment):
    with pytest.raises(BadRequest) as raised:
        parse_context(body)
    assert fragment in str(raised.value)
