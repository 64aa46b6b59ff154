"""Transaction events: authcapture/refund/void created, fraud held/approved/declined.

The payload is a hint; `getTransactionDetails` is the truth. The w365_paymenttransaction is found by `transrefId`
(= our w365_refid) or by transId (w365_gatewaytransactionid). An open attempt (Pending, Unknown, Held For Review) is
settled by the charging reconciler's own path (`reconcile_attempt`), so the invoice's amount paid, balance and state
follow exactly once (ETag on the row and the invoice). A transaction Dynamics has no row for (made in the Merchant
Interface, or by another system on the account's customer profile) is recorded as a new row with refId
`ANET-<transId>` (the alternate key makes a concurrent duplicate fail) and settled through the same path.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from core import odata
from core.errors import DuplicateRecord, GatewayNotFound
from core.ports import Record, TransactionDetails
from core.services import Services
from core.steps import Outcome
from handlers.charging import attempts, ledger, outcomes, reconciler
from handlers.charging.attempts import CHARGE, PROFILE_COLUMNS, REFUND, TRANSACTION_COLUMNS, TRANSACTIONS, VOID
from core.money import format_money

if TYPE_CHECKING:
    from handlers.gateway_webhooks.notifications import Notification

log = logging.getLogger(__name__)

EXTERNAL_PREFIX = "ANET-"


def charge_or_refund(services: Services, note: "Notification") -> Outcome:
    details = _details(services, note.entity_id)
    if details is None:
        return Outcome.succeeded(f"Authorize.Net has no transaction {note.entity_id}; nothing to record.")
    kind = REFUND if details.transaction_type == "refundTransaction" else CHARGE
    row = _find_row(services, details, kind)
    if row is None:
        return _record_external(services, details, kind)
    return _settle(services, row, details)


def void(services: Services, note: "Notification") -> Outcome:
    """A void changes the original charge (its status becomes `voided`); no new transaction exists at the gateway."""
    details = _details(services, note.entity_id)
    if details is None:
        return Outcome.succeeded(f"Authorize.Net has no transaction {note.entity_id}; nothing to record.")
    void_row = _find_row(services, details, VOID)
    if void_row is not None:                   # a void made from Dynamics (w365_RefundTransaction)
        return _settle(services, void_row, details)
    charge = _find_row(services, details, CHARGE)
    if charge is None:                         # never seen: record the charge as the gateway has it (voided)
        return _record_external(services, details, CHARGE)
    if outcomes.is_open(attempts.outcome_label(charge.get("w365_outcome"))):
        return _settle(services, charge, details)
    if attempts.outcome_label(charge.get("w365_outcome")) not in outcomes.REFUNDABLE or details.status != "voided":
        return _said(charge, "The void changes nothing recorded")
    # An approved charge voided outside Dynamics: its outcome stays final; a void row of its own (refund bookkeeping)
    # takes the money off the invoice.
    return _record_external(services, details, VOID, charge=charge)


# --- finding and settling ------------------------------------------------------------------------------------------

def _details(services: Services, trans_id: str) -> TransactionDetails | None:
    try:
        return services.gateway.get_transaction_details(trans_id)
    except GatewayNotFound:
        return None


def _find_row(services: Services, details: TransactionDetails, kind: str) -> Record | None:
    """The row of this kind whose refId is the transaction's transrefId, else whose transId it is."""
    keys = [f"w365_gatewaytransactionid eq {odata.literal(details.trans_id)}"]
    if details.ref_id:
        keys.append(f"w365_refid eq {odata.literal(details.ref_id)}")
    if kind == VOID:
        keys.append(f"w365_refid eq {odata.literal(_external_ref(details.trans_id, VOID))}")
    rows = services.dataverse.query(TRANSACTIONS, select=TRANSACTION_COLUMNS, filter=" or ".join(keys))
    rows = [r for r in rows if attempts.type_label(r.get("w365_type")) == kind]
    by_ref = [r for r in rows if details.ref_id and r.get("w365_refid") == details.ref_id]
    return (by_ref or rows or [None])[0]


def _settle(services: Services, row: Record, details: TransactionDetails) -> Outcome:
    transaction_id = row["w365_paymenttransactionid"]
    if not outcomes.is_open(attempts.outcome_label(row.get("w365_outcome"))) or row.get("statecode") == 1:
        return _said(row, "Already recorded")          # no transition left (charging/outcomes.py)
    reconciler.reconcile_attempt(services, transaction_id, details=details)
    fresh = services.dataverse.retrieve(TRANSACTIONS, transaction_id, select=TRANSACTION_COLUMNS)
    changed = fresh.get("w365_outcome") != row.get("w365_outcome")
    return _said(fresh, "Settled from Authorize.Net's record" if changed else "Nothing new")


def _said(row: Record, what: str) -> Outcome:
    outcome = attempts.outcome_label(row.get("w365_outcome"))
    name = row.get("w365_name") or row.get("w365_refid") or row["w365_paymenttransactionid"]
    text = row.get("w365_transactionresult") or ""
    return Outcome.succeeded(f"{what}: {name} is {outcome}. {text}".strip(),
                             regarding_table="w365_paymenttransaction", regarding_id=row["w365_paymenttransactionid"])


# --- transactions Dynamics did not make ----------------------------------------------------------------------------

def _record_external(services: Services, details: TransactionDetails, kind: str, *,
                     charge: Record | None = None) -> Outcome:
    links = attempts.links_of(charge) if charge is not None else _links_for(services, details)
    if not links:
        return Outcome.succeeded(
            f"Authorize.Net transaction {details.trans_id} belongs to no account or invoice in Dynamics "
            f"(customer profile {details.customer_profile_id or 'none'}, invoice number "
            f"{details.invoice_number or 'none'}); not recorded.")
    amount = ledger.money(charge.get("w365_amount")) if charge is not None else _amount(details)
    ref_id = _external_ref(details.trans_id, kind)
    body: dict[str, Any] = {
        "w365_name": f"{kind} made outside Dynamics ({details.trans_id})"[:100],
        "w365_refid": ref_id, "w365_amount": amount, "w365_type": attempts.type_value(kind),
        "w365_outcome": attempts.outcome_value(attempts.PENDING), "w365_gatewaytransactionid": details.trans_id,
        "w365_transactionresult": "Reported by an Authorize.Net webhook; confirming with Authorize.Net.",
        **links,
    }
    try:
        transaction_id = services.dataverse.create(TRANSACTIONS, body)
    except DuplicateRecord:                    # another delivery recorded it a moment ago
        rows = services.dataverse.query(TRANSACTIONS, select=TRANSACTION_COLUMNS,
                                        filter=odata.eq("w365_refid", ref_id), top=1)
        return _settle(services, rows[0], details) if rows else Outcome.succeeded("Already recorded.")
    log.info("gateway webhook: recorded %s %s made outside Dynamics", kind, details.trans_id)
    reconciler.reconcile_attempt(services, transaction_id, details=details)
    fresh = services.dataverse.retrieve(TRANSACTIONS, transaction_id, select=TRANSACTION_COLUMNS,
                                        expand=attempts.CURRENCY_EXPANDS)
    currency = attempts.currency_of_transaction(fresh)
    return _said(fresh, f"Recorded a {kind.lower()} of {format_money(amount, currency)} made outside Dynamics")


def _links_for(services: Services, details: TransactionDetails) -> dict[str, str]:
    """Lookups of a transaction Dynamics did not make: the account by its customer profile, the invoice by number,
    the payment profile by its gateway id. Empty when neither an account nor an invoice is found."""
    dataverse = services.dataverse
    account_id = ""
    if details.customer_profile_id:
        accounts = dataverse.query("accounts", select=("accountid",), top=1,
                                   filter=odata.eq("w365_gatewaycustomerprofileid", details.customer_profile_id))
        account_id = accounts[0]["accountid"] if accounts else ""
    invoice_id = ""
    # Our own charges send `INV-1001-<attempt>` (attempts.gateway_invoice_number); one made at the gateway for an
    # invoice sends its plain number. A refund or void carries its charge's.
    numbers = [details.invoice_number, re.sub(r"-\d+$", "", details.invoice_number)] if details.invoice_number else []
    invoices: list = []
    for number in dict.fromkeys(numbers):
        invoices = dataverse.query(ledger.INVOICES, select=("invoiceid", "_customerid_value"), top=2,
                                   filter=odata.eq("invoicenumber", number))
        if invoices:
            break
    if invoices:
        # Only an unambiguous invoice of the same customer: paying the wrong invoice is worse than paying none.
        if len(invoices) == 1 and (not account_id or invoices[0].get("_customerid_value") == account_id):
            invoice_id = invoices[0]["invoiceid"]
            account_id = account_id or invoices[0].get("_customerid_value") or ""
    links: dict[str, str] = {}
    if account_id:
        links["w365_accountid@odata.bind"] = f"/accounts({account_id})"
    if invoice_id:
        links["w365_invoiceid@odata.bind"] = f"/invoices({invoice_id})"
    if links and details.payment_profile_id:
        profiles = dataverse.query("w365_paymentprofiles", select=PROFILE_COLUMNS, top=1,
                                   filter=odata.eq("w365_paymentprofileidgateway", details.payment_profile_id))
        if profiles:
            links["w365_paymentprofileid@odata.bind"] = f"/w365_paymentprofiles({profiles[0]['w365_paymentprofileid']})"
    return links


def _amount(details: TransactionDetails) -> Decimal:
    return details.amount if details.amount > 0 else details.settle_amount


def _external_ref(trans_id: str, kind: str) -> str:
    """Deterministic, so two deliveries of one transaction collide on w365_refid's alternate key (20 characters)."""
    return (EXTERNAL_PREFIX + ("V" if kind == VOID else "") + trans_id)[-20:]
