"""w365_ChargeInvoice: the invoice's own rules around the exactly-once core (attempts.collect_payment).

Round trips of an approved charge: one read of the invoice with everything the rules need ($expand: billing contract
-> profile, account -> default profile, the invoice's transactions), the attempt create, one $batch; both Dataverse
the invoice read carries a RetrievePrincipalAccess for the person (they must be allowed to change the invoice), and
the attempt is created as the person, so their privileges are enforced without another request.
"""
from __future__ import annotations

from decimal import Decimal

from core import footprint, permissions
from core.context import PluginContext
from core.errors import BusinessRuleViolation, ConflictInProgress
from core.ports import Read, Record
from core.services import Services
from core.steps import Outcome
from handlers.charging import attempts, ledger
from handlers.charging.attempts import PROFILE_COLUMNS, TRANSACTION_COLUMNS
from core.money import CURRENCY_EXPAND, currency_of, format_money, require_merchant_currency

SYNCED = footprint.choice("w365_paymentprofile", "w365_syncstatus", "Synced")
_PROFILE = ",".join(PROFILE_COLUMNS)
INVOICE_EXPAND = (
    f"w365_billingcontractid($select=w365_billingcontractid;$expand=w365_paymentprofileid($select={_PROFILE})),"
    f"customerid_account($select=accountid;$expand=w365_paymentprofile_accountid($select={_PROFILE};"
    f"$filter=w365_isdefault eq true and statecode eq 0)),"
    f"w365_paymenttransaction_invoiceid($select={','.join(TRANSACTION_COLUMNS)}),{CURRENCY_EXPAND}")
IN_PROGRESS = "A charge of this invoice is in progress"


def charge_invoice_step(ctx: PluginContext, services: Services) -> Outcome:
    return charge_invoice(services, ctx.primary_entity_id, ctx.param("Amount"), user_id=ctx.initiating_user_id,
                          request_id=ctx.request_id)


def charge_invoice(services: Services, invoice_id: str, amount: Decimal | None, *, user_id: str,
                   request_id: str | None = None) -> Outcome:
    # The invoice's amount paid, balance and state are written with the service's rights, so the person's right to
    # change the invoice is asked first, in the same read; the attempt row is created as the person.
    check = permissions.AccessCheck("w365_ChargeInvoice", user_id, {"Target": invoice_id},
                                    action="charge the invoice")
    acting = services.for_user(user_id)
    invoice, *granted = services.dataverse.read([
        Read.retrieve(ledger.INVOICES, invoice_id, select=ledger.INVOICE_COLUMNS, expand=INVOICE_EXPAND),
        *check.reads()])
    check.verify(granted)
    transactions = invoice.get("w365_paymenttransaction_invoiceid") or []
    earlier = attempts.attempt_for_request(transactions, request_id)
    if earlier is not None:              # a redelivery whose first run got past the charge: never charge twice
        return _replayed(earlier)
    number = invoice.get("invoicenumber") or invoice.get("name") or invoice_id
    currency = currency_of(invoice)
    total, paid, balance = ledger.totals(invoice)
    if invoice["statecode"] == ledger.CANCELED:
        raise BusinessRuleViolation(f"Invoice {number} is canceled; it cannot be charged.")
    if invoice["statecode"] == ledger.PAID and invoice["statuscode"] == ledger.COMPLETE or balance <= 0:
        raise BusinessRuleViolation(f"Invoice {number} is already paid in full; there is nothing to charge.")
    require_merchant_currency(services.settings, currency, f"Invoice {number}")
    if attempts.open_charges(transactions):
        raise ConflictInProgress(f"{IN_PROGRESS}: wait until its transaction shows Approved, Declined or Error.")
    amount = balance if amount is None else ledger.parse_amount(amount)
    if amount > balance:
        raise BusinessRuleViolation(f"{format_money(amount, currency)} is more than the balance of invoice {number} "
                                    f"({format_money(balance, currency)}); charge at most the balance.")
    profile = usable_profile(invoice)
    card = profile.get("w365_name") or profile.get("w365_cardlast4") or "the card on file"
    new_paid, new_balance, state = ledger.after_payment(invoice, amount)
    totals = f"{state}: paid {format_money(new_paid, currency)}, balance {format_money(new_balance, currency)}"

    note = fallback_note(invoice, profile)

    def approved_message(done: attempts.PaymentAttempt) -> str:
        return (f"Charged {format_money(amount, currency)} to {card} ({attempts.gateway_reference(done)}). "
                f"Invoice {number} is now {totals}.{note}")

    if services.operation is not None:
        services.operation.approval_message = approved_message
    attempt = attempts.collect_payment(
        services, acting=acting, account_id=invoice["_customerid_value"], profile=profile, amount=amount,
        ref_key=f"invoice:{invoice_id}", attempt_number=attempts.next_attempt_number(transactions),
        invoice_number=number, invoice=invoice, request_id=request_id, description=f"Invoice {number}")
    data = {"transactionId": attempt.transaction_id, "outcome": attempt.outcome,
            "gatewayTransactionId": attempt.gateway_transaction_id}
    if not attempt.approved:
        return Outcome.failed(attempt.message, **data)
    if attempt.recorded:
        message = approved_message(attempt)
    else:
        message = (f"Charged {format_money(amount, currency)} to {card} ({attempts.gateway_reference(attempt)}). "
                   f"Dynamics 365 was busy, so invoice {number} shows it in a few minutes ({totals}).")
    return Outcome.succeeded(message, **data, amountPaid=str(new_paid), balance=str(new_balance))

def usable_profile(invoice: Record) -> Record:
    """CONTRACT §6 "Which card", for the Charge button and autopay alike: the billing contract's profile when it is
    usable (Active, Synced, and the invoice's account's own card), else the account's default when usable. The
    refusal names what is wrong with each; `fallback_note` says when the default was charged instead."""
    account = invoice.get("customerid_account")
    if account is None:
        raise BusinessRuleViolation("The invoice's customer is not an account; only accounts have payment "
                                    "profiles.")
    account_id = str(account.get("accountid") or invoice.get("_customerid_value") or "").lower()
    named = (invoice.get("w365_billingcontractid") or {}).get("w365_paymentprofileid")
    defaults = account.get("w365_paymentprofile_accountid") or []
    default = defaults[0] if defaults else None
    problems = []
    for profile, source in ((named, "the billing contract's card"), (default, "the account's default")):
        if not profile or (source != "the billing contract's card" and named
                           and profile.get("w365_paymentprofileid") == named.get("w365_paymentprofileid")):
            continue
        problem = _unusable(profile, account_id)
        if problem is None:
            return profile
        problems.append(f"{source} {profile.get('w365_name') or 'payment profile'} {problem}")
    if not problems:
        raise BusinessRuleViolation("No payment profile to charge: the billing contract has none and the account "
                                    "has no active default. Add a card or set a default first.")
    raise BusinessRuleViolation("No payment profile can be charged: " + "; ".join(problems) + ".")


def fallback_note(invoice: Record, charged: Record) -> str:
    """A sentence when the account's default was charged because the contract's card could not be."""
    named = (invoice.get("w365_billingcontractid") or {}).get("w365_paymentprofileid")
    if not named or named.get("w365_paymentprofileid") == charged.get("w365_paymentprofileid"):
        return ""
    account_id = str((invoice.get("customerid_account") or {}).get("accountid") or "").lower()
    return (f" The billing contract's card {named.get('w365_name') or ''} {_unusable(named, account_id)}, so the "
            f"account's default was charged.").replace("  ", " ")


def _unusable(profile: Record, account_id: str) -> str | None:
    """Why this profile cannot be charged for the account, or None when it can."""
    owner = str(profile.get("_w365_accountid_value") or "").lower()
    if owner and account_id and owner != account_id:
        return "belongs to another account"
    if profile.get("statecode") != 0:
        return "is inactive"
    if profile.get("w365_syncstatus") != SYNCED or not profile.get("w365_customerprofileid") \
            or not profile.get("w365_paymentprofileidgateway"):
        return "is not synced with Authorize.Net (sync it first)"
    return None


def _replayed(transaction: Record) -> Outcome:
    outcome = attempts.outcome_label(transaction.get("w365_outcome"))
    text = transaction.get("w365_transactionresult") or ""
    if outcome == attempts.PENDING:
        text = "the charge was sent to Authorize.Net and its outcome is being recorded; refresh in a few minutes."
    data = {"transactionId": transaction.get("w365_paymenttransactionid"), "outcome": outcome, "replayed": True}
    message = f"This request was already handled: {text}"
    return Outcome.succeeded(message, **data) if outcome == attempts.APPROVED else Outcome.failed(message, **data)
