"""Money rules of charging, pure: amounts, and the invoice columns and state that follow from what was paid.

Invariant kept by every write: `w365_amountpaid + w365_balance = totalamount`, and the state follows the amount paid
(nothing paid: Active; part: Paid Partial; all: Paid Complete). Dataverse keeps a Paid invoice read-only, so a change of
a Paid invoice is reactivate -> columns -> Paid again, in one changeset (research/dataverse.md §2, Invoice).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from core import footprint
from core.errors import BusinessRuleViolation
from core.ports import BatchOperation, Record
from core.money import CURRENCY_EXPAND

CENT = Decimal("0.01")
INVOICES = "invoices"
INVOICE_COLUMNS = ("invoiceid", "name", "invoicenumber", "totalamount", "w365_amountpaid", "w365_balance",
                   "statecode", "statuscode", "_customerid_value", "_w365_billingcontractid_value",
                   # dunning (handlers/dunning): its columns change in the same changeset as the payment
                   "w365_dunningstatus", "w365_failedattempts", "w365_firstfailedon", "w365_nextretryon")

ACTIVE = footprint.choice("invoice", "statecode", "Active")
PAID = footprint.choice("invoice", "statecode", "Paid")
CANCELED = footprint.choice("invoice", "statecode", "Canceled")
NEW = footprint.choice("invoice", "statuscode", "New")
COMPLETE = footprint.choice("invoice", "statuscode", "Complete")
PARTIAL = footprint.choice("invoice", "statuscode", "Partial")


# Dataverse's Money columns hold -922,337,203,685,477 to 922,337,203,685,477 (learn.microsoft.com "Currency
# column": MaxValue); anything past it can never be paid, refunded or written.
MAX_MONEY = Decimal("922337203685477")


def money(value: Any) -> Decimal:
    """A money column as Decimal with two places (null = 0)."""
    return Decimal(value if value is not None else 0).quantize(CENT)


def expand_invoice(navigation: str = "w365_invoiceid") -> str:
    """An invoice read through a lookup, with INVOICE_COLUMNS and its currency (messages name it)."""
    return f"{navigation}($select={','.join(INVOICE_COLUMNS)};$expand={CURRENCY_EXPAND})"


def parse_amount(value: Any, *, what: str = "amount") -> Decimal:
    """A requested amount: a positive number with at most two decimal places. Refuses (a failed outcome) otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise BusinessRuleViolation(f"The {what} must be a number.")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise BusinessRuleViolation(f"The {what} must be a number.") from None
    if not amount.is_finite():
        raise BusinessRuleViolation(f"The {what} must be a number.")
    if abs(amount) > MAX_MONEY:          # before quantize, which fails past 28 digits (1E+26 with two places)
        raise BusinessRuleViolation(f"The {what} is beyond what a money column holds ({MAX_MONEY:,}).")
    if amount <= 0:
        raise BusinessRuleViolation(f"The {what} must be more than zero (got {amount}).")
    if amount != amount.quantize(CENT):
        raise BusinessRuleViolation(f"The {what} can have at most two decimal places (got {amount}).")
    return amount.quantize(CENT)


def totals(invoice: Record) -> tuple[Decimal, Decimal, Decimal]:
    """(total, paid, balance) of an invoice row; the balance is derived so the invariant holds even on old rows."""
    total = money(invoice.get("totalamount"))
    paid = money(invoice.get("w365_amountpaid"))
    return total, paid, total - paid


def state_for(total: Decimal, paid: Decimal, current: tuple[int, int]) -> tuple[int, int]:
    """(statecode, statuscode) consistent with the amount paid. An Active invoice keeps its own Active status."""
    if paid <= 0:
        return current if current[0] == ACTIVE else (ACTIVE, NEW)
    return (PAID, COMPLETE) if paid >= total else (PAID, PARTIAL)


def state_label(statecode: int, statuscode: int) -> str:
    if statecode == PAID:
        return f"Paid ({footprint.label('invoice', 'statuscode', statuscode)})"
    return footprint.label("invoice", "statecode", statecode)


def invoice_payment_ops(invoice: Record, paid_delta: Decimal, last_status: str) -> list[BatchOperation]:
    """The changeset part that moves an invoice's amount paid by `paid_delta` (negative for a refund).

    The first operation carries the ETag of `invoice`, so a concurrent change makes the whole changeset fail (412) and
    the caller re-reads. A Canceled invoice is read-only for good: nothing is written (the caller says so)."""
    current = (invoice["statecode"], invoice["statuscode"])
    if current[0] == CANCELED:
        return []
    total, paid, _ = totals(invoice)
    paid += paid_delta
    target = state_for(total, paid, current)
    invoice_id = invoice["invoiceid"]
    etag = invoice.get("@odata.etag")
    ops = []
    if current[0] == PAID:
        ops.append(BatchOperation.update(INVOICES, invoice_id, {"statecode": ACTIVE, "statuscode": NEW}, etag=etag))
        etag = None                      # the rest of the changeset follows the reactivation
    ops.append(BatchOperation.update(INVOICES, invoice_id, {
        "w365_amountpaid": paid, "w365_balance": total - paid, "w365_lastchargestatus": last_status[:200]}, etag=etag))
    if target[0] != ACTIVE:
        ops.append(BatchOperation.update(INVOICES, invoice_id, {"statecode": target[0], "statuscode": target[1]}))
    return ops


def invoice_column_ops(invoice: Record, values: dict[str, Any]) -> list[BatchOperation]:
    """The changeset that writes our columns (dunning status, ...) on an invoice whatever its state: a Paid invoice
    is read-only in Dataverse, so it is reactivated, written and set Paid again with the same status, atomically.
    The first operation carries the invoice's ETag. A Canceled invoice is never touched (nothing is returned)."""
    state = (invoice["statecode"], invoice["statuscode"])
    if state[0] == CANCELED:
        return []
    invoice_id, etag = invoice["invoiceid"], invoice.get("@odata.etag")
    if state[0] != PAID:
        return [BatchOperation.update(INVOICES, invoice_id, values, etag=etag)]
    return [BatchOperation.update(INVOICES, invoice_id, {"statecode": ACTIVE, "statuscode": NEW}, etag=etag),
            BatchOperation.update(INVOICES, invoice_id, values),
            BatchOperation.update(INVOICES, invoice_id, {"statecode": state[0], "statuscode": state[1]})]


def after_payment(invoice: Record, paid_delta: Decimal) -> tuple[Decimal, Decimal, str]:
    """(amount paid, balance, state label) the invoice will have once `paid_delta` is applied: for messages."""
    total, paid, _ = totals(invoice)
    paid += paid_delta
    state = state_for(total, paid, (invoice["statecode"], invoice["statuscode"]))
    return paid, total - paid, state_label(*state)
