"""w365_SubmitOrderPayment and what follows it: charge the order total once through the charging core
(handlers/charging/attempts: a Pending attempt with w365_salesorderid first, exactly once; a card on file by its
profile, a new card by its nonce, saved as a profile by that same charge only when it is approved), then
- approved: invoice from the order (ConvertSalesOrderToInvoice) set Paid, the card the account's default if it had
  none, the order Activated (subscriptions through the credit-hold rules) or Scheduled, a history note;
- declined: the order Declined with the "Payment declined" tag and a note; w365_ConvertOrderToDraft reopens it.

Completion after an approved charge is idempotent and its last write links the transaction to the invoice, so the
timer's `complete_paid_orders` finds any approved order charge whose completion did not finish (Dataverse busy, a
crash, an Unknown or Held attempt settled later by the reconciler or the gateway webhook) and finishes it. A second
Submit never charges again: an approved charge of the order is completed instead.
"""
from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from core import odata, permissions
from core.money import require_merchant_currency
from core.errors import (AccessDenied, BusinessRuleViolation, ConflictInProgress, DataverseError, GatewayError,
                         RecordNotFound, W365Error)
from core.ports import BatchOperation, BillTo, OpaqueData, Read, Record
from core.services import Services
from handlers.charging import attempts, ledger
from handlers.charging.attempts import PROFILE_COLUMNS, TRANSACTION_COLUMNS, TRANSACTIONS
from handlers.charging.invoices import SYNCED
from handlers.orders import activation
from handlers.orders.records import (ORDER_COLUMNS, ORDER_EXPAND, ORDERS, Order, add_note, format_money, iso,
                                     load_order, money, note_operation, order_from, status, update_order)
from handlers.payment_profiles import profiles

log = logging.getLogger(__name__)

PAYABLE = ("Draft",)
SUBMIT_MESSAGE = "w365_SubmitOrderPayment"
COMPLETION_GRACE = dt.timedelta(minutes=5)
# A new card's order is read with what saving the card needs: the account's gateway customer profile and its cards.
NEW_CARD_EXPAND = ORDER_EXPAND.replace(
    "customerid_account($select=accountid,name,creditonhold,_primarycontactid_value)",
    "customerid_account($select=accountid,name,creditonhold,_primarycontactid_value,emailaddress1,"
    f"w365_gatewaycustomerprofileid;$expand={profiles.ACCOUNT_CARDS}($select=w365_paymentprofileid,w365_name,"
    "w365_isdefault,statecode,w365_syncstatus,w365_paymentprofileidgateway))", 1)


@dataclass(frozen=True)
class CardOnFile:
    profile_id: str


@dataclass(frozen=True)
class NewCard:
    opaque: OpaqueData
    bill_to: BillTo
    contact_id: str | None = None    # None: the account's primary contact (or its first contact)


@dataclass(frozen=True)
class PaymentResult:
    """`outcome`: Approved, Declined, Error, Held For Review, Unknown. `message` is for
    staff (the operation row), `customer_message` for the approval page (no gateway ids)."""
    outcome: str
    message: str
    customer_message: str
    transaction_id: str = ""
    profile_id: str = ""
    invoice_id: str = ""
    scheduled: bool = False

    @property
    def approved(self) -> bool:
        return self.outcome == attempts.APPROVED


# --- submit ----------------------------------------------------------------------------------------------------------

def submit_order_payment(services: Services, order_id: str, card: CardOnFile | NewCard, *,
                         user_id: str | None = None, request_id: str | None = None,
                         allowed: tuple[str, ...] = PAYABLE, via: str = "Submit Order Payment",
                         order_columns: Mapping[str, Any] | None = None) -> PaymentResult:
    """Charge the order's total. `user_id` is the person who asked (None: the customer through the approval link);
    Dataverse applies their privileges to the order read and the attempt row. `allowed` are the order statuses that
    may be paid; `order_columns` are written on the order with its approval (the customer's signature).

    Read, decide, validate, act: nothing is written and no card is touched before every rule has passed."""
    acting = services.for_user(user_id) if user_id else services
    order, transactions, chosen, known = read_order_payment(
        services, order_id, user_id=user_id, profile_id=card.profile_id if isinstance(card, CardOnFile) else None,
        new_card=isinstance(card, NewCard))
    plan = decide(order, transactions)
    if plan.unfinished is not None:
        # Paid, but its completion was cut short: finish it now, never charge again.
        return complete_paid_order(services, order, plan.unfinished, via=via, order_columns=order_columns)
    validate(order, plan, allowed)
    require_merchant_currency(services.settings, order.currency, f"Order {order.name}")   # before any card is made
    if isinstance(card, NewCard):
        attempt = charge_new_card(services, acting, order, card, plan, request_id=request_id)
        return after_charge(services, order, attempt, attempt.profile_id, via=via, order_columns=order_columns,
                            known=known)
    profile = _card_on_file(order, chosen)
    attempt = charge(services, acting, order, profile, plan, request_id=request_id)
    return after_charge(services, order, attempt, profile["w365_paymentprofileid"], via=via,
                        order_columns=order_columns, known=known)


@dataclass(frozen=True)
class OrderPaymentPlan:
    """What the order's transactions say to do: finish an approved charge (`unfinished`) or charge `amount`."""
    amount: Decimal
    number: str                      # the gateway's invoice number base (order number, 20 characters)
    attempt_number: int
    already_paid: bool
    in_progress: bool
    unfinished: Record | None = None


# --- read ------------------------------------------------------------------------------------------------------------

def read_order_payment(services: Services, order_id: str, *, user_id: str | None = None,
                       profile_id: str | None = None, new_card: bool = False,
                       ) -> tuple[Order, list[Record], Record | None, list[Any] | None]:
    """The order, its payment transactions and the card on file chosen (None when it does not exist), with the
    person's rights on the order and the card (RIGHTS of w365_SubmitOrderPayment), and what completing an approved
    charge needs (`completion_reads`' answers; with the card on file and its account's defaults, while a new card
    is made the default, if the account has none, as it is saved): one read $batch. `new_card`: the account is read
    with its gateway customer profile and its cards (NEW_CARD_EXPAND)."""
    records = {"Target": order_id, **({"PaymentProfileId": profile_id} if profile_id else {})}
    check = permissions.AccessCheck(SUBMIT_MESSAGE, user_id, records, action="collect payment for this order") \
        if user_id else None
    expand = NEW_CARD_EXPAND if new_card else ORDER_EXPAND
    reads = [Read.retrieve(ORDERS, order_id, select=ORDER_COLUMNS, expand=expand), _transactions_read(order_id)]
    if profile_id:
        reads.append(Read.query(profiles.PROFILES, select=PROFILE_COLUMNS,
                                filter=odata.eq("w365_paymentprofileid", uuid.UUID(profile_id))))
    first = len(reads)
    reads += completion_reads(order_id, str(uuid.UUID(profile_id)) if profile_id else None)
    try:
        answers = services.dataverse.read(reads + (check.reads() if check else []))
    except RecordNotFound:
        raise BusinessRuleViolation("The order or the payment profile was not found, or you cannot see it.") from None
    if check:
        check.verify(answers[len(reads):])
    chosen = (answers[2][0] if answers[2] else None) if profile_id else None
    known = answers[first:len(reads)]
    return order_from(answers[0]), answers[1], chosen, known


# --- decide / validate -----------------------------------------------------------------------------------------------

def decide(order: Order, transactions: list[Record]) -> OrderPaymentPlan:
    approved = [t for t in transactions if _is_charge(t) and attempts.outcome_label(t.get("w365_outcome"))
                == attempts.APPROVED]
    unfinished = [t for t in approved if not t.get("_w365_invoiceid_value")]
    return OrderPaymentPlan(
        amount=order.total, number=(order.row.get("ordernumber") or order.name)[:20],
        attempt_number=attempts.next_attempt_number(transactions), already_paid=bool(approved),
        in_progress=bool(attempts.open_charges(transactions)), unfinished=unfinished[0] if unfinished else None)


def validate(order: Order, plan: OrderPaymentPlan, allowed: tuple[str, ...]) -> None:
    if plan.already_paid:
        raise BusinessRuleViolation(f"The order is already paid ({order.status_label}); it cannot be charged again.")
    _require_payable(order, allowed)
    if plan.in_progress:
        raise ConflictInProgress("A payment of this order is in progress: wait until its transaction shows Approved, "
                                 "Declined or Error.")
    if plan.amount <= 0:
        raise BusinessRuleViolation("The order total is zero; there is nothing to charge.")


# --- act -------------------------------------------------------------------------------------------------------------

def charge_new_card(services: Services, acting: Services, order: Order, card: NewCard, plan: OrderPaymentPlan, *,
                    request_id: str | None) -> attempts.PaymentAttempt:
    """The order total charged to the card entered (the nonce), the card saved only when the charge is approved:
    an account without a gateway customer profile gets one from the charge itself (createProfile: one charge, one
    read of the card), one with a profile gets the card added from the transaction (one more call). The row is
    written Active + Synced, source Order, with the outcome; declined, nothing is saved. A lost answer is Unknown and
    reconciled like any charge, never resent (the nonce is spent). What becomes of the card then: an account without
    a customer profile may have had it saved by that charge, with no row; the account's Sync Payment Profiles imports
    it (it finds the customer profile by the account's merchantCustomerId). An account with a customer profile, or a
    charge held for review, has the card saved only with an approval in hand: it is not saved, and the customer
    enters it again next time."""
    account = order.account
    contact_id = card.contact_id or _order_contact(services, order)
    if not contact_id:
        raise BusinessRuleViolation("Choose a contact of this account first (add one if the account has none).")
    customer_profile_id = str(account.get("w365_gatewaycustomerprofileid") or "")
    cards = account.get(profiles.ACCOUNT_CARDS) or []
    try:
        return attempts.collect_new_card_payment(
            services, acting=acting, account_id=order.account_id, amount=plan.amount,
            card=attempts.NewCardCharge(card.opaque, card.bill_to, profiles.merchant_customer_id(order.account_id),
                                        email=(account.get("emailaddress1") or "")[:255],
                                        create_profile=not customer_profile_id),
            ref_key=f"salesorder:{order.id}", attempt_number=plan.attempt_number, invoice_number=plan.number,
            salesorder_id=order.id, request_id=request_id, description=f"Order {order.name}", currency=order.currency,
            save_card=lambda result: profiles.card_saved_with_charge(
                services, account_id=order.account_id, contact_id=contact_id, cards=cards,
                customer_profile_id=customer_profile_id, result=result, source="Order"))
    except AccessDenied:
        raise BusinessRuleViolation("You do not have permission to collect payments (create payment transactions) "
                                    "in Dynamics 365.") from None


def charge(services: Services, acting: Services, order: Order, profile: Record, plan: OrderPaymentPlan, *,
           request_id: str | None) -> attempts.PaymentAttempt:
    try:
        return attempts.collect_payment(
            services, acting=acting, account_id=order.account_id, profile=profile, amount=plan.amount,
            ref_key=f"salesorder:{order.id}", attempt_number=plan.attempt_number, invoice_number=plan.number,
            salesorder_id=order.id, request_id=request_id, description=f"Order {order.name}",
            currency=order.currency)
    except AccessDenied:
        raise BusinessRuleViolation("You do not have permission to collect payments (create payment transactions) "
                                    "in Dynamics 365.") from None


def after_charge(services: Services, order: Order, attempt: attempts.PaymentAttempt, profile_id: str, *, via: str,
                 order_columns: Mapping[str, Any] | None, known: list[Any] | None = None) -> PaymentResult:
    """Approved: complete the order (`known`: what completing it needs, read before the charge); declined: decline
    it; otherwise (error, held, unknown): a history note."""
    if attempt.approved:
        try:
            return complete_paid_order(services, order, {
                "w365_paymenttransactionid": attempt.transaction_id, "w365_amount": attempt.amount,
                "_w365_paymentprofileid_value": profile_id,
                "w365_transactionresult": attempt.message}, via=via, order_columns=order_columns, known=known)
        except W365Error as exc:
            # The money moved: say so now, whatever stopped the rest (a refusal here must not read as "not charged",
            # nor give an approval link back); the timer's complete_paid_orders finishes the order.
            log.warning("order %s: completion after the approved charge failed (%s); the timer finishes it",
                        order.id, type(exc).__name__)
            cause = "Dynamics 365 was busy" if isinstance(exc, DataverseError) else \
                f"The rest is not done yet ({str(exc).rstrip('.')})"
            return PaymentResult(attempt.outcome, f"{attempt.message} {cause}, so the invoice and the order's "
                                                  "activation will follow within a few minutes.",
                                 "Thank you: your payment was approved. We will confirm your order shortly.",
                                 attempt.transaction_id, profile_id)
    if attempt.outcome == attempts.DECLINED:
        decline_order(services, order, attempt.message, via=via, profile_id=profile_id)
        return PaymentResult(attempt.outcome, f"{attempt.message} The order is marked Declined: convert it to Draft "
                                              "to submit it again.",
                             "Your card was declined. Please try another card.", attempt.transaction_id, profile_id)
    add_note(services, order.id, f"Payment {attempt.outcome.lower()}", f"{via}: {attempt.message}")
    return PaymentResult(attempt.outcome, attempt.message,
                         "We could not complete the payment just now. Please try again later."
                         if attempt.outcome == attempts.ERROR else
                         "Your payment is being confirmed. We will be in touch.",
                         attempt.transaction_id, profile_id)


def order_transactions(services: Services, order_id: str) -> list[Record]:
    read = _transactions_read(order_id)
    return services.dataverse.query(read.target, select=read.select, filter=read.filter)


def _transactions_read(order_id: str) -> Read:
    return Read.query(TRANSACTIONS, select=TRANSACTION_COLUMNS, filter=f"_w365_salesorderid_value eq {order_id}")


def _is_charge(transaction: Record) -> bool:
    return attempts.type_label(transaction.get("w365_type")) == attempts.CHARGE


def _require_payable(order: Order, allowed: tuple[str, ...]) -> None:
    current = order.status_label
    if current in allowed:
        return
    if current in ("Activated", "Scheduled"):
        raise BusinessRuleViolation(f"The order is already paid ({current}).")
    if current == "Declined":
        raise BusinessRuleViolation("The order's last payment was declined: convert it to Draft first, then submit it "
                                    "again (with another card if needed).")
    if current == "Pending Approval":
        raise BusinessRuleViolation("The order is waiting for the customer's approval. Convert it to Draft first to "
                                    "take the payment yourself.")
    raise BusinessRuleViolation(f"An order in status {current} cannot be paid.")


def _card_on_file(order: Order, profile: Record | None) -> Record:
    """The chosen card, read with the order; the person's right to read it was checked in the same read."""
    if profile is None:
        raise BusinessRuleViolation("The payment profile was not found.")
    name = profile.get("w365_name") or "The payment profile"
    if str(profile.get("_w365_accountid_value") or "").lower() != order.account_id.lower():
        raise BusinessRuleViolation(f"{name} belongs to another account; choose a card of the order's account.")
    if profile.get("statecode") != 0:
        raise BusinessRuleViolation(f"{name} is inactive; choose another card.")
    if profile.get("w365_syncstatus") != SYNCED or not profile.get("w365_paymentprofileidgateway"):
        raise BusinessRuleViolation(f"{name} is not synced with Authorize.Net; sync it first.")
    return profile


def _order_contact(services: Services, order: Order) -> str | None:
    primary = order.account.get("_primarycontactid_value")
    if primary:
        return primary
    contacts = services.dataverse.query("contacts", select=("contactid",), filter=(
        f"_parentcustomerid_value eq {order.account_id} and statecode eq 0"), orderby="createdon asc", top=1)
    return contacts[0]["contactid"] if contacts else None


# --- approved --------------------------------------------------------------------------------------------------------

def completion_reads(order_id: str, profile_id: str | None) -> list[Read]:
    """What completing the order's approved charge needs to know, as reads for one read $batch (the submit's own,
    when it knows the card): the order's invoice, its card with the account's defaults, and what activation needs."""
    reads = [Read.query(ledger.INVOICES, select=ledger.INVOICE_COLUMNS, filter=(
        f"_salesorderid_value eq {order_id} and statecode ne {ledger.CANCELED}"), orderby="createdon desc", top=1),
             *activation.activation_reads(order_id)]
    return reads + ([profiles.default_read(profile_id)] if profile_id else [])


def complete_paid_order(services: Services, order: Order, transaction: Mapping[str, Any], *, via: str,
                        order_columns: Mapping[str, Any] | None = None,
                        known: list[Any] | None = None) -> PaymentResult:
    """Everything an approved order charge leads to. `known`: the answers of `completion_reads`, when read already
    (else one read $batch here); read without the card, the card's default is taken as settled already.

    Safe to run again: the invoice is made first (a second run finds it), the card made the gateway's default (again
    harmless), then one changeset writes everything else (invoice Paid, the default flag, the order Scheduled or
    Activated with its subscriptions, the notes, and the transaction linked to the invoice, which marks the
    completion finished); only then are the new subscriptions queued for their providers."""
    transaction_id = transaction["w365_paymenttransactionid"]
    amount = money(transaction.get("w365_amount"))
    profile_id = transaction.get("_w365_paymentprofileid_value")
    charged = transaction.get("w365_transactionresult") or f"Charge of {format_money(amount, order)} approved."
    answers = known if known is not None else services.dataverse.read(completion_reads(order.id, profile_id))
    invoices, answers, cards = answers[0], answers[1:4], answers[4] if len(answers) > 4 else []
    card = cards[0] if cards else None
    invoice = invoices[0] if invoices else _convert_to_invoice(services, order)
    default_ops, default_note = _make_default_if_none(services, card)
    activation_date = order.activation_date
    scheduled = activation_date is not None and activation_date > services.clock.now()
    columns: dict[str, Any] = {"w365_paymentdeclined": False, **(order_columns or {})}
    if profile_id:
        columns["w365_paymentprofileid@odata.bind"] = f"/w365_paymentprofiles({profile_id})"
    plan = None
    notes: list[BatchOperation] = []
    if order.status_label in ("Activated", "Scheduled"):      # completed before, but not linked (an older run)
        what = f"the order is {order.status_label}"
    elif scheduled:
        columns["w365_orderstatus"] = status("Scheduled")
        what = f"the order is Scheduled to activate on {activation_date:%Y-%m-%d}"
    else:
        plan = activation.plan_subscriptions(services, order, answers)
        columns["w365_orderstatus"] = status("Activated")
        notes = activation.activation_notes(order, plan.activation, reason=f"Paid ({via})")
        what = f"the order is Activated: {plan.activation.describe()}"
    number = invoice.get("invoicenumber") or invoice.get("name") or "from the order"
    # The note goes in the changeset that marks the completion finished: a run cut short before it wrote no note, so
    # the run that finishes the order writes the only one.
    before = [*_invoice_payment_ops(invoice, amount), *default_ops]       # the subscriptions' creates follow these
    ops = [*before, *(plan.ops if plan else ()),
           BatchOperation.update(ORDERS, order.id, columns), *notes,
           note_operation(order.id, "Payment approved",
                          f"{via}: {charged} Invoice {number} generated and paid; {what}.{default_note}"),
           BatchOperation.update(TRANSACTIONS, transaction_id,
                                 {"w365_invoiceid@odata.bind": f"/{ledger.INVOICES}({invoice['invoiceid']})"})]
    results = services.dataverse.batch(ops)
    if plan is not None:
        queue_failed = activation.queue_planned(services, plan, results[len(before):len(before) + len(plan.ops)])
        if queue_failed:
            services.dataverse.batch([activation.unprovisioned_note(order, queue_failed)])
            what += f", {len(queue_failed)} could not be provisioned ({'; '.join(sorted(set(queue_failed)))})"
    log.info("order %s paid (transaction %s): %s", order.id, transaction_id, what)
    return PaymentResult(attempts.APPROVED, f"{charged} Invoice {number} is paid; {what}.{default_note}",
                         f"Thank you: your payment of {format_money(amount, order)} was approved and the order is "
                         + (f"scheduled to start on {activation_date:%Y-%m-%d}." if scheduled else "active."),
                         transaction_id, profile_id or "", invoice["invoiceid"], scheduled)


def _convert_to_invoice(services: Services, order: Order) -> Record:
    # The action answers with the columns asked for: no read back. Its ETag, when the answer has none, is not needed:
    # nobody else knows the invoice yet, so the changeset that pays it may update it unconditionally.
    made = services.dataverse.execute("ConvertSalesOrderToInvoice", {
        "SalesOrderId": order.id, "ColumnSet": {"AllColumns": False, "Columns": [
            c[1:-len("_value")] if c.startswith("_") and c.endswith("_value") else c
            for c in ledger.INVOICE_COLUMNS]}})
    return {column: made.get(column) for column in ledger.INVOICE_COLUMNS} | (
        {"@odata.etag": made["@odata.etag"]} if made.get("@odata.etag") else {})


def _invoice_payment_ops(invoice: Record, amount: Decimal) -> list[BatchOperation]:
    _, paid, _ = ledger.totals(invoice)
    if paid >= amount:                   # applied by an earlier run
        return []
    return ledger.invoice_payment_ops(invoice, amount - paid, f"Order payment of {amount} approved")


def _make_default_if_none(services: Services, card: Record | None) -> tuple[list[BatchOperation], str]:
    """The order's card becomes the account's default when the account has none: the gateway now, the rows in the
    completion's changeset. A card that cannot is said in the note, and never stops the completion."""
    if card is None or profiles.has_account_default(card):
        return [], ""
    try:
        ops = profiles.default_ops(services, card)
    except (BusinessRuleViolation, ConflictInProgress, GatewayError) as exc:
        log.warning("order card %s could not become the default: %s", card.get("w365_paymentprofileid"),
                    type(exc).__name__)
        return [], f" The card could not be made the account's default ({exc})."
    return ops, f" {card.get('w365_name') or 'The payment profile'} is now the default payment profile."


def complete_paid_orders(services: Services) -> list[str]:
    """The timer's sweep: approved order charges not yet linked to their invoice get their completion finished.
    A charge approved less than COMPLETION_GRACE ago is left alone: the submit that made it may still be completing
    it, and two completions at once would both convert the order to an invoice and both create its subscriptions."""
    settled_before = iso(services.clock.now() - COMPLETION_GRACE)
    rows = services.dataverse.query(TRANSACTIONS, select=TRANSACTION_COLUMNS, filter=(
        f"_w365_salesorderid_value ne null and _w365_invoiceid_value eq null and "
        f"w365_type eq {attempts.type_value(attempts.CHARGE)} and "
        f"w365_outcome eq {attempts.outcome_value(attempts.APPROVED)} and modifiedon le {settled_before}"))
    done = []
    for row in rows:
        order_id = row["_w365_salesorderid_value"]
        try:
            complete_paid_order(services, load_order(services, order_id), row, via="Completed after the payment")
            done.append(order_id)
        except Exception:  # noqa: BLE001 - one order must not block the others; the next run tries again
            log.exception("order %s: completing its approved payment failed; the next run tries again", order_id)
    return done


# --- declined, and back to Draft -------------------------------------------------------------------------------------

def decline_order(services: Services, order: Order, reason: str, *, via: str, profile_id: str | None = None) -> None:
    columns: dict[str, Any] = {"w365_orderstatus": status("Declined"), "w365_paymentdeclined": True}
    if profile_id:
        columns["w365_paymentprofileid@odata.bind"] = f"/w365_paymentprofiles({profile_id})"
    update_order(services, order.id, columns)
    add_note(services, order.id, "Payment declined", f"{via}: {reason}")
