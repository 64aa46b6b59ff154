"""w365_RefundTransaction: give back all or part of an approved charge, through the same attempt-first core.

A charge not settled yet can only be voided, in full; a settled one is refunded, in part or in full (as Odoo's
payment_authorize does). Never more than was charged minus earlier refunds. A refund's refId is the charge's refId +
`R<n>`, so the earlier refunds of a charge are one `startswith` query away and two simultaneous refunds collide on the
alternate key like two charges do.

Round trips of an approved refund or void: the charge with its invoice and the person's right to read it (one read
$batch), its earlier refunds with the person's right to change its invoice (another), the attempt (created as the
person), one changeset with the outcome row; and two gateway calls (the charge's status, then the refund or void).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core import odata, permissions
from core.context import PluginContext
from core.errors import BusinessRuleViolation, ConflictInProgress, GatewayNotFound, GatewayRefused
from core.ports import Read, Record, TransactionDetails
from core.services import Services
from core.steps import Outcome
from handlers.charging import attempts, ledger, outcomes
from handlers.charging.attempts import (APPROVED, CHARGE, PROFILE_COLUMNS, REFUND, TRANSACTION_COLUMNS,
                                        TRANSACTIONS, VOID, OpenAttempt)
from core.money import format_money

UNSETTLED = frozenset({"capturedPendingSettlement", "authorizedPendingCapture"})
SETTLED = frozenset({"settledSuccessfully"})
IN_PROGRESS = "A refund of this charge is in progress"
MESSAGE = "w365_RefundTransaction"


def refund_transaction_step(ctx: PluginContext, services: Services) -> Outcome:
    return refund_transaction(services, ctx.primary_entity_id, ctx.param("Amount"), user_id=ctx.initiating_user_id,
                              request_id=ctx.request_id)


@dataclass(frozen=True)
class RefundPlan:
    """What `decide` settled on: a void (unsettled, always in full) or a refund, of `amount`, as attempt `number`."""
    kind: str                        # VOID or REFUND
    amount: Decimal
    ref_id: str
    number: int
    card: str                        # the masked card the charge was made to (a refund names it)


def refund_transaction(services: Services, transaction_id: str, amount: Decimal | None, *, user_id: str,
                       request_id: str | None = None) -> Outcome:
    """Read, validate, decide, act: every refusal comes before the attempt row and the gateway's money call."""
    # The person's rights are asked in the reads (the invoice's amount paid is written with the service's rights);
    # the refund attempt is created as the person.
    check = permissions.AccessCheck(MESSAGE, user_id, {"Target": transaction_id}, action="refund this charge")
    acting = services.for_user(user_id)
    charge = read_charge(services, transaction_id, check)
    validate_charge(charge)
    earlier = read_earlier_refunds(services, charge, user_id)
    replay = attempts.attempt_for_request(earlier, request_id)
    if replay is not None:
        return _replayed(replay)
    amount = validate_amount(charge, earlier, amount)
    details = read_gateway_record(services, charge)
    plan = decide(charge, earlier, amount, details)
    if services.operation is not None:      # the outcome rides in the changeset that records the approval
        services.operation.approval_message = lambda done: approved_message(charge, plan, done)
    result = act(services, acting, charge, plan, request_id)
    return _outcome(charge, plan, result)


# --- read ------------------------------------------------------------------------------------------------------------

def read_charge(services: Services, transaction_id: str, check: permissions.AccessCheck) -> Record:
    """The charge with its invoice (ETag, currency), its order's currency and the card it was made to, and the
    person's rights on it: one request."""
    charge, *granted = services.dataverse.read([Read.retrieve(
        TRANSACTIONS, transaction_id, select=TRANSACTION_COLUMNS,
        expand=f"{ledger.expand_invoice()},{attempts.ORDER_CURRENCY},"
               f"w365_paymentprofileid($select={','.join(PROFILE_COLUMNS)})"), *check.reads()])
    check.verify(granted)
    return charge


def read_earlier_refunds(services: Services, charge: Record, user_id: str) -> list[Record]:
    """Every refund or void attempt of the charge (their refIds are the charge's + `R<n>`), and the person's right to
    change the charge's invoice: one request."""
    invoice_id = charge.get("_w365_invoiceid_value")
    check = permissions.AccessCheck(MESSAGE, user_id, {"the charge's invoice": invoice_id} if invoice_id else {},
                                    action="refund this charge")
    earlier, *granted = services.dataverse.read([Read.query(
        TRANSACTIONS, select=TRANSACTION_COLUMNS,
        filter=f"startswith(w365_refid,{odata.literal(charge['w365_refid'] + 'R')})"), *check.reads()])
    check.verify(granted)
    return earlier


def read_gateway_record(services: Services, charge: Record) -> TransactionDetails:
    """The gateway's own record of the charge: whether it has settled decides void or refund."""
    trans_id = charge["w365_gatewaytransactionid"]
    try:
        return services.gateway.get_transaction_details(trans_id)
    except GatewayNotFound:
        raise BusinessRuleViolation(f"Authorize.Net has no record of charge {trans_id}. Nothing was "
                                    "refunded.") from None
    except GatewayRefused as exc:        # e.g. E00011: the Transaction Details API is off for this merchant
        raise BusinessRuleViolation(f"Authorize.Net could not show charge {trans_id}: {exc.code} {exc.text} "
                                    "Nothing was refunded.") from None


# --- validate --------------------------------------------------------------------------------------------------------

def validate_charge(charge: Record) -> None:
    kind, outcome = attempts.type_label(charge.get("w365_type")), attempts.outcome_label(charge.get("w365_outcome"))
    if kind != CHARGE:
        raise BusinessRuleViolation(f"Only a charge can be refunded; this transaction is a {kind}.")
    if outcome not in outcomes.REFUNDABLE or not charge.get("w365_gatewaytransactionid"):
        raise BusinessRuleViolation(f"Only an approved charge can be refunded; this one is {outcome}.")


def validate_amount(charge: Record, earlier: list[Record], amount: Decimal | None) -> Decimal:
    """The amount to give back (omitted: all that is left), never more than charged minus approved refunds, and
    nothing while another refund of the charge is open."""
    if any(outcomes.is_open(attempts.outcome_label(t.get("w365_outcome"))) and t.get("statecode") == 0
           for t in earlier):
        raise ConflictInProgress(f"{IN_PROGRESS}: wait until it shows Approved or Error.")
    currency = attempts.currency_of_transaction(charge)
    charged = ledger.money(charge.get("w365_amount"))
    refunded = sum((ledger.money(t.get("w365_amount")) for t in earlier
                    if attempts.outcome_label(t.get("w365_outcome")) == APPROVED), Decimal("0.00"))
    remaining = charged - refunded
    if remaining <= 0:
        raise BusinessRuleViolation(f"This charge of {format_money(charged, currency)} has already been refunded "
                                    "in full.")
    amount = remaining if amount is None else ledger.parse_amount(amount)
    if amount > remaining:
        raise BusinessRuleViolation(f"{format_money(amount, currency)} is more than what is left to refund of this "
                                    f"charge ({format_money(remaining, currency)} of "
                                    f"{format_money(charged, currency)}).")
    return amount


# --- decide ----------------------------------------------------------------------------------------------------------

def decide(charge: Record, earlier: list[Record], amount: Decimal, details: TransactionDetails) -> RefundPlan:
    """Void an unsettled charge (in full only), refund a settled one; the attempt's refId and number."""
    charged = ledger.money(charge.get("w365_amount"))
    status = details.status
    if status in UNSETTLED:
        if amount != charged:
            raise BusinessRuleViolation(
                "This charge has not settled yet, so Authorize.Net can only void all of it "
                f"({format_money(charged, attempts.currency_of_transaction(charge))}). To give back part of it, "
                "refund after it settles (usually within a day).")
        kind = VOID
    elif status in SETTLED:
        kind = REFUND
    else:
        raise BusinessRuleViolation(f"Authorize.Net shows this charge as {status}; it cannot be refunded.")
    number = len(earlier) + 1
    ref_id = f"{charge['w365_refid']}R{number}"
    if len(ref_id) > 20:
        raise BusinessRuleViolation("This charge has had too many refund attempts; refund it in the Authorize.Net "
                                    "Merchant Interface.")
    # The card charged, not the profile's current one: a card update changes the profile's last four digits.
    card = details.account_number or (charge.get("w365_paymentprofileid") or {}).get("w365_cardlast4") or "XXXX"
    return RefundPlan(kind, amount, ref_id, number, card)


# --- act -------------------------------------------------------------------------------------------------------------

def act(services: Services, acting: Services, charge: Record, plan: RefundPlan,
        request_id: str | None) -> attempts.PaymentAttempt:
    """The attempt row first (as the person), then the one gateway call, through the charging core."""
    trans_id = charge["w365_gatewaytransactionid"]
    invoice: Record | None = charge.get("w365_invoiceid")
    profile = charge.get("w365_paymentprofileid") or {}
    body = {
        "w365_name": attempts.attempt_name(plan.kind, charge["w365_refid"], plan.number, request_id),
        "w365_refid": plan.ref_id, "w365_amount": plan.amount, "w365_type": attempts.type_value(plan.kind),
        "w365_outcome": attempts.outcome_value(attempts.PENDING),
        "w365_transactionresult": attempts.WAITING,
        **attempts.links_of(charge),
    }
    if plan.kind == VOID:
        body["w365_gatewaytransactionid"] = trans_id      # a void acts on the charge itself (reconciler reads it)
    attempt = OpenAttempt(
        attempts.start_attempt(acting, body, IN_PROGRESS), plan.ref_id, plan.amount, plan.kind, invoice=invoice,
        gateway_transaction_id=trans_id if plan.kind == VOID else "",
        invoice_number=(invoice or {}).get("invoicenumber") or "",
        customer_profile_id=profile.get("w365_customerprofileid") or "",
        payment_profile_id=profile.get("w365_paymentprofileidgateway") or "",
        currency=attempts.currency_of_transaction(charge))
    gateway = services.gateway
    if plan.kind == VOID:
        return attempts.send_attempt(services, attempt, lambda: gateway.void(trans_id, ref_id=plan.ref_id))
    return attempts.send_attempt(services, attempt, lambda: gateway.refund(
        trans_id, plan.amount, card_number_masked=plan.card, ref_id=plan.ref_id,
        customer_profile_id=attempt.customer_profile_id, payment_profile_id=attempt.payment_profile_id))


def _outcome(charge: Record, plan: RefundPlan, result: attempts.PaymentAttempt) -> Outcome:
    data = {"transactionId": result.transaction_id, "outcome": result.outcome, "type": plan.kind}
    if not result.approved:
        return Outcome.failed(result.message, **data)
    return Outcome.succeeded(approved_message(charge, plan, result), **data)


def approved_message(charge: Record, plan: RefundPlan, result: attempts.PaymentAttempt) -> str:
    currency = attempts.currency_of_transaction(charge)
    invoice: Record | None = charge.get("w365_invoiceid")
    done = "Voided" if plan.kind == VOID else "Refunded"
    message = f"{done} {format_money(plan.amount, currency)} ({attempts.gateway_reference(result)})."
    if invoice is not None and invoice["statecode"] != ledger.CANCELED:
        paid, balance, state = ledger.after_payment(invoice, -plan.amount)
        totals = f"{state}: paid {format_money(paid, currency)}, balance {format_money(balance, currency)}"
        number = invoice.get("invoicenumber") or ""
        message += (f" Invoice {number} is now {totals}." if result.recorded else
                    f" Dynamics 365 was busy, so invoice {number} shows it in a few minutes ({totals}).")
    return message


def _replayed(replay: Record) -> Outcome:
    text = replay.get("w365_transactionresult") or ""
    done = attempts.outcome_label(replay.get("w365_outcome")) == APPROVED
    return (Outcome.succeeded if done else Outcome.failed)(f"This request was already handled: {text}",
                                                          transactionId=replay["w365_paymenttransactionid"],
                                                          replayed=True)
