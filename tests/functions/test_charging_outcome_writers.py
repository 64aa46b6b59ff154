"""Every writer that settles an attempt asks the one transition table (handlers/charging/outcomes.py): the charging
core, the reconciler, the gateway webhooks and refunds. Each test narrows the table and shows the writer obeys it."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal

import pytest

from core.errors import GatewayNotFound
from core.ports import ChargeOutcome, ChargeResult
from handlers.charging import attempts, outcomes, reconciler
from handlers.charging.outcomes import DECLINED, ERROR, HELD, UNKNOWN
from tests.functions.charging_world import card_on_file, charge, outcome, transactions
from tests.functions.test_gateway_webhooks import HELD_ZIP, deliver, of, post, sink  # noqa: F401 - sink is a fixture


def _unknown_charge(world):
    card_on_file(world)
    world.simulator.fail_next("lost_after_commit")
    reply = charge(world)
    row = world.row("w365_paymenttransaction", reply.body["transactionId"])
    assert row["w365_outcome"] == outcome(UNKNOWN)
    return row["w365_paymenttransactionid"]


def test_the_reconciler_and_the_queued_write_settle_only_what_the_table_allows(world, monkeypatch):
    transaction_id = _unknown_charge(world)
    monkeypatch.setitem(outcomes.TRANSITIONS, UNKNOWN, frozenset({DECLINED, ERROR, HELD}))   # no Unknown -> Approved
    assert reconciler.reconcile_attempt(world.services, transaction_id) is False           # still open
    approval = ChargeResult(ChargeOutcome.APPROVED, "1", "This transaction has been approved.", trans_id="1")
    attempts.record_queued_result({"transaction_id": transaction_id, "result": dataclasses.asdict(approval)},
                                  world.services)                                           # the queued write too
    assert world.row("w365_paymenttransaction", transaction_id)["w365_outcome"] == outcome(UNKNOWN)
    assert world.row("invoice", world.ids["invoice1"])["w365_amountpaid"] == 0
    monkeypatch.undo()
    assert reconciler.reconcile_attempt(world.services, transaction_id) is True
    assert world.row("w365_paymenttransaction", transaction_id)["w365_outcome"] == outcome("Approved")
    assert world.row("invoice", world.ids["invoice1"])["w365_amountpaid"] == Decimal("120.00")


def test_the_gateway_webhook_settles_only_what_the_table_allows(world, sink, monkeypatch):  # noqa: F811
    transaction_id = _unknown_charge(world)
    monkeypatch.setitem(outcomes.TRANSITIONS, UNKNOWN, frozenset({DECLINED, ERROR, HELD}))
    delivery = of(sink, "net.authorize.payment.authcapture.created")
    status, answer = deliver(world, delivery)
    assert status == 200 and "Unknown" in answer["message"], answer
    assert world.row("w365_paymenttransaction", transaction_id)["w365_outcome"] == outcome(UNKNOWN)
    monkeypatch.setitem(outcomes.TRANSITIONS, UNKNOWN, frozenset())            # no transition left: final
    body, headers = world.simulator.webhook_for("net.authorize.payment.authcapture.created",
                                                json.loads(delivery["body"])["payload"])   # a new notificationId
    status, answer = post(world, body, headers)
    assert status == 200 and answer["message"].startswith("Already recorded"), answer


def test_a_refund_is_booked_only_against_a_refundable_outcome(world, monkeypatch):
    card_on_file(world)
    charge_id = charge(world).body["transactionId"]
    monkeypatch.setattr(outcomes, "REFUNDABLE", frozenset())
    reply = world.send("w365_RefundTransaction", "w365_paymenttransaction", charge_id)
    assert reply.body["status"] == "failed" and "Only an approved charge" in reply.message
    assert len(transactions(world)) == 1 and world.simulator.charges()[0]["status"] != "voided"


def test_a_held_charge_the_gateway_stops_showing_is_never_closed_as_error_by_a_timer(world, monkeypatch):
    """Error would free the invoice for a second charge while the held one may still be approved: a person decides."""
    card_on_file(world, zip_code=HELD_ZIP)
    transaction_id = charge(world).body["transactionId"]
    assert world.row("w365_paymenttransaction", transaction_id)["w365_outcome"] == outcome(HELD)

    def forgotten(trans_id):
        raise GatewayNotFound("not found", code="E00040")

    monkeypatch.setattr(world.services.gateway, "get_transaction_details", forgotten)
    world.clock.advance(dt.timedelta(hours=2))
    assert reconciler.reconcile_attempt(world.services, transaction_id) is False
    row = world.row("w365_paymenttransaction", transaction_id)
    assert row["w365_outcome"] == outcome(HELD) and row["statecode"] == 0
