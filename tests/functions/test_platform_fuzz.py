"""Malformed and hostile bodies at POST /api/dataverse: each gets a 4xx with a message, nothing is written, no 5xx,
and no charge is made."""
import json
import uuid

from hypothesis import HealthCheck, given, settings, strategies as st

from standins import payloads as messages

MESSAGES = ["w365_ChargeInvoice", "w365_AddPaymentProfile", "w365_RefundTransaction", "w365_SubmitOrderPayment",
            "w365_SyncPaymentProfile", "Update", "Create", "w365_Nope", "", "x" * 5000]
TABLES = ["invoice", "account", "salesorder", "w365_paymentprofile", "w365_paymenttransaction", "nothing"]
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)
hostile_values = st.one_of(
    junk, st.just("forty"), st.just("1e999"), st.just("-5"), st.just("NaN"), st.just("<script>alert(1)</script>"),
    st.just("' or 1 eq 1 or '"), st.text(min_size=5000, max_size=6000), st.just("not-a-guid"),
    st.just({"__type": "Money:x", "Value": "12"}), st.just({"__type": "EntityReference:x", "Id": "nope"}),
    st.just([[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]))


@st.composite
def hostile_contexts(draw):
    body = messages.custom_api(draw(st.sampled_from(MESSAGES)), draw(st.sampled_from(TABLES)), str(uuid.uuid4()), {})
    mutation = draw(st.sampled_from(["param", "drop", "replace", "type"]))
    if mutation == "param":
        body["InputParameters"].append({"key": draw(st.sampled_from(["Amount", "ContactId", "Method", "BillTo",
                                                                     "PaymentProfileId", "RequestId", "Target"])),
                                        "value": draw(hostile_values)})
    elif mutation == "drop":
        key = draw(st.sampled_from(["Target", "RequestId"]))
        body["InputParameters"] = [p for p in body["InputParameters"] if p["key"] != key]
    elif mutation == "replace":
        body[draw(st.sampled_from(["MessageName", "PrimaryEntityId", "PrimaryEntityName", "InputParameters",
                                   "Depth", "InitiatingUserId"]))] = draw(hostile_values)
    else:
        body = draw(junk)
    return body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=hostile_contexts())
def test_hostile_bodies_get_a_clear_4xx_and_change_nothing(world, body):
    raw = json.dumps(body, default=str).encode()
    before = {t: len(world.standin.rows(t)) for t in ("w365_operation", "w365_paymenttransaction",
                                                      "w365_paymentprofile", "w365_securelink", "email")}
    reply = world.post(raw)
    assert reply.status < 500, reply.body
    if reply.status != 200:
        assert 400 <= reply.status < 500 and reply.message
        after = {t: len(world.standin.rows(t)) for t in before}
        assert after == before
    assert world.simulator.charges() == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_are_400(world, raw):
    reply = world.post(raw)
    assert reply.status in (400, 404), reply.body
    assert world.standin.rows("w365_operation") == []


def test_a_date_outside_pythons_range_is_400_not_500(world):
    # "/Date(ms)/" takes up to 15 digits; 999999999999999 ms is the year 33658, past datetime's year 9999.
    body = messages.custom_api("w365_ChargeInvoice", "invoice", str(uuid.uuid4()),
                               {"Amount": "/Date(999999999999999)/"}, request_id=str(uuid.uuid4()))
    reply = world.post(messages.dumps(body))
    assert reply.status == 400 and "Amount" in reply.message
    assert world.standin.rows("w365_operation") == []


def test_an_amount_with_a_huge_exponent_is_refused_without_a_5xx(world):
    from decimal import Decimal

    for amount in (Decimal("1E+999999"), Decimal("1E-999999")):
        reply = world.send("w365_ChargeInvoice", "invoice", world.ids["invoice1"], Amount=amount)
        assert reply.status < 500, reply.body
    assert world.simulator.charges() == []
