"""w365_RefundTransaction end to end: void when unsettled, refund when settled, never more than what is left, and the
invoice's amount paid, balance and state follow (books agree with the simulator to the cent)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from core.ports import BillTo
from tests.functions.charging_world import assert_books_agree, card_on_file, charge, outcome, transactions


@pytest.fixture
def charged(world, monkeypatch):
    card_on_file(world)
    reply = charge(world)                                    # the whole $120.00: Paid (Complete)
    assert reply.body["status"] == "succeeded", reply.body
    return world, reply.body["transactionId"]


def refund(world, transaction_id, amount=None, **kw):
    params = {"Amount": Decimal(amount)} if amount is not None else {}
    return world.send("w365_RefundTransaction", "w365_paymenttransaction", transaction_id, **params, **kw)


def test_an_unsettled_charge_is_voided_in_full_and_the_invoice_reopens(charged):
    world, charge_id = charged
    partial = refund(world, charge_id, "20.00")
    assert partial.body["status"] == "failed" and "void all of it" in partial.message
    reply = refund(world, charge_id)
    assert reply.body["status"] == "succeeded" and reply.message.startswith("Voided $120.00"), reply.body
    void = next(t for t in transactions(world) if t["w365_type"] == world.choice("w365_paymenttransaction",
                                                                                   "w365_type", "Void"))
    assert void["w365_outcome"] == outcome("Approved")
    invoice = world.row("invoice", world.ids["invoice1"])
    assert (invoice["statecode"], invoice["w365_amountpaid"], invoice["w365_balance"]) == (0, 0, Decimal("120.00"))
    assert world.simulator.charges()[0]["status"] == "voided"
    assert assert_books_agree(world) == 0
    assert "already been refunded in full" in refund(world, charge_id).message


def test_a_settled_charge_is_refunded_in_parts_never_beyond_what_is_left(charged):
    world, charge_id = charged
    world.simulator.settle()
    first = refund(world, charge_id, "20.00")
    assert first.body["status"] == "succeeded" and "Paid (Partial)" in first.message, first.body
    assert assert_books_agree(world) == Decimal("100.00")
    too_much = refund(world, charge_id, "100.01")
    assert too_much.body["status"] == "failed" and "left to refund" in too_much.message
    rest = refund(world, charge_id)                          # omitted: all that is left
    assert rest.body["status"] == "succeeded" and "$100.00" in rest.message
    assert assert_books_agree(world) == 0
    assert [t["type"] for t in world.simulator.transactions()].count("refundTransaction") == 2
    # the reopened invoice can be charged again, through the same path
    assert charge(world, "50.00").body["status"] == "succeeded"
    assert assert_books_agree(world) == Decimal("50.00")


def test_only_an_approved_charge_can_be_refunded(charged):
    world, charge_id = charged
    world.simulator.settle()
    refund_id = refund(world, charge_id, "10.00").body["transactionId"]
    assert "Only a charge" in refund(world, refund_id).message
    declined = world.standin.seed("w365_paymenttransaction", {
        "w365_name": "declined", "w365_refid": "X-1", "w365_amount": Decimal("5.00"),
        "w365_type": world.choice("w365_paymenttransaction", "w365_type", "Charge"),
        "w365_outcome": outcome("Declined"), "statecode": 1, "statuscode": 2})
    assert "Only an approved charge" in refund(world, declined).message
    assert assert_books_agree(world) == Decimal("110.00")


def test_a_refund_whose_answer_is_lost_is_settled_by_the_reconciler(charged):
    world, charge_id = charged
    world.simulator.settle()
    world.simulator.fail_next("lost_after_commit")
    reply = refund(world, charge_id, "30.00")
    assert reply.body["status"] == "failed" and "being confirmed" in reply.message
    assert "in progress" in refund(world, charge_id, "1.00").message
    world.clock.advance(dt.timedelta(minutes=6))
    world.queue.drain()
    assert assert_books_agree(world) == Decimal("90.00")


def test_a_refund_goes_to_the_card_charged_even_after_the_profile_got_a_new_card(charged):
    world, charge_id = charged
    world.simulator.settle()
    row = world.row("w365_paymenttransaction", charge_id)
    profile = world.row("w365_paymentprofile", row["w365_paymentprofileid"]["id"])
    nonce = world.simulator.issue_nonce("5424000000000015", 12, 2031, "123")
    world.services.gateway.update_payment_profile(
        profile["w365_customerprofileid"], profile["w365_paymentprofileidgateway"],
        BillTo(first_name="Nancy", last_name="Davolio", zip="98052"), opaque=nonce)
    world.standin.update("w365_paymentprofile", profile["w365_paymentprofileid"],
                         {"w365_cardlast4": "XXXX0015", "w365_name": "MasterCard XXXX0015"})
    reply = refund(world, charge_id, "20.00")
    assert reply.body["status"] == "succeeded", reply.body
    assert assert_books_agree(world) == Decimal("100.00")


@pytest.mark.parametrize("code, says", [("E00040", "no record"), ("E00011", "E00011")])
def test_a_gateway_that_cannot_show_the_charge_is_a_failed_outcome_not_a_500(charged, monkeypatch, code, says):
    from standins import authorizenet as simulator

    world, charge_id = charged

    def refuse(self, request):
        raise simulator._ApiError(code, "Access denied. You do not have permissions to call the Transaction "
                                        "Details API." if code == "E00011" else "The record cannot be found.")

    monkeypatch.setattr(simulator.AuthorizeNetSimulator, "_op_getTransactionDetails", refuse)
    reply = refund(world, charge_id, "20.00")
    assert reply.status == 200 and reply.body["status"] == "failed", reply.body
    assert says in reply.message and "Nothing was refunded" in reply.message
    assert world.simulator.transactions()[-1]["type"] == "authCaptureTransaction"
    assert assert_books_agree(world) == Decimal("120.00")
