"""Recovery numbers an admin can read (CONTRACT §6 "Recovery"; README "Dunning and card lifecycle").

Per billing run, `w365_amountfailed` and `w365_amountrecovered` (run_amounts, from the run's own attempts). Per month,
attributed to the month of each invoice's first failure (`w365_firstfailedon`), so a month's rate settles as its
invoices are recovered later:
- failed: the invoices whose dunning started that month, and their amount (the first failed automatic attempt's);
- recovered: those now Recovered, and what was collected on them from the first failure on;
- recovery rate: recovered invoices / failed invoices (and by amount);
- median days from the first failure to the payment that brought the balance to zero.
"""
from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable

from core import dates, footprint
from core.ports import Dataverse, Record
from handlers.charging import ledger
from handlers.dunning import states

CHARGE = footprint.choice("w365_paymenttransaction", "w365_type", "Charge")
APPROVED = footprint.choice("w365_paymenttransaction", "w365_outcome", "Approved")
DECLINED = footprint.choice("w365_paymenttransaction", "w365_outcome", "Declined")
AUTOMATIC = tuple(footprint.choice("w365_paymenttransaction", "w365_source", s) for s in ("Autopay", "Retry"))
RETRY = footprint.choice("w365_paymenttransaction", "w365_source", "Retry")
PERCENT = Decimal("0.1")


@dataclass(frozen=True)
class MonthRecovery:
    month: str                                   # YYYY-MM of the first failures
    invoices_failed: int
    invoices_recovered: int
    amount_failed: Decimal
    amount_recovered: Decimal
    median_days_to_recover: Decimal | None

    @property
    def recovery_rate(self) -> Decimal:
        """Percent of the month's failed invoices recovered (one decimal)."""
        if not self.invoices_failed:
            return Decimal("0.0")
        return (Decimal(100) * self.invoices_recovered / self.invoices_failed).quantize(PERCENT)

    @property
    def amount_rate(self) -> Decimal:
        if not self.amount_failed:
            return Decimal("0.0")
        return (Decimal(100) * self.amount_recovered / self.amount_failed).quantize(PERCENT)


def run_amounts(transactions: Iterable[Record]) -> tuple[Decimal, Decimal]:
    """(amount failed, amount recovered) of one billing run's attempts: declined automatic charges, and approved
    retries (a retry after a decline or a card update is what dunning recovered)."""
    failed = recovered = Decimal("0.00")
    for t in transactions:
        if t.get("w365_type") not in (CHARGE, None) or t.get("w365_source") not in AUTOMATIC:
            continue
        if t.get("w365_outcome") == DECLINED:
            failed += ledger.money(t.get("w365_amount"))
        elif t.get("w365_outcome") == APPROVED and t.get("w365_source") == RETRY:
            recovered += ledger.money(t.get("w365_amount"))
    return failed, recovered


def month_of(invoice: Record) -> str | None:
    first = dates.parse(invoice.get("w365_firstfailedon"))
    return f"{first:%Y-%m}" if first else None


def summarize(invoices: Iterable[Record]) -> list[MonthRecovery]:
    """The monthly numbers from invoice rows with their charge transactions expanded (pure; see monthly_recovery)."""
    by_month: dict[str, list[Record]] = {}
    for invoice in invoices:
        month = month_of(invoice)
        if month:
            by_month.setdefault(month, []).append(invoice)
    return [_month(month, rows) for month, rows in sorted(by_month.items())]


def _month(month: str, invoices: list[Record]) -> MonthRecovery:
    failed_amount = recovered_amount = Decimal("0.00")
    recovered, days = 0, []
    for invoice in invoices:
        first = dates.parse(invoice["w365_firstfailedon"])
        charges = sorted((t for t in invoice.get("w365_paymenttransaction_invoiceid") or []
                          if t.get("w365_type") in (CHARGE, None)), key=lambda t: t.get("createdon") or "")
        first_failed = next((t for t in charges if t.get("w365_outcome") == DECLINED
                             and t.get("w365_source") in AUTOMATIC), None)
        # No declined attempt (no usable card from the start): what the invoice was for.
        failed_amount += ledger.money(first_failed.get("w365_amount")) if first_failed else ledger.totals(invoice)[0]
        if states.status_label(invoice.get("w365_dunningstatus")) != states.RECOVERED:
            continue
        recovered += 1
        after = [t for t in charges if t.get("w365_outcome") == APPROVED
                 and (dates.parse(t.get("createdon")) or first) >= first]
        recovered_amount += sum((ledger.money(t.get("w365_amount")) for t in after), Decimal("0.00"))
        if after:
            paid_on = dates.parse(after[-1].get("createdon")) or first
            days.append(Decimal((paid_on - first).total_seconds()) / Decimal(86400))
    median = Decimal(statistics.median(days)).quantize(PERCENT) if days else None
    return MonthRecovery(month, len(invoices), recovered, failed_amount, recovered_amount, median)


def monthly_recovery(dataverse: Dataverse, *, since: dt.datetime | None = None) -> list[MonthRecovery]:
    """Read the invoices that entered dunning (since a date, when given) with their charges, and summarize."""
    where = "w365_firstfailedon ne null" + (f" and w365_firstfailedon ge {dates.iso(since)}" if since else "")
    rows = dataverse.query(ledger.INVOICES, select=ledger.INVOICE_COLUMNS, filter=where, expand=(
        "w365_paymenttransaction_invoiceid($select=w365_amount,w365_type,w365_outcome,w365_source,createdon)"))
    return summarize(rows)
