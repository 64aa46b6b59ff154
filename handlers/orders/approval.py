"""Customer approval of an order: send an expiring, single-use link (handlers/customer_pages/links.py); the page behind
it shows the order, takes a signature (typed name + drawn PNG) and, when the configuration allows, a card; Approve.

Approval with payment runs the order payment (payment.py); without payment it records the signature and leaves the
order Draft, approved, for an administrator to submit. Ports only; the HTML is page.py, the HTTP side entry.py.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core import configuration, permissions
from core.configuration import money_switches
from core.money import require_merchant_currency
from core.errors import BusinessRuleViolation, ConflictInProgress, RecordNotFound
from core.operations import batch_with_outcome
from core.ports import BatchOperation, BillTo, OpaqueData, Read
from core.services import Services
from handlers.charging import attempts
from handlers.customer_pages import links
from handlers.orders import payment
from handlers.orders.records import (NOTES, ORDER_COLUMNS, ORDER_EXPAND, ORDERS, Order, add_note, format_money, iso,
                                     load_order, money, note_operation, order_from, order_lines, status, update_order)
from handlers.payment_profiles.profiles import check_contact, contact_read

log = logging.getLogger(__name__)

PURPOSE = "Order Approval"
SEND_MESSAGE, DRAFT_MESSAGE = "w365_SendOrderForApproval", "w365_ConvertOrderToDraft"
ROUTE = "order-approvals"
PLACEHOLDER = "{Approval Link}"
PNG_DATA_URL = "data:image/png;base64,"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SIGNATURE_BYTES = 32 * 1024          # a signature drawn on the page's 500x160 canvas is a few KB
MAX_SIGNATURE_BASE64 = 4 * -(-MAX_SIGNATURE_BYTES // 3)
MAX_SIGNATURE_NAME = 200                 # salesorder.w365_signaturename
AWAITING_APPROVAL = ("Pending Approval", "Declined")   # Declined: the customer's card was refused; they may retry


# --- sending ---------------------------------------------------------------------------------------------------------

def send_for_approval(services: Services, order_id: str, *, user_id: str, contact_id: str, subject: str,
                      body: str) -> str:
    """Email the contact a link to approve the order; the order becomes Pending Approval. Returns the message.

    Administrators always; anyone else (salespeople) only when w365_salescansendforapproval is on, and only on an
    order their Dataverse privileges let them change. One read $batch (the order, the contact, the order's open
    links, the person's roles and rights, the configuration unless the worker has it), one changeset (the email,
    the link, the old links withdrawn, the order Pending Approval, the note), then SendEmail."""
    if PLACEHOLDER not in (body or ""):
        raise BusinessRuleViolation(f"The email text must contain {PLACEHOLDER}, where the customer's link goes.")
    check = permissions.AccessCheck(SEND_MESSAGE, user_id, {"Target": order_id}, action="send this order for approval")
    settings_reads = configuration.settings_reads(services)
    order_row, contacts, open_links, user, *rest = services.dataverse.read([
        Read.retrieve(ORDERS, order_id, select=ORDER_COLUMNS, expand=ORDER_EXPAND),
        contact_read(contact_id),
        _open_links(order_id), permissions.roles_read(user_id), *check.reads(), *settings_reads])
    check.verify(rest[:len(check.checks)])
    config = configuration.settings_row(services, prefetched=rest[len(check.checks):])
    if not permissions.has_administrator_role(user) and not config.get("w365_salescansendforapproval"):
        raise BusinessRuleViolation("Only administrators can send orders for customer approval. An administrator can "
                                    "let salespeople do it with 'Sales can send for approval' in the W365 "
                                    "configuration.")
    order = order_from(order_row)
    if order.status_label in ("Activated", "Scheduled"):
        raise BusinessRuleViolation(f"The order is already paid ({order.status_label}); there is nothing to approve.")
    contact = check_contact(contacts[0] if contacts else None, order.account_id)
    prepared = links.prepare_link(services, config=config, contact=contact, purpose_label=PURPOSE, route=ROUTE,
                                  account_id=order.account_id, subject=subject, body_template=body,
                                  placeholder=PLACEHOLDER, regarding=("salesorder", order_id), salesorder_id=order_id)
    who = contact.get("fullname") or contact.get("emailaddress1")
    note = note_operation(order_id, "Sent for approval", f"Approval link emailed to {who} "
                          f"({contact.get('emailaddress1')}); it works until {iso(prepared.expires_on)}.")
    results = services.dataverse.batch(prepared.ops + _withdraw(open_links) + [
        BatchOperation.update(ORDERS, order_id, {"w365_orderstatus": status("Pending Approval")}), note])
    sent = links.send_prepared(services, prepared, results)
    return (f"Approval request emailed to {who} ({contact.get('emailaddress1')}); the link works until "
            f"{sent.expires_on:%Y-%m-%d %H:%M} UTC. The order is Pending Approval.")


def _open_links(order_id: str) -> Read:
    """The order's approval links still waiting."""
    return Read.query(links.LINKS, select=("w365_securelinkid",), filter=(
        f"_w365_salesorderid_value eq {order_id} and w365_purpose eq {links.purpose(PURPOSE)} and "
        f"w365_status eq {links.status('Sent')}"))


def _withdraw(open_links: list[dict[str, Any]]) -> list[BatchOperation]:
    """Withdraw approval links (a newer one replaces them, or the order went back to Draft)."""
    return [BatchOperation.update(links.LINKS, row["w365_securelinkid"], {"w365_status": links.status("Cancelled")})
            for row in open_links]


# --- the customer's page ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ApprovalView:
    """What the page shows. `state` is usable or a link state (unknown, expired, used, cancelled)."""
    state: str
    link: dict[str, Any] = field(default_factory=dict)
    order: Order | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    contact: dict[str, Any] = field(default_factory=dict)
    accepts_payment: bool = False


def open_approval(services: Services, token: str) -> ApprovalView:
    check = links.check_link(services, token, PURPOSE)
    if not check.usable:
        return ApprovalView(check.state)
    link = check.row or {}
    try:
        order = load_order(services, link["_w365_salesorderid_value"])
    except (RecordNotFound, KeyError, BusinessRuleViolation):
        return ApprovalView("cancelled")
    if order.status_label not in AWAITING_APPROVAL:
        return ApprovalView("cancelled")       # paid, or back to Draft: the link no longer applies
    contact = services.dataverse.retrieve("contacts", link["_w365_contactid_value"], select=(
        "contactid", "fullname", "firstname", "lastname", "emailaddress1", "telephone1"))
    accepts = bool(money_switches(services).get("w365_approvalcanacceptpayment"))
    return ApprovalView("usable", link, order, order_lines(services, order.id), contact, accepts)


def order_digest(order: Order, lines: list[dict[str, Any]]) -> str:
    """SHA-256 of what the page shows (CONTRACT §5): each line's product, quantity, price, amount and tax, the
    subtotal, discount, tax and total, and the currency. The form carries it; the submit recomputes it from the order
    as it is then, and charges nothing when they differ."""
    row = order.row

    def amount(value: Any) -> str:
        return str(money(value))

    shown = {
        "currency": order.currency.code,
        "lines": [[(line.get("productid") or {}).get("productid") or "", line.get("productdescription") or "",
                   f"{Decimal(line.get('quantity') or 0).normalize():f}", amount(line.get("priceperunit")),
                   amount(line.get("baseamount")), amount(line.get("tax")), amount(line.get("extendedamount"))]
                  for line in lines],
        "subtotal": amount(row.get("totallineitemamount")), "discount": amount(row.get("discountamount")),
        "tax": amount(row.get("totaltax")), "total": amount(order.total),
    }
    return hashlib.sha256(json.dumps(shown, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


ORDER_CHANGED = ("This order was changed after this page was opened, so it cannot be approved or paid as shown. "
                 "Nothing was charged. Please ask the person who sent it for the updated order: it must be sent again.")


def payment_refusal(services: Services, view: ApprovalView) -> str:
    """Why the page cannot take this order's payment (an order in another currency than the merchant's), or ""."""
    if not view.accepts_payment or view.order is None:
        return ""
    try:
        require_merchant_currency(services.settings, view.order.currency, f"Order {view.order.name}")
    except BusinessRuleViolation as exc:
        return str(exc)
    return ""


class SignatureRefused(BusinessRuleViolation):
    """The posted signature is missing or not a PNG data URL of bounded size."""


@dataclass(frozen=True)
class Signature:
    name: str
    png_base64: str = field(repr=False)


def parse_signature(name: str | None, image: str | None) -> Signature:
    name = " ".join((name or "").split())
    if len(name) < 2:
        raise SignatureRefused("Please type your full name to sign.")
    if len(name) > MAX_SIGNATURE_NAME:
        raise SignatureRefused(f"The name is too long (at most {MAX_SIGNATURE_NAME} characters).")
    image = (image or "").strip()
    if not image:
        raise SignatureRefused("Please sign in the signature box.")
    if not image.startswith(PNG_DATA_URL):
        raise SignatureRefused("The signature must be a PNG image.")
    encoded = image[len(PNG_DATA_URL):]
    if len(encoded) > MAX_SIGNATURE_BASE64:
        raise SignatureRefused("The signature image is too large. Please clear it and sign again.")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused("The signature image could not be read. Please sign again.") from None
    if not raw.startswith(PNG_MAGIC) or len(raw) > MAX_SIGNATURE_BYTES:
        raise SignatureRefused("The signature must be a PNG image. Please sign again.")
    return Signature(name, base64.b64encode(raw).decode("ascii"))


@dataclass(frozen=True)
class ApprovalResult:
    """`state`: approved (paid or not), pending (the payment is held for review or being confirmed), declined (the
    card; the link stays usable), refused (the card or the form, with `message`), or a link state (used, expired,
    unknown, cancelled)."""
    state: str
    message: str = ""
    paid: bool = False
    scheduled: bool = False


def approve(services: Services, token: str, signature: Signature, *, opaque: OpaqueData | None = None,
            bill_to: BillTo | None = None, shown_digest: str = "") -> ApprovalResult:
    """The customer's Approve of what the page showed (`shown_digest`, order_digest at the time). The link is claimed
    first (single use); a declined card releases it for another try."""
    view = open_approval(services, token)
    if view.state != "usable" or view.order is None:
        return ApprovalResult(view.state)
    order, link = view.order, view.link
    if not hmac.compare_digest((shown_digest or "").encode("ascii", "replace"),
                               order_digest(order, view.lines).encode("ascii")):
        log.info("order %s changed since its approval page was shown: nothing done", order.id)
        return ApprovalResult("changed", ORDER_CHANGED)
    agreed = format_money(order.total, order)
    if view.accepts_payment and opaque is None:
        return ApprovalResult("refused", "The card details did not reach the payment service. Please enter the "
                                         "card again.")
    refusal = payment_refusal(services, view)    # before the signature, the card or the claim: nothing to undo
    if refusal:
        return ApprovalResult("refused", refusal)

    def record_and_pay() -> payment.PaymentResult | None:
        now = services.clock.now()
        # Written before any charge (a charge never lacks its signature) and withdrawn when this try does not approve
        # the order, so the next try's signature is the only one.
        signed = add_note(services, order.id, "Customer signature",
                          f"Signed by {signature.name} on {iso(now)} through the approval link sent to "
                          f"{view.contact.get('emailaddress1')}, for the order as shown: total {agreed}.",
                          attachment=("signature.png", "image/png",
                                                                               signature.png_base64))
        try:
            return approve_and_pay(now)
        except BaseException:
            _withdraw_note(services, signed)
            raise

    def approve_and_pay(now: dt.datetime) -> payment.PaymentResult | None:
        approval = {"w365_signaturename": signature.name, "w365_approvedon": iso(now)}
        if not view.accepts_payment:
            update_order(services, order.id, {**approval, "w365_orderstatus": status("Draft")})
            add_note(services, order.id, "Approved by the customer",
                     f"{signature.name} approved the order on {iso(now)}. Submit Order Payment to charge it.")
            return None
        result = payment.submit_order_payment(
            services, order.id, payment.NewCard(opaque, bill_to or BillTo(), link.get("_w365_contactid_value")),
            allowed=AWAITING_APPROVAL, via=f"the approval link ({signature.name})", order_columns=approval)
        if result.outcome in (attempts.HELD, attempts.UNKNOWN):
            update_order(services, order.id, approval)    # money may have moved: the link is used up
        elif not result.approved:
            raise _NotApproved(result)                    # nothing taken: the link stays usable for another card
        return result

    try:
        result = links.complete_once(services, link, record_and_pay, completion=lambda r: {
            "w365_paymentprofileid@odata.bind": f"/w365_paymentprofiles({r.profile_id})"} if r and r.profile_id
            else {}, declined_card=lambda exc: isinstance(exc, _NotApproved)
            and exc.result.outcome == attempts.DECLINED)
    except links.LinkTaken:
        return ApprovalResult("busy")
    except links.LinkLocked:
        return ApprovalResult("locked")
    except _NotApproved as exc:
        return ApprovalResult("declined", exc.result.customer_message)
    except ConflictInProgress:
        return ApprovalResult("refused", "A payment for this order is already being processed. Please wait a few "
                                         "minutes and open the link again.")
    except BusinessRuleViolation as exc:
        return ApprovalResult("refused", str(exc))
    if result is None:
        return ApprovalResult("approved", "Thank you: the order is approved. We will be in touch about payment.")
    if not result.approved:
        return ApprovalResult("pending", result.customer_message)
    return ApprovalResult("approved", result.customer_message, paid=True, scheduled=result.scheduled)


def _withdraw_note(services: Services, note_id: str) -> None:
    try:
        services.dataverse.delete(NOTES, note_id)
    except Exception:  # noqa: BLE001 - the failure that stopped the approval is the one to report
        log.exception("order signature note %s of an approval that did not complete could not be removed", note_id)


class _NotApproved(Exception):
    def __init__(self, result: "payment.PaymentResult"):
        super().__init__(result.message)
        self.result = result


# --- back to Draft ---------------------------------------------------------------------------------------------------

def convert_to_draft(services: Services, order_id: str, *, user_id: str) -> str:
    """A Declined order (or one waiting for the customer) goes back to Draft so another card can be submitted. The
    "Payment declined" tag stays until a payment is approved; approval links still open are withdrawn. One read
    $batch (the order, its open links, the person's rights), one changeset with the outcome."""
    check = permissions.AccessCheck(DRAFT_MESSAGE, user_id, {"Target": order_id}, action="convert this order to Draft")
    order_row, open_links, *granted = services.dataverse.read([
        Read.retrieve(ORDERS, order_id, select=ORDER_COLUMNS, expand=ORDER_EXPAND), _open_links(order_id),
        *check.reads()])
    check.verify(granted)
    order = order_from(order_row)
    was = order.status_label
    if was not in ("Declined", "Pending Approval"):
        raise BusinessRuleViolation(f"Only a Declined order, or one pending approval, can be converted to Draft; "
                                    f"this one is {was}.")
    text = f"Converted from {was} to Draft" + (f"; {len(open_links)} approval link(s) withdrawn." if open_links
                                               else ".")
    message = text + (" Choose a card and submit the payment again." if was == "Declined" else "")
    batch_with_outcome(services, [
        BatchOperation.update(ORDERS, order_id, {"w365_orderstatus": status("Draft")}, etag=order.etag),
        *_withdraw(open_links), note_operation(order_id, "Converted to Draft", text)], message)
    return message
