"""Exactly-once money movement, reusable by every capability that charges a card on file (invoices, orders).

The recipe (ARCHITECTURE "Exactly-once money", research/anchors.md §3 and §6):
1. Record the attempt first: a Pending `w365_paymenttransaction` with a unique `w365_refid`, created as the person who
   asked (Dataverse checks their privileges on that write). The refId is derived from (what is paid, attempt number),
   and the attempt number comes from the caller's own read, so two simultaneous requests make the same refId and the
   second create fails on the alternate key: "a charge is in progress", without a lock or an extra round trip.
2. Call the gateway once with that refId. Never resend: a lost answer makes the attempt Unknown and the reconciler
   (handlers/charging/reconciler.py) finds the truth by refId (`getTransactionDetails.transrefId`).
3. Record the answer in one atomic `$batch`: the transaction row and, when an invoice is paid, its amount paid, balance
   and state (If-Match on the invoice). If Dataverse is throttling or down, the approval is never lost: the attempt
   stays Pending (with the gateway transId when that single write passes), the write is queued (`charging.record`) and
   the reconciler completes it if the queue cannot.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping

from core import dates, declines, footprint, telemetry
from core.errors import (ConcurrencyConflict, ConflictInProgress, DataverseError, DuplicateRecord, GatewayAuthError,
                         GatewayRefused, GatewayUnavailable, InvalidNonce, OutcomeUnknown, RecordNotFound)
from core.ports import BatchOperation, BillTo, ChargeOutcome, ChargeResult, OpaqueData, Record
from core.services import Services
from handlers.charging import ledger, outcomes
# The outcome labels and the open ones live with the transition table; re-exported for the callers of this module.
from handlers.charging.outcomes import APPROVED, DECLINED, ERROR, HELD, OPEN_OUTCOMES, PENDING, UNKNOWN  # noqa: F401
from core.money import CURRENCY_EXPAND, Currency, currency_of, format_money, require_merchant_currency

log = logging.getLogger(__name__)

TRANSACTIONS = "w365_paymenttransactions"
TRANSACTION_COLUMNS = (
    "w365_paymenttransactionid", "w365_name", "w365_refid", "w365_amount", "w365_type", "w365_outcome", "statecode",
    "w365_gatewaytransactionid", "w365_transactionresult", "createdon", "_w365_invoiceid_value",
    "_w365_salesorderid_value", "_w365_paymentprofileid_value", "_w365_accountid_value", "w365_nextcheckon",
    "w365_needsattention")
PROFILE_COLUMNS = ("w365_paymentprofileid", "w365_name", "w365_customerprofileid", "w365_paymentprofileidgateway",
                   "w365_cardlast4", "w365_isdefault", "w365_syncstatus", "statecode", "_w365_accountid_value")

CHARGE, REFUND, VOID = "Charge", "Refund", "Void"
RECORD_WORK = "charging.record"
RECONCILE_WORK = "charging.reconcile"
# Kill Bill's janitor waits 5m, 1h, then daily (org.killbill.payment.janitor.unknown.retries); a handful of tries,
# then a person looks (anchors.md §3).
RECONCILE_SCHEDULE = (dt.timedelta(minutes=5), dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(days=1),
                      dt.timedelta(days=1))
COMMIT_TRIES = 3
# The queued write of a gateway answer: tried again after each delay, then flagged for a person (about 4 hours).
RECORD_RETRY_DELAYS = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=30),
                       dt.timedelta(hours=1), dt.timedelta(hours=2))
NEEDS_PERSON = "Needs a person:"
WAITING = "Sent to Authorize.Net; waiting for its answer."
# A transaction's currency is its invoice's, else its order's: expanded in the same read as the row.
ORDER_CURRENCY = f"w365_salesorderid($select=salesorderid;$expand={CURRENCY_EXPAND})"
CURRENCY_EXPANDS = f"w365_invoiceid($select=invoiceid;$expand={CURRENCY_EXPAND}),{ORDER_CURRENCY}"


def currency_of_transaction(row: Record) -> Currency | None:
    """The currency of a transaction row read with CURRENCY_EXPANDS (or ledger.expand_invoice and ORDER_CURRENCY)."""
    return currency_of(row.get("w365_invoiceid")) or currency_of(row.get("w365_salesorderid"))


def outcome_value(label: str) -> int:
    return footprint.choice("w365_paymenttransaction", "w365_outcome", label)


def outcome_label(value: int | None) -> str:
    return footprint.label("w365_paymenttransaction", "w365_outcome", value) if value is not None else PENDING


def type_value(label: str) -> int:
    return footprint.choice("w365_paymenttransaction", "w365_type", label)


def type_label(value: int | None) -> str:
    return footprint.label("w365_paymenttransaction", "w365_type", value) if value is not None else CHARGE


@dataclass(frozen=True)
class PaymentAttempt:
    """What became of one attempt. `recorded` is False when the gateway answered but Dataverse could not be written
    yet: the row says Pending and the write is queued (the money moved as `outcome` says)."""
    transaction_id: str
    ref_id: str
    amount: Decimal
    outcome: str                     # Approved, Declined, Error, Held For Review, Unknown
    message: str                     # for the person who asked
    gateway_transaction_id: str = ""
    auth_code: str = ""
    recorded: bool = True
    profile_id: str = ""             # a new card saved with its approved charge: its w365_paymentprofile row

    @property
    def approved(self) -> bool:
        return self.outcome == APPROVED


@dataclass(frozen=True)
class NewCardCharge:
    """A card entered once (an Accept.js nonce), charged without a profile on file. With `create_profile` the gateway
    saves it as a new customer profile when the charge is approved (the account has none yet)."""
    opaque: OpaqueData
    bill_to: BillTo
    merchant_customer_id: str
    email: str = ""
    create_profile: bool = True


@dataclass(frozen=True)
class SavedCard:
    """The row of a card the gateway saved with its approved charge, written in the changeset that records the
    outcome: `ops` go before the transaction row, which points at `bind` (`$<content id>` of the row created in
    `ops`, or an existing row's `/w365_paymentprofiles(<id>)`)."""
    ops: tuple[BatchOperation, ...]
    bind: str
    note: str = ""                   # said after the charge's own message ("Visa XXXX1111 is saved ...")


@dataclass(frozen=True)
class OpenAttempt:
    """A transaction row not settled yet, with what recording its outcome needs."""
    transaction_id: str
    ref_id: str
    amount: Decimal
    kind: str                        # Charge, Refund, Void
    outcome: str = PENDING
    invoice: Record | None = None    # the invoice row with its @odata.etag, when the money pays an invoice
    etag: str | None = None          # the transaction row's, when read (None: If-Match *)
    gateway_transaction_id: str = ""
    created: dt.datetime | None = None
    invoice_number: str = ""
    customer_profile_id: str = ""
    payment_profile_id: str = ""
    result_text: str = ""
    currency: Currency | None = None  # the invoice's or order's: every amount in a message is written in it
    source: str = ""                 # w365_source label (Manual, Autopay, Retry, ...): dunning follows automatic ones
    profile_id: str = ""             # the w365_paymentprofile row charged


# --- what callers read before charging -----------------------------------------------------------------------------

def ref_id_for(ref_key: str, attempt_number: int) -> str:
    """Authorize.Net refId (at most 20 characters): 12 hex of a digest of what is paid, '-', the attempt number.
    Refunds of a charge append 'R<n>' to the charge's refId, so at most 9999 attempts keep it within 20."""
    if not 1 <= attempt_number <= 9999:
        raise ValueError("attempt_number must be 1..9999")
    return f"{hashlib.sha256(ref_key.encode()).hexdigest()[:12].upper()}-{attempt_number}"


def gateway_invoice_number(number: str, ref_id: str) -> str:
    """order.invoiceNumber (at most 20): the invoice's number with the attempt's, `INV-1001-2`. Authorize.Net's
    duplicate window compares it, so a resend of the same attempt is caught while a second partial payment of the
    same amount is not refused; the reconciler looks candidates up by the same value."""
    suffix = "-" + ref_id.rsplit("-", 1)[-1]
    return (number or "")[:20 - len(suffix)] + suffix


def next_attempt_number(transactions: Iterable[Record]) -> int:
    """1 + the charges already made for the thing (any outcome), from the same read that checked nothing is open."""
    return 1 + sum(1 for t in transactions if type_label(t.get("w365_type")) == CHARGE)


def open_charges(transactions: Iterable[Record]) -> list[Record]:
    return [t for t in transactions if type_label(t.get("w365_type")) == CHARGE
            and outcomes.is_open(outcome_label(t.get("w365_outcome"))) and t.get("statecode") in (0, None)]


def attempt_for_request(transactions: Iterable[Record], request_id: str | None) -> Record | None:
    """The attempt an earlier delivery of the same RequestId made (its id is in the row's name)."""
    if not request_id:
        return None
    return next((t for t in transactions if request_id in (t.get("w365_name") or "")), None)


def gateway_reference(attempt: PaymentAttempt) -> str:
    return f"Authorize.Net transaction {attempt.gateway_transaction_id}" + (
        f", authorization {attempt.auth_code}" if attempt.auth_code else "")


def attempt_name(kind: str, what: str, attempt_number: int, request_id: str | None) -> str:
    """At most 100 characters (the column's length). `what` is cut, never the RequestId: a redelivery finds its
    earlier attempt by it (`attempt_for_request`), so a lost one would be charged again."""
    suffix = f" #{attempt_number}" + (f" (request {request_id})" if request_id else "")
    return f"{kind} {what}"[:100 - len(suffix)] + suffix


# --- the attempt ------------------------------------------------------------------------------------------------

def collect_payment(services: Services, *, account_id: str, profile: Record, amount: Decimal, ref_key: str,
                    attempt_number: int, invoice_number: str, invoice: Record | None = None,
                    salesorder_id: str | None = None, request_id: str | None = None,
                    acting: Services | None = None, description: str = "", source: str | None = None,
                    billing_run_id: str | None = None, currency: Currency | None = None) -> PaymentAttempt:
    """Charge `amount` to a synced card on file exactly once and record it.

    The caller has read (in one request) what it charges and checked its own rules, including that no charge of the
    same thing is open (`open_charges`) and the attempt number (`next_attempt_number`). `profile` is a
    w365_paymentprofile row (PROFILE_COLUMNS). `invoice`, when given, is the invoice row (ledger.INVOICE_COLUMNS and its
    @odata.etag) whose amount paid, balance and state follow an approval in the same changeset. `acting` is
    `services.for_user(initiating user)`: the attempt row is created as that person. `source` (a w365_source label:
    Manual, Autopay, Retry...) and `billing_run_id` (the w365_billingrun that made it) are recorded on the row. Raises
    ConflictInProgress when an attempt with the same number exists (a simultaneous request won); a decline is an
    outcome, not an exception."""
    # Every path that charges comes through here: the last place to refuse a record in another currency.
    require_merchant_currency(services.settings, currency or currency_of(invoice), invoice_number or "The record")
    ref_id = ref_id_for(ref_key, attempt_number)
    body: dict[str, Any] = {
        "w365_name": attempt_name(CHARGE, invoice_number, attempt_number, request_id),
        "w365_refid": ref_id, "w365_amount": amount, "w365_type": type_value(CHARGE),
        "w365_outcome": outcome_value(PENDING), "w365_transactionresult": WAITING,
        "w365_accountid@odata.bind": f"/accounts({account_id})",
        "w365_paymentprofileid@odata.bind": f"/w365_paymentprofiles({profile['w365_paymentprofileid']})",
    }
    if invoice is not None:
        body["w365_invoiceid@odata.bind"] = f"/invoices({invoice['invoiceid']})"
    if salesorder_id:
        body["w365_salesorderid@odata.bind"] = f"/salesorders({salesorder_id})"
    if source:
        body["w365_source"] = footprint.choice("w365_paymenttransaction", "w365_source", source)
    if billing_run_id:
        body["w365_billingrunid@odata.bind"] = f"/w365_billingruns({billing_run_id})"
    transaction_id = start_attempt(acting or services, body, "A charge of this is in progress")
    invoice_number = gateway_invoice_number(invoice_number, ref_id)
    attempt = OpenAttempt(transaction_id, ref_id, amount, CHARGE, invoice=invoice, invoice_number=invoice_number,
                          currency=currency or currency_of(invoice),
                          customer_profile_id=profile["w365_customerprofileid"],
                          payment_profile_id=profile["w365_paymentprofileidgateway"], source=source or "",
                          profile_id=profile["w365_paymentprofileid"])
    return send_attempt(services, attempt, lambda: services.gateway.charge_profile(
        attempt.customer_profile_id, attempt.payment_profile_id, amount, ref_id=ref_id,
        invoice_number=invoice_number[:20], description=description[:255]))


def collect_new_card_payment(services: Services, *, account_id: str, card: NewCardCharge, amount: Decimal,
                             ref_key: str, attempt_number: int, invoice_number: str,
                             save_card: Callable[[ChargeResult], SavedCard | None],
                             salesorder_id: str | None = None, request_id: str | None = None,
                             acting: Services | None = None, description: str = "",
                             currency: Currency | None = None) -> PaymentAttempt:
    """Charge a new card (an Accept.js nonce) exactly once and record it, as `collect_payment` does a card on file:
    the Pending attempt first (no card row yet), one createTransaction, the answer in one changeset. On approval
    `save_card(result)` (the gateway's profileResponse in hand) says which card row the changeset writes with the
    outcome; declined, the card is not saved anywhere. A lost answer is Unknown and reconciled, never resent: the
    nonce is spent whatever happened. A card the gateway saved with a charge whose answer was lost has no row; the
    account's Sync Payment Profiles imports it (it finds the customer profile by merchantCustomerId when the account
    does not know its id yet)."""
    require_merchant_currency(services.settings, currency, invoice_number or "The record")
    ref_id = ref_id_for(ref_key, attempt_number)
    body: dict[str, Any] = {
        "w365_name": attempt_name(CHARGE, invoice_number, attempt_number, request_id),
        "w365_refid": ref_id, "w365_amount": amount, "w365_type": type_value(CHARGE),
        "w365_outcome": outcome_value(PENDING), "w365_transactionresult": WAITING,
        "w365_accountid@odata.bind": f"/accounts({account_id})",
    }
    if salesorder_id:
        body["w365_salesorderid@odata.bind"] = f"/salesorders({salesorder_id})"
    transaction_id = start_attempt(acting or services, body, "A charge of this is in progress")
    invoice_number = gateway_invoice_number(invoice_number, ref_id)
    attempt = OpenAttempt(transaction_id, ref_id, amount, CHARGE, invoice_number=invoice_number, currency=currency)
    return send_attempt(services, attempt, lambda: services.gateway.charge_new_card(
        card.opaque, amount, ref_id=ref_id, invoice_number=invoice_number[:20], bill_to=card.bill_to,
        merchant_customer_id=card.merchant_customer_id, email=card.email, description=description[:255],
        create_profile=card.create_profile), save_card=save_card)


def links_of(charge: Record) -> dict[str, str]:
    """The lookups of a charge as binds, for a refund or void row that belongs to the same things."""
    links = {}
    for column, entity_set in (("w365_invoiceid", "invoices"), ("w365_salesorderid", "salesorders"),
                               ("w365_accountid", "accounts"), ("w365_paymentprofileid", "w365_paymentprofiles")):
        if charge.get(f"_{column}_value"):
            links[f"{column}@odata.bind"] = f"/{entity_set}({charge[f'_{column}_value']})"
    return links


def start_attempt(acting: Services, body: Mapping[str, Any], conflict: str) -> str:
    """Create the attempt row. An open one (Pending) gets its first reconciler check: if the process dies before
    the answer is written, the sweep finds it by `w365_nextcheckon` (handlers/charging/reconciler.py)."""
    if body.get("w365_outcome") == outcome_value(PENDING):
        body = {**body, "w365_nextcheckon": first_check(acting)}
    try:
        return acting.dataverse.create(TRANSACTIONS, body)
    except DuplicateRecord:
        raise ConflictInProgress(f"{conflict}: another request started it a moment ago. Wait for it to finish, "
                                 "then refresh.") from None


def send_attempt(services: Services, attempt: OpenAttempt, send: Callable[[], ChargeResult], *,
                 save_card: Callable[[ChargeResult], SavedCard | None] | None = None) -> PaymentAttempt:
    """Call the gateway once for a recorded attempt and record what it said (`save_card`: collect_new_card_payment)."""
    telemetry.bind(ref_id=attempt.ref_id)
    verb = _verb(attempt.kind)
    try:
        result = send()
    except OutcomeUnknown:
        text = (f"Authorize.Net did not answer, so it is not known yet whether the {verb} of "
                f"{format_money(attempt.amount, attempt.currency)} went through. The outcome is being confirmed with "
                "Authorize.Net; do not try again until this transaction shows Approved or Error.")
        schedule_reconcile(services, attempt.transaction_id, 1)
        _settle_quietly(services, attempt, UNKNOWN, {"w365_transactionresult": text,
                                                     "w365_nextcheckon": first_check(services)})
        return PaymentAttempt(attempt.transaction_id, attempt.ref_id, attempt.amount, UNKNOWN, text)
    except GatewayUnavailable:
        text = f"Authorize.Net could not be reached, so nothing happened ({verb} not sent). You can try again."
        return _closed_without_answer(services, attempt, text)
    except GatewayAuthError:
        _closed_without_answer(services, attempt, "Authorize.Net refused the service's credentials; nothing "
                                                  "happened. An administrator must check the settings.")
        raise
    except InvalidNonce:
        return _closed_without_answer(services, attempt, "The card details expired or were already used before they "
                                                         f"reached Authorize.Net, so nothing happened ({verb} not "
                                                         "made). Enter the card again.")
    except GatewayRefused as exc:
        # A readable refusal of the request itself (E00040 unknown profile, E00003 ...): no transaction was made.
        text = f"Authorize.Net refused the request: {exc.text} Nothing happened ({verb} not made)."
        return _closed_without_answer(services, attempt, text)
    saved = _saved_card(save_card, result) if save_card else None
    return record_result(services, attempt, result, saved)


def _saved_card(save_card: Callable[[ChargeResult], SavedCard | None], result: ChargeResult) -> SavedCard | None:
    """The card row to write with an approved charge. Whatever goes wrong here, the approval is recorded."""
    if result.outcome != ChargeOutcome.APPROVED:
        return None
    try:
        return save_card(result)
    except Exception:  # noqa: BLE001 - the money moved: record it; the card can be imported by Sync later
        log.exception("charging: saving the card of %s failed; the charge is recorded without it", result.ref_id)
        return None


def record_result(services: Services, attempt: OpenAttempt, result: ChargeResult,
                  saved: SavedCard | None = None) -> PaymentAttempt:
    """Write the gateway's answer (and `saved`, the card row of a new card, in the same changeset); on a Dataverse
    failure keep the answer safe in the queue (the money already moved)."""
    done = describe(attempt, result)
    try:
        try:
            profile_id = commit(services, attempt, result, saved)
        except DataverseError as exc:
            if saved is None or isinstance(exc, ConcurrencyConflict):
                raise
            # The card row must never cost the outcome: record the charge alone (Sync imports the card later).
            log.warning("charging: writing %s with its new card failed (%s); recording the charge alone",
                        attempt.ref_id, type(exc).__name__)
            saved, profile_id = None, commit(services, attempt, result)
        if saved is not None:
            done = dataclasses.replace(done, profile_id=profile_id,
                                       message=f"{done.message} {saved.note}".strip())
    except DataverseError as exc:
        log.warning("charging: recording %s of %s failed (%s); queued", result.outcome, attempt.ref_id,
                    type(exc).__name__)
        defer(services, attempt, result)
        later = " Dynamics 365 was busy, so this transaction and the invoice will show it in a few minutes."
        return dataclasses.replace(done, recorded=False, message=done.message + later)
    if done.outcome == HELD:
        schedule_reconcile(services, attempt.transaction_id, 1)      # until the review ends
    return done


def commit(services: Services, attempt: OpenAttempt, result: ChargeResult, saved: SavedCard | None = None) -> str:
    """One atomic changeset; on a 412 (someone changed the invoice or the row) re-read and decide again. Writes
    nothing when the transition table does not allow the answer over what the row says now. `saved`: a new card's
    row, written first in the same changeset, the transaction row pointing at it. Returns that row's id ("" without
    one)."""
    for _ in range(COMMIT_TRIES):
        if not outcomes.may_settle(attempt.outcome, outcomes.label_of(result.outcome)):
            log.info("charging: %s is %s; %s does not apply", attempt.ref_id, attempt.outcome, result.outcome)
            return ""
        settlement = settlement_ops(attempt, result)
        if saved is not None:
            first = settlement[0]
            settlement[0] = dataclasses.replace(first, body={**first.body,
                                                             "w365_paymentprofileid@odata.bind": saved.bind})
        card_ops = list(saved.ops) if saved is not None else []
        dunning = _with_dunning(services, attempt, result, card_ops + settlement)
        ops = dunning.ops
        # The button's w365_operation row rides in the same changeset when the handler asked for it (core.operations).
        operation = services.operation.batch_operation(describe(attempt, result)) if (
            services.operation is not None and result.outcome == ChargeOutcome.APPROVED) else None
        try:
            results = services.dataverse.batch(ops + [operation] if operation else ops)
            if operation:
                services.operation.committed()
            dunning.send(services)
            return _saved_row_id(saved, ops, results)
        except ConcurrencyConflict:
            fresh = read_open_attempt(services, attempt.transaction_id)
            if fresh is None:
                return ""                # another writer (the queue, the reconciler) recorded it first
            attempt = fresh
    raise ConcurrencyConflict(f"the invoice of attempt {attempt.ref_id} kept changing")


def _saved_row_id(saved: SavedCard | None, ops: list[BatchOperation], results: list[Any]) -> str:
    if saved is None:
        return ""
    if not saved.bind.startswith("$"):
        return saved.bind.rsplit("(", 1)[-1].rstrip(")")
    index = next((i for i, op in enumerate(ops) if op.content_id == saved.bind[1:]), None)
    return (results[index].record_id or "") if index is not None and index < len(results) else ""


def defer(services: Services, attempt: OpenAttempt, result: ChargeResult) -> None:
    """The approval (or decline) must not be lost: keep the transId on the row if that single write passes, queue
    the full write, and let the reconciler finish if everything else fails."""
    if result.trans_id:
        _update_quietly(services, attempt, {"w365_gatewaytransactionid": result.trans_id})
    try:
        services.queue.send(RECORD_WORK, {"transaction_id": attempt.transaction_id,
                                          "result": dataclasses.asdict(result)},
                            message_id=f"{RECORD_WORK}:{attempt.transaction_id}")
    except Exception:  # noqa: BLE001 - the reconciler still finds it by refId
        log.exception("charging: could not queue the write of %s", attempt.ref_id)
    schedule_reconcile(services, attempt.transaction_id, 1)


def settlement_ops(attempt: OpenAttempt, result: ChargeResult) -> list[BatchOperation]:
    """The transaction row's final (or Held) values and, for an approval, the invoice's, as one changeset."""
    text = describe(attempt, result).message
    row: dict[str, Any] = {"w365_outcome": outcome_value(result.outcome), "w365_transactionresult": text[:2000],
                           "w365_responsecode": result.response_code[:10], "w365_authcode": result.auth_code[:10]}
    if result.trans_id and result.error_code != "11":        # error 11 carries the *original's* transId
        row["w365_gatewaytransactionid"] = result.trans_id
    if result.outcome in (ChargeOutcome.DECLINED, ChargeOutcome.ERROR):
        row.update(statecode=1, statuscode=2)
    decline = decline_of(result)
    if decline is not None:              # CONTRACT §6: every decline keeps its reason code and class
        row.update(w365_reasoncode=decline.reason_code[:10],
                   w365_declinetype=footprint.choice("w365_paymenttransaction", "w365_declinetype", decline.kind))
        if decline.kind == declines.MERCHANT:
            row["w365_needsattention"] = True
    ops = [BatchOperation.update(TRANSACTIONS, attempt.transaction_id, row, etag=attempt.etag)]
    if result.outcome == ChargeOutcome.APPROVED and attempt.invoice is not None:
        delta = attempt.amount if attempt.kind == CHARGE else -attempt.amount
        status = f"{attempt.kind} of {format_money(attempt.amount, attempt.currency)} approved ({result.trans_id})"
        ops += ledger.invoice_payment_ops(attempt.invoice, delta, status)
    return ops


def describe(attempt: OpenAttempt, result: ChargeResult) -> PaymentAttempt:
    verb, amount = _verb(attempt.kind), format_money(attempt.amount, attempt.currency)
    reason = (result.reason or "").rstrip(".")
    if result.outcome == ChargeOutcome.APPROVED:
        text = f"{verb.capitalize()} of {amount} approved by Authorize.Net (transaction {result.trans_id}" + (
            f", authorization {result.auth_code})." if result.auth_code else ").")
    elif result.outcome == ChargeOutcome.HELD_FOR_REVIEW:
        text = (f"The {verb} of {amount} is held for review by Authorize.Net's fraud filters (transaction "
                f"{result.trans_id}). It completes or is declined when the review ends; nothing is recorded on the "
                "invoice until then.")
    elif result.outcome == ChargeOutcome.DECLINED:
        text = f"The card was declined: {reason}. Nothing was charged. {decline_of(result).advice}"
    elif result.error_code == "11":
        text = (f"Authorize.Net refused this as a duplicate of an identical {verb} made in the last few minutes "
                f"(transaction {result.trans_id}); nothing more happened. To make the same {verb} again on purpose, "
                "wait ten minutes.")
    else:
        code = f" (error {result.error_code})" if result.error_code else ""
        text = f"Authorize.Net could not process the {verb}: {reason}{code}. Nothing happened."
    return PaymentAttempt(attempt.transaction_id, attempt.ref_id, attempt.amount, outcomes.label_of(result.outcome),
                          text, result.trans_id if result.error_code != "11" else "", result.auth_code)


def _with_dunning(services: Services, attempt: OpenAttempt, result: ChargeResult, ops: list[BatchOperation]):
    """The dunning changes of this outcome, in the same changeset (handlers/dunning/settlement.py says why). Imported
    here, not at the top: dunning builds on charging, and this is the one place charging hands over to it."""
    from handlers.dunning.settlement import with_dunning
    return with_dunning(services, transaction_id=attempt.transaction_id, kind=attempt.kind, source=attempt.source,
                        profile_id=attempt.profile_id, amount=attempt.amount, invoice=attempt.invoice, result=result,
                        decline=decline_of(result), ops=ops)


def decline_of(result: ChargeResult) -> declines.Decline | None:
    """The class of a declined answer (a decline whose codes say nothing more is Soft: trying again may work)."""
    if result.outcome != ChargeOutcome.DECLINED:
        return None
    return declines.classify(result.response_code, result.error_code) or declines.Decline(result.error_code,
                                                                                        declines.SOFT)


# --- reading an open attempt back (queue, reconciler) ----------------------------------------------------------

def read_open_attempt(services: Services, transaction_id: str) -> OpenAttempt | None:
    """The attempt as Dataverse has it now, with its invoice (and that invoice's ETag); None once it is settled."""
    try:
        row = services.dataverse.retrieve(
            TRANSACTIONS, transaction_id, select=TRANSACTION_COLUMNS + ("w365_source",),
            expand=f"{ledger.expand_invoice()},{ORDER_CURRENCY},"
                   f"w365_paymentprofileid($select={','.join(PROFILE_COLUMNS)})")
    except RecordNotFound:
        return None
    outcome = outcome_label(row.get("w365_outcome"))
    if not outcomes.is_open(outcome) or row.get("statecode") == 1:
        return None
    telemetry.bind(ref_id=row["w365_refid"])         # the reconciler and queued results log about this attempt
    invoice = row.get("w365_invoiceid")
    profile = row.get("w365_paymentprofileid") or {}
    return OpenAttempt(
        transaction_id=transaction_id, ref_id=row["w365_refid"], amount=ledger.money(row.get("w365_amount")),
        kind=type_label(row.get("w365_type")), outcome=outcome, invoice=invoice or None, etag=row.get("@odata.etag"),
        gateway_transaction_id=row.get("w365_gatewaytransactionid") or "",
        created=dates.parse(row.get("createdon")),
        invoice_number=gateway_invoice_number((invoice or {}).get("invoicenumber") or "", row["w365_refid"])
        if invoice else "",
        customer_profile_id=profile.get("w365_customerprofileid") or "",
        payment_profile_id=profile.get("w365_paymentprofileidgateway") or "",
        result_text=row.get("w365_transactionresult") or "", currency=currency_of_transaction(row),
        source=footprint.label("w365_paymenttransaction", "w365_source", row["w365_source"])
        if row.get("w365_source") is not None else "",
        profile_id=row.get("_w365_paymentprofileid_value") or "")


def record_queued_result(payload: Mapping[str, Any], services: Services) -> None:
    """The queued write of an answer Dataverse could not take at once. A failed try queues the next one on a
    back-off (the try number rides in the payload, so it works alike on Service Bus and in process, and the broker's
    own redelivery is left for when even that send fails); when the last try fails the attempt is flagged for a
    person, so the write of an approved charge is never dropped silently. The reconciler settles it meanwhile too."""
    transaction_id, tries = str(payload["transaction_id"]), int(payload.get("try", 1))
    try:
        attempt = read_open_attempt(services, transaction_id)
        if attempt is None:
            return                       # recorded meanwhile (a redelivery, or the reconciler)
        commit(services, attempt, ChargeResult(**payload["result"]))
        return
    except Exception as exc:  # noqa: BLE001 - whatever keeps the write from happening, a person must hear of it
        failure = type(exc).__name__
    if tries <= len(RECORD_RETRY_DELAYS):
        log.warning("charging: queued write of %s failed (%s, try %d); trying again later", transaction_id, failure,
                    tries)
        services.queue.send(RECORD_WORK, {**payload, "try": tries + 1},
                            message_id=f"{RECORD_WORK}:{transaction_id}:{tries + 1}",
                            delay=RECORD_RETRY_DELAYS[tries - 1])
        return
    result = payload.get("result") or {}
    log.error("charging: queued write of %s failed %d times (%s); flagged for a person", transaction_id, tries,
              failure)
    flag_for_person(services, transaction_id, f"{NEEDS_PERSON} Authorize.Net answered {result.get('outcome')} "
                    f"(transaction {result.get('trans_id') or 'none'}) but writing it to this row and its invoice "
                    f"failed {tries} times ({failure}). Check the invoice against Authorize.Net and record it by hand; "
                    "do not charge again before that.", name=f"Record {transaction_id}")


def flag_for_person(services: Services, transaction_id: str, text: str, *, name: str) -> None:
    """Stop trying: `w365_needsattention` and the reason on the transaction, and a Failed w365_operation row (one
    per transaction) the administrators' views list. Raises if Dataverse refuses (the caller's try is redone)."""
    services.dataverse.update(TRANSACTIONS, transaction_id, {"w365_needsattention": True,
                                                             "w365_transactionresult": text[:2000]})
    try:
        services.dataverse.create("w365_operations", {
            "w365_name": name[:100], "w365_message": text[:2000],
            "w365_requestid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"w365:needsattention:{transaction_id}")),
            "w365_status": footprint.choice("w365_operation", "w365_status", "Failed"),
            "w365_messagename": "w365_ReconcilePayment", "w365_regardingtable": "w365_paymenttransaction",
            "w365_regardingid": transaction_id})
    except DuplicateRecord:
        pass                             # flagged before


def first_check(services: Services) -> str:
    """`w365_nextcheckon` of an attempt that has just become open (Pending, Unknown): the back-off's first step."""
    return dates.iso(services.clock.now() + RECONCILE_SCHEDULE[0])


def schedule_reconcile(services: Services, transaction_id: str, try_number: int) -> None:
    try:
        services.queue.send(RECONCILE_WORK, {"transaction_id": transaction_id, "try": try_number},
                            message_id=f"{RECONCILE_WORK}:{transaction_id}:{try_number}",
                            delay=RECONCILE_SCHEDULE[try_number - 1])
    except Exception:  # noqa: BLE001 - the timer sweep still finds every open attempt
        log.exception("charging: could not schedule reconciliation of %s", transaction_id)


# --- helpers --------------------------------------------------------------------------------------------------------

def _closed_without_answer(services: Services, attempt: OpenAttempt, text: str) -> PaymentAttempt:
    """Nothing reached the gateway (or it refused the request outright): the attempt is an Error, and the thing can
    be paid again. If this write fails the row stays Pending and the reconciler, finding nothing, closes it."""
    if not _settle_quietly(services, attempt, ERROR, {"w365_transactionresult": text, "statecode": 1,
                                                      "statuscode": 2}):
        schedule_reconcile(services, attempt.transaction_id, 1)
    return PaymentAttempt(attempt.transaction_id, attempt.ref_id, attempt.amount, ERROR, text)


def _settle_quietly(services: Services, attempt: OpenAttempt, outcome: str, body: Mapping[str, Any]) -> bool:
    """A settlement without the gateway's answer (lost, or never sent), through the transition table."""
    if not outcomes.may_settle(attempt.outcome, outcome):
        log.warning("charging: %s is %s; not changed to %s", attempt.ref_id, attempt.outcome, outcome)
        return False
    return _update_quietly(services, attempt, {"w365_outcome": outcome_value(outcome), **body})


def _update_quietly(services: Services, attempt: OpenAttempt, body: Mapping[str, Any]) -> bool:
    try:
        services.dataverse.update(TRANSACTIONS, attempt.transaction_id, body, etag=attempt.etag)
        return True
    except DataverseError as exc:
        log.warning("charging: could not update attempt %s (%s)", attempt.ref_id, type(exc).__name__)
        return False


def _verb(kind: str) -> str:
    return {CHARGE: "charge", REFUND: "refund", VOID: "void"}[kind]
