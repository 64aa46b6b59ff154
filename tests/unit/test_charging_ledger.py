"""The invoice arithmetic of charging, with an in-memory invoice that enforces Dataverse's rules (ETag, read-only Paid
invoices, valid state/status pairs), and a hypothesis property over any sequence of charges, declines and refunds."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from core import footprint
from core.errors import BusinessRuleViolation
from core.ports import BatchOperation
from handlers.charging import ledger


class Invoice:
    """One invoice row and an atomic apply of a changeset, as the stand-in and Dataverse treat it."""

    def __init__(self, total: Decimal):
        self.row = {"invoiceid": "inv-1", "totalamount": total, "w365_amountpaid": Decimal("0.00"),
                    "w365_balance": total, "statecode": 0, "statuscode": 1}
        self.version = 1

    def read(self) -> dict:
        return {**self.row, "@odata.etag": f'W/"{self.version}"'}

    def apply(self, ops: list[BatchOperation]) -> None:
        row, version = dict(self.row), self.version
        for op in ops:
            assert op.method == "PATCH" and op.path == "invoices(inv-1)"
            if op.etag is not None and op.etag != f'W/"{version}"':
                raise AssertionError("412")
            if row["statecode"] in (2, 3) and set(op.body) - {"statecode", "statuscode"}:
                raise AssertionError(f"read-only invoice changed: {op.body}")
            row.update(op.body)
            version += 1
            assert footprint.table("invoice").valid_state_status(row["statecode"], row["statuscode"])
        self.row, self.version = row, version


def test_amounts_are_positive_with_at_most_two_places():
    assert ledger.parse_amount(Decimal("10.5")) == Decimal("10.50")
    assert ledger.parse_amount(7) == Decimal("7.00")
    for bad in (Decimal("0"), Decimal("-1"), Decimal("1.001"), Decimal("NaN"), "abc", True, 1.5):
        with pytest.raises(BusinessRuleViolation):
            ledger.parse_amount(bad)


def test_a_paid_invoice_is_reactivated_first_under_its_etag_then_paid_again():
    invoice = Invoice(Decimal("100.00"))
    invoice.apply(ledger.invoice_payment_ops(invoice.read(), Decimal("40.00"), "first"))
    assert (invoice.row["statecode"], invoice.row["statuscode"]) == (2, 100002)
    ops = ledger.invoice_payment_ops(invoice.read(), Decimal("60.00"), "second")
    assert ops[0].body == {"statecode": 0, "statuscode": 1} and ops[0].etag == invoice.read()["@odata.etag"]
    assert all(op.etag is None for op in ops[1:])
    invoice.apply(ops)
    assert (invoice.row["statecode"], invoice.row["statuscode"], invoice.row["w365_balance"]) == (2, 100001, 0)


def test_a_stale_read_fails_the_whole_changeset():
    invoice = Invoice(Decimal("100.00"))
    stale = invoice.read()
    invoice.apply(ledger.invoice_payment_ops(invoice.read(), Decimal("10.00"), "x"))
    with pytest.raises(AssertionError, match="412"):
        invoice.apply(ledger.invoice_payment_ops(stale, Decimal("10.00"), "y"))
    assert invoice.row["w365_amountpaid"] == Decimal("10.00")


def test_a_canceled_invoice_is_never_written():
    invoice = Invoice(Decimal("100.00"))
    invoice.row.update(statecode=3, statuscode=100003)
    assert ledger.invoice_payment_ops(invoice.read(), Decimal("10.00"), "x") == []


cents = st.integers(min_value=1, max_value=20000).map(lambda c: Decimal(c) / 100)
steps = st.lists(st.tuples(st.sampled_from(["charge", "decline", "refund"]), cents), max_size=25)


@settings(max_examples=300, deadline=None)
@given(total=st.integers(min_value=1, max_value=100000).map(lambda c: Decimal(c) / 100), script=steps)
def test_any_sequence_keeps_paid_plus_balance_equal_to_total_and_the_state_consistent(total, script):
    invoice = Invoice(total)
    for action, amount in script:
        current = invoice.read()
        _, paid, balance = ledger.totals(current)
        if action == "charge" and amount <= balance:          # the use case refuses more than the balance
            invoice.apply(ledger.invoice_payment_ops(current, amount, "charge"))
        elif action == "refund" and amount <= paid:           # never more than was paid
            invoice.apply(ledger.invoice_payment_ops(current, -amount, "refund"))
        # a decline writes nothing to the invoice
        row = invoice.row
        assert row["w365_amountpaid"] + row["w365_balance"] == row["totalamount"]
        assert row["w365_amountpaid"] >= 0 and row["w365_balance"] >= 0
        assert row["w365_amountpaid"] == row["w365_amountpaid"].quantize(Decimal("0.01"))
        if row["w365_amountpaid"] == 0:
            assert row["statecode"] == 0
        elif row["w365_balance"] == 0:
            assert (row["statecode"], row["statuscode"]) == (2, 100001)
        else:
            assert (row["statecode"], row["statuscode"]) == (2, 100002)
