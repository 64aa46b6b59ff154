"""Settles attempts whose outcome Dataverse does not know yet (Pending, Unknown, Held For Review) from the gateway's
own records, as Kill Bill's janitor does (research/anchors.md §3).

When: every open attempt carries `w365_nextcheckon` (CONTRACT §4), set when it becomes open and moved along the
back-off (5 minutes, 1 hour, then daily: attempts.RECONCILE_SCHEDULE, counted from the attempt's creation). Each
timer sweep settles every open attempt whose next check is due, however many runs were missed (a host down for a
day, a follow-up message that could not be queued); the queued checks after a lost answer are only the fast path.
Past the last step a person is asked to look (`w365_needsattention`), and the daily checks go on.

How an attempt is found (research/gateway.md §3, "lost-response recipe"), with the gateway's lists read once per
sweep (GatewayRecords): by its transId when the row has one; else the transactions carrying its own gateway invoice
number (INV-1001-2, unique per attempt; a refund: its amount among refunds), from the unsettled list, the customer's
transactions and the settled batches of the window (ten minutes before the oldest attempt to now), each read to its
last page; a candidate is confirmed by `getTransactionDetails.transrefId` == our refId. "It never reached the
gateway" (Error: the invoice can be charged again) is concluded only when every one of those lists was read
completely and an hour has passed; if any could not be read, a person is asked instead.
"""
from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any, Mapping

from core import dates, odata
from core.errors import DataverseError, GatewayError, GatewayNotFound
from core.ports import ChargeOutcome, ChargeResult, PaymentGateway, TransactionDetails, TransactionSummary
from core.services import Services
from handlers.charging import attempts, outcomes
from handlers.charging.attempts import (CHARGE, RECONCILE_SCHEDULE, RECONCILE_WORK, REFUND, TRANSACTION_COLUMNS,
                                        TRANSACTIONS, VOID, OpenAttempt)
from core.money import format_money

log = logging.getLogger(__name__)

NEVER_SENT_AFTER = dt.timedelta(hours=1)     # the unsettled list shows a transaction at once; an hour is generous
# The timer's NCRONTAB (handlers/charging/entry.py): how often due attempts are looked at. The only definition of
# the sweep period: what is due is decided by each attempt's w365_nextcheckon, not by the period.
SWEEP_SCHEDULE = "0 */5 * * * *"
CLOCK_SLACK = dt.timedelta(minutes=10)       # our clock vs the gateway's submitTimeUTC
FLAG = attempts.NEEDS_PERSON
APPROVED_STATUSES = frozenset({"capturedPendingSettlement", "settledSuccessfully", "authorizedPendingCapture",
                               "approvedReview", "refundPendingSettlement", "refundSettledSuccessfully"})
HELD_STATUSES = frozenset({"FDSPendingReview", "FDSAuthorizedPendingReview", "underReview"})
DECLINED_STATUSES = frozenset({"declined", "failedReview", "expired", "voided"})
REFUND_STATUSES = frozenset({"refundPendingSettlement", "refundSettledSuccessfully", "voided", "declined"})


class GatewayRecords:
    """What the gateway did from `since` to `until`, each list read at most once (to its last page) and only when an
    attempt needs it: the unsettled list, the customers' transaction lists, the settled batches of the window and
    their transactions. Details of a transaction are asked once. `complete(attempt)` says whether every list that
    could hold the attempt was read."""

    def __init__(self, gateway: PaymentGateway, since: dt.datetime, until: dt.datetime):
        self._gateway = gateway
        self.since, self.until = since, until
        self._lists: dict[str, list[TransactionSummary] | None] = {}     # None: could not be read
        self._details: dict[str, TransactionDetails] = {}
        self._claimed: set[str] = set()          # transIds already matched to an attempt this sweep

    def find(self, attempt: OpenAttempt) -> tuple[TransactionDetails | None, bool]:
        """(the gateway's record of the attempt or None, whether every list that could hold it was read)."""
        if attempt.gateway_transaction_id:
            try:
                return self._read_details(attempt.gateway_transaction_id), True
            except GatewayNotFound:
                return None, False               # we were given that transId: not "never reached"; a person looks
            except GatewayError:
                return None, False
        complete = True
        for name in self._sources(attempt):
            summaries = self._list(name, attempt)
            if summaries is None:
                complete = False
                continue
            for summary in self._candidates(attempt, summaries):
                try:
                    details = self._read_details(summary.trans_id)
                except GatewayError:
                    complete = False
                    continue
                if details.ref_id == attempt.ref_id:
                    self._claimed.add(details.trans_id)
                    return details, True
        return None, complete

    def details(self, trans_id: str) -> TransactionDetails:
        return self._read_details(trans_id)

    # --- the lists -------------------------------------------------------------------------------------------------

    @staticmethod
    def _sources(attempt: OpenAttempt) -> list[str]:
        customer = [f"customer:{attempt.customer_profile_id}"] if attempt.customer_profile_id else []
        return ["unsettled", *customer, "settled"]

    def _list(self, name: str, attempt: OpenAttempt) -> list[TransactionSummary] | None:
        if name not in self._lists:
            try:
                self._lists[name] = self._read_list(name)
            except GatewayNotFound:
                self._lists[name] = []           # e.g. a customer profile deleted since: nothing of it to find
            except GatewayError as exc:
                log.warning("charging: reading Authorize.Net's %s list failed (%s)", name.split(":")[0],
                            type(exc).__name__)
                self._lists[name] = None
        return self._lists[name]

    def _read_list(self, name: str) -> list[TransactionSummary]:
        if name == "unsettled":
            return self._gateway.list_unsettled_transactions()
        if name == "settled":
            found: list[TransactionSummary] = []
            for batch in self._gateway.list_settled_batches(self.since, self.until):
                found += self._gateway.list_batch_transactions(batch.batch_id)
            return found
        return self._gateway.list_customer_transactions(name.split(":", 1)[1])

    def _candidates(self, attempt: OpenAttempt, summaries: list[TransactionSummary]) -> list[TransactionSummary]:
        earliest = attempt.created - CLOCK_SLACK if attempt.created else None
        fits = [s for s in summaries if s.trans_id not in self._claimed
                and (earliest is None or s.submitted_at is None or s.submitted_at >= earliest)]
        if attempt.kind == REFUND:           # a refund request carries no invoice number of its own
            return [s for s in fits if s.status in REFUND_STATUSES and s.settle_amount in (attempt.amount,
                                                                                         Decimal("0.00"))]
        if attempt.invoice_number:           # unique per attempt: at most one charge carries it
            return [s for s in fits if s.invoice_number == attempt.invoice_number[:20]]
        return [s for s in fits if s.settle_amount in (attempt.amount, Decimal("0.00"))]

    def _read_details(self, trans_id: str) -> TransactionDetails:
        if trans_id not in self._details:
            self._details[trans_id] = self._gateway.get_transaction_details(trans_id)
        return self._details[trans_id]


def reconcile_attempt(services: Services, transaction_id: str, *, details: TransactionDetails | None = None,
                      records: GatewayRecords | None = None) -> bool:
    """Settle one attempt if the gateway knows its fate. True when nothing is left open. `details`: the gateway's
    record of it when the caller already has it (a gateway webhook); `records`: the sweep's shared reads."""
    attempt = attempts.read_open_attempt(services, transaction_id)
    if attempt is None:
        return True
    now = services.clock.now()
    complete = True
    if details is None:
        if records is None:
            records = GatewayRecords(services.gateway, (attempt.created or now) - CLOCK_SLACK, now)
        details, complete = records.find(attempt)
    if details is not None and attempt.kind == VOID and details.status != "voided":
        details = None                   # the original charge is there, but the void never happened
    result = _result_from(attempt, details) if details is not None else None
    if result is None:
        age = now - attempt.created if attempt.created else dt.timedelta()
        if details is not None or age < NEVER_SENT_AFTER:
            return False                 # still held, or too early to say it never arrived
        if not complete:                 # a list that could hold it was not read: never guess "never reached"
            _flag(services, attempt, "some of Authorize.Net's transaction lists could not be read, so it cannot be "
                                     "told whether it reached Authorize.Net")
            return False
        result = ChargeResult(ChargeOutcome.ERROR, "", "it never reached Authorize.Net (no record of it an hour "
                                                       "later), so you can try again")
    if not outcomes.may_settle(attempt.outcome, outcomes.label_of(result.outcome)):
        return False                     # e.g. a held charge the gateway stops showing: a person decides, not a timer
    attempts.commit(services, attempt, result)
    log.info("charging: reconciled %s as %s", attempt.ref_id, result.outcome)
    return not outcomes.is_open(outcomes.label_of(result.outcome))      # Held: settled for now, still checked


def reconcile_ref_id(services: Services, ref_id: str) -> bool:
    """Settle the attempt with this refId now (a gateway webhook's `merchantReferenceId`, e.g. fraud.approved).
    False when no such attempt exists or it is still undecided."""
    rows = services.dataverse.query(TRANSACTIONS, select=("w365_paymenttransactionid",),
                                    filter=odata.eq("w365_refid", ref_id), top=1)
    return bool(rows) and reconcile_attempt(services, rows[0]["w365_paymenttransactionid"])


def reconcile_queued(payload: Mapping[str, Any], services: Services) -> None:
    """The fast path after a lost answer: one check per back-off step, queued; the sweep does the same work when a
    message is lost or late."""
    transaction_id, try_number = str(payload["transaction_id"]), int(payload.get("try", 1))
    if reconcile_attempt(services, transaction_id):
        return
    if try_number < len(RECONCILE_SCHEDULE):
        next_check(services, transaction_id, None)
        attempts.schedule_reconcile(services, transaction_id, try_number + 1)
    else:
        flag_for_person(services, transaction_id, try_number)


def reconcile_due(services: Services, *, everything: bool = False) -> int:
    """The timer sweep: settle every open attempt whose `w365_nextcheckon` has come (or is empty), all of them with
    `everything=True`; move the others' next check along the back-off. Returns how many were settled."""
    now, settled = services.clock.now(), 0
    opens = " or ".join(f"w365_outcome eq {attempts.outcome_value(o)}" for o in outcomes.OPEN_OUTCOMES)
    due = "" if everything else f" and (w365_nextcheckon eq null or w365_nextcheckon le {dates.iso(now)})"
    rows = services.dataverse.query(TRANSACTIONS, select=TRANSACTION_COLUMNS, filter=f"statecode eq 0 and ({opens})"
                                    f"{due}", orderby="createdon asc")
    if not rows:
        return 0
    oldest = min((dates.parse(row.get("createdon")) or now for row in rows), default=now)
    records = GatewayRecords(services.gateway, oldest - CLOCK_SLACK, now)
    for row in rows:
        transaction_id = row["w365_paymenttransactionid"]
        try:
            if reconcile_attempt(services, transaction_id, records=records):
                settled += 1
            else:
                next_check(services, transaction_id, row)
        except (GatewayError, DataverseError) as exc:       # one bad row must not stop the sweep
            log.warning("charging: reconciling %s failed (%s)", row.get("w365_refid"), type(exc).__name__)
    return settled


def next_check(services: Services, transaction_id: str, row: Mapping[str, Any] | None) -> None:
    """Move an attempt that is still open to its next back-off step (counted from its creation); past the last step,
    ask a person once and keep checking daily."""
    if row is None:
        row = services.dataverse.retrieve(TRANSACTIONS, transaction_id, select=TRANSACTION_COLUMNS)
    now = services.clock.now()
    created = dates.parse(row.get("createdon")) or now
    when = next((created + step for step in _cumulative(RECONCILE_SCHEDULE) if created + step > now), None)
    if when is None:
        if not row.get("w365_needsattention"):
            flag_for_person(services, transaction_id, len(RECONCILE_SCHEDULE))
        when = now + RECONCILE_SCHEDULE[-1]
    services.dataverse.update(TRANSACTIONS, transaction_id, {"w365_nextcheckon": dates.iso(when)})


def flag_for_person(services: Services, transaction_id: str, tries: int) -> None:
    """Stop trying: a person settles it by hand (attempts.flag_for_person)."""
    attempt = attempts.read_open_attempt(services, transaction_id)
    if attempt is not None:
        _flag(services, attempt, f"Authorize.Net could not confirm it after {tries} checks")


def _flag(services: Services, attempt: OpenAttempt, why: str) -> None:
    amount = format_money(attempt.amount, attempt.currency)
    text = (f"{FLAG} this {attempt.kind.lower()} of {amount} is not settled: {why}. Look up "
            f"refId {attempt.ref_id} in the Authorize.Net Merchant Interface and settle it by hand; do not try again "
            "before that. The checks go on meanwhile.")
    attempts.flag_for_person(services, attempt.transaction_id, text, name=f"Reconcile {attempt.ref_id}")


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
