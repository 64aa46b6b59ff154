"""POST /api/authorizenet/webhook end to end: the function itself (func.HttpRequest) -> real clients -> the Dataverse
stand-in and the Authorize.Net simulator, which emits the signed webhooks as the gateway would."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from decimal import Decimal

import azure.functions as func
import pytest

import function_app  # noqa: F401 - registers every step, route and queued work
from core.ports import BillTo
from core.settings import Settings
from gateway.signature import sign
from handlers.charging import reconciler
from tests.conftest import SIGNATURE_KEY, TEST_SETTINGS

VISA = "4111111111111111"
BILL_TO = {"firstName": "Nancy", "lastName": "Davolio", "company": "Fabrikam", "address": "1 Main St",
           "city": "Springfield", "state": "IL", "zip": "62701", "country": "US", "phoneNumber": "555-0100"}
HELD_ZIP = "46299"


# --- helpers -----------------------------------------------------------------------------------------------------

def post(world, body: bytes, headers: dict | None = None):
    from handlers.gateway_webhooks.entry import authorizenet_webhook

    request = func.HttpRequest("POST", "http://localhost:7071/api/authorizenet/webhook", body=body,
                               headers=headers or {})
    response = authorizenet_webhook.build().get_user_function()(request)
    text = response.get_body().decode()
    return response.status_code, (json.loads(text) if text else {})


def deliver(world, delivery):
    return post(world, delivery["body"], delivery["headers"])


@pytest.fixture
def sink(world):
    deliveries: list = []
    world.simulator.emit_webhooks_to(deliveries)
    return deliveries


def of(sink, event_type):
    found = [d for d in sink if d["event_type"] == event_type]
    assert found, f"no {event_type} among {[d['event_type'] for d in sink]}"
    return found[-1]


def operations(world):
    return [r for r in world.rows("w365_operation") if (r.get("w365_messagename") or "").startswith("net.authorize")]


def transactions(world):
    return world.rows("w365_paymenttransaction")


def outcome(world, label):
    return world.choice("w365_paymenttransaction", "w365_outcome", label)


def synced_default_profile(world, zip_code="62701"):
    """A card added and synced through Dynamics, the account's default (so w365_ChargeInvoice uses it)."""
    opaque = world.simulator.issue_nonce(VISA, 12, 2030, "123")
    reply = world.send("w365_AddPaymentProfile", "account", world.ids["account"], ContactId=world.ids["contact"],
                       Method="DirectEntry", OpaqueDataDescriptor=opaque.descriptor, OpaqueDataValue=opaque.value,
                       BillTo=json.dumps({**BILL_TO, "zip": zip_code}), SetAsDefault=True)
    profile_id = reply.body["paymentProfileId"]
    assert world.send("w365_SyncPaymentProfile", "w365_paymentprofile", profile_id).body["status"] == "succeeded"
    return profile_id


def charge_invoice(world, invoice="invoice1", **params):
    reply = world.send("w365_ChargeInvoice", "invoice", world.ids[invoice], **params)
    return reply, world.row("w365_paymenttransaction", reply.body["transactionId"])


def invoice_state(world, invoice="invoice1"):
    row = world.row("invoice", world.ids[invoice])
    return row["w365_amountpaid"], row["w365_balance"], row["statecode"], row["statuscode"]


def outside_card(world, zip_code="62701"):
    """A customer profile tied to the account and a card on it, made at the gateway directly (not from Dynamics)."""
    gateway = world.services.gateway
    customer_profile_id = gateway.create_customer_profile("outside-fabrikam")
    world.standin.update("account", world.ids["account"], {"w365_gatewaycustomerprofileid": customer_profile_id})
    opaque = world.simulator.issue_nonce("5424000000000015", 11, 2031)
    payment_profile_id = gateway.create_payment_profile(customer_profile_id, opaque, BillTo(
        first_name="Nancy", last_name="Davolio", zip=zip_code, city="Springfield"))
    return customer_profile_id, payment_profile_id


# --- the signature is the authentication -------------------------------------------------------------------------

def _signed_charge(world, sink):
    customer_profile_id, payment_profile_id = outside_card(world)
    world.services.gateway.charge_profile(customer_profile_id, payment_profile_id, Decimal("45.00"), ref_id="MI-1",
                                          invoice_number="INV-1001")
    return of(sink, "net.authorize.payment.authcapture.created")


def _reserialized(body: bytes) -> bytes:
    again = json.dumps(json.loads(body, parse_float=float))      # same content: 45.00 becomes 45.0
    assert again.encode() != body and json.loads(again) == json.loads(body)
    return again.encode()


@pytest.mark.parametrize("forge", [
    "unsigned", "wrong key", "not sha512", "garbage header", "non-ascii header", "re-serialized", "truncated",
    "truncated and signed", "oversized and signed", "empty",
])
def test_a_refused_delivery_changes_nothing_and_is_never_a_5xx(world, sink, forge):
    delivery = _signed_charge(world, sink)
    body, headers = delivery["body"], dict(delivery["headers"])
    if forge == "unsigned":
        headers.pop("X-ANET-Signature")
    elif forge == "wrong key":
        headers["X-ANET-Signature"] = sign(body, SIGNATURE_KEY + "X")
    elif forge == "not sha512":
        headers["X-ANET-Signature"] = "sha256=" + hmac.new(SIGNATURE_KEY.encode(), body, hashlib.sha256).hexdigest()
    elif forge == "garbage header":
        headers["X-ANET-Signature"] = "sha512=" + "Z" * 128
    elif forge == "non-ascii header":
        headers["X-ANET-Signature"] = "sha512=" + "é" * 128
    elif forge == "re-serialized":
        body = _reserialized(body)
    elif forge == "truncated":
        body = body[: len(body) // 2]
    elif forge == "truncated and signed":
        body = body[: len(body) // 2]
        headers["X-ANET-Signature"] = sign(body, SIGNATURE_KEY)
    elif forge == "oversized and signed":
        body = body[:-1] + b', "padding": "' + b"x" * 20_000 + b'"}'
        headers["X-ANET-Signature"] = sign(body, SIGNATURE_KEY)
    elif forge == "empty":
        body = b""
        headers["X-ANET-Signature"] = sign(body, SIGNATURE_KEY)
    status, reply = post(world, body, headers)
    assert status == {"unsigned": 401, "wrong key": 401, "not sha512": 401, "garbage header": 401,
                      "non-ascii header": 401, "re-serialized": 401, "truncated": 401, "truncated and signed": 400,
                      "oversized and signed": 413, "empty": 400}[forge], reply
    assert reply["status"] == "failed"
    assert transactions(world) == [] and operations(world) == []
    assert invoice_state(world)[0] == Decimal("0.00")
    # The genuine delivery still works afterwards: nothing was claimed by the refused one.
    assert deliver(world, delivery)[0] == 200
    assert len(transactions(world)) == 1


def test_a_signature_made_with_the_key_as_text_or_hex_decoded_is_accepted(world, sink):
    hex_key = "7A3F" * 32                          # real Signature Keys look like hex: published material disagrees
    world.services.settings = Settings({**TEST_SETTINGS, "AUTHORIZENET_SIGNATURE_KEY": hex_key})
    world.simulator.emit_webhooks_to(sink, hex_key)
    delivery = _signed_charge(world, sink)
    other = "sha512=" + hmac.new(bytes.fromhex("7A3E" * 32), delivery["body"], hashlib.sha512).hexdigest().upper()
    assert post(world, delivery["body"], {**delivery["headers"], "X-ANET-Signature": other})[0] == 401
    assert transactions(world) == []
    as_hex = "sha512=" + hmac.new(bytes.fromhex(hex_key), delivery["body"], hashlib.sha512).hexdigest().upper()
    assert post(world, delivery["body"], {**delivery["headers"], "X-ANET-Signature": as_hex})[0] == 200
    assert len(transactions(world)) == 1
    lower = delivery["headers"]["X-ANET-Signature"].lower()          # the text form, any case: same delivery, once
    assert post(world, delivery["body"], {**delivery["headers"], "X-ANET-Signature": lower})[0] == 200
    assert len(transactions(world)) == 1


# --- transactions ------------------------------------------------------------------------------------------------

def test_a_charge_made_outside_dynamics_is_recorded_once_on_its_account_and_invoice(world, sink):
    delivery = _signed_charge(world, sink)
    status, reply = deliver(world, delivery)
    assert status == 200 and reply["status"] == "succeeded", reply
    [row] = transactions(world)
    charge = world.simulator.charges()[0]
    assert row["w365_outcome"] == outcome(world, "Approved") and row["statecode"] == 0
    assert row["w365_gatewaytransactionid"] == charge["trans_id"] and row["w365_amount"] == Decimal("45.00")
    assert row["w365_accountid"]["id"] == world.ids["account"]
    assert row["w365_invoiceid"]["id"] == world.ids["invoice1"]
    assert invoice_state(world) == (Decimal("45.00"), Decimal("75.00"), 2, 100002)      # Paid, Partial
    [op] = operations(world)
    assert op["w365_requestid"] == json.loads(delivery["body"])["notificationId"]
    assert op["w365_messagename"] == "net.authorize.payment.authcapture.created"
    assert op["w365_regardingid"] == row["w365_paymenttransactionid"] and "outside Dynamics" in op["w365_message"]

    # The same delivery again, and a new delivery of the same event: nothing moves twice.
    status, again = deliver(world, delivery)
    assert status == 200 and again["status"] == "duplicate" and "outside Dynamics" in again["message"]
    body, headers = world.simulator.webhook_for("net.authorize.payment.authcapture.created",
                                                json.loads(delivery["body"])["payload"])
    assert post(world, body, headers)[1]["status"] == "succeeded"
    assert len(transactions(world)) == 1 and len(operations(world)) == 2
    assert invoice_state(world)[0] == Decimal("45.00")


def test_a_charge_on_no_known_account_or_invoice_is_not_recorded(world, sink):
    gateway = world.services.gateway
    customer_profile_id = gateway.create_customer_profile("stranger")
    opaque = world.simulator.issue_nonce(VISA, 12, 2030)
    payment_profile_id = gateway.create_payment_profile(customer_profile_id, opaque, BillTo(zip="62701"))
    gateway.charge_profile(customer_profile_id, payment_profile_id, Decimal("10.00"), ref_id="X-1",
                           invoice_number="ELSEWHERE-9")
    status, reply = deliver(world, of(sink, "net.authorize.payment.authcapture.created"))
    assert status == 200 and "not recorded" in reply["message"]
    assert transactions(world) == []


def test_an_unknown_attempt_is_settled_by_the_webhook_and_the_invoice_follows_once(world, sink):
    synced_default_profile(world)
    world.simulator.fail_next("lost_after_commit")
    reply, row = charge_invoice(world)
    assert row["w365_outcome"] == outcome(world, "Unknown") and invoice_state(world)[0] == Decimal("0.00")
    status, answer = deliver(world, of(sink, "net.authorize.payment.authcapture.created"))
    assert status == 200 and "Approved" in answer["message"], answer
    row = world.row("w365_paymenttransaction", row["w365_paymenttransactionid"])
    assert row["w365_outcome"] == outcome(world, "Approved")
    assert row["w365_gatewaytransactionid"] == world.simulator.charges()[0]["trans_id"]
    assert invoice_state(world) == (Decimal("120.00"), Decimal("0.00"), 2, 100001)      # Paid, Complete
    world.queue.drain(include_delayed=True)            # the reconciler the charge scheduled finds nothing to do
    reconciler.reconcile_due(world.services, everything=True)
    assert invoice_state(world)[0] == Decimal("120.00") and len(transactions(world)) == 1


def test_a_held_charge_approved_by_fraud_approved_pays_the_invoice_once(world, sink):
    synced_default_profile(world, zip_code=HELD_ZIP)
    reply, row = charge_invoice(world)
    assert row["w365_outcome"] == outcome(world, "Held For Review")
    held = deliver(world, of(sink, "net.authorize.payment.fraud.held"))
    assert held[0] == 200 and "Nothing new" in held[1]["message"]
    assert invoice_state(world)[0] == Decimal("0.00")

    world.simulator.approve_held(row["w365_gatewaytransactionid"])
    approved = of(sink, "net.authorize.payment.fraud.approved")
    status, answer = deliver(world, approved)
    assert status == 200 and answer["status"] == "succeeded", answer
    row = world.row("w365_paymenttransaction", row["w365_paymenttransactionid"])
    assert row["w365_outcome"] == outcome(world, "Approved")
    assert invoice_state(world) == (Decimal("120.00"), Decimal("0.00"), 2, 100001)
    # Replayed, redelivered under a new notificationId, and swept by the reconciler: still paid once.
    assert deliver(world, approved)[1]["status"] == "duplicate"
    body, headers = world.simulator.webhook_for("net.authorize.payment.fraud.approved",
                                                json.loads(approved["body"])["payload"])
    assert "Already recorded" in post(world, body, headers)[1]["message"]
    reconciler.reconcile_due(world.services, everything=True)
    assert invoice_state(world)[0] == Decimal("120.00") and len(transactions(world)) == 1


def test_a_held_charge_declined_by_fraud_declined_leaves_the_invoice_unpaid(world, sink):
    synced_default_profile(world, zip_code=HELD_ZIP)
    _, row = charge_invoice(world)
    world.simulator.decline_held(row["w365_gatewaytransactionid"])
    status, answer = deliver(world, of(sink, "net.authorize.payment.fraud.declined"))
    assert status == 200, answer
    row = world.row("w365_paymenttransaction", row["w365_paymenttransactionid"])
    assert row["w365_outcome"] == outcome(world, "Declined") and row["statecode"] == 1
    assert invoice_state(world) == (Decimal("0.00"), Decimal("120.00"), 0, 1)


def test_refund_and_void_made_outside_dynamics_take_the_money_off_the_invoice(world, sink):
    synced_default_profile(world)
    charge_invoice(world, Amount=Decimal("100.00"))
    charge_invoice(world, "invoice2", Amount=Decimal("50.00"))
    first, second = world.simulator.charges()
    assert deliver(world, of(sink, "net.authorize.payment.authcapture.created"))[1]["message"].startswith(
        "Already recorded")
    gateway = world.services.gateway
    gateway.void(second["trans_id"], ref_id="MI-VOID-1")
    status, answer = deliver(world, of(sink, "net.authorize.payment.void.created"))
    assert status == 200 and "void" in answer["message"].lower(), answer
    assert invoice_state(world, "invoice2") == (Decimal("0.00"), Decimal("250.00"), 0, 1)
    [void] = [r for r in transactions(world) if r["w365_type"] == world.choice("w365_paymenttransaction", "w365_type",
                                                                                  "Void")]
    assert void["w365_outcome"] == outcome(world, "Approved") and void["w365_amount"] == Decimal("50.00")

    world.simulator.settle()
    gateway.refund(first["trans_id"], Decimal("30.00"), card_number_masked="XXXX1111", ref_id="MI-REFUND-1")
    refund_delivery = of(sink, "net.authorize.payment.refund.created")
    status, answer = deliver(world, refund_delivery)
    assert status == 200 and answer["status"] == "succeeded", answer
    assert invoice_state(world) == (Decimal("70.00"), Decimal("50.00"), 2, 100002)
    body, headers = world.simulator.webhook_for("net.authorize.payment.refund.created",
                                                json.loads(refund_delivery["body"])["payload"])
    post(world, body, headers)
    assert invoice_state(world)[0] == Decimal("70.00") and len(transactions(world)) == 4


def test_a_gateway_outage_is_a_503_and_the_redelivery_runs(world, sink):
    delivery = _signed_charge(world, sink)
    world.simulator.fail_next("http_500", 3, "getTransactionDetails")
    status, reply = deliver(world, delivery)
    assert status == 503 and transactions(world) == [] and operations(world) == []
    assert deliver(world, delivery)[0] == 200 and len(transactions(world)) == 1


def test_a_concurrent_duplicate_is_told_to_come_back_and_a_stale_claim_is_taken_over(world, sink):
    delivery = _signed_charge(world, sink)
    notification_id = json.loads(delivery["body"])["notificationId"]
    from handlers.gateway_webhooks import notifications
    claim = world.standin.seed("w365_operation", {"w365_requestid": notification_id, "w365_name": "claim",
                                                  "w365_message": notifications.PROCESSING,
                                                  "w365_status": world.choice("w365_operation", "w365_status",
                                                                              "Failed")})
    created = dt.datetime.fromisoformat(world.row("w365_operation", claim)["createdon"].replace("Z", "+00:00"))
    world.clock._now = created + dt.timedelta(minutes=1)
    assert deliver(world, delivery)[0] == 409 and transactions(world) == []
    world.clock._now = created + notifications.STALE_CLAIM + dt.timedelta(minutes=1)
    status, reply = deliver(world, delivery)
    assert status == 200 and reply["status"] == "succeeded" and len(transactions(world)) == 1
    assert world.row("w365_operation", claim)["w365_message"] != notifications.PROCESSING


def test_events_we_do_not_act_on_are_acknowledged_without_a_row(world, sink):
    body, headers = world.simulator.webhook_for("net.authorize.customer.created", {"entityName": "customerProfile",
                                                                                   "id": "123"})
    assert post(world, body, headers) == (200, {"status": "ignored", "notificationId": json.loads(body)[
        "notificationId"], "message": "net.authorize.customer.created is not an event this service acts on."})
    body, headers = world.simulator.webhook_for("net.authorize.payment.authcapture.created",
                                                {"entityName": "transaction", "id": "1' or 1 eq 1"})
    assert post(world, body, headers)[0] == 400
    assert operations(world) == []


# --- payment profiles --------------------------------------------------------------------------------------------

def _profile_rows(world):
    return world.rows("w365_paymentprofile")


def test_a_card_added_outside_dynamics_is_imported_after_the_delay(world, sink):
    customer_profile_id, payment_profile_id = outside_card(world)
    status, reply = deliver(world, of(sink, "net.authorize.customer.paymentProfile.created"))
    assert status == 200 and "imported" in reply["message"], reply
    assert _profile_rows(world) == []                  # not yet: Dynamics may be writing its own row for it
    world.queue.drain(include_delayed=True)
    [row] = _profile_rows(world)
    assert row["w365_paymentprofileidgateway"] == payment_profile_id
    assert row["w365_customerprofileid"] == customer_profile_id and row["w365_cardlast4"] == "XXXX0015"
    assert (row["statecode"], row["w365_syncstatus"]) == (0, world.choice("w365_paymentprofile", "w365_syncstatus",
                                                                          "Synced"))


def test_a_card_of_no_account_is_not_imported(world, sink):
    gateway = world.services.gateway
    customer_profile_id = gateway.create_customer_profile("stranger")
    gateway.create_payment_profile(customer_profile_id, world.simulator.issue_nonce(VISA, 12, 2030), BillTo())
    status, reply = deliver(world, of(sink, "net.authorize.customer.paymentProfile.created"))
    assert status == 200 and "belongs to no account" in reply["message"]
    world.queue.drain(include_delayed=True)
    assert _profile_rows(world) == []


def test_created_for_a_card_added_from_dynamics_leaves_it_waiting_for_sync_and_makes_no_second_one(world, sink):
    """A new profile is usable only once a person Syncs it (CONTRACT §4); the gateway's webhook must not do it."""
    # The account has its customer profile already (its first card would come with it in one call and fire only
    # customer.created), so this card fires paymentProfile.created.
    customer = world.services.gateway.create_customer_profile("FAB-001")
    world.standin.update("account", world.ids["account"], {"w365_gatewaycustomerprofileid": customer})
    opaque = world.simulator.issue_nonce(VISA, 12, 2030, "123")
    reply = world.send("w365_AddPaymentProfile", "account", world.ids["account"], ContactId=world.ids["contact"],
                       Method="DirectEntry", OpaqueDataDescriptor=opaque.descriptor, OpaqueDataValue=opaque.value,
                       BillTo=json.dumps(BILL_TO))
    status, answer = deliver(world, of(sink, "net.authorize.customer.paymentProfile.created"))
    assert status == 200, answer
    world.queue.drain(include_delayed=True)
    [row] = _profile_rows(world)
    assert row["w365_paymentprofileid"] == reply.body["paymentProfileId"]
    pending = world.choice("w365_paymentprofile", "w365_syncstatus", "Pending Sync")
    assert (row["statecode"], row["w365_syncstatus"]) == (1, pending)
    assert world.send("w365_SyncPaymentProfile", "w365_paymentprofile", row["w365_paymentprofileid"]).body[
        "status"] == "succeeded"
    [row] = _profile_rows(world)
    assert (row["statecode"], row["w365_syncstatus"]) == (0, world.choice("w365_paymentprofile", "w365_syncstatus",
                                                                          "Synced"))


def test_updated_refreshes_the_row_and_keeps_a_deactivated_one_inactive(world, sink):
    profile_id = synced_default_profile(world)
    row = world.row("w365_paymentprofile", profile_id)
    gateway = world.services.gateway
    gateway.update_payment_profile(row["w365_customerprofileid"], row["w365_paymentprofileidgateway"],
                                   BillTo(first_name="Nancy", last_name="Davolio", city="Chicago", zip="60601"))
    status, answer = deliver(world, of(sink, "net.authorize.customer.paymentProfile.updated"))
    assert status == 200, answer
    assert world.row("w365_paymentprofile", profile_id)["w365_billto_city"] == "Chicago"

    assert world.send("w365_DeactivatePaymentProfile", "w365_paymentprofile", profile_id).body["status"] == "succeeded"
    gateway.update_payment_profile(row["w365_customerprofileid"], row["w365_paymentprofileidgateway"],
                                   BillTo(first_name="Nancy", last_name="Davolio", city="Evanston", zip="60201"))
    status, answer = deliver(world, of(sink, "net.authorize.customer.paymentProfile.updated"))
    assert status == 200 and "inactive" in answer["message"], answer
    row = world.row("w365_paymentprofile", profile_id)
    assert row["w365_billto_city"] == "Evanston" and row["statecode"] == 1


def test_deleted_marks_the_row_inactive_and_sync_failed(world, sink):
    profile_id = synced_default_profile(world)
    row = world.row("w365_paymentprofile", profile_id)
    world.services.gateway.delete_payment_profile(row["w365_customerprofileid"], row["w365_paymentprofileidgateway"])
    status, answer = deliver(world, of(sink, "net.authorize.customer.paymentProfile.deleted"))
    assert status == 200 and "Deleted at Authorize.Net" in answer["message"], answer
    row = world.row("w365_paymentprofile", profile_id)
    assert row["statecode"] == 1 and row["w365_isdefault"] is False
    assert row["w365_syncstatus"] == world.choice("w365_paymentprofile", "w365_syncstatus", "Sync Failed")


# --- local mode: the simulator posts to the dev host's route -------------------------------------------------------

def test_the_simulator_delivers_to_the_dev_host_route(world):
    from standins.devhost.host import FunctionsDevHost, serve

    host = FunctionsDevHost(function_app.app, record_requests=True)
    server = serve(host, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/authorizenet/webhook"
        world.simulator.emit_webhooks_to(url, SIGNATURE_KEY)
        outside_card(world)
        deadline = dt.datetime.now() + dt.timedelta(seconds=10)
        while len(operations(world)) < 1 and dt.datetime.now() < deadline:
            threading.Event().wait(0.05)
        assert [(m, p) for m, p, _ in host.received if "authorizenet" in p] and len(operations(world)) == 1
    finally:
        world.simulator.emit_webhooks_to(None)
        server.shutdown()
        server.server_close()
