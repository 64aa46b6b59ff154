"""The reconciler at scale and against time (issue 12 items 6 and 7): the gateway's lists are read once per sweep
and each attempt is found by its own gateway invoice number and refId; "never reached" only when every list that
could hold it was read completely; every open attempt whose `w365_nextcheckon` has come is settled by one sweep,
however many timer runs or queued messages were lost."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from core import dates
from handlers.charging import attempts, reconciler
from tests.functions.charging_world import (assert_books_agree, card_on_file, charge, charge_dying, lost_answer,
                                            outcome, same_amount_invoices, transactions)


@pytest.fixture
def books(world):
    card_on_file(world)
    return world


def _row(world, transaction_id):
    return world.row("w365_paymenttransaction", transaction_id)


def test_a_hundred_same_amount_lost_answers_settle_in_one_sweep_with_about_one_gateway_call_each(books):
    world = books
    keys = same_amount_invoices(world, 100)
    ids = [lost_answer(world, key) for key in keys]
    assert len(world.simulator.charges()) == 100
    world.clock.advance(dt.timedelta(minutes=6))       # the queued checks are not run: the sweep alone
    world.simulator.calls.clear()
    assert reconciler.reconcile_due(world.services) == 100
    assert all(_row(world, i)["w365_outcome"] == outcome("Approved") for i in ids)
    assert sum(world.simulator.calls.values()) <= 5 + 100, world.simulator.calls
    for key, n in zip(keys, range(100)):
        assert_books_agree(world, key, f"INV-{2000 + n}")


def test_an_attempt_that_settled_before_the_sweep_is_found_in_the_settled_batch(books):
    world = books
    transaction_id = lost_answer(world, "invoice1")
    world.clock.advance(dt.timedelta(hours=20))
    world.simulator.settle()                           # no longer in the unsettled list
    world.simulator.fail_next("http_500", 3, "getTransactionListForCustomer")     # nor readable from the customer's
    world.clock.advance(dt.timedelta(hours=5))
    assert reconciler.reconcile_due(world.services) == 1
    row = _row(world, transaction_id)
    assert row["w365_outcome"] == outcome("Approved") and not row["w365_needsattention"]
    assert world.simulator.calls["getSettledBatchList"] == 1 and world.simulator.calls["getTransactionList"] == 1
    assert assert_books_agree(world) == Decimal("40.00")


@pytest.mark.parametrize("unreadable", ["getSettledBatchList", "getTransactionList", "getUnsettledTransactionList",
                                        "getTransactionListForCustomer"])
def test_never_reached_is_concluded_only_when_every_list_was_read(books, monkeypatch, unreadable):
    world = books
    charge_dying(world, monkeypatch, "40.00", at="gateway")
    [row] = transactions(world)
    transaction_id = row["w365_paymenttransactionid"]
    other = lost_answer(world, same_amount_invoices(world, 1)[0])          # something settled, so a batch exists
    world.clock.advance(dt.timedelta(hours=2))
    world.simulator.settle()
    world.simulator.fail_next("http_500", 3, unreadable)
    reconciler.reconcile_due(world.services)
    row = _row(world, transaction_id)
    assert row["w365_outcome"] == outcome("Pending") and row["statecode"] == 0
    assert row["w365_needsattention"] is True and "could not be read" in row["w365_transactionresult"]
    assert _row(world, other)["w365_outcome"] == outcome("Approved")
    assert charge(world, "40.00").status == 409                  # still blocks a second charge
    world.clock.advance(dt.timedelta(days=1))                    # the lists readable again: the checks go on
    reconciler.reconcile_due(world.services)
    row = _row(world, transaction_id)
    assert (row["w365_outcome"], row["statecode"]) == (outcome("Error"), 1)
    assert "never reached Authorize.Net" in row["w365_transactionresult"]


def test_a_host_down_for_a_day_settles_everything_due_in_one_sweep(books, monkeypatch):
    """A lost answer, an approval whose write died with the process, a charge that never left, and a refund whose
    answer was lost; the follow-up messages could not be queued, and the timer did not run for a day."""
    world = books
    real_send = world.queue.send

    def no_follow_ups(kind, payload, **kw):
        if kind == attempts.RECONCILE_WORK:
            raise ConnectionError("Service Bus unreachable")
        return real_send(kind, payload, **kw)
    monkeypatch.setattr(world.queue, "send", no_follow_ups)
    lost = lost_answer(world, "invoice1", "120.00")
    died_after, never_sent = same_amount_invoices(world, 2)
    charge_dying(world, monkeypatch, "40.00", at="write", invoice=died_after)
    charge_dying(world, monkeypatch, "40.00", at="gateway", invoice=never_sent)
    world.clock.advance(dt.timedelta(hours=30))
    world.simulator.settle()                                     # the approved charges settled meanwhile
    assert world.queue.pending() == []
    assert reconciler.reconcile_due(world.services) == 3
    assert _row(world, lost)["w365_outcome"] == outcome("Approved")
    [after] = transactions(world, died_after)
    [never] = transactions(world, never_sent)
    assert after["w365_outcome"] == outcome("Approved")
    assert (never["w365_outcome"], never["statecode"]) == (outcome("Error"), 1)
    assert assert_books_agree(world) == Decimal("120.00")
    assert_books_agree(world, died_after, "INV-2000")
    assert reconciler.reconcile_due(world.services) == 0         # nothing open is left


def test_an_open_attempt_gets_its_next_check_and_the_sweep_moves_it_along_the_back_off(books):
    world = books
    world.simulator.fail_next("lost_after_commit")
    charge(world, "40.00")
    [row] = transactions(world)
    created = world.clock.now()
    assert dates.parse(row["w365_nextcheckon"]) == created + dt.timedelta(minutes=5)
    world.simulator.fail_next("refused", 1000, None)             # the gateway unreachable for a while
    world.clock.advance(dt.timedelta(minutes=6))
    assert reconciler.reconcile_due(world.services) == 0
    row = _row(world, row["w365_paymenttransactionid"])
    assert dates.parse(row["w365_nextcheckon"]) == created + dt.timedelta(minutes=65)
    world.clock.advance(dt.timedelta(minutes=10))
    world.simulator.calls.clear()
    assert reconciler.reconcile_due(world.services) == 0          # not due: nothing asked of the gateway
    assert sum(world.simulator.calls.values()) == 0


def test_a_refund_whose_answer_is_lost_is_settled_by_the_sweep(books):
    world = books
    assert charge(world, "40.00").body["status"] == "succeeded"
    [charged] = transactions(world)
    world.clock.advance(dt.timedelta(days=1))
    world.simulator.settle()
    world.simulator.fail_next("lost_after_commit")
    reply = world.send("w365_RefundTransaction", "w365_paymenttransaction", charged["w365_paymenttransactionid"],
                       Amount=Decimal("15.00"))
    assert "being confirmed" in reply.message
    world.clock.advance(dt.timedelta(minutes=6))
    assert reconciler.reconcile_due(world.services) == 1
    assert assert_books_agree(world) == Decimal("25.00")
