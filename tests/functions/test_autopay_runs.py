"""Billing runs end to end: Run Billing through POST /api/dataverse, the queued selection, charges and checks in the
in-process queue, the stand-ins underneath. Every run ends with the gateway and Dataverse agreeing to the cent."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from core import footprint
from handlers.autopay import charge as autopay_charge, runs
from tests.functions.charging_world import assert_books_agree, card_on_file, charge, outcome, transactions

UTC = dt.timezone.utc


def _label(table, column, value):
    return footprint.label(table, column, value) if value is not None else None


def autopay_on(world, *, since="2026-11-01T00:00:00Z"):
    reply = world.event("Update", "w365_configuration", world.ids["configuration"], {"w365_autopayenabled": True})
    world.standin.update("w365_configuration", world.ids["configuration"], {"w365_autopayenabled": True})
    world.event("Update", "w365_configuration", world.ids["configuration"], {"w365_autopayenabled": True})
    if since:
        world.standin.update("w365_configuration", world.ids["configuration"], {"w365_autopaysince": since})
    return reply


def contract_autopay(world, contract="billingcontract", on=True):
    world.standin.update("w365_billingcontract", world.ids[contract], {"w365_autopay": on})


def due_on(world, invoice, day="2026-11-20T00:00:00Z"):
    world.standin.update("invoice", world.ids[invoice], {"duedate": day})


@pytest.fixture
def billing(world):
    """Autopay on since Nov 1, the contract on autopay with a card, both demo invoices due on Nov 20."""
    card_on_file(world)
    autopay_on(world)
    contract_autopay(world)
    due_on(world, "invoice1")
    due_on(world, "invoice2")
    return world


def wire_date(moment):
    """A DateTime parameter as DataContractJsonSerializer writes it."""
    return f"/Date({int(moment.timestamp() * 1000)})/"


def run_billing(world, **params):
    return world.send("w365_RunBilling", "w365_configuration", world.ids["configuration"], **params)


def finish(world, minutes=40):
    """Deliver queued work, moving the clock a minute at a time, until the queue is empty."""
    for _ in range(minutes):
        world.queue.drain()
        if not world.queue.pending():
            return
        world.clock.advance(dt.timedelta(minutes=1))
    world.queue.drain()


def the_run(world, run_id):
    return world.row("w365_billingrun", run_id)


def skips(world, run_id):
    return [o for o in world.rows("w365_operation", w365_correlationid=run_id) if o["w365_regardingtable"] == "invoice"]


def test_autopay_switch_sets_since_once(world):
    assert world.row("w365_configuration", world.ids["configuration"])["w365_autopaysince"] is None
    reply = autopay_on(world, since=None)
    assert reply.status == 200
    first = world.row("w365_configuration", world.ids["configuration"])["w365_autopaysince"]
    assert first == "2026-11-21T09:00:00Z"
    world.clock.advance(dt.timedelta(days=3))
    world.event("Update", "w365_configuration", world.ids["configuration"], {"w365_autopayenabled": True})
    assert world.row("w365_configuration", world.ids["configuration"])["w365_autopaysince"] == first


def test_a_run_charges_every_due_invoice_once_and_counts_them(billing):
    world = billing
    reply = run_billing(world)
    assert reply.status == 200 and reply.body["status"] == "succeeded", reply.body
    assert "started" in reply.message
    run_id = reply.body["runId"]
    run = the_run(world, run_id)
    assert _label("w365_billingrun", "w365_status", run["w365_status"]) == "Running"
    assert run["w365_startedby"]["id"] == world.ids["admin"]
    assert _label("w365_billingrun", "w365_trigger", run["w365_trigger"]) == "Manual"
    finish(world)
    run = the_run(world, run_id)
    assert _label("w365_billingrun", "w365_status", run["w365_status"]) == "Completed"
    assert (run["w365_invoicesdue"], run["w365_charged"], run["w365_declined"], run["w365_skipped"],
            run["w365_pending"]) == (2, 2, 0, 0, 0)
    assert run["w365_amountcollected"] == Decimal("370.00") and run["w365_completedon"]
    [summary] = [o for o in world.rows("w365_operation") if o["w365_regardingid"] == run_id]
    assert "2 invoices due, 2 charged (370.00 USD), 0 declined, 0 skipped" in summary["w365_message"]
    for key, number in (("invoice1", "INV-1001"), ("invoice2", "INV-1002")):
        rows = transactions(world, key)
        assert len(rows) == 1 and rows[0]["w365_billingrunid"]["id"] == run_id
        assert _label("w365_paymenttransaction", "w365_source", rows[0]["w365_source"]) == "Autopay"
        assert assert_books_agree(world, key, number) == world.row("invoice", world.ids[key])["totalamount"]
    assert len(world.simulator.charges()) == 2
    # A later run for the same day finds nothing left to collect.
    second = run_billing(world)
    assert second.body["status"] == "succeeded", second.body
    finish(world)
    assert the_run(world, second.body["runId"])["w365_invoicesdue"] == 0
    assert len(world.simulator.charges()) == 2


def test_declines_and_approvals_mixed(billing):
    world = billing
    declining = card_on_file(world, zip_code="46282", on_contract=False, number="5424000000000015")
    contract2 = world.standin.seed("w365_billingcontract", {
        "w365_name": "Second", "w365_accountid@odata.bind": f"/accounts({world.ids['account']})",
        "w365_paymentprofileid@odata.bind": f"/w365_paymentprofiles({declining})", "w365_autopay": True})
    world.standin.update("invoice", world.ids["invoice2"],
                         {"w365_billingcontractid@odata.bind": f"/w365_billingcontracts({contract2})"})
    run_id = run_billing(world).body["runId"]
    finish(world)
    run = the_run(world, run_id)
    assert (run["w365_charged"], run["w365_declined"], run["w365_amountcollected"], run["w365_amountfailed"]) == (
        1, 1, Decimal("120.00"), Decimal("250.00"))
    assert _label("w365_billingrun", "w365_status", run["w365_status"]) == "Completed"
    declined = transactions(world, "invoice2")
    assert [t["w365_outcome"] for t in declined] == [outcome("Declined")]
    assert_books_agree(world, "invoice1", "INV-1001")
    assert_books_agree(world, "invoice2", "INV-1002")


def test_the_same_charge_message_delivered_twice_charges_once(billing):
    world = billing
    run_id = run_billing(world).body["runId"]
    world.queue.drain()                                # the selection and both charges
    payload = {"run_id": run_id, "invoice_id": world.ids["invoice1"], "as_of": "2026-11-21T09:00:00Z"}
    again = autopay_charge.charge_message(world.services, payload)
    assert again.kind == "already"
    assert len(world.simulator.charges()) == 2 and len(transactions(world)) == 1
    assert_books_agree(world)


def test_a_redelivery_after_a_decline_does_not_charge_again_in_the_same_run(world):
    autopay_on(world)
    contract_autopay(world)
    due_on(world, "invoice1")
    card_on_file(world, zip_code="46282")                     # the contract's card declines
    run_id = run_billing(world).body["runId"]
    world.queue.drain()
    assert [t["w365_outcome"] for t in transactions(world)] == [outcome("Declined")]
    payload = {"run_id": run_id, "invoice_id": world.ids["invoice1"], "as_of": "2026-11-21T09:00:00Z"}
    assert autopay_charge.charge_message(world.services, payload).kind == "already"
    assert len(world.simulator.charges()) == 1


def test_two_runs_for_the_same_as_of_the_second_is_refused_naming_the_first(billing):
    world = billing
    first = run_billing(world)
    second = run_billing(world)
    assert second.status == 200 and second.body["status"] == "failed"
    assert "Billing run 2026-11-21 #1" in second.message and "still running" in second.message
    assert len(world.rows("w365_billingrun")) == 1
    finish(world)
    assert len(world.simulator.charges()) == 2
    assert first.body["runId"]


def test_a_click_on_charge_while_the_runs_charge_is_open_is_refused(billing):
    world = billing
    world.simulator.fail_next("lost_after_commit")          # the run's charge of one invoice: outcome unknown
    run_id = run_billing(world).body["runId"]
    world.queue.drain()
    unknown = [t for t in world.rows("w365_paymenttransaction") if t["w365_outcome"] == outcome("Unknown")]
    assert len(unknown) == 1
    key = "invoice1" if unknown[0]["w365_invoiceid"]["id"] == world.ids["invoice1"] else "invoice2"
    click = charge(world, invoice=key)
    assert click.status == 409 and "in progress" in click.message
    finish(world)                                           # the reconciler settles the unknown one
    run = the_run(world, run_id)
    assert run["w365_charged"] + run["w365_pending"] == 2
    assert len(world.simulator.charges()) == 2
    assert_books_agree(world, "invoice1", "INV-1001")
    assert_books_agree(world, "invoice2", "INV-1002")


def test_the_run_skips_an_invoice_whose_charge_a_person_started(billing):
    world = billing
    world.simulator.fail_next("lost_after_commit")
    assert charge(world, "10.00").body["outcome"] == "Unknown"             # the click's attempt is open
    run_id = run_billing(world).body["runId"]
    world.queue.drain()
    run_invoices = {t["w365_invoiceid"]["id"] for t in world.rows("w365_paymenttransaction")
                    if (t.get("w365_billingrunid") or {}).get("id") == run_id}
    assert run_invoices == {world.ids["invoice2"]}           # invoice1 was not due: an attempt is open


def test_no_usable_card_means_no_gateway_call_awaiting_card_and_the_card_update_email(world):
    autopay_on(world)
    contract_autopay(world)
    due_on(world, "invoice1")
    run_id = run_billing(world).body["runId"]
    finish(world)
    assert world.simulator.charges() == []
    invoice = world.row("invoice", world.ids["invoice1"])
    assert _label("invoice", "w365_dunningstatus", invoice["w365_dunningstatus"]) == "Awaiting Card"
    emails = world.standin.sent_emails()
    assert len(emails) == 1 and "/api/profile-requests/" in str(emails[0])
    skipped = skips(world, run_id)
    assert len(skipped) == 1 and "No usable card" in skipped[0]["w365_message"]
    run = the_run(world, run_id)
    assert (run["w365_invoicesdue"], run["w365_skipped"], run["w365_charged"]) == (1, 1, 0)
    # The next run does not email again: an Awaiting Card invoice is not due.
    world.clock.advance(dt.timedelta(days=1))
    run_billing(world)
    finish(world)
    assert len(world.standin.sent_emails()) == 1


def test_a_partly_paid_invoice_without_a_card_becomes_awaiting_card_though_paid_invoices_are_read_only(world):
    autopay_on(world)
    contract_autopay(world)
    due_on(world, "invoice1")
    world.standin.update("invoice", world.ids["invoice1"], {"w365_amountpaid": Decimal("20.00"),
                                                            "w365_balance": Decimal("100.00"),
                                                            "statecode": 2, "statuscode": 100002})
    run_billing(world)
    finish(world)
    invoice = world.row("invoice", world.ids["invoice1"])
    assert (invoice["statecode"], invoice["statuscode"]) == (2, 100002)
    assert _label("invoice", "w365_dunningstatus", invoice["w365_dunningstatus"]) == "Awaiting Card"


def test_a_future_as_of_and_a_non_administrator_are_refused(billing):
    world = billing
    future = run_billing(world, AsOf=wire_date(dt.datetime(2026, 11, 22, 0, 0, tzinfo=UTC)))
    assert future.body["status"] == "failed" and "in the future" in future.message
    sales = world.send("w365_RunBilling", "w365_configuration", world.ids["configuration"],
                       user=world.ids["salesperson"])
    assert sales.body["status"] == "failed" and "administrators" in sales.message
    assert world.rows("w365_billingrun") == []


def test_an_earlier_as_of_collects_only_what_was_due_then(billing):
    world = billing
    due_on(world, "invoice2", "2026-11-21T00:00:00Z")
    reply = run_billing(world, AsOf=wire_date(dt.datetime(2026, 11, 20, 12, 0, tzinfo=UTC)))
    finish(world)
    run = the_run(world, reply.body["runId"])
    assert (run["w365_invoicesdue"], run["w365_charged"]) == (1, 1)
    assert [t["w365_invoiceid"]["id"] for t in world.rows("w365_paymenttransaction")] == [world.ids["invoice1"]]


def test_autopay_switched_off_during_a_run_freezes_its_remaining_charges(billing):
    world = billing
    run_id = run_billing(world).body["runId"]
    world.queue.drain(limit=1)                                 # the selection only: two charges queued
    world.standin.update("w365_configuration", world.ids["configuration"], {"w365_autopayenabled": False})
    world.clock.advance(dt.timedelta(minutes=2))               # past the per-instance configuration cache
    finish(world)
    assert world.simulator.charges() == []
    assert the_run(world, run_id)["w365_skipped"] == 2
    assert all("switched off" in s["w365_message"] for s in skips(world, run_id))


def test_a_run_interrupted_half_way_is_taken_over_and_the_next_one_charges_only_what_is_left(billing):
    world = billing
    first = run_billing(world).body["runId"]
    world.queue.drain(limit=2)                                 # selection + one charge, then the worker dies
    world.queue._heap.clear()                                  # ... and its messages are gone
    assert len(world.simulator.charges()) == 1
    refused = run_billing(world)
    assert refused.body["status"] == "failed" and "still running" in refused.message
    world.clock.advance(dt.timedelta(minutes=31))
    second = run_billing(world)
    assert second.body["status"] == "succeeded", second.body
    assert "#2" in second.message
    finish(world)
    old = the_run(world, first)
    assert _label("w365_billingrun", "w365_status", old["w365_status"]) == "Completed With Errors"
    assert old["w365_charged"] == 1
    new = the_run(world, second.body["runId"])
    assert (new["w365_invoicesdue"], new["w365_charged"]) == (1, 1)
    assert len(world.simulator.charges()) == 2
    assert_books_agree(world, "invoice1", "INV-1001")
    assert_books_agree(world, "invoice2", "INV-1002")
    closed = [o for o in world.rows("w365_operation") if o["w365_regardingid"] == first]
    assert closed and "without progress" in closed[0]["w365_message"]


def test_a_run_whose_check_stops_seeing_progress_closes_itself_with_errors(billing):
    world = billing
    run_id = run_billing(world).body["runId"]
    world.queue.drain(limit=1)                                 # the selection; the charges get lost
    world.queue._heap[:] = [m for m in world.queue._heap if m.kind != autopay_charge.CHARGE_WORK]
    finish(world, minutes=40)
    run = the_run(world, run_id)
    assert _label("w365_billingrun", "w365_status", run["w365_status"]) == "Completed With Errors"
    assert world.simulator.charges() == []


def test_a_throttled_run_still_completes_and_nothing_is_lost(billing):
    world = billing
    # Every third Dataverse request of the run is refused with 429 and Retry-After for a while.
    state = {"n": 0}

    def every_third(method, path):
        state["n"] += 1
        return state["n"] % 3 == 0
    run_id = run_billing(world).body["runId"]
    world.standin.fail_next(count=12, status=429, retry_after=40, match=every_third)
    finish(world, minutes=60)
    run = the_run(world, run_id)
    assert _label("w365_billingrun", "w365_status", run["w365_status"]) == "Completed"
    assert (run["w365_charged"], run["w365_skipped"]) == (2, 0)
    assert len(world.simulator.charges()) == 2
    assert world.queue.dead_letters == []
    assert_books_agree(world, "invoice1", "INV-1001")
    assert_books_agree(world, "invoice2", "INV-1002")


def test_a_charge_that_keeps_failing_is_dead_lettered_onto_the_run(billing, monkeypatch):
    world = billing

    def broken(*args, **kwargs):
        raise RuntimeError("bug")
    monkeypatch.setattr(autopay_charge.invoices, "usable_profile", broken)
    run_id = run_billing(world).body["runId"]
    finish(world, minutes=20)
    run = the_run(world, run_id)
    assert _label("w365_billingrun", "w365_status", run["w365_status"]) == "Completed With Errors"
    assert run["w365_skipped"] == 2
    assert all(s["w365_message"].startswith("Dead-lettered:") for s in skips(world, run_id))
    assert world.simulator.charges() == []


def test_the_timer_starts_a_run_as_the_service(billing):
    world = billing
    from handlers.autopay.entry import billing_run_timer
    billing_run_timer.build().get_user_function()(None)
    [run] = world.rows("w365_billingrun")
    assert run["w365_startedby"] is None
    assert _label("w365_billingrun", "w365_trigger", run["w365_trigger"]) == "Timer"
    finish(world)
    assert the_run(world, run["w365_billingrunid"])["w365_charged"] == 2


def test_a_retrying_invoice_is_charged_as_a_retry_and_counts_as_recovered(billing):
    world = billing
    world.standin.update("invoice", world.ids["invoice2"], {
        "w365_dunningstatus": footprint.choice("invoice", "w365_dunningstatus", "Retrying"),
        "w365_nextretryon": "2026-11-21T08:00:00Z", "w365_failedattempts": 1,
        "w365_firstfailedon": "2026-11-18T06:00:00Z"})
    run_id = run_billing(world).body["runId"]
    finish(world)
    [retry] = transactions(world, "invoice2")
    assert _label("w365_paymenttransaction", "w365_source", retry["w365_source"]) == "Retry"
    run = the_run(world, run_id)
    assert (run["w365_charged"], run["w365_amountrecovered"]) == (2, Decimal("250.00"))


def test_a_wrong_run_share_setting_fails_the_runs_charges_visibly_and_no_button(billing):
    from core.throttle import RequestBudget
    from app.composition import run_request_share
    from core.settings import Settings

    world = billing
    world.services.budget = RequestBudget(share=lambda: run_request_share(Settings({"W365_BILLING_RUN_SHARE": "2"})))
    run_id = run_billing(world).body["runId"]
    finish(world, minutes=40)
    assert world.simulator.charges() == []
    assert _label("w365_billingrun", "w365_status", the_run(world, run_id)["w365_status"]) == "Completed With Errors"
    # The selection fails every delivery, so the broker dead-letters it and the run's check says so at once.
    [summary] = world.rows("w365_operation", w365_requestid=f"run:{run_id}")
    assert "the broker gave up on the selection of page 1 after 10 deliveries" in summary["w365_message"]
    assert "without progress" not in summary["w365_message"]
    assert charge(world, "10.00").body["status"] == "succeeded"      # a button is not affected
