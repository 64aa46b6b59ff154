"""Settles attempts whose outcome Dataverse does not know yet (Pending, Unknown, Held For Review) from the gateway's
own records, as Kill Bill's janitor does (research/anchors.md §3): per attempt on a back-off (5 minutes, 1 hour, then
daily; attempts.RECONCILE_SCHEDULE), plus a timer sweep that catches attempts nobody scheduled (the process died
between the gateway's answer and the write). After the last try a person is asked to look.

How an attempt is found (research/gateway.md §3, "lost-response recipe"): by its transId when the row has one, else
candidates from the customer's transaction list and the unsettled list (same invoice number or amount, not older
than the attempt), confirmed by `getTransactionDetails.transrefId` == our refId. Not found an hour after it was made:
it never reached the gateway, so it becomes Error and the invoice can be charged again.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from decimal import Decimal
from typing import Any, Mapping

from core import dates, footprint, odata
from core.errors import DataverseError, DuplicateRecord, GatewayError, GatewayNotFound
from core.ports import ChargeOutcome, ChargeResult, TransactionDetails
from core.services import Services
from handlers.charging import attempts, outcomes
from handlers.charging.attempts import (RECONCILE_SCHEDULE, RECONCILE_WORK, TRANSACTION_COLUMNS, TRANSACTIONS, VOID,
                                        OpenAttempt)
from core.money import format_money

log = logging.getLogger(__name__)

NEVER_SENT_AFTER = dt.timedelta(hours=1)     # the unsettled list shows a transaction at once; an hour is generous
SWEEP_EVERY = dt.timedelta(minutes=5)
SWEEP_SCHEDULE = "0 */5 * * * *"              # SWEEP_EVERY as the timer's NCRONTAB (handlers/charging/entry.py)
CLOCK_SLACK = dt.timedelta(minutes=10)       # our clock vs the gateway's submitTimeUTC
MAX_CANDIDATES = 25
FLAG = attempts.NEEDS_PERSON
APPROVED_STATUSES = frozenset({"capturedPendingSettlement", "settledSuccessfully", "authorizedPendingCapture",
                               "approvedReview", "refundPendingSettlement", "refundSettledSuccessfully"})
HELD_STATUSES = frozenset({"FDSPendingReview", "FDSAuthorizedPendingReview", "underReview"})
DECLINED_STATUSES = frozenset({"declined", "failedReview", "expired", "voided"})


def reconcile_attempt(services: Services, transaction_id: str, *, details: TransactionDetails | None = None) -> bool:
    """Settle one attempt if the gateway knows its fate. True when nothing is left open. `details`: the gateway's
    record of it when the caller already has it (a gateway webhook), instead of looking it up."""
    attempt = attempts.read_open_attempt(services, transaction_id)
    if attempt is None:
        return True
    if details is None:
        details = _find_at_gateway(services, attempt)
    if details is not None and attempt.kind == VOID and details.status != "voided":
        details = None                   # the original charge is there, but the void never happened
    result = _result_from(attempt, details) if details is not None else None
    if result is None:
        age = services.clock.now() - attempt.created if attempt.created else dt.timedelta()
        if details is not None or age < NEVER_SENT_AFTER:
            return False                 # still held, or too early to say it never arrived
        result = ChargeResult(ChargeOutcome.ERROR, "", "it never reached Authorize.Net (no record of it an hour "
                                                       "later), so you can try again")
    if not outcomes.may_settle(attempt.outcome, outcomes.label_of(result.outcome)):
        return False                     # e.g. a held charge the gateway stops showing: a person decides, not a timer
    attempts.commit(services, attempt, result)
    log.info("charging: reconciled %s as %s", attempt.ref_id, result.outcome)
    return True


def reconcile_ref_id(services: Services, ref_id: str) -> bool:
    """Settle the attempt with this refId now (a gateway webhook's `merchantReferenceId`, e.g. fraud.approved).
    False when no such attempt exists or it is still undecided."""
    rows = services.dataverse.query(TRANSACTIONS, select=("w365_paymenttransactionid",),
                                    filter=odata.eq("w365_refid", ref_id), top=1)
    return bool(rows) and reconcile_attempt(services, rows[0]["w365_paymenttransactionid"])


def reconcile_queued(payload: Mapping[str, Any], services: Services) -> None:
    transaction_id, try_number = str(payload["transaction_id"]), int(payload.get("try", 1))
    if reconcile_attempt(services, transaction_id):
        return
    if try_number < len(RECONCILE_SCHEDULE):
        attempts.schedule_reconcile(services, transaction_id, try_number + 1)
    else:
        flag_for_person(services, transaction_id, try_number)


def reconcile_due(services: Services, *, everything: bool = False) -> int:
    """The timer sweep (and the on-demand run with `everything=True`): reconcile each open attempt whose age just
    crossed a back-off step, flag those past the last step. Returns how many were settled."""
    opens = " or ".join(f"w365_outcome eq {attempts.outcome_value(o)}" for o in outcomes.OPEN_OUTCOMES)
    rows = services.dataverse.query(TRANSACTIONS, select=TRANSACTION_COLUMNS,
                                    filter=f"statecode eq 0 and ({opens})")
    now, settled = services.clock.now(), 0
    steps = _cumulative(RECONCILE_SCHEDULE)
    for row in rows:
        flagged = (row.get("w365_transactionresult") or "").startswith(FLAG)
        created = row.get("createdon")
        age = now - dates.parse(created) if created else steps[0]
        due = everything or any(step <= age < step + SWEEP_EVERY for step in steps)
        past_all = age >= steps[-1] + SWEEP_EVERY
        if not (due or (past_all and not flagged)):
            continue
        try:
            if reconcile_attempt(services, row["w365_paymenttransactionid"]):
                settled += 1
            elif past_all and not flagged:
                flag_for_person(services, row["w365_paymenttransactionid"], len(steps))
        except (GatewayError, DataverseError) as exc:       # one bad row must not stop the sweep
            log.warning("charging: reconciling %s failed (%s)", row.get("w365_refid"), type(exc).__name__)
    return settled


def flag_for_person(services: Services, transaction_id: str, tries: int) -> None:
    """Stop trying: a person settles it by hand (attempts.flag_for_person)."""
    attempt = attempts.read_open_attempt(services, transaction_id)
    if attempt is None:
        return
    amount = format_money(attempt.amount, attempt.currency)
    text = (f"{FLAG} Authorize.Net could not confirm this {attempt.kind.lower()} of {amount} "
            f"after {tries} checks. Look up refId {attempt.ref_id} in the Authorize.Net Merchant Interface and settle "
            "it by hand; do not try again before that.")
    attempts.flag_for_person(services, transaction_id, text, name=f"Reconcile {attempt.ref_id}")


# --- finding the attempt at the gateway ---------------------------------------------------------------------------

def _find_at_gateway(services: Services, attempt: OpenAttempt) -> TransactionDetails | None:
    gateway = services.gateway
    if attempt.gateway_transaction_id:
        try:
            return gateway.get_transaction_details(attempt.gateway_transaction_id)
        except GatewayNotFound:
            return None
    candidates = {}
    if attempt.customer_profile_id:
        try:
            for s in gateway.list_customer_transactions(attempt.customer_profile_id, attempt.payment_profile_id):
                candidates[s.trans_id] = s
        except GatewayNotFound:
            pass
    for s in gateway.list_unsettled_transactions():
        candidates[s.trans_id] = s
    earliest = attempt.created - CLOCK_SLACK if attempt.created else None
    likely = [s for s in candidates.values()
              if (earliest is None or s.submitted_at is None or s.submitted_at >= earliest)
              and ((attempt.invoice_number and s.invoice_number == attempt.invoice_number[:20])
                   or s.settle_amount in (attempt.amount, Decimal("0.00")))]
    likely.sort(key=lambda s: s.submitted_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc), reverse=True)
    for summary in likely[:MAX_CANDIDATES]:
        details = gateway.get_transaction_details(summary.trans_id)
        if details.ref_id == attempt.ref_id:
            return details
    return None


def _result_from(attempt: OpenAttempt, details: TransactionDetails) -> ChargeResult | None:
    """The gateway's verdict as a ChargeResult, or None when it changes nothing (still held) by the transition
    table."""
    status = details.status
    if attempt.kind == VOID:             # a void changes the original charge: its status says it happened
        outcome = ChargeOutcome.APPROVED
    elif status in HELD_STATUSES:
        outcome = ChargeOutcome.HELD_FOR_REVIEW
    elif status in APPROVED_STATUSES:
        outcome = ChargeOutcome.APPROVED
    elif status in DECLINED_STATUSES:
        outcome = ChargeOutcome.DECLINED
    else:
        outcome = ChargeOutcome.ERROR
    if not outcomes.may_settle(attempt.outcome, outcomes.label_of(outcome)):
        return None                      # nothing new (still held)
    reason = details.reason or f"Authorize.Net status {status}"
    return ChargeResult(outcome, details.response_code, f"{reason} (confirmed with Authorize.Net)",
                        trans_id=details.trans_id, auth_code=details.auth_code, account_number=details.account_number,
                        ref_id=details.ref_id,
                        error_code=details.reason_code if outcome == ChargeOutcome.DECLINED else "")


def _cumulative(schedule: tuple[dt.timedelta, ...]) -> list[dt.timedelta]:
    total, out = dt.timedelta(), []
    for step in schedule:
        total += step
        out.append(total)
    return out
