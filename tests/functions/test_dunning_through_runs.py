"""Dunning end to end through billing runs (w365_RunBilling, the queued selection and charges): each reason-code
class, errors that never count and stop the timer after three runs, the whole schedule run out with the stand-in's
clock to Exhausted and credit hold, recovery by the customer page and by the Charge button in mid-schedule."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from core import footprint
from tests.functions.charging_world import assert_books_agree, card_on_file, charge, transactions
from tests.functions.dunning_world import card_update_links, configure, dunning, emails, set_card_zip
from tests.functions.test_autopay_runs import autopay_on, contract_autopay, due_on, finish, run_billing
from tests.functions.test_profiles_request_page import _call, _posted

DAY = dt.timedelta(days=1)


def _billing(world, zip_code):
    """Autopay on, INV-1001 due on Nov 20 (INV-1002 not on autopay: due later), a card with the trigger zip."""
    profile_id = card_on_file(world, zip_code=zip_code)
    world.standin.update("account", world.ids["account"], {
        "w365_gatewaycustomerprofileid": world.row("w365_paymentprofile", profile_id)["w365_customerprofileid"]})
    autopay_on(world)
    contract_autopay(world)
    due_on(world, "invoice1")
    due_on(world, "invoice2", "2027-01-20T00:00:00Z")
    return profile_id


def _run(world):
    reply = run_billing(world)
    assert reply.body["status"] == "succeeded", reply.body
    finish(world)
    return world.row("w365_billingrun", reply.body["runId"])


def _to_retry_day(world):
    """Move the clock to 06:00 UTC of the invoice's next retry day."""
    world.clock.advance(dunning(world).next_retry_on + dt.timedelta(hours=6) - world.clock.now())


def _source(row):
    return footprint.label("w365_paymenttransaction", "w365_source", row["w365_source"])


def test_soft_decline_through_a_run_retries_on_schedule(world):
    _billing(world, "46282-0002")
    run = _run(world)
    state = dunning(world)
    assert (state.status, state.failed_attempts) == ("Retrying", 1)
    assert (run["w365_declined"], run["w365_amountfailed"]) == (1, Decimal("120.00"))
    (row,) = transactions(world)
    assert (_source(row), row["w365_reasoncode"]) == ("Autopay", "2")
    assert _run(world)["w365_invoicesdue"] == 0           # a second run the same day: not due before its retry day
    assert not emails(world)


def test_hard_decline_through_a_run_emails_a_card_update_link(world):
    _billing(world, "46282-0065")
    _run(world)
    assert dunning(world).status == "Awaiting Card"
    (mail,) = emails(world)
    assert "/api/profile-requests/" in mail["description"] and "4111" not in mail["description"]


def test_merchant_decline_through_a_run_needs_review_and_emails_nobody(world):
    _billing(world, "46282-0250")
    _run(world)
    assert dunning(world).status == "Needs Review"
    (row,) = transactions(world)
    assert row["w365_needsattention"] is True and not emails(world) and not card_update_links(world)
    world.clock.advance(30 * DAY)
    _run(world)
    assert len(transactions(world)) == 1                 # no retry until a person decides


def test_gateway_errors_never_count_and_three_runs_in_a_row_stop_the_timer(world):
    from handlers.autopay.entry import billing_run_timer
    _billing(world, "46282-0019")
    for day in range(3):
        run = _run(world)
        assert footprint.label("w365_billingrun", "w365_status", run["w365_status"]) == "Completed With Errors"
        assert dunning(world).status == "None" and dunning(world).failed_attempts == 0   # still due, uncounted
        world.clock.advance(DAY)
    billing_run_timer.build().get_user_function()(None)
    assert len(world.rows("w365_billingrun")) == 3           # the timer started nothing
    (asked,) = [o for o in world.rows("w365_operation") if o["w365_requestid"].startswith("runs-halted:")]
    assert "completed with errors" in asked["w365_message"]
    set_card_zip(world, world.rows("w365_paymentprofile")[0]["w365_paymentprofileid"], "98052")
    run = _run(world)                                        # a person's Run Billing still runs, and collects
    assert run["w365_charged"] == 1
    world.clock.advance(DAY)
    billing_run_timer.build().get_user_function()(None)
    assert len(world.rows("w365_billingrun")) == 5           # a clean run resumed the timer


def test_the_whole_schedule_runs_out_to_exhausted_and_credit_hold(world):
    _billing(world, "46282-0002")
    configure(world, w365_dunningfinalaction=footprint.choice("w365_configuration", "w365_dunningfinalaction",
                                                              "Credit Hold"))
    _run(world)
    retry_days = []
    while dunning(world).status == "Retrying":
        _to_retry_day(world)
        retry_days.append(world.clock.now().date().isoformat())
        _run(world)
    assert retry_days == ["2026-11-24", "2026-11-28", "2026-12-05", "2026-12-12"]
    state = dunning(world)
    assert (state.status, state.failed_attempts, state.next_retry_on) == ("Exhausted", 5, None)
    assert [_source(t) for t in sorted(transactions(world), key=lambda t: t["createdon"])] == [
        "Autopay", "Retry", "Retry", "Retry", "Retry"]
    account = world.row("account", world.ids["account"])
    assert account["creditonhold"] is True
    assert any("INV-1001" in (n.get("notetext") or "") and "credit hold" in n["notetext"]
               for n in world.rows("annotation"))
    world.clock.advance(7 * DAY)
    _run(world)
    assert len(transactions(world)) == 5                     # Exhausted: never collected again automatically
    assert assert_books_agree(world) == 0


def test_recovery_by_the_customer_page_in_mid_schedule(world):
    profile_id = _billing(world, "46282-0002")
    _run(world)                                               # soft: Retrying
    _to_retry_day(world)
    set_card_zip(world, profile_id, "46282-0004")             # the bank now wants the card kept: hard
    _run(world)
    assert dunning(world).status == "Awaiting Card"
    (mail,) = emails(world)
    token = re.search(r"/api/profile-requests/([A-Za-z0-9_-]{43})", mail["description"]).group(1)
    status, body, _ = _call("POST", token, _posted(world, "5424000000000015"))
    assert status == 200, body
    assert dunning(world).status == "Retrying" and dunning(world).next_retry_on == world.clock.now()
    run = _run(world)                                         # the next run collects it with the new card
    state = dunning(world)
    assert (state.status, state.next_retry_on) == ("Recovered", None)
    assert (run["w365_charged"], run["w365_amountrecovered"]) == (1, Decimal("120.00"))
    assert assert_books_agree(world) == Decimal("120.00")


def test_recovery_by_the_charge_button_in_mid_schedule(world):
    profile_id = _billing(world, "46282-0002")
    _run(world)
    _to_retry_day(world)
    _run(world)
    assert dunning(world).failed_attempts == 2
    set_card_zip(world, profile_id, "98052")
    assert charge(world).body["status"] == "succeeded"
    assert dunning(world).status == "Recovered"
    world.clock.advance(30 * DAY)
    _run(world)
    assert len(transactions(world)) == 3 and assert_books_agree(world) == Decimal("120.00")
