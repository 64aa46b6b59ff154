"""Malformed and hostile bodies at POST /api/dataverse: each gets a 4xx with a message, nothing is written, no 5xx,
and no charge is made. The main property runs FUZZ_EXAMPLES examples (5,000: CI runs them too)."""
import json
import os
import uuid
from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st

from standins import payloads as messages

FUZZ_EXAMPLES = int(os.environ.get("W365_FUZZ_EXAMPLES", "5000"))
MONEY_LIMIT = Decimal("922337203685477")          # Dataverse Money's MaxValue

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


beyond_money = st.one_of(
    st.decimals(min_value=MONEY_LIMIT + Decimal("0.01"), max_value=Decimal("1E+40"), places=2),
    st.decimals(min_value=Decimal("-1E+40"), max_value=-MONEY_LIMIT - Decimal("0.01"), places=2),
    st.sampled_from([Decimal("1E+26"), Decimal("-1E+26"), Decimal("1E+28"), Decimal("922337203685477.01"),
                     Decimal("99999999999999999999999999.99"), Decimal("1E+100")]))
lone_surrogates = st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
# A high surrogate followed by a low one is a valid pair once JSON-decoded: only a lone one survives the round trip.
with_lone_surrogate = st.tuples(st.text(max_size=10), lone_surrogates, st.text(max_size=10)).map("".join).filter(
    lambda text: any("\ud800" <= char <= "\udfff" for char in json.loads(json.dumps(text))))


def guid_forms(value: str):
    """The forms Dataverse itself accepts for a GUID."""
    plain = uuid.UUID(value)
    return st.sampled_from([plain.hex, plain.hex.upper(), "{" + str(plain) + "}", "{" + str(plain).upper() + "}",
                            str(plain).upper()])


@st.composite
def hostile_contexts(draw):
    body = messages.custom_api(draw(st.sampled_from(MESSAGES)), draw(st.sampled_from(TABLES)), str(uuid.uuid4()), {})
    mutation = draw(st.sampled_from(["param", "drop", "replace", "type", "amount", "guid", "surrogate"]))
    if mutation == "amount":                     # on every message, not only those that take an Amount
        body["InputParameters"].append({"key": "Amount", "value": draw(beyond_money)})
    elif mutation == "guid":
        key = draw(st.sampled_from(["ContactId", "PaymentProfileId"]))
        body["InputParameters"].append({"key": key, "value": draw(guid_forms(str(uuid.uuid4())))})
    elif mutation == "surrogate":
        key = draw(st.sampled_from(["Method", "BillTo", "EmailSubject", "EmailBody", "RequestId", "OpaqueDataValue"]))
        body["InputParameters"].append({"key": key, "value": draw(with_lone_surrogate)})
    elif mutation == "param":
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


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])
@given(body=hostile_contexts())
def test_hostile_bodies_get_a_clear_4xx_and_change_nothing(world, body):
    raw = messages.dumps(body) if not _has_floats(body) else json.dumps(body, default=str).encode()
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


def _has_floats(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_floats(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_floats(v) for v in value)
    return False


# --- the same inputs against real records: refused before anything is written --------------------------------------

def _written(world) -> dict:
    counts = {t: len(world.standin.rows(t)) for t in ("w365_operation", "w365_paymenttransaction",
                                                      "w365_paymentprofile", "w365_securelink", "email")}
    counts["gateway customers"] = len(world.simulator._customers)
    counts["gateway cards"] = sum(len(c["payment_profiles"]) for c in world.simulator._customers.values())
    return counts


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_amounts_beyond_the_money_columns_are_a_failed_outcome_on_real_records(world, data):
    message, table, key = data.draw(st.sampled_from([("w365_ChargeInvoice", "invoice", "invoice1"),
                                                     ("w365_RefundTransaction", "w365_paymenttransaction", None),
                                                     ("w365_SubmitOrderPayment", "salesorder", "order")]))
    target = world.ids[key] if key else str(uuid.uuid4())
    reply = world.send(message, table, target, Amount=data.draw(beyond_money))
    assert reply.status < 500, reply.body
    if message == "w365_ChargeInvoice":
        assert reply.status == 200 and reply.body["status"] == "failed", reply.body
    assert world.simulator.charges() == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_lone_surrogates_are_refused_before_a_link_or_a_gateway_profile_is_made(world, data):
    before = _written(world)
    bad = data.draw(with_lone_surrogate)
    where = data.draw(st.sampled_from(["EmailSubject", "EmailBody", "BillTo", "Method"]))
    nonce = world.simulator.issue_nonce("4111111111111111", 12, 2030, "123")
    direct = where == "BillTo"
    params = {"ContactId": world.ids["contact"], "Method": "DirectEntry" if direct else "ProfileRequest",
              "EmailSubject": "Your card", "EmailBody": "Add it: {Secure Link}",
              "OpaqueDataDescriptor": nonce.descriptor, "OpaqueDataValue": nonce.value,
              "BillTo": json.dumps({"firstName": "Nancy", "zip": "98052"})}
    params[where] = json.dumps({"firstName": bad}) if where == "BillTo" else \
        (params[where] + bad if where != "Method" else bad)
    reply = world.send("w365_AddPaymentProfile", "account", world.ids["account"], **params)
    assert reply.status == 400 and "not valid Unicode" in reply.message, reply.body
    assert _written(world) == before


@given(data=st.data())
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_guid_parameters_in_any_form_dataverse_accepts_are_normalised(world, data):
    contact = data.draw(guid_forms(world.ids["contact"]))
    reply = world.send("w365_AddPaymentProfile", "account", data.draw(guid_forms(world.ids["account"])),
                       ContactId=contact, Method="ProfileRequest", EmailSubject="Card", EmailBody="{Secure Link}")
    assert reply.status == 200 and reply.body["status"] == "succeeded", reply.body
    link = world.standin.rows("w365_securelink")[-1]
    assert (link.get("w365_contactid") or {}).get("id") == world.ids["contact"]


def test_deeply_nested_json_in_a_signed_gateway_webhook_is_400(world):
    from gateway.signature import sign
    from handlers.gateway_webhooks.entry import authorizenet_webhook
    import azure.functions as func

    body = b'{"notificationId":"' + str(uuid.uuid4()).encode() + b'","payload":' + b"[" * 8000 + b"]" * 8000 + b"}"
    key = world.services.settings.get("AUTHORIZENET_SIGNATURE_KEY")
    request = func.HttpRequest("POST", "http://localhost/api/authorizenet/webhook", body=body,
                               headers={"X-ANET-Signature": sign(body, key), "content-type": "application/json"})
    response = authorizenet_webhook.build().get_user_function()(request)
    assert response.status_code == 400, response.get_body()
