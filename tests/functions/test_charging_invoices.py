"""w365_ChargeInvoice end to end (through POST /api/dataverse): refusals, outcomes, and the fault matrix. Every case
ends with the simulator's charges and Dataverse agreeing to the cent (charging_world.assert_books_agree)."""
from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal

import pytest

from core.settings import Settings
from handlers.charging import reconciler
from tests.conftest import TEST_SETTINGS
from tests.functions.charging_world import (assert_books_agree, card_on_file, charge, outcome, transactions)


class ProcessDied(BaseException):
    """Stands for the worker being killed: not an Exception, so no handler of ours catches it."""


@pytest.fixture
def books(world, monkeypatch):
    """The card on file, and the stand-in stamping rows with the test's clock (createdon drives the back-off)."""
    card_on_file(world)
    return world


def _invoice(world, key="invoice1"):
    return world.row("invoice", world.ids[key])


# --- the normal path -------------------------------------------------------------------------------------------------

def test_part_then_the_rest_reactivates_the_partly_paid_invoice_in_one_changeset(books):
    world = books
    first = charge(world, "40.00")
    assert first.status == 200 and first.body["status"] == "succeeded", first.body
    assert "Paid (Partial)" in first.message and "balance $80.00" in first.message
    invoice = _invoice(world)
    assert (invoice["statecode"], invoice["statuscode"]) == (2, 100002)
    assert invoice["w365_lastchargestatus"].startswith("Charge of $40.00 USD approved")
    second = charge(world)                                   # Amount omitted: the balance
    assert second.body["status"] == "succeeded", second.body
    invoice = _invoice(world)
    assert (invoice["statecode"], invoice["statuscode"], invoice["w365_balance"]) == (2, 100001, Decimal("0.00"))
    rows = transactions(world)
    assert sorted(r["w365_amount"] for r in rows) == [Decimal("40.00"), Decimal("80.00")]
    assert all(r["w365_outcome"] == outcome("Approved") and r["statecode"] == 0 and r["w365_authcode"] for r in rows)
    assert len({r["w365_refid"] for r in rows}) == 2
    assert len(world.simulator.charges()) == 2
    assert assert_books_agree(world) == Decimal("120.00")


def test_two_partial_payments_of_the_same_amount_in_a_row_are_both_charged(books):
    """Authorize.Net's duplicate window compares the invoice number: each attempt sends its own (INV-1001-1,
    INV-1001-2), so a deliberate second payment of the same amount is not refused as a duplicate."""
    world = books
    assert charge(world, "40.00").body["status"] == "succeeded"
    second = charge(world, "40.00")
    assert second.body["status"] == "succeeded", second.body
    charges = world.simulator.charges()
    assert len(charges) == 2
    assert assert_books_agree(world) == Decimal("80.00")


def test_partial_payments_seconds_apart_are_separate_payments_each_within_the_balance_left(books):
    """README "Charging invoices": separate partial payments are not duplicates, and each is checked against the
    balance the one before left, so together they never exceed the invoice."""
    world = books
    assert charge(world, "80.00").body["status"] == "succeeded"
    world.clock.advance(dt.timedelta(seconds=3))
    too_much = charge(world, "50.00")
    assert too_much.body["status"] == "failed" and "more than the balance" in too_much.message
    assert charge(world, "40.00").body["status"] == "succeeded"
    assert charge(world, "0.01").body["status"] == "failed"
    assert len(world.simulator.charges()) == 2 and assert_books_agree(world) == Decimal("120.00")


@pytest.mark.parametrize("amount, says", [
    ("0", "more than zero"), ("-5", "more than zero"), ("10.005", "two decimal places"),
    ("120.01", "more than the balance")])
def test_a_bad_amount_is_refused_without_calling_the_gateway(books, amount, says):
    reply = charge(books, amount)
    assert reply.body["status"] == "failed" and says in reply.message
    assert books.simulator.charges() == [] and transactions(books) == []


def test_paid_in_full_and_canceled_invoices_are_refused(books):
    world = books
    world.standin.update("invoice", world.ids["invoice1"], {"w365_amountpaid": Decimal("120.00"),
                                                            "w365_balance": Decimal("0.00"), "statecode": 2,
                                                            "statuscode": 100001})
    assert "already paid in full" in charge(world, "1.00").message
    world.standin.update("invoice", world.ids["invoice2"], {"statecode": 3, "statuscode": 100003})
    assert "canceled" in charge(world, "1.00", invoice="invoice2").message
    assert world.simulator.charges() == [] and world.rows("w365_paymenttransaction") == []


def test_no_usable_profile_is_refused(world):
    card_on_file(world, on_contract=False)                  # the account's default is used without a contract card
    profile = world.rows("w365_paymentprofile")[0]
    world.standin.update("w365_paymentprofile", profile["w365_paymentprofileid"], {
        "w365_syncstatus": world.choice("w365_paymentprofile", "w365_syncstatus", "Sync Failed")})
    assert "not synced" in charge(world, "10.00").message
    world.standin.update("w365_paymentprofile", profile["w365_paymentprofileid"], {"statecode": 1, "statuscode": 2})
    assert "No payment profile" in charge(world, "10.00").message        # an inactive default is no default
    assert world.simulator.charges() == []


def test_the_account_default_is_charged_when_the_contract_has_no_card(world):
    card_on_file(world, on_contract=False)
    assert charge(world, "10.00").body["status"] == "succeeded"
    assert_books_agree(world)


def _contract_card(world, *, name: str, account: str, state: int, like: str) -> str:
    """A profile on the billing contract with the gateway ids of `like`, owned by `account`, in `state`."""
    source = world.row("w365_paymentprofile", like)
    profile_id = world.standin.seed("w365_paymentprofile", {
        "w365_name": name, "w365_accountid@odata.bind": f"/accounts({account})", "w365_isdefault": False,
        "w365_customerprofileid": source["w365_customerprofileid"], "statecode": state, "statuscode": state + 1,
        "w365_paymentprofileidgateway": source["w365_paymentprofileidgateway"],
        "w365_syncstatus": world.choice("w365_paymentprofile", "w365_syncstatus", "Synced")})
    world.standin.update("w365_billingcontract", world.ids["billingcontract"],
                         {"w365_paymentprofileid@odata.bind": f"/w365_paymentprofiles({profile_id})"})
    return profile_id


def test_an_unusable_contract_card_falls_back_to_the_account_default_and_says_so(world):
    default = card_on_file(world, on_contract=False)
    _contract_card(world, name="Visa XXXX2222", account=world.ids["account"], state=1, like=default)
    reply = charge(world, "10.00")
    assert reply.body["status"] == "succeeded", reply.message
    assert "Visa XXXX1111" in reply.message
    assert "contract's card Visa XXXX2222 is inactive, so the account's default was charged" in reply.message
    [row] = transactions(world)
    assert row["w365_paymentprofileid"]["id"] == default
    assert_books_agree(world)


def test_a_contract_card_of_another_account_is_never_charged(world):
    mine = card_on_file(world, on_contract=False)
    world.standin.update("w365_paymentprofile", mine, {"statecode": 1, "statuscode": 2})       # no usable default
    other = world.standin.seed("account", {"name": "Northwind"})
    _contract_card(world, name="Visa XXXX3333", account=other, state=0, like=mine)
    reply = charge(world, "10.00")
    assert reply.body["status"] == "failed"
    assert "Visa XXXX3333 belongs to another account" in reply.message
    assert world.simulator.charges() == [] and transactions(world) == []


def test_a_decline_leaves_the_invoice_untouched_and_an_inactive_row_saying_why(world):
    card_on_file(world, zip_code="46282")
    reply = charge(world, "40.00")
    assert reply.body["status"] == "failed" and "declined" in reply.message
    [row] = transactions(world)
    assert (row["w365_outcome"], row["statecode"]) == (outcome("Declined"), 1)
    assert "Nothing was charged" in row["w365_transactionresult"]
    assert _invoice(world)["w365_amountpaid"] == Decimal("0.00")
    assert charge(world, "40.00").body["status"] == "failed"          # not "in progress": it can be tried again
    assert len(transactions(world)) == 2
    assert_books_agree(world)


def test_held_for_review_blocks_a_second_charge_until_the_reconciler_sees_the_review_end(world):
    card_on_file(world, zip_code="46299")
    reply = charge(world, "40.00")
    assert reply.body["status"] == "failed" and "held for review" in reply.message
    [row] = transactions(world)
    assert (row["w365_outcome"], row["statecode"]) == (outcome("Held For Review"), 0)
    assert charge(world, "10.00").status == 409
    world.queue.drain(include_delayed=True)                 # still held: the checks go on, then a person is asked
    assert world.row("w365_paymenttransaction", row["w365_paymenttransactionid"])[
        "w365_transactionresult"].startswith(reconciler.FLAG)
    assert world.rows("w365_operation", w365_regardingid=row["w365_paymenttransactionid"])
    world.simulator.approve_held(row["w365_gatewaytransactionid"])
    assert reconciler.reconcile_due(world.services, everything=True) == 1
    assert world.row("w365_paymenttransaction", row["w365_paymenttransactionid"])["w365_outcome"] == outcome("Approved")
    assert assert_books_agree(world) == Decimal("40.00")


# --- the fault matrix ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["lost_after_commit", "http_500", "malformed"])
def test_no_readable_answer_makes_the_attempt_unknown_and_the_reconciler_settles_it(books, fault):
    world = books
    world.simulator.fail_next(fault)
    reply = charge(world, "40.00")
    assert reply.status == 200 and reply.body["status"] == "failed"
    assert "being confirmed" in reply.message
    [row] = transactions(world)
    assert row["w365_outcome"] == outcome("Unknown") and row["statecode"] == 0
    assert _invoice(world)["w365_amountpaid"] == Decimal("0.00")
    second = charge(world, "80.00")
    assert second.status == 409 and "in progress" in second.message
    world.clock.advance(dt.timedelta(minutes=6))
    world.queue.drain()                                      # the 5-minute check
    assert world.row("w365_paymenttransaction", row["w365_paymenttransactionid"])["w365_outcome"] == outcome("Approved")
    assert len(world.simulator.charges()) == 1
    assert assert_books_agree(world) == Decimal("40.00")


def test_connection_refused_before_sending_is_an_error_and_the_invoice_can_be_charged_again(books):
    world = books
    world.simulator.fail_next("refused")
    reply = charge(world, "40.00")
    assert reply.body["status"] == "failed" and "could not be reached" in reply.message
    [row] = transactions(world)
    assert (row["w365_outcome"], row["statecode"]) == (outcome("Error"), 1)
    assert world.simulator.charges() == []
    assert charge(world, "40.00").body["status"] == "succeeded"
    assert len(world.simulator.charges()) == 1
    assert_books_agree(world)


def _is(method, suffix):
    return lambda m, path: m == method and path.endswith(suffix)


@pytest.mark.parametrize("status", [429, 503])
def test_dataverse_refusing_the_attempt_create_charges_nothing_and_a_retry_charges_once(books, status):
    world = books
    world.standin.fail_next(10, status=status, retry_after=0, match=_is("POST", "w365_paymenttransactions"))
    request_id = str(uuid.uuid4())
    reply = charge(world, "40.00", request_id=request_id)
    assert reply.status == 503 and "Retry-After" in reply.headers
    assert world.simulator.charges() == [] and transactions(world) == []
    world.standin._faults.clear()
    assert charge(world, "40.00", request_id=request_id).body["status"] == "succeeded"   # Dataverse's retry
    assert len(world.simulator.charges()) == 1
    assert_books_agree(world)


@pytest.mark.parametrize("status", [429, 503])
def test_an_approval_whose_batch_is_refused_stays_pending_with_its_trans_id_and_is_written_by_the_queue(books, status):
    world = books
    world.standin.fail_next(10, status=status, retry_after=0, match=_is("POST", "$batch"))
    reply = charge(world, "40.00")
    assert reply.status == 200 and reply.body["status"] == "succeeded"       # the money moved: never hidden
    assert "shows it in a few minutes" in reply.message
    [row] = transactions(world)
    assert row["w365_outcome"] == outcome("Pending") and row["w365_gatewaytransactionid"]
    assert _invoice(world)["w365_amountpaid"] == Decimal("0.00")
    assert charge(world, "10.00").status == 409                              # not charged twice meanwhile
    world.standin._faults.clear()
    world.queue.drain()
    assert world.row("w365_paymenttransaction", row["w365_paymenttransactionid"])["w365_outcome"] == outcome("Approved")
    assert len(world.simulator.charges()) == 1
    assert assert_books_agree(world) == Decimal("40.00")


def test_the_queued_write_of_an_approval_that_keeps_failing_flags_the_attempt_for_a_person(books):
    """Every changeset refused for hours (the single-row updates pass): the write is tried on a back-off, then the
    attempt is flagged w365_needsattention with a w365_operation row; the message is completed, never dropped
    silently or dead-lettered."""
    world = books
    world.standin.fail_next(100_000, status=503, retry_after=0, match=_is("POST", "$batch"))
    assert charge(world, "40.00").body["status"] == "succeeded"
    [row] = transactions(world)
    for _ in range(40):                                    # a few hours of queue deliveries
        world.clock.advance(dt.timedelta(minutes=10))
        world.queue.drain()
    row = world.row("w365_paymenttransaction", row["w365_paymenttransactionid"])
    assert row["w365_needsattention"] is True and row["w365_outcome"] == outcome("Pending")
    assert "Needs a person" in row["w365_transactionresult"] and row["w365_gatewaytransactionid"] in row[
        "w365_transactionresult"]
    assert world.rows("w365_operation", w365_regardingid=row["w365_paymenttransactionid"])
    records = [m for m, _ in world.queue.dead_letters if m.kind == "charging.record"]
    assert records == []
    world.standin._faults.clear()                          # Dynamics is back: the reconciler still settles it
    world.clock.advance(dt.timedelta(days=1))
    reconciler.reconcile_due(world.services)
    assert world.row("w365_paymenttransaction", row["w365_paymenttransactionid"])["w365_outcome"] == outcome("Approved")
    assert assert_books_agree(world) == Decimal("40.00")


@pytest.mark.parametrize("status", [429, 503])
def test_dataverse_down_for_every_write_after_the_charge_loses_nothing(books, status):
    """Batch, the transId update and the operation row all refused: the charge went through, so the answer is 200
    (a 5xx never hides a charge), everything is queued, and a redelivery of the same RequestId charges nothing."""
    world = books
    request_id = str(uuid.uuid4())
    world.standin.fail_next(1000, status=status, retry_after=0,
                            match=lambda m, p: m == "PATCH" or (m == "POST" and p in ("$batch", "w365_operations")))
    reply = charge(world, "40.00", request_id=request_id)
    assert reply.status == 200 and reply.body["status"] == "succeeded" and "busy" in reply.message
    [row] = transactions(world)
    assert row["w365_outcome"] == outcome("Pending") and not row["w365_gatewaytransactionid"]
    world.standin._faults.clear()
    world.queue.drain()
    assert world.operation(request_id)["w365_status"] == world.choice("w365_operation", "w365_status", "Succeeded")
    again = charge(world, "40.00", request_id=request_id)
    assert again.status == 200 and again.body["status"] == "succeeded"
    assert len(world.simulator.charges()) == 1
    assert assert_books_agree(world) == Decimal("40.00")


@pytest.mark.parametrize("status", [429, 503])
def test_an_unknown_outcome_whose_write_is_refused_is_still_settled(books, status):
    world = books
    world.simulator.fail_next("lost_after_commit")
    world.standin.fail_next(10, status=status, retry_after=0, match=_is("PATCH", ")"))
    assert "being confirmed" in charge(world, "40.00").message
    world.standin._faults.clear()
    world.clock.advance(dt.timedelta(minutes=6))
    world.queue.drain()
    assert len(world.simulator.charges()) == 1
    assert assert_books_agree(world) == Decimal("40.00")


def test_the_process_dying_between_the_answer_and_the_write_is_repaired_by_the_timer_sweep(books, monkeypatch):
    world = books
    client = world.services.dataverse

    def die(changeset):
        raise ProcessDied()
    monkeypatch.setattr(client, "batch", die)
    with pytest.raises(ProcessDied):
        charge(world, "40.00")
    monkeypatch.undo()
    [row] = transactions(world)
    assert row["w365_outcome"] == outcome("Pending") and not row["w365_gatewaytransactionid"]
    assert len(world.simulator.charges()) == 1
    assert charge(world, "80.00").status == 409
    assert reconciler.reconcile_due(world.services) == 0        # too early: not a back-off step yet
    world.clock.advance(dt.timedelta(minutes=6))
    assert reconciler.reconcile_due(world.services) == 1
    assert len(world.simulator.charges()) == 1
    assert assert_books_agree(world) == Decimal("40.00")


def test_an_attempt_that_never_reached_the_gateway_becomes_an_error_after_an_hour(books, monkeypatch):
    world = books

    def die(*args, **kwargs):
        raise ProcessDied()
    monkeypatch.setattr(world.services.gateway, "charge_profile", die)
    with pytest.raises(ProcessDied):
        charge(world, "40.00")
    monkeypatch.undo()
    world.clock.advance(dt.timedelta(minutes=6))
    assert reconciler.reconcile_due(world.services) == 0         # not found yet, but only 6 minutes old
    world.clock.advance(dt.timedelta(hours=1))
    assert reconciler.reconcile_due(world.services) == 1
    [row] = transactions(world)
    assert (row["w365_outcome"], row["statecode"]) == (outcome("Error"), 1)
    assert "never reached Authorize.Net" in row["w365_transactionresult"]
    assert charge(world).body["status"] == "succeeded"
    assert len(world.simulator.charges()) == 1
    assert assert_books_agree(world) == Decimal("120.00")


@pytest.mark.parametrize("both_read_first", [False, True])
def test_two_threads_charging_the_full_balance_at_once_charge_once(books, monkeypatch, both_read_first):
    """Real threads against the stand-in (thread-safe: one lock per request; `responses` only looks up its registry
    and appends to its call list). `both_read_first` holds each attempt create until both threads have read the
    invoice, the worst interleaving: the refIds collide and the alternate key refuses the second create."""
    world = books
    if both_read_first:
        reads, seen, handle = threading.Condition(), [], world.standin.handle

        def gated(method, url, headers, body):
            text = body.decode() if isinstance(body, bytes) else (body or "")
            read = url if method == "GET" else text if url.endswith("$batch") and "\r\nGET " in text else ""
            if "/invoices(" in read:              # the invoice read (alone, or in the read $batch)
                answer = handle(method, url, headers, body)
                with reads:
                    seen.append(read.split("/invoices(")[1][:36])
                    reads.notify_all()
                return answer
            if method == "POST" and url.endswith("/w365_paymenttransactions"):
                invoice_id = body.decode().split("/invoices(")[1][:36]
                with reads:
                    assert reads.wait_for(lambda: seen.count(invoice_id) >= 2, timeout=10)
            return handle(method, url, headers, body)
        monkeypatch.setattr(world.standin, "handle", gated)
    for invoice in ("invoice1", "invoice2"):
        start = threading.Barrier(2)
        replies = []

        def run():
            start.wait()
            replies.append(charge(world, invoice=invoice))
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(r.body["status"] for r in replies) == ["failed", "succeeded"], [r.body for r in replies]
        loser = next(r for r in replies if r.body["status"] == "failed")
        assert loser.status == 409 or "paid in full" in loser.message
        if both_read_first:
            assert loser.status == 409 and "in progress" in loser.message
    assert len(world.simulator.charges()) == 2
    assert_books_agree(world, "invoice1", "INV-1001")
    assert_books_agree(world, "invoice2", "INV-1002")


def test_the_same_request_id_twice_charges_once(books):
    world = books
    request_id = str(uuid.uuid4())
    first = charge(world, "40.00", request_id=request_id)
    again = charge(world, "40.00", request_id=request_id)
    assert first.body["status"] == again.body["status"] == "succeeded" and again.body.get("replayed")
    assert len(world.simulator.charges()) == 1
    assert assert_books_agree(world) == Decimal("40.00")


def test_a_message_redelivered_by_the_service_bus_queue_charges_once(books):
    from standins import payloads as messages
    from app.platform import work_queue

    class Delivery:
        def __init__(self, body):
            self.body, self.message_id, self.application_properties = body, str(uuid.uuid4()), {}

        def get_body(self):
            return self.body

    world = books
    body = messages.dumps(messages.custom_api("w365_ChargeInvoice", "invoice", world.ids["invoice1"],
                                              {"Amount": Decimal("40.00")}, user_id=world.ids["admin"]))
    trigger = work_queue.build().get_user_function()
    trigger(Delivery(body))
    trigger(Delivery(body))                                  # at-least-once: the same context again
    assert len(world.simulator.charges()) == 1
    assert assert_books_agree(world) == Decimal("40.00")


def test_a_queued_write_redelivered_applies_once(books):
    from app.capabilities import run_work

    world = books
    world.standin.fail_next(10, status=503, retry_after=0, match=_is("POST", "$batch"))
    charge(world, "40.00")
    world.standin._faults.clear()
    [(kind, payload)] = [p for p in world.queue.pending() if p[0] == "charging.record"]
    run_work(kind, payload, world.services)
    run_work(kind, payload, world.services)                 # the broker delivers it again
    world.queue.drain(include_delayed=True)
    assert assert_books_agree(world) == Decimal("40.00")


def test_a_fraud_webhook_settles_a_held_charge_by_its_ref_id(world):
    card_on_file(world, zip_code="46299")
    charge(world, "40.00")
    [row] = transactions(world)
    world.simulator.decline_held(row["w365_gatewaytransactionid"])
    assert reconciler.reconcile_ref_id(world.services, row["w365_refid"])
    assert not reconciler.reconcile_ref_id(world.services, "no-such-'ref")
    row = world.row("w365_paymenttransaction", row["w365_paymenttransactionid"])
    assert (row["w365_outcome"], row["statecode"]) == (outcome("Declined"), 1)
    assert assert_books_agree(world) == 0


def test_the_same_request_id_twice_charges_once_even_when_the_invoice_number_is_long(books):
    """The RequestId must survive the 100-character w365_name, or a redelivery charges a second time."""
    world = books
    world.standin.update("invoice", world.ids["invoice1"], {"invoicenumber": "INV-" + "7" * 70})
    request_id = str(uuid.uuid4())
    first = charge(world, "40.00", request_id=request_id)
    again = charge(world, "40.00", request_id=request_id)
    assert first.body["status"] == again.body["status"] == "succeeded" and again.body.get("replayed"), again.body
    assert len(world.simulator.charges()) == 1
    [row] = transactions(world)
    assert request_id in row["w365_name"] and len(row["w365_name"]) <= 100


def test_every_message_names_the_invoices_own_currency(books, monkeypatch):
    """Money is written in the invoice's transactioncurrency (symbol and ISO code), never a hard-coded `$`: in the
    answer, the invoice's last charge status, the transaction's result and a refund."""
    world = books
    # The merchant account charges in euros too (AUTHORIZENET_CURRENCY): an invoice in another currency is refused.
    world.services.settings = Settings({**TEST_SETTINGS, "AUTHORIZENET_CURRENCY": "EUR"})
    euro = world.standin.seed("transactioncurrency", {"currencyname": "Euro", "isocurrencycode": "EUR",
                                                      "currencysymbol": "€", "exchangerate": Decimal("0.9")})
    world.standin.update("invoice", world.ids["invoice1"],
                         {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({euro})"})
    too_much = charge(world, "500.00")
    assert "€500.00 EUR is more than the balance" in too_much.message and "$" not in too_much.message
    reply = charge(world, "40.00")
    assert reply.body["status"] == "succeeded" and "Charged €40.00 EUR" in reply.message, reply.body
    assert "balance €80.00 EUR" in reply.message and "$" not in reply.message
    assert _invoice(world)["w365_lastchargestatus"].startswith("Charge of €40.00 EUR approved")
    row = world.row("w365_paymenttransaction", reply.body["transactionId"])
    assert "€40.00 EUR" in row["w365_transactionresult"] and "$" not in row["w365_transactionresult"]
    refund = world.send("w365_RefundTransaction", "w365_paymenttransaction", reply.body["transactionId"])
    assert refund.message.startswith("Voided €40.00 EUR") and "$" not in refund.message, refund.body
