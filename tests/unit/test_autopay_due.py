"""CONTRACT §6 "Due", clause by clause, on invoice rows shaped as the selection reads them (empty columns as real
invoices have them)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from core import footprint
from handlers.autopay import due
from handlers.charging import attempts

UTC = dt.timezone.utc
AS_OF = dt.datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
ON = due.AutopaySwitch(True, dt.datetime(2026, 10, 1, 12, 0, tzinfo=UTC))


def dunning(label):
    return footprint.choice("invoice", "w365_dunningstatus", label)


def tx(kind="Charge", outcome="Declined", state=1):
    return {"w365_type": attempts.type_value(kind), "w365_outcome": attempts.outcome_value(outcome), "statecode": state}


def invoice(**changes):
    row = {"invoiceid": "i1", "statecode": 0, "statuscode": 1, "totalamount": Decimal("100.00"),
           "w365_amountpaid": None, "w365_balance": None, "duedate": "2026-11-21", "w365_dunningstatus": None,
           "w365_nextretryon": None, "w365_billingcontractid": {"w365_autopay": True},
           due.TRANSACTIONS_NAV: []}
    row.update(changes)
    return row


def reason(row, switch=ON, as_of=AS_OF):
    return due.not_due_reason(row, switch, as_of)


def test_a_real_invoice_with_empty_columns_is_due_on_its_due_date():
    assert reason(invoice()) is None
    assert due.balance(invoice()) == Decimal("100.00")                        # empty balance = total - paid
    assert due.balance(invoice(w365_amountpaid=Decimal("30"))) == Decimal("70.00")


@pytest.mark.parametrize("changes, why", [
    ({"w365_billingcontractid": None}, "not set to autopay"),
    ({"w365_billingcontractid": {"w365_autopay": False}}, "not set to autopay"),
    ({"w365_billingcontractid": {"w365_autopay": None}}, "not set to autopay"),
    ({"statecode": 3, "statuscode": 100003}, "canceled"),
    ({"statecode": 2, "statuscode": 100001, "w365_balance": Decimal("10.00")}, "paid in full"),
    ({"w365_balance": Decimal("0.00")}, "no balance"),
    ({"w365_amountpaid": Decimal("100.00")}, "no balance"),                   # empty balance, all paid
    ({"duedate": None}, "no due date"),
    ({"duedate": "2026-09-30"}, "before autopay was switched on"),
    ({"duedate": "2026-11-22"}, "after 2026-11-21"),
    ({due.TRANSACTIONS_NAV: [tx(outcome="Pending", state=0)]}, "still open"),
    ({due.TRANSACTIONS_NAV: [tx(outcome="Unknown", state=0)]}, "still open"),
    ({due.TRANSACTIONS_NAV: [tx(outcome="Held For Review", state=0)]}, "still open"),
    ({due.TRANSACTIONS_NAV: [tx(kind="Refund", outcome="Approved", state=0)]}, "refund or void"),
    ({due.TRANSACTIONS_NAV: [tx(kind="Void", outcome="Approved", state=0)]}, "refund or void"),
    ({"w365_dunningstatus": dunning("Awaiting Card")}, "Awaiting Card"),
    ({"w365_dunningstatus": dunning("Exhausted")}, "Exhausted"),
    ({"w365_dunningstatus": dunning("Needs Review")}, "Needs Review"),
    ({"w365_dunningstatus": dunning("Recovered")}, "Recovered"),
    ({"w365_dunningstatus": dunning("Retrying"), "w365_nextretryon": "2026-11-22T00:00:00Z"}, "next retry"),
    ({"w365_dunningstatus": dunning("Retrying")}, "no next retry date"),
])
def test_each_clause_makes_an_invoice_not_due(changes, why):
    assert why in reason(invoice(**changes))


@pytest.mark.parametrize("changes", [
    {"statecode": 2, "statuscode": 100002, "w365_amountpaid": Decimal("40"), "w365_balance": Decimal("60")},
    {"duedate": "2026-10-01"},                                                # on the day autopay was switched on
    {"duedate": "2026-11-21T23:30:00Z"},                                      # same UTC calendar date as AsOf
    {"w365_dunningstatus": dunning("None")},
    {"w365_dunningstatus": dunning("Retrying"), "w365_nextretryon": "2026-11-21T23:59:00Z",
     "duedate": "2026-10-15"},
    {due.TRANSACTIONS_NAV: [tx(outcome="Declined"), tx(outcome="Error"), tx(kind="Refund", outcome="Declined")]},
])
def test_due_cases(changes):
    assert reason(invoice(**changes)) is None


def test_a_retrying_invoice_is_due_on_its_retry_day_whatever_its_due_date():
    row = invoice(duedate="2026-11-01", w365_dunningstatus=dunning("Retrying"), w365_nextretryon="2026-11-21T06:00:00Z")
    assert reason(row) is None
    assert "next retry" in reason(row, as_of=dt.datetime(2026, 11, 20, 23, 59, tzinfo=UTC))


def test_autopay_off_freezes_everything_and_since_empty_means_no_lower_bound():
    assert "switched off" in reason(invoice(), switch=due.AutopaySwitch(False, ON.since))
    assert reason(invoice(duedate="2020-01-01"), switch=due.AutopaySwitch(True, None)) is None


def test_the_selection_filter_asks_only_for_candidates_in_keyset_pages():
    options = due.selection_query(ON, AS_OF, "0f0f0f0f-0000-0000-0000-000000000000")
    text = options["filter"]
    assert "duedate ge 2026-10-01" in text and "duedate lt 2026-11-22" in text and "w365_nextretryon lt 2026-11-22" in text
    assert "invoiceid gt 0f0f0f0f-0000-0000-0000-000000000000" in text and options["orderby"] == "invoiceid"
    assert set(options["select"]) == set(due.INVOICE_COLUMNS)
