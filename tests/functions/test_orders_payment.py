"""w365_SubmitOrderPayment end to end (POST /api/dataverse -> orders -> charging core -> stand-in + simulator):
card on file, new card, decline -> convert to draft -> retry, scheduled activation, credit hold, exactly once."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from core import footprint
from handlers.orders import activation, payment
from tests.functions.charging_world import VISA, card_on_file, outcome

BILL_TO = {"firstName": "Nancy", "lastName": "Davolio", "company": "Fabrikam", "address": "1 Main St",
           "city": "Redmond", "state": "WA", "zip": "98052", "country": "US", "phoneNumber": "555-0100"}
TOTAL = Decimal("237.60")


def status(label: str) -> int:
    return footprint.choice("salesorder", "w365_orderstatus", label)


def order(world) -> dict:
    return world.row("salesorder", world.ids["order"])


def order_rows(world, table: str, column: str = "w365_salesorderid") -> list[dict]:
    return [r for r in world.rows(table) if (r.get(column) or {}).get("id") == world.ids["order"]]


def notes(world) -> list[dict]:
    return order_rows(world, "annotation", "objectid")


def submit(world, **params):
    reply = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], **params)
    assert reply.status == 200, reply.body
    world.queue.drain()
    return reply


def submit_new_card(world, number: str = VISA, **bill_to):
    nonce = world.simulator.issue_nonce(number, 12, 2030, "123")
    return submit(world, OpaqueDataDescriptor=nonce.descriptor, OpaqueDataValue=nonce.value,
                  BillTo=json.dumps({**BILL_TO, **bill_to}))


def invoice_of_order(world) -> dict:
    invoices = [r for r in world.rows("invoice") if (r.get("salesorderid") or {}).get("id") == world.ids["order"]]
    assert len(invoices) == 1, invoices
    return invoices[0]


def test_card_on_file_approved_activates_the_order_with_a_paid_invoice_and_subscriptions(world):
    profile_id = card_on_file(world, on_contract=False)
    reply = submit(world, PaymentProfileId=profile_id)
    assert reply.body["status"] == "succeeded", reply.body
    assert "Activated" in reply.message and "237.60" in reply.message

    [charge] = [t for t in order_rows(world, "w365_paymenttransaction")]
    assert charge["w365_outcome"] == outcome("Approved") and charge["w365_amount"] == TOTAL
    assert world.simulator.charges()[0]["amount"] == TOTAL

    invoice = invoice_of_order(world)
    assert (invoice["statecode"], invoice["statuscode"]) == (2, 100001)
    assert (invoice["w365_amountpaid"], invoice["w365_balance"], invoice["totalamount"]) == (TOTAL, 0, TOTAL)
    assert charge["w365_invoiceid"]["id"] == invoice["invoiceid"]

    row = order(world)
    assert row["w365_orderstatus"] == status("Activated") and row["w365_paymentdeclined"] is False
    assert row["w365_paymentprofileid"]["id"] == profile_id
    subscriptions = order_rows(world, "w365_subscription")
    assert sorted((s["w365_productid"]["id"], s["w365_quantity"]) for s in subscriptions) == sorted(
        [(world.ids["product_license"], 3), (world.ids["product_setup"], 1)])
    assert all(s["w365_providerid"]["id"] == world.ids["provider_manual"] for s in subscriptions)
    # Provisioned through the credit-hold rules and the Manual provider (queued work, drained above).
    provisioning = footprint.choice("w365_subscription", "w365_provisioningstatus", "Pending")
    assert all(s["w365_provisioningstatus"] != provisioning for s in subscriptions)
    assert any(n["subject"] == "Payment approved" for n in notes(world))
    assert world.operation(reply.body["requestId"])["w365_message"] == reply.message


def test_a_second_submit_never_charges_again(world):
    profile_id = card_on_file(world, on_contract=False)
    assert submit(world, PaymentProfileId=profile_id).body["status"] == "succeeded"
    again = submit(world, PaymentProfileId=profile_id)
    assert len(world.simulator.charges()) == 1
    assert len(order_rows(world, "w365_subscription")) == 2
    assert again.body["status"] == "failed" and "already paid" in again.message


def gateway_operations(world, since: int = 0) -> list[str]:
    """The API operations sent to the simulator (after the first `since` calls to it)."""
    bodies = [json.loads(c.request.body) for c in world.rsps.calls if "authorize.net" in c.request.url]
    return [next(iter(b))[:-len("Request")] for b in bodies[since:]]


def gateway_calls(world) -> int:
    return len(gateway_operations(world))


def test_new_card_is_charged_and_saved_by_one_charge_then_one_read_and_becomes_the_default(world):
    reply = submit_new_card(world)
    assert reply.body["status"] == "succeeded", reply.body
    # One createTransaction that also saves the card (the account had no customer profile), one read of the card.
    assert gateway_operations(world) == ["createTransaction", "getCustomerPaymentProfile"]
    [profile] = [p for p in world.rows("w365_paymentprofile")]
    assert profile["w365_source"] == footprint.choice("w365_paymentprofile", "w365_source", "Order")
    assert profile["w365_syncstatus"] == footprint.choice("w365_paymentprofile", "w365_syncstatus", "Synced")
    assert profile["statecode"] == 0 and profile["w365_isdefault"] is True
    assert (profile["w365_cardlast4"], profile["w365_cardtype"], profile["w365_expiration"]) == (
        "XXXX1111", "Visa", "2030-12")
    assert profile["w365_contactid"]["id"] == world.ids["contact"]
    assert order(world)["w365_paymentprofileid"]["id"] == profile["w365_paymentprofileid"]
    [charge] = order_rows(world, "w365_paymenttransaction")
    assert charge["w365_paymentprofileid"]["id"] == profile["w365_paymentprofileid"]
    assert charge["w365_outcome"] == outcome("Approved")
    # The gateway's customer profile is the account's now, its only card the gateway's default.
    account = world.row("account", world.ids["account"])
    assert account["w365_gatewaycustomerprofileid"] == profile["w365_customerprofileid"]
    card = world.services.gateway.get_payment_profile(profile["w365_customerprofileid"],
                                                      profile["w365_paymentprofileidgateway"])
    assert card.is_default and card.bill_to.zip == "98052"
    assert "saved on the account as its default card" in reply.message
    text = json.dumps([world.rows(t) for t in ("w365_paymentprofile", "w365_paymenttransaction", "annotation",
                                               "w365_operation")], default=str)
    assert VISA not in text


def test_a_declined_new_card_declines_the_order_and_is_saved_nowhere(world):
    reply = submit_new_card(world, zip="46282")
    assert reply.body["status"] == "failed" and "declined" in reply.message.lower()
    assert order(world)["w365_orderstatus"] == status("Declined")
    assert [c["status"] for c in world.simulator.charges()] == ["declined"]
    assert world.rows("w365_paymentprofile") == []
    assert world.services.gateway.find_customer_profile(
        world.ids["account"].replace("-", "")[:20]) is None                    # no customer profile either
    assert not world.row("account", world.ids["account"]).get("w365_gatewaycustomerprofileid")
    [attempt] = world.rows("w365_paymenttransaction")          # the decline is recorded, Inactive, with its reason
    assert attempt["statecode"] == 1 and "declined" in attempt["w365_transactionresult"].lower()
    assert attempt["w365_outcome"] == world.choice("w365_paymenttransaction", "w365_outcome", "Declined")
    assert attempt["w365_salesorderid"]["id"] == world.ids["order"] and not attempt.get("w365_paymentprofileid")


def test_declined_card_then_convert_to_draft_then_retry_approved(world):
    declining = card_on_file(world, zip_code="46282", on_contract=False)
    reply = submit(world, PaymentProfileId=declining)
    assert reply.body["status"] == "failed" and "declined" in reply.message.lower()
    [attempt] = order_rows(world, "w365_paymenttransaction")
    assert attempt["w365_outcome"] == outcome("Declined") and attempt["statecode"] == 1
    assert "declined" in attempt["w365_transactionresult"].lower()
    row = order(world)
    assert row["w365_orderstatus"] == status("Declined") and row["w365_paymentdeclined"] is True
    assert any(n["subject"] == "Payment declined" and "declined" in n["notetext"] for n in notes(world))
    assert not [r for r in world.rows("invoice") if r.get("salesorderid")]

    # Declined: Submit is refused until the order is Draft again.
    refused = submit_new_card(world)
    assert refused.body["status"] == "failed" and "Draft" in refused.message
    assert world.send("w365_ConvertOrderToDraft", "salesorder", world.ids["order"]).body["status"] == "succeeded"
    row = order(world)
    assert row["w365_orderstatus"] == status("Draft") and row["w365_paymentdeclined"] is True   # tag stays

    retried = submit_new_card(world, number="5424000000000015")
    assert retried.body["status"] == "succeeded", retried.body
    row = order(world)
    assert row["w365_orderstatus"] == status("Activated") and row["w365_paymentdeclined"] is False
    charges = sorted(order_rows(world, "w365_paymenttransaction"), key=lambda t: t["w365_refid"])
    assert [t["w365_outcome"] for t in charges] == [outcome("Declined"), outcome("Approved")]
    assert charges[0]["w365_refid"] != charges[1]["w365_refid"]
    assert invoice_of_order(world)["w365_amountpaid"] == TOTAL


def test_convert_to_draft_refuses_an_order_that_is_not_declined(world):
    reply = world.send("w365_ConvertOrderToDraft", "salesorder", world.ids["order"])
    assert reply.body["status"] == "failed" and "Draft" in reply.message


def test_future_activation_date_schedules_the_order_and_the_timer_activates_it(world):
    activation_on = world.clock.now() + dt.timedelta(days=3)
    world.standin.update("salesorder", world.ids["order"],
                         {"w365_activationdate": activation_on.strftime("%Y-%m-%dT%H:%M:%SZ")})
    profile_id = card_on_file(world, on_contract=False)
    reply = submit(world, PaymentProfileId=profile_id)
    assert reply.body["status"] == "succeeded" and "Scheduled" in reply.message
    assert order(world)["w365_orderstatus"] == status("Scheduled")
    assert invoice_of_order(world)["statecode"] == 2            # paid now, activated later
    assert order_rows(world, "w365_subscription") == []

    world.clock.advance(dt.timedelta(days=2))
    assert activation.activate_due_orders(world.services) == []
    world.clock.advance(dt.timedelta(days=1, minutes=5))
    assert activation.activate_due_orders(world.services) == [world.ids["order"]]
    world.queue.drain()
    assert order(world)["w365_orderstatus"] == status("Activated")
    assert len(order_rows(world, "w365_subscription")) == 2
    assert activation.activate_due_orders(world.services) == []   # done once


def test_credit_hold_on_the_account_blocks_the_new_subscriptions(world):
    world.standin.update("w365_configuration", world.ids["configuration"], {"w365_enablecredithold": True})
    world.standin.update("account", world.ids["account"], {"creditonhold": True})
    profile_id = card_on_file(world, on_contract=False)
    reply = submit(world, PaymentProfileId=profile_id)
    assert reply.body["status"] == "succeeded" and "blocked" in reply.message
    blocked = footprint.choice("w365_subscription", "w365_provisioningstatus", "Blocked By Credit Hold")
    subscriptions = order_rows(world, "w365_subscription")
    assert len(subscriptions) == 2 and all(s["w365_provisioningstatus"] == blocked for s in subscriptions)
    assert order(world)["w365_orderstatus"] == status("Activated")


def test_a_completion_cut_short_is_finished_by_the_timer_without_charging_again(world):
    profile_id = card_on_file(world, on_contract=False)
    # Dataverse refuses the invoice conversion after the charge went through.
    down = {"now": True}
    world.standin.fail_next(count=50, status=503,
                            match=lambda method, path: down["now"] and "ConvertSalesOrderToInvoice" in path)
    reply = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], PaymentProfileId=profile_id)
    assert reply.status == 200 and reply.body["status"] == "succeeded", reply.body
    assert "approved" in reply.message and "within a few minutes" in reply.message
    assert len(world.simulator.charges()) == 1 and order(world)["w365_orderstatus"] == status("Draft")
    down["now"] = False
    world.clock.advance(payment.COMPLETION_GRACE)
    assert payment.complete_paid_orders(world.services) == [world.ids["order"]]
    world.queue.drain()
    assert order(world)["w365_orderstatus"] == status("Activated")
    assert invoice_of_order(world)["w365_balance"] == 0
    assert payment.complete_paid_orders(world.services) == []
    assert len(world.simulator.charges()) == 1


def test_a_completion_finished_by_the_timer_writes_each_history_note_once(world):
    profile_id = card_on_file(world, on_contract=False)
    # The crash comes after the invoice is made, at the completion's changeset (invoice paid, the order activated
    # with its subscriptions and notes, the link): all of it or none of it is written.
    down = {"now": True}
    world.standin.fail_next(count=50, status=503, match=lambda method, path: down["now"] and path == "$batch" and any(
        (r.get("salesorderid") or {}).get("id") == world.ids["order"] for r in world.rows("invoice")))
    reply = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], PaymentProfileId=profile_id)
    assert reply.body["status"] == "succeeded" and "within a few minutes" in reply.message, reply.body
    assert order(world)["w365_orderstatus"] == status("Draft") and notes(world) == []
    assert order_rows(world, "w365_subscription") == []
    down["now"] = False
    world.clock.advance(payment.COMPLETION_GRACE)
    assert payment.complete_paid_orders(world.services) == [world.ids["order"]]
    assert invoice_of_order(world)["w365_balance"] == 0
    subjects = [n["subject"] for n in notes(world)]
    assert subjects.count("Payment approved") == 1 and subjects.count("Order activated") == 1, subjects
    assert len(world.simulator.charges()) == 1


def test_a_card_of_another_account_or_not_synced_is_refused_before_any_charge(world):
    other = world.standin.seed("account", {"name": "Contoso"})
    foreign = world.standin.seed("w365_paymentprofile", {
        "w365_name": "Visa XXXX0002", "w365_accountid@odata.bind": f"/accounts({other})", "statecode": 0,
        "w365_syncstatus": footprint.choice("w365_paymentprofile", "w365_syncstatus", "Synced"),
        "w365_customerprofileid": "1", "w365_paymentprofileidgateway": "2"})
    assert "another account" in submit(world, PaymentProfileId=foreign).message
    pending = card_on_file(world, on_contract=False)
    world.standin.update("w365_paymentprofile", pending, {
        "w365_syncstatus": footprint.choice("w365_paymentprofile", "w365_syncstatus", "Pending Sync")})
    assert "not synced" in submit(world, PaymentProfileId=pending).message
    assert world.simulator.charges() == [] and order(world)["w365_orderstatus"] == status("Draft")


def test_neither_or_both_payment_kinds_is_a_bad_request(world):
    reply = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"])
    assert reply.status == 400


def test_a_person_without_the_privilege_cannot_collect_payment(world):
    profile_id = card_on_file(world, on_contract=False)
    reader = world.standin.add_user("Rita Reader", roles=("Read Only",))
    reply = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], user=reader,
                       PaymentProfileId=profile_id)
    assert reply.body["status"] == "failed" and "permission" in reply.message
    salesperson = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"],
                             user=world.ids["salesperson"], PaymentProfileId=profile_id)
    assert salesperson.body["status"] == "failed" and "permission" in salesperson.message
    assert world.simulator.charges() == []


def test_a_person_who_cannot_read_the_card_cannot_charge_it(world, monkeypatch):
    from standins.dataverse import security
    profile_id = card_on_file(world, on_contract=False)
    # Everything a charge of the order needs, but no read on payment profiles.
    tables = [t for t in world.standin.store.tables if t != "w365_paymentprofile"]
    monkeypatch.setitem(security.ROLE_PRIVILEGES, "Order Clerk", {("read", t) for t in tables} | {
        (a, security.ALL) for a in security.ACCESS if a != "read"})
    world.standin.seed("role", {"name": "Order Clerk"})
    clerk = world.standin.add_user("Olga Orders", roles=("Order Clerk",))
    reply = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], user=clerk,
                       PaymentProfileId=profile_id)
    assert reply.status == 200 and reply.body["status"] == "failed", reply.body
    assert "permission" in reply.message and "payment profile" in reply.message
    assert world.simulator.charges() == [] and order_rows(world, "w365_paymenttransaction") == []


def test_a_charge_in_progress_blocks_a_second_one(world):
    profile_id = card_on_file(world, on_contract=False)
    world.standin.seed("w365_paymenttransaction", {
        "w365_name": "Charge ORD-2001 #1", "w365_refid": "ABCDEF012345-1", "w365_amount": TOTAL,
        "w365_type": footprint.choice("w365_paymenttransaction", "w365_type", "Charge"),
        "w365_outcome": outcome("Pending"), "statecode": 0, "statuscode": 1,
        "w365_salesorderid@odata.bind": f"/salesorders({world.ids['order']})"})
    reply = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], PaymentProfileId=profile_id)
    assert reply.status == 409 and "in progress" in reply.message
    assert world.simulator.charges() == []


def _no_active_provider(world):
    for key in ("provider_manual", "provider_webhook"):
        world.standin.update("w365_provider", world.ids[key], {"statecode": 1, "statuscode": 2})


def _provisioning(label: str) -> int:
    return footprint.choice("w365_subscription", "w365_provisioningstatus", label)


def _assert_paid_and_activated(world, reply, profile_id):
    assert len(world.simulator.charges()) == 1
    assert reply.body["status"] == "succeeded", reply.body
    invoice = invoice_of_order(world)
    assert (invoice["statecode"], invoice["statuscode"], invoice["w365_balance"]) == (2, 100001, 0)
    row = order(world)
    assert row["w365_orderstatus"] == status("Activated") and row["w365_paymentdeclined"] is False
    card = world.row("w365_paymentprofile", profile_id)
    assert card["w365_isdefault"] is True
    # Nothing is left for the timer to finish: the payment never waits on provisioning.
    assert payment.complete_paid_orders(world.services) == []


def test_no_active_provider_still_completes_the_paid_order_and_fails_its_subscriptions_saying_why(world):
    profile_id = card_on_file(world, on_contract=False)
    _no_active_provider(world)
    reply = submit(world, PaymentProfileId=profile_id)
    _assert_paid_and_activated(world, reply, profile_id)
    subscriptions = order_rows(world, "w365_subscription")
    assert len(subscriptions) == 2
    for subscription in subscriptions:
        assert subscription["w365_provisioningstatus"] == _provisioning("Failed")
        assert "No active provider" in subscription["w365_provisioningresult"]
    assert "2 could not be provisioned" in reply.message
    [note] = [n for n in notes(world) if n["subject"] == "Subscriptions not provisioned"]
    assert "No active provider" in note["notetext"] and "w365_provider" in note["notetext"]


def test_subscriptions_that_waited_for_a_provider_are_provisioned_once_one_is_active(world):
    from handlers.credit_hold.entry import provisioning_sweep
    from handlers.credit_hold.rules import reprovision_waiting

    profile_id = card_on_file(world, on_contract=False)
    _no_active_provider(world)
    submit(world, PaymentProfileId=profile_id)
    assert reprovision_waiting(world.services) == 0           # still no provider: they keep waiting, unchanged
    assert {s["w365_provisioningstatus"] for s in order_rows(world, "w365_subscription")} == {_provisioning("Failed")}
    world.standin.update("w365_provider", world.ids["provider_manual"], {"statecode": 0, "statuscode": 1})
    provisioning_sweep.build().get_user_function()(None)     # the timer, as the host runs it
    world.queue.drain()
    subscriptions = order_rows(world, "w365_subscription")
    # The Manual provider hands each one to a person as a task: Provisioning until they finish it.
    assert [s["w365_provisioningstatus"] for s in subscriptions] == [_provisioning("Provisioning")] * 2
    assert all("Waiting for manual provisioning: task" in s["w365_provisioningresult"] for s in subscriptions)
    assert all(s["w365_providerid"]["id"] == world.ids["provider_manual"] for s in subscriptions)
    assert reprovision_waiting(world.services) == 0           # done once: nothing is provisioned twice


def test_subscriptions_that_could_not_be_queued_are_provisioned_when_the_queue_works(world, monkeypatch):
    from core.errors import ConfigurationError
    from handlers.credit_hold.rules import reprovision_waiting

    def no_service_bus(*args, **kwargs):
        raise ConfigurationError("The app setting W365_WORK_QUEUE is not set.", setting="W365_WORK_QUEUE")

    profile_id = card_on_file(world, on_contract=False)
    monkeypatch.setattr(world.queue, "send", no_service_bus)
    submit(world, PaymentProfileId=profile_id)
    monkeypatch.undo()
    assert reprovision_waiting(world.services) == 2
    world.queue.drain()
    assert [s["w365_provisioningstatus"] for s in order_rows(world, "w365_subscription")] == \
        [_provisioning("Provisioning")] * 2                      # each one a task for a person (Manual provider)


def test_provisioning_that_cannot_be_queued_still_completes_the_paid_order(world, monkeypatch):
    from core.errors import ConfigurationError

    def no_service_bus(*args, **kwargs):
        raise ConfigurationError("The app setting W365_WORK_QUEUE is not set.", setting="W365_WORK_QUEUE")

    profile_id = card_on_file(world, on_contract=False)
    monkeypatch.setattr(world.queue, "send", no_service_bus)
    reply = submit(world, PaymentProfileId=profile_id)
    _assert_paid_and_activated(world, reply, profile_id)
    subscriptions = order_rows(world, "w365_subscription")
    assert [s["w365_provisioningstatus"] for s in subscriptions] == [_provisioning("Failed")] * 2
    assert all("W365_WORK_QUEUE" in s["w365_provisioningresult"] for s in subscriptions)
    assert any("W365_WORK_QUEUE" in n["notetext"] for n in notes(world)
               if n["subject"] == "Subscriptions not provisioned")


def test_the_timer_leaves_a_charge_just_approved_to_the_submit_that_is_completing_it(world):
    profile_id = card_on_file(world, on_contract=False)
    down = {"now": True}
    world.standin.fail_next(count=50, status=503,
                            match=lambda method, path: down["now"] and "ConvertSalesOrderToInvoice" in path)
    assert world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"],
                      PaymentProfileId=profile_id).body["status"] == "succeeded"
    down["now"] = False
    # The same moment: the submit may still be converting and activating; a second completion would duplicate both.
    assert payment.complete_paid_orders(world.services) == []
    world.clock.advance(payment.COMPLETION_GRACE + dt.timedelta(seconds=1))
    assert payment.complete_paid_orders(world.services) == [world.ids["order"]]


# --- a new card that is already on file (the gateway's duplicate answer, E00039) --------------------------------------

def _card_on_file_of_the_account(world) -> tuple[str, dict]:
    profile_id = card_on_file(world, on_contract=False)
    row = world.row("w365_paymentprofile", profile_id)
    world.standin.update("account", world.ids["account"],
                         {"w365_gatewaycustomerprofileid": row["w365_customerprofileid"]})
    return profile_id, row


def test_an_account_with_a_customer_profile_gets_the_new_card_added_from_the_transaction(world):
    default_id, row = _card_on_file_of_the_account(world)
    before = gateway_calls(world)
    reply = submit_new_card(world, number="5424000000000015")
    assert reply.body["status"] == "succeeded", reply.body
    # No second customer profile: the charge, the card saved into the account's customer profile, its read.
    assert gateway_operations(world, before) == ["createTransaction", "createCustomerProfileFromTransaction",
                                                 "getCustomerPaymentProfile"]
    [new] = [r for r in world.rows("w365_paymentprofile") if r["w365_paymentprofileid"] != default_id]
    assert new["w365_customerprofileid"] == row["w365_customerprofileid"]
    assert (new["w365_cardlast4"], new["w365_cardtype"], new["statecode"]) == ("XXXX0015", "MasterCard", 0)
    assert new["w365_isdefault"] is False and world.row("w365_paymentprofile", default_id)["w365_isdefault"] is True
    assert order_rows(world, "w365_paymenttransaction")[0]["w365_paymentprofileid"]["id"] == \
        new["w365_paymentprofileid"]
    cards = world.services.gateway.get_customer_profile(row["w365_customerprofileid"])
    assert sorted((c.card_number_masked, c.is_default) for c in cards) == [("XXXX0015", False), ("XXXX1111", True)]


def test_the_same_card_again_is_charged_and_not_saved_twice(world):
    profile_id, row = _card_on_file_of_the_account(world)
    reply = submit_new_card(world, address="9 New Road")
    assert reply.body["status"] == "succeeded", reply.body
    assert [c["status"] for c in world.simulator.charges()] == ["capturedPendingSettlement"]
    assert [r["w365_paymentprofileid"] for r in world.rows("w365_paymentprofile")] == [profile_id]
    assert len(world.services.gateway.get_customer_profile(row["w365_customerprofileid"])) == 1
    assert order(world)["w365_orderstatus"] == status("Activated")


def test_an_account_whose_customer_profile_id_was_lost_gets_the_card_into_that_profile(world):
    """The gateway refuses a second customer with the same merchantCustomerId (E00039 inside profileResponse)
    while the charge stands: the card goes into the existing customer, whose id the account learns."""
    from handlers.payment_profiles.profiles import merchant_customer_id
    customer = world.services.gateway.create_customer_profile(merchant_customer_id(world.ids["account"]))
    reply = submit_new_card(world)
    assert reply.body["status"] == "succeeded", reply.body
    assert gateway_operations(world)[-3:] == ["createTransaction", "createCustomerProfileFromTransaction",
                                              "getCustomerPaymentProfile"]
    [profile] = world.rows("w365_paymentprofile")
    assert profile["w365_customerprofileid"] == customer and profile["w365_isdefault"] is True
    assert world.row("account", world.ids["account"])["w365_gatewaycustomerprofileid"] == customer
    [card] = world.services.gateway.get_customer_profile(customer)
    assert card.is_default


def _gateway_updates(world) -> list[dict]:
    """The updateCustomerPaymentProfile requests sent to the simulator so far."""
    bodies = [json.loads(c.request.body) for c in world.rsps.calls if "authorize.net" in c.request.url]
    return [b["updateCustomerPaymentProfileRequest"] for b in bodies if "updateCustomerPaymentProfileRequest" in b]


def test_the_card_paid_becomes_the_default_here_and_at_the_gateway_when_the_account_has_none(world):
    profile_id = card_on_file(world, on_contract=False)
    world.standin.update("w365_paymentprofile", profile_id, {"w365_isdefault": False})
    before = len(_gateway_updates(world))
    reply = submit(world, PaymentProfileId=profile_id)
    _assert_paid_and_activated(world, reply, profile_id)
    [update] = _gateway_updates(world)[before:]
    assert update["paymentProfile"]["defaultPaymentProfile"] is True
    assert update["paymentProfile"]["payment"]["creditCard"]["expirationDate"] == "XXXX"
    [note] = [n for n in notes(world) if n["subject"] == "Payment approved"]
    assert "now the default" in note["notetext"]


def test_the_card_paid_leaves_the_accounts_other_default_alone(world):
    default_id = card_on_file(world, on_contract=False)
    other_id = world.standin.seed("w365_paymentprofile", {
        **{k: v for k, v in world.row("w365_paymentprofile", default_id).items()
           if k in ("w365_customerprofileid", "w365_paymentprofileidgateway", "w365_syncstatus", "statecode",
                    "statuscode", "w365_cardlast4")},
        "w365_name": "Visa XXXX1111 (again)", "w365_accountid@odata.bind": f"/accounts({world.ids['account']})",
        "w365_isdefault": False})
    before = len(_gateway_updates(world))
    reply = submit(world, PaymentProfileId=other_id)
    assert reply.body["status"] == "succeeded", reply.body
    assert world.row("w365_paymentprofile", default_id)["w365_isdefault"] is True
    assert world.row("w365_paymentprofile", other_id)["w365_isdefault"] is False
    assert _gateway_updates(world)[before:] == []
    assert order(world)["w365_orderstatus"] == status("Activated")


def test_a_new_card_becomes_the_default_of_an_account_whose_only_card_was_deactivated(world):
    old_id, row = _card_on_file_of_the_account(world)
    world.standin.update("w365_paymentprofile", old_id, {"statecode": 1, "statuscode": 2, "w365_isdefault": False})
    reply = submit_new_card(world, number="5424000000000015")
    assert reply.body["status"] == "succeeded", reply.body
    [new] = [r for r in world.rows("w365_paymentprofile") if r["w365_paymentprofileid"] != old_id]
    assert new["w365_isdefault"] is True and new["statecode"] == 0
    cards = {c.card_number_masked: c.is_default for c in
             world.services.gateway.get_customer_profile(row["w365_customerprofileid"])}
    assert cards == {"XXXX1111": False, "XXXX0015": True}


def test_a_held_new_card_is_recorded_held_and_not_saved(world):
    reply = submit_new_card(world, zip="46299")
    assert "held for review" in reply.message
    [attempt] = order_rows(world, "w365_paymenttransaction")
    assert attempt["w365_outcome"] == outcome("Held For Review") and not attempt.get("w365_paymentprofileid")
    assert world.rows("w365_paymentprofile") == []
    assert order(world)["w365_orderstatus"] == status("Draft")


def test_a_redelivered_submit_charges_once(world):
    nonce = world.simulator.issue_nonce(VISA, 12, 2030, "123")
    params = dict(OpaqueDataDescriptor=nonce.descriptor, OpaqueDataValue=nonce.value, BillTo=json.dumps(BILL_TO))
    request = "6f1f3f9e-2b7a-4c1d-9d7e-0a1b2c3d4e5f"
    first = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], request_id=request, **params)
    again = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], request_id=request, **params)
    world.queue.drain()
    assert first.body["status"] == "succeeded", first.body
    assert again.status == 200 and again.body["status"] in ("succeeded", "failed")
    assert [c["status"] for c in world.simulator.charges()] == ["capturedPendingSettlement"]
    assert len(order_rows(world, "w365_paymenttransaction")) == 1 and len(world.rows("w365_paymentprofile")) == 1


def test_a_new_card_whose_answer_is_lost_is_reconciled_never_resent_and_its_card_imported_by_sync(world):
    from handlers.charging import reconciler
    world.simulator.fail_next("lost_after_commit")
    reply = submit_new_card(world)
    assert reply.body["status"] == "failed" and "not known yet" in reply.message
    [attempt] = order_rows(world, "w365_paymenttransaction")
    assert attempt["w365_outcome"] == outcome("Unknown") and world.rows("w365_paymentprofile") == []
    assert order(world)["w365_orderstatus"] == status("Draft")
    # Another click is refused while the outcome is open: no second charge, whatever card is entered.
    other = world.simulator.issue_nonce("5424000000000015", 12, 2030, "123")
    blocked = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], BillTo=json.dumps(BILL_TO),
                         OpaqueDataDescriptor=other.descriptor, OpaqueDataValue=other.value)
    assert blocked.status == 409 and "in progress" in blocked.body["message"]
    assert world.simulator.calls["createTransaction"] == 1

    world.clock.advance(dt.timedelta(minutes=6))
    assert reconciler.reconcile_due(world.services) == 1
    assert world.row("w365_paymenttransaction", attempt["w365_paymenttransactionid"])["w365_outcome"] == \
        outcome("Approved")
    world.clock.advance(payment.COMPLETION_GRACE)
    assert payment.complete_paid_orders(world.services) == [world.ids["order"]]
    assert order(world)["w365_orderstatus"] == status("Activated")
    assert world.simulator.calls["createTransaction"] == 1

    # The gateway saved the card with that charge; the account did not learn its customer profile. Sync finds it.
    synced = world.send("w365_SyncPaymentProfiles", "account", world.ids["account"])
    assert synced.body["status"] == "succeeded" and "1 imported" in synced.message, synced.body
    [card] = world.rows("w365_paymentprofile")
    assert card["w365_cardlast4"] == "XXXX1111" and card["statecode"] == 0 and card["w365_isdefault"] is True
    assert world.row("account", world.ids["account"])["w365_gatewaycustomerprofileid"] == \
        card["w365_customerprofileid"]


def test_a_card_row_dataverse_refuses_never_costs_the_charge_its_record(world, monkeypatch):
    from handlers.charging.attempts import SavedCard
    from core.ports import BatchOperation
    monkeypatch.setattr(payment.profiles, "card_saved_with_charge", lambda services, **kw: SavedCard(
        (BatchOperation.create("w365_paymentprofiles", {"w365_nosuchcolumn": 1}, content_id="card"),), "$card",
        "saved."))
    reply = submit_new_card(world)
    assert reply.body["status"] == "succeeded", reply.body
    [attempt] = order_rows(world, "w365_paymenttransaction")
    assert attempt["w365_outcome"] == outcome("Approved") and not attempt.get("w365_paymentprofileid")
    assert world.rows("w365_paymentprofile") == [] and order(world)["w365_orderstatus"] == status("Activated")
