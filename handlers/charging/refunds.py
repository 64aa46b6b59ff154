"""w365_RefundTransaction: give back all or part of an approved charge, through the same attempt-first core.

A charge not settled yet can only be voided, in full; a settled one is refunded, in part or in full (as Odoo's
payment_authorize does). Never more than was charged minus earlier refunds. A refund's refId is the charge's refId +
`R<n>`, so the earlier refunds of a charge are one `startswith` query away and two simultaneous refunds collide on the
alternate key like two charges do.
"""

from __future__ import annotations

from decimal import Decimal

from core import odata
from core.context import PluginContext
from core.errors import BusinessRuleViolation, ConflictInProgress, GatewayNotFound, GatewayRefused
from core.ports import Record
from core.services import Services
from core.steps import Outcome
from handlers.charging import attempts, ledger, outcomes
from handlers.charging.attempts import (APPROVED, CHARGE, PROFILE_COLUMNS, REFUND, TRANSACTION_COLUMNS,
                                        TRANSACTIONS, VOID, OpenAttempt)
from handlers.charging.ledger import format_money

UNSETTLED = frozenset({"capturedPendingSettlement", "authorizedPendingCapture"})
SETTLED = frozenset({"settledSuccessfully"})
IN_PROGRESS = "A refund of this charge is in progress"


def refund_transaction_step(ctx: PluginContext, services: Services) -> Outcome:
    return refund_transaction(services, ctx.primary_entity_id, ctx.param("Amount"), user_id=ctx.initiating_user_id,
                              request_id=ctx.request_id)


def refund_transaction(services: Services, transaction_id: str, amount: Decimal | None, *, user_id: str,
                       request_id: str | None = None) -> Outcome:
    if not user_id:
        raise BusinessRuleViolation("Cannot refund: the request does not say who asked.")
    acting = services.for_user(user_id)
    charge = acting.dataverse.retrieve(
        TRANSACTIONS, transaction_id, select=TRANSACTION_COLUMNS,
        expand=f"w365_invoiceid($select={','.join(ledger.INVOICE_COLUMNS)}),"
               f"w365_paymentprofileid($select={','.join(PROFILE_COLUMNS)})")
    kind, outcome = attempts.type_label(charge.get("w365_type")), attempts.outcome_label(charge.get("w365_outcome"))
    if kind != CHARGE:
        raise BusinessRuleViolation(f"Only a charge can be refunded; this transaction is a {kind}.")
    if outcome not in outcomes.REFUNDABLE or not charge.get("w365_gatewaytransactionid"):
        raise BusinessRuleViolation(f"Only an approved charge can be refunded; this one is {outcome}.")
    charge_ref = charge["w365_refid"]
    earlier = acting.dataverse.query(TRANSACTIONS, select=TRANSACTION_COLUMNS,
                                     filter=f"startswith(w365_refid,{odata.literal(charge_ref + 'R')})")
    replay = attempts.attempt_for_request(earlier, request_id)
    if replay is not None:
        text = replay.get("w365_transactionresult") or ""
        done = attempts.outcome_label(replay.get("w365_outcome")) == APPROVED
        return (Outcome.succeeded if done else Outcome.failed)(f"This request was already handled: {text}",
                                                              transactionId=replay["w365_paymenttransactionid"],
                                                              replayed=True)
    if any(outcomes.is_open(attempts.outcome_label(t.get("w365_outcome"))) and t.get("statecode") == 0
           for t in earlier):
        raise ConflictInProgress(f"{IN_PROGRESS}: wait until it shows Approved or Error.")
    charged = ledger.money(charge.get("w365_amount"))
    refunded = sum((ledger.money(t.get("w365_amount")) for t in earlier
                    if attempts.outcome_label(t.get("w365_outcome")) == APPROVED), Decimal("0.00"))
    remaining = charged - refunded
    if remaining <= 0:
        raise BusinessRuleViolation(f"This charge of {format_money(charged)} has already been refunded in full.")
    amount = remaining if amount is None else ledger.parse_amount(amount)
    if amount > remaining:
        raise BusinessRuleViolation(f"{format_money(amount)} is more than what is left to refund of this charge "
                                    f"({format_money(remaining)} of {format_money(charged)}).")
    trans_id = charge["w365_gatewaytransactionid"]
    try:
        charged_there = services.gateway.get_transaction_details(trans_id)
    except GatewayNotFound:
        raise BusinessRuleViolation(f"Authorize.Net has no record of charge {trans_id}. Nothing was "
                                    "refunded.") from None
    except GatewayRefused as exc:        # e.g. E00011: the Transaction Details API is off for this merchant
        raise BusinessRuleViolation(f"Authorize.Net could not show charge {trans_id}: {exc.code} {exc.text} "
                                    "Nothing was refunded.") from None
    status = charged_there.status
    if status in UNSETTLED:
        if amount != charged:
            raise BusinessRuleViolation(
                f"This charge has not settled yet, so Authorize.Net can only void all of it ({format_money(charged)})"
                ". To give back part of it, refund after it settles (usually within a day).")
        kind = VOID
    elif status in SETTLED:
        kind = REFUND
    else:
        raise BusinessRuleViolation(f"Authorize.Net shows this charge as {status}; it cannot be refunded.")
    ref_id = f"{charge_ref}R{len(earlier) + 1}"
    if len(ref_id) > 20:
        raise BusinessRuleViolation("This charge has had too many refund attempts; refund it in the Authorize.Net "
                                    "Merchant Interface.")
    invoice: Record | None = charge.get("w365_invoiceid")
    profile = charge.get("w365_paymentprofileid") or {}
    body = {
        "w365_name": attempts.attempt_name(kind, charge_ref, len(earlier) + 1, request_id),
        "w365_refid": ref_id, "w365_amount": amount, "w365_type": attempts.type_value(kind),
        "w365_outcome": attempts.outcome_value(attempts.PENDING),
        "w365_transactionresult": attempts.WAITING,
    }
    for column, entity_set in (("w365_invoiceid", "invoices"), ("w365_salesorderid", "salesorders"),
                               ("w365_accountid", "accounts"), ("w365_paymentprofileid", "w365_paymentprofiles")):
        if charge.get(f"_{column}_value"):
            body[f"{column}@odata.bind"] = f"/{entity_set}({charge[f'_{column}_value']})"
    if kind == VOID:
        body["w365_gatewaytransactionid"] = trans_id      # a void acts on the charge itself (reconciler reads it)
    attempt = OpenAttempt(
        attempts.start_attempt(acting, body, IN_PROGRESS), ref_id, amount, kind, invoice=invoice,
        gateway_transaction_id=trans_id if kind == VOID else "",
        invoice_number=(invoice or {}).get("invoicenumber") or "",
        customer_profile_id=profile.get("w365_customerprofileid") or "",
        payment_profile_id=profile.get("w365_paymentprofileidgateway") or "")
    gateway = services.gateway
    if kind == VOID:
        result = attempts.send_attempt(services, attempt, lambda: gateway.void(trans_id, ref_id=ref_id))
    else:
        # The card charged, not the profile's current one: a card update changes the profile's last four digits.
        card = charged_there.account_number or profile.get("w365_cardlast4") or "XXXX"
        result = attempts.send_attempt(services, attempt, lambda: gateway.refund(
            trans_id, amount, card_number_masked=card,
            ref_id=ref_id, customer_profile_id=attempt.customer_profile_id,
            payment_profile_id=attempt.payment_profile_id))
    data = {"transactionId": result.transaction_id, "outcome": result.outcome, "type": kind}
    if not result.approved:
        return Outcome.failed(result.message, **data)
    done = "Voided" if kind == VOID else "Refunded"
    message = f"{done} {format_money(amount)} ({attempts.gateway_reference(result)})."
    if invoice is not None and invoice["statecode"] != ledger.CANCELED:
        paid, balance, state = ledger.after_payment(invoice, -amount)
        totals = f"{state}: paid {format_money(paid)}, balance {format_money(balance)}"
        number = attempt.invoice_number
        message += (f" Invoice {number} is now {totals}." if result.recorded else
                    f" Dynamics 365 was busy, so invoice {number} shows it in a few minutes ({totals}).")
    return Outcome.succeeded(message, **data)
