"""One queued message of a billing run: charge one due invoice its whole balance, as the service, through the same
attempt-first core as the Charge button (handlers/charging/attempts.py), so the same guarantees hold.

Never twice:
- a redelivery finds the attempt this run already made (`w365_billingrunid` on the invoice's transactions) and stops;
- an open attempt (a click on Charge, another run) makes the invoice not due, and two that start at once make the same
  attempt number, so the second create fails on the `w365_refid` alternate key;
- the amount is the balance of this read, and the settlement changeset carries the invoice's ETag.

Round trips of an approved charge: one read $batch (invoice, contract -> profile, account -> default, transactions,
and the autopay switch, fresh), the attempt, one $batch.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Mapping

from core import dates, footprint
from core.configuration import money_switches_read
from core.errors import BusinessRuleViolation, ConflictInProgress, DuplicateRecord, PlatformUnavailable
from core.money import CURRENCY_EXPAND
from core.operations import OPERATIONS, status_value
from core.ports import Read, Record
from core.services import Services
from handlers.autopay import due
from handlers.autopay.card_update import on_no_usable_card
from handlers.charging import attempts, invoices, ledger
from handlers.charging.attempts import PROFILE_COLUMNS, TRANSACTION_COLUMNS

log = logging.getLogger(__name__)

MESSAGE_NAME = "w365_RunBilling"
CHARGE_WORK = "autopay.charge"
DEAD_LETTERED = "Dead-lettered:"
MAX_TRIES = 5                                  # then the message is dead-lettered onto the run (a skip record)
RETRY_DELAY = dt.timedelta(seconds=30)         # times the try number
THROTTLED_DELAY = dt.timedelta(seconds=30)     # when Dataverse answered 429/503 without a Retry-After
CHARGE_COST = 3                                # Dataverse requests of an approved charge (see the module doc)
# Waiting for the budget holds the message (Service Bus renews its lock for up to 5 minutes and a function may run
# 5 minutes, host.json), so the charges waiting on an instance resume one by one as the window slides; only a longer
# wait (after a long Retry-After) puts the message back on the queue.
MAX_HELD_WAIT = 240.0
AUTOPAY_COLUMNS = ("w365_autopayenabled", "w365_autopaysince")
AUTOPAY, RETRY = "Autopay", "Retry"
SOURCES = tuple(footprint.choice("w365_paymenttransaction", "w365_source", s) for s in (AUTOPAY, RETRY))
_PROFILE = ",".join(PROFILE_COLUMNS)
INVOICE_EXPAND = (
    f"w365_billingcontractid($select=w365_billingcontractid,w365_autopay;"
    f"$expand=w365_paymentprofileid($select={_PROFILE})),"
    f"customerid_account($select=accountid,_primarycontactid_value;$expand=w365_paymentprofile_accountid("
    f"$select={_PROFILE};$filter=w365_isdefault eq true and statecode eq 0)),"
    f"{due.TRANSACTIONS_NAV}($select={','.join(TRANSACTION_COLUMNS)},w365_source,_w365_billingrunid_value),"
    f"{CURRENCY_EXPAND}")
INVOICE_SELECT = tuple(dict.fromkeys(ledger.INVOICE_COLUMNS + due.INVOICE_COLUMNS))


@dataclass(frozen=True)
class Charged:
    """What one message did: `kind` is charged, declined, error, pending, skipped or already (a redelivery)."""
    kind: str
    message: str


def charge_message(services: Services, payload: Mapping[str, Any]) -> Charged | None:
    """One delivery of a charge message. Dataverse throttling (a 429 past the client's own Retry-After waits) or an
    outage before the attempt: the message is sent again later, never lost and never counted as a failure. Anything
    else is retried a few times, then recorded on the run as dead-lettered (the invoice stays due). Returns what
    happened, or None when the message was put back for later."""
    run_id, invoice_id = str(payload["run_id"]), str(payload["invoice_id"])
    try:
        wait = within_budget(services, CHARGE_COST)      # a wrong W365_BILLING_RUN_SHARE fails here, tries counted
        if wait is not None:
            defer(services, payload, wait)
            return None
        return charge_for_run(services, run_id, invoice_id, dates.parse(payload["as_of"]))
    except PlatformUnavailable as exc:
        log.warning("autopay: invoice %s deferred (Dataverse busy)", invoice_id)
        defer(services, payload, dt.timedelta(seconds=exc.retry_after) if exc.retry_after else THROTTLED_DELAY)
        return None
    except Exception as exc:  # noqa: BLE001 - counted tries, then shown on the run instead of a silent dead-letter
        tries = int(payload.get("try") or 1)
        if tries >= MAX_TRIES:
            log.exception("autopay: invoice %s failed %d times; dead-lettered onto run %s", invoice_id, tries, run_id)
            record_skip(services, run_id, "invoice", invoice_id,
                        f"{DEAD_LETTERED} the charge of this invoice failed {tries} times ({type(exc).__name__}); "
                        "this run charged nothing for it and it stays due for the next run.")
            return Charged("skipped", "dead-lettered")
        log.warning("autopay: invoice %s failed (%s), try %d of %d", invoice_id, type(exc).__name__, tries, MAX_TRIES)
        services.queue.send(CHARGE_WORK, {**payload, "try": tries + 1}, delay=RETRY_DELAY * tries,
                            message_id=f"{CHARGE_WORK}:{run_id}:{invoice_id}:t{tries + 1}")
        return None


def within_budget(services: Services, cost: int) -> dt.timedelta | None:
    """Waits until `cost` Dataverse requests fit in the runs' share of service protection (core.throttle); None when
    they do, else how long the message should wait on the queue."""
    if services.budget is None:
        return None
    wait = services.budget.acquire(cost, max_wait=MAX_HELD_WAIT)
    return dt.timedelta(seconds=wait) if wait > 0 else None


def defer(services: Services, payload: Mapping[str, Any], wait: dt.timedelta) -> None:
    """The message again, later: a throttled charge is delayed, never lost and never counted as a failed try."""
    deferrals = int(payload.get("deferrals") or 0) + 1
    services.queue.send(CHARGE_WORK, {**payload, "deferrals": deferrals}, delay=wait,
                        message_id=f"{CHARGE_WORK}:{payload['run_id']}:{payload['invoice_id']}:d{deferrals}")


def charge_for_run(services: Services, run_id: str, invoice_id: str, as_of: dt.datetime) -> Charged:
    # The autopay switch gates money (CONTRACT §6: off freezes every charge), so it is read fresh, in the same
    # read $batch as the invoice: no request of its own and no stale copy.
    invoice, switch = services.dataverse.read([
        Read.retrieve(ledger.INVOICES, invoice_id, select=INVOICE_SELECT, expand=INVOICE_EXPAND),
        money_switches_read(AUTOPAY_COLUMNS)])
    transactions = invoice.get(due.TRANSACTIONS_NAV) or []
    mine = next((t for t in transactions if t.get("_w365_billingrunid_value") == run_id), None)
    if mine is not None:
        return Charged("already", f"this run already made attempt {mine.get('w365_name')}")
    number = invoice.get("invoicenumber") or invoice.get("name") or invoice_id
    reason = due.not_due_reason(invoice, due.AutopaySwitch.of(switch[0] if switch else {}), as_of)
    if reason:
        return skip(services, run_id, invoice, f"Invoice {number} is no longer due: {reason}.")
    try:
        profile = invoices.usable_profile(invoice)
    except BusinessRuleViolation as exc:
        return skip(services, run_id, invoice, on_no_usable_card(services, invoice, str(exc)))
    _, _, amount = ledger.totals(invoice)
    # Autopay for an invoice's first automatic attempt; Retry once dunning follows it (an earlier automatic attempt
    # failed, or a card update made it Retrying), so what it collects counts as recovered.
    retry = invoice.get("w365_dunningstatus") == due.RETRYING or any(
        t.get("w365_source") in SOURCES for t in transactions)
    try:
        attempt = attempts.collect_payment(
            services, account_id=invoice["_customerid_value"], profile=profile, amount=amount,
            ref_key=f"invoice:{invoice_id}", attempt_number=attempts.next_attempt_number(transactions),
            invoice_number=number, invoice=invoice, description=f"Invoice {number}",
            source=RETRY if retry else AUTOPAY, billing_run_id=run_id)
    except ConflictInProgress:
        return skip(services, run_id, invoice, f"Invoice {number}: another charge of it started at the same moment "
                                               "(a click on Charge, or another run); it was left to that one.")
    kind = {attempts.APPROVED: "charged", attempts.DECLINED: "declined", attempts.ERROR: "error"}.get(
        attempt.outcome, "pending")
    return Charged(kind, attempt.message)


def skip(services: Services, run_id: str, invoice: Record, message: str) -> Charged:
    """Record why the run did not charge the invoice: a w365_operation row (Failed) regarding the invoice, with the
    run's id as its correlation id, so a person can list a run's skipped invoices. Once per run and invoice (its
    request id is the alternate key)."""
    record_skip(services, run_id, "invoice", invoice["invoiceid"], message)
    return Charged("skipped", message)


def record_skip(services: Services, run_id: str, table: str, record_id: str, message: str, *,
                request_id: str | None = None) -> None:
    try:
        services.dataverse.create(OPERATIONS, {
            "w365_name": f"Billing run: {message}"[:100],
            "w365_requestid": request_id or skip_request_id(run_id, record_id),
            "w365_message": message[:4000], "w365_status": status_value(False), "w365_messagename": MESSAGE_NAME,
            "w365_regardingtable": table, "w365_regardingid": record_id, "w365_correlationid": run_id})
    except DuplicateRecord:
        pass                                 # a redelivery recorded it already


def skip_request_id(run_id: str, record_id: str) -> str:
    return f"run:{run_id}:{record_id}"
