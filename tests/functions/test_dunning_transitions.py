"""Dunning end to end through the charging core (the same path a billing run takes) and the Charge button:
each decline class, errors, the whole schedule to Exhausted and credit hold, recovery (CONTRACT §6)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from core import footprint
from tests.functions.charging_world import assert_books_agree, card_on_file, charge, outcome, transactions
from tests.functions.dunning_world import (automatic_charge, card_update_links, configure, dunning, emails,
                                          set_card_zip)

DAY = dt.timedelta(days=1)


def _start(world):
    return dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)


def test_soft_decline_of_an_automatic_charge_schedules_a_retry(world):
    card_on_file(world, zip_code="46282-0002")
    attempt = automatic_charge(world)
    assert attempt.outcome == "Declined"
    state = dunning(world)
    assert (state.status, state.failed_attempts) == ("Retrying", 1)
    assert state.first_failed_on == world.clock.now() and state.next_retry_on == _start(world) + 3 * DAY
    (row,) = transactions(world)
    assert "Autopay: retried on 2026-11-24" in row["w365_transactionresult"]
    assert not emails(world)
    world.queue.drain()
    assert not emails(world)


def test_hard_decline_asks_the_primary_contact_for_a_new_card_once(world):
    profile_id = card_on_file(world, zip_code="46282-0008")
    automatic_charge(world)
    assert dunning(world).status == "Awaiting Card"
    world.queue.drain()
    world.queue.drain()
    (mail,) = emails(world)
    assert "/api/profile-requests/" in mail["description"]
    (link,) = card_update_links(world)
    assert link["w365_failedprofileid"]["id"] == profile_id
    assert link["w365_contactid"]["id"] == world.ids["contact"]
    (row,) = transactions(world)
    assert "the customer was asked for a new card" in row["w365_transactionresult"]
    assert "has expired" in row["w365_transactionresult"]


def test_merchant_decline_needs_review_and_emails_nobody(world):
    card_on_file(world, zip_code="46282-0251")
    automatic_charge(world)
    world.queue.drain()
    assert dunning(world).status == "Needs Review" and dunning(world).failed_attempts == 0
    (row,) = transactions(world)
    assert row["w365_needsattention"] is True
    assert not emails(world) and not card_update_links(world)


def test_gateway_errors_never_count(world):
    card_on_file(world, zip_code="46282-0019")
    for _ in range(3):
        assert automatic_charge(world).outcome == "Error"
    world.simulator.fail_next("refused")
    assert automatic_charge(world).outcome == "Error"
    assert dunning(world).status == "None" and dunning(world).failed_attempts == 0


def test_a_declined_charge_button_does_not_move_dunning(world):
    profile_id = card_on_file(world, zip_code="46282-0002")
    automatic_charge(world)
    before = dunning(world)
    set_card_zip(world, profile_id, "46282-0008")
    assert charge(world).body["status"] == "failed"
    assert dunning(world) == before


def test_the_whole_schedule_runs_out_to_exhausted_and_credit_hold(world):
    configure(world, w365_dunningfinalaction=footprint.choice("w365_configuration", "w365_dunningfinalaction",
                                                              "Credit Hold"))
    card_on_file(world, zip_code="46282-0002")
    automatic_charge(world)
    for retry in range(4):
        state = dunning(world)
        assert state.status == "Retrying"
        world.clock.advance(state.next_retry_on - world.clock.now() + dt.timedelta(hours=6))
        automatic_charge(world)
    state = dunning(world)
    assert (state.status, state.failed_attempts, state.next_retry_on) == ("Exhausted", 5, None)
    assert world.row("account", world.ids["account"])["creditonhold"] is True
    notes = [n for n in world.rows("annotation") if "INV-1001" in (n.get("notetext") or "")]
    assert any("credit hold" in n["notetext"] for n in notes)
    sources = sorted(footprint.label("w365_paymenttransaction", "w365_source", t["w365_source"])
                     for t in transactions(world))
    assert sources == ["Autopay", "Retry", "Retry", "Retry", "Retry"]
    assert assert_books_agree(world) == 0


def test_without_the_final_action_exhausted_leaves_the_account_alone(world):
    configure(world, w365_retryschedule="1")
    card_on_file(world, zip_code="46282-0002")
    automatic_charge(world)
    world.clock.advance(DAY)
    automatic_charge(world)
    assert dunning(world).status == "Exhausted"
    assert not world.row("account", world.ids["account"]).get("creditonhold")


def test_an_invalid_schedule_falls_back_to_the_default_with_a_note(world):
    configure(world, w365_retryschedule="7,3")
    card_on_file(world, zip_code="46282-0002")
    automatic_charge(world)
    assert dunning(world).next_retry_on == _start(world) + 3 * DAY
    assert any("Retry schedule" in (n.get("subject") or "") for n in world.rows("annotation"))


def test_recovery_by_the_charge_button_and_a_partial_payment_keeps_the_state(world):
    profile_id = card_on_file(world, zip_code="46282-0002")
    automatic_charge(world)
    set_card_zip(world, profile_id, "98052")
    before = dunning(world)
    assert charge(world, "20.00").body["status"] == "succeeded"
    assert dunning(world) == before                       # a partial payment keeps state and schedule
    assert charge(world).body["status"] == "succeeded"
    state = dunning(world)
    assert (state.status, state.next_retry_on, state.failed_attempts) == ("Recovered", None, 1)
    assert assert_books_agree(world) == Decimal("120.00")


def test_receipts_of_automatic_charges_only_when_configured(world):
    card_on_file(world)
    configure(world, w365_sendreceipts=True)
    assert automatic_charge(world).approved
    world.queue.drain()
    (receipt,) = emails(world, "Receipt for invoice INV-1001")
    assert "$120.00" in receipt["description"] and "Visa XXXX1111" in receipt["description"]
    assert "4111111111111111" not in receipt["description"]
    assert charge(world, invoice="invoice2").body["status"] == "succeeded"     # a person's charge: no receipt
    world.queue.drain()
    assert len(emails(world, "Receipt")) == 1


def test_a_late_settlement_by_the_reconciler_applies_the_transition_once(world):
    from handlers.charging import reconciler
    card_on_file(world, zip_code="46282-0002")
    world.simulator.fail_next("lost_after_commit")
    assert automatic_charge(world).outcome == "Unknown"
    assert dunning(world).status == "None"
    (row,) = transactions(world)
    assert reconciler.reconcile_attempt(world.services, row["w365_paymenttransactionid"])
    assert reconciler.reconcile_attempt(world.services, row["w365_paymenttransactionid"])
    world.queue.drain(include_delayed=True)
    state = dunning(world)
    assert (state.status, state.failed_attempts) == ("Retrying", 1)
    assert transactions(world)[0]["w365_outcome"] == outcome("Declined")


def test_a_late_approval_by_gateway_webhook_recovers_once_with_one_receipt(world):
    """A retry held by the fraud filters and approved later: the webhook settles it, and the transition and the
    receipt happen once however often the event is delivered or the reconciler sweeps."""
    import json

    from handlers.charging import reconciler
    from tests.functions.test_gateway_webhooks import deliver
    configure(world, w365_sendreceipts=True)
    profile_id = card_on_file(world, zip_code="46282-0002")
    automatic_charge(world)
    set_card_zip(world, profile_id, "46299")                  # the simulator's Held For Review zip
    deliveries: list = []
    world.simulator.emit_webhooks_to(deliveries)
    assert automatic_charge(world).outcome == "Held For Review"
    held = next(t for t in transactions(world) if t["w365_outcome"] == outcome("Held For Review"))
    world.simulator.approve_held(held["w365_gatewaytransactionid"])
    approved = next(d for d in deliveries if d["event_type"] == "net.authorize.payment.fraud.approved")
    assert deliver(world, approved)[1]["status"] == "succeeded"
    body, headers = world.simulator.webhook_for("net.authorize.payment.fraud.approved",
                                                json.loads(approved["body"])["payload"])
    deliver(world, {"body": body, "headers": headers})          # redelivered under a new notificationId
    reconciler.reconcile_due(world.services, everything=True)
    world.queue.drain(include_delayed=True)
    state = dunning(world)
    assert (state.status, state.failed_attempts) == ("Recovered", 1)
    assert len(emails(world, "Receipt for invoice INV-1001")) == 1
    assert assert_books_agree(world) == Decimal("120.00")
