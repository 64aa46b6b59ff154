"""CONTRACT §6 "Due", every clause, as one pure rule (`not_due_reason`) and the server-side filter that narrows the
selection to a superset of it (`selection_query`). The selection pages through the filter and applies the rule to each
row; the charge applies the same rule again to what it reads just before charging (something may have changed).

On real invoices our columns start empty: an empty balance means total minus amount paid, an empty dunning status
means None. Dates compare as UTC calendar dates.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable

from core import dates, footprint
from core.ports import Record
from handlers.charging import attempts, ledger

DUNNING_NONE = footprint.choice("invoice", "w365_dunningstatus", "None")
RETRYING = footprint.choice("invoice", "w365_dunningstatus", "Retrying")
CHARGE = attempts.type_value(attempts.CHARGE)
APPROVED = attempts.outcome_value(attempts.APPROVED)
OPEN = tuple(attempts.outcome_value(o) for o in attempts.OPEN_OUTCOMES)

# What the rule reads of an invoice (the selection asks for nothing more).
INVOICE_COLUMNS = ("invoiceid", "invoicenumber", "name", "totalamount", "w365_amountpaid", "w365_balance",
                   "statecode", "statuscode", "duedate", "w365_dunningstatus", "w365_nextretryon",
                   "_w365_billingcontractid_value", "_customerid_value")
# Only the transactions that make an invoice not due: open attempts, approved refunds and voids.
BLOCKING_TRANSACTIONS = (
    f"(statecode eq 0 and ({' or '.join(f'w365_outcome eq {v}' for v in OPEN)})) or "
    f"(w365_type ne {CHARGE} and w365_outcome eq {APPROVED})")
TRANSACTIONS_NAV = "w365_paymenttransaction_invoiceid"


@dataclass(frozen=True)
class AutopaySwitch:
    """The configuration's part of the rule."""
    enabled: bool
    since: dt.datetime | None

    @staticmethod
    def of(configuration: Record) -> "AutopaySwitch":
        return AutopaySwitch(bool(configuration.get("w365_autopayenabled")),
                             dates.parse(configuration.get("w365_autopaysince")))


def balance(invoice: Record) -> Decimal:
    """The balance column, or total - paid when it is empty (real invoices start with it empty)."""
    value = invoice.get("w365_balance")
    return ledger.money(value) if value is not None else ledger.totals(invoice)[2]


def not_due_reason(invoice: Record, switch: AutopaySwitch, as_of: dt.datetime) -> str | None:
    """None when the invoice is due in a run as of `as_of`; else why not, for a person. The invoice row carries
    its billing contract (`w365_billingcontractid` with `w365_autopay`) and its transactions (`TRANSACTIONS_NAV`; at
    least the open and the approved refund/void ones, with w365_type, w365_outcome, statecode)."""
    if not switch.enabled:
        return "autopay is switched off in the configuration (dunning is frozen)"
    contract = invoice.get("w365_billingcontractid")
    if not contract or not contract.get("w365_autopay"):
        return "its billing contract is not set to autopay"
    state = (invoice.get("statecode"), invoice.get("statuscode"))
    if state[0] == ledger.CANCELED:
        return "it is canceled"
    if not (state[0] == ledger.ACTIVE or state == (ledger.PAID, ledger.PARTIAL)):
        return "it is paid in full"
    if balance(invoice) <= 0:
        return "it has no balance left"
    due_on = _day(invoice.get("duedate"))
    if due_on is None:
        return "it has no due date"
    if switch.since is not None and due_on < switch.since.date():
        return f"it was due on {due_on}, before autopay was switched on ({switch.since.date()})"
    transactions = invoice.get(TRANSACTIONS_NAV) or []
    if any(_is_open(t) for t in transactions):
        return "an attempt to collect it is still open (pending, unknown or held for review)"
    if any(t.get("w365_outcome") == APPROVED and t.get("w365_type") not in (None, CHARGE) for t in transactions):
        return "it has an approved refund or void (a person decides about refunded invoices)"
    day = as_of.astimezone(dt.timezone.utc).date()
    status = invoice.get("w365_dunningstatus")
    if status in (None, DUNNING_NONE):
        return None if due_on <= day else f"it is due on {due_on}, after {day}"
    if status == RETRYING:
        retry_on = _day(invoice.get("w365_nextretryon"))
        if retry_on is not None and retry_on <= day:
            return None
        return f"its next retry is on {retry_on}" if retry_on else "it is retrying but has no next retry date"
    return f"its dunning status is {footprint.label('invoice', 'w365_dunningstatus', status)}"


def selection_query(switch: AutopaySwitch, as_of: dt.datetime, after: str | None) -> dict[str, Any]:
    """Query options (for Dataverse.query) of one page of candidate invoices, keyset-paged by invoiceid so that
    invoices leaving the filter while the run charges them do not shift the pages. Only the columns the rule needs."""
    next_day = (as_of.astimezone(dt.timezone.utc).date() + dt.timedelta(days=1)).isoformat()
    clauses = [
        f"(statecode eq {ledger.ACTIVE} or (statecode eq {ledger.PAID} and statuscode eq {ledger.PARTIAL}))",
        "_w365_billingcontractid_value ne null",
        "(w365_balance gt 0 or w365_balance eq null)",
        "duedate ne null",
        f"(((w365_dunningstatus eq null or w365_dunningstatus eq {DUNNING_NONE}) and duedate lt {next_day}) or "
        f"(w365_dunningstatus eq {RETRYING} and w365_nextretryon lt {next_day}))",
    ]
    if switch.since is not None:
        clauses.append(f"duedate ge {switch.since.astimezone(dt.timezone.utc).date().isoformat()}")
    if after:
        clauses.append(f"invoiceid gt {after}")
    return {"select": INVOICE_COLUMNS, "filter": " and ".join(clauses), "orderby": "invoiceid",
            "expand": (f"w365_billingcontractid($select=w365_autopay),"
                       f"{TRANSACTIONS_NAV}($select=w365_type,w365_outcome,statecode;$filter={BLOCKING_TRANSACTIONS})")}


def _is_open(transaction: Record) -> bool:
    return transaction.get("w365_outcome") in OPEN and transaction.get("statecode") in (0, None)


def _day(value: Any) -> dt.date | None:
    moment = dates.parse(value)
    return moment.astimezone(dt.timezone.utc).date() if moment else None


def due_only(invoices: Iterable[Record], switch: AutopaySwitch, as_of: dt.datetime) -> list[Record]:
    return [i for i in invoices if not_due_reason(i, switch, as_of) is None]
