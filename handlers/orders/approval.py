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

from core import permissions
from core.money import require_merchant_currency
from core.errors import BusinessRuleViolation, ConflictInProgress, RecordNotFound
from core.ports import BillTo, OpaqueData
from core.configuration import money_switches, settings_row
from core.services import Services
from handlers.charging import attempts
from handlers.customer_pages import links
from handlers.orders import payment
from handlers.orders.records import (NOTES, Order, add_note, format_money, iso, load_order, money, order_lines,
                                     status, update_order)
from handlers.payment_profiles.profiles import require_contact

log = logging.getLogger(__name__)

PURPOSE = "Order Approval"
ROUTE = "order-approvals"
PLACEHOLDER = "{Approval Link}"
PNG_DATA_URL = "data:image/png;base64,"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SIGNATURE_BYTES = 32 * 1024          # a signature drawn on the page's 500x160 canvas is a few KB
MAX_SIGNATURE_BASE64 = 4 * -(-MAX_SIGNATURE_BYTES // 3)
MAX_SIGNATURE_NAME = 200                 # salesorder.w365_signaturename
AWAITING_APPROVAL = ("Pending Approval", "Declined")   # Declined: the customer's card was refused; they may retry


# --- sending ---------------------------------------------------------------------------------------------------------

def require_may_send_for_approval(services: Services, user_id: str, order_id: str) -> None:
    """Administrators always; anyone else (salespeople) only when w365_salescansendforapproval is on, and only on an
    order their Dataverse privileges let them change."""
    permissions.require_access(services, user_id, "salesorder", order_id, permissions.READ, permissions.WRITE,
                               action="send it for approval")
    if permissions.is_administrator(services, user_id):
        return
    if not settings_row(services).get("w365_salescansendforapproval"):
        raise BusinessRuleViolation("Only administrators can send orders for customer approval. An administrator can "
                                    "let salespeople do it with 'Sales can send for approval' in the W365 "
                                    "configuration.")


def send_for_approval(services: Services, order_id: str, *, user_id: str, contact_id: str, subject: str,
                      body: str) -> str:
    """Email the contact a link to approve the order; the order becomes Pending Approval. Returns the message."""
    if PLACEHOLDER not in (body or ""):
        raise BusinessRuleViolation(f"The email text must contain {PLACEHOLDER}, where the customer's link goes.")
    require_may_send_for_approval(services, user_id, order_id)
    order = load_order(services, order_id)
    if order.status_label in ("Activated", "Scheduled"):
        raise BusinessRuleViolation(f"The order is already paid ({order.status_label}); there is nothing to approve.")
    contact = require_contact(services, order.account_id, contact_id)
    sent = links.send_secure_link(services, purpose_label=PURPOSE, route=ROUTE, account_id=order.account_id,
                                  contact_id=contact["contactid"], subject=subject, body_template=body,
                                  placeholder=PLACEHOLDER, regarding=("salesorder", order_id), salesorder_id=order_id)
    cancel_open_links(services, order_id, keep=sent.link_id)
    update_order(services, order_id, {"w365_orderstatus": status("Pending Approval")})
    who = contact.get("fullname") or contact.get("emailaddress1")
    add_note(services, order_id, "Sent for approval",
             f"Approval link emailed to {who} ({contact.get('emailaddress1')}); it works until "
             f"{iso(sent.expires_on)}.")
    return (f"Approval request emailed to {who} ({contact.get('emailaddress1')}); the link works until "
            f"{sent.expires_on:%Y-%m-%d %H:%M} UTC. The order is Pending Approval.")


def cancel_open_links(services: Services, order_id: str, *, keep: str | None = None) -> int:
    """Withdraw the order's approval links still waiting (a newer one replaces them, or the order went back to
    Draft). Returns how many."""
    rows = services.dataverse.query(links.LINKS, select=("w365_securelinkid",), filter=(
        f"_w365_salesorderid_value eq {order_id} and w365_purpose eq {links.purpose(PURPOSE)} and "
        f"w365_status eq {links.status('Sent')}"))
    cancelled = 0
    for row in rows:
        if row["w365_securelinkid"] != keep:
            services.dataverse.update(links.LINKS, row["w365_securelinkid"], {"w365_status": links.status("Cancelled")})
            cancelled += 1
    return cancelled


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
            else {}, declined_card=lambda exc: isinstance(exc, _NotApproved) and exc.result.outcome in (
            attempts.DECLINED, payment.REFUSED))
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
    "Payment declined" tag stays until a payment is approved; approval links still open are withdrawn."""
    permissions.require_access(services, user_id, "salesorder", order_id, permissions.READ, permissions.WRITE,
                               action="convert it to Draft")
    order = load_order(services, order_id)
    was = order.status_label
    if was not in ("Declined", "Pending Approval"):
        raise BusinessRuleViolation(f"Only a Declined order, or one pending approval, can be converted to Draft; "
                                    f"this one is {was}.")
    update_order(services, order_id, {"w365_orderstatus": status("Draft")}, etag=order.etag)
    withdrawn = cancel_open_links(services, order_id)
    text = f"Converted from {was} to Draft" + (f"; {withdrawn} approval link(s) withdrawn." if withdrawn else ".")
    add_note(services, order_id, "Converted to Draft", text)
    return text + (" Choose a card and submit the payment again." if was == "Declined" else "")
