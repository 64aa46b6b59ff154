"""The order approval page (GET/POST /api/order-approvals/{token}) as HTML: the order's lines and totals in its
currency, a signature (typed name + a drawn PNG), the Accept.js card form when the configuration lets the customer pay
here, and Approve. The templates (order_approval.html, _order_summary.html), the signature pad (static/signature.js),
the headers and the card form are the shared customer-page ones (handlers/customer_pages/); the work is approval.py,
the HTTP trigger entry.py."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

from app.composition import accept_js_auth
from core.services import Services
from handlers.customer_pages import html as pages
from handlers.orders import approval
from handlers.orders.records import Order, format_money, money

TITLE = "Review and approve your order"
FORM_ID = {True: "card-form", False: "approval-form"}      # card-form: the id the shared card script expects
MAX_SIGNATURE_URL = len(approval.PNG_DATA_URL) + approval.MAX_SIGNATURE_BASE64


def show(services: Services, token: str) -> pages.Page:
    view = approval.open_approval(services, token)
    # An order this payment account cannot charge says so before the customer types a card (CONTRACT §5).
    return render(services, token, view, error=approval.payment_refusal(services, view))


def submit(services: Services, token: str, form: Mapping[str, str]) -> pages.Page:
    view = approval.open_approval(services, token)
    if view.state != "usable":
        return pages.link_problem_page(view.state)
    values = dict(form)
    try:
        signature = approval.parse_signature(form.get("signatureName"), form.get("signatureImage"))
    except approval.SignatureRefused as exc:
        return render(services, token, view, values, str(exc), 400)
    opaque = bill_to = None
    if view.accepts_payment:
        card = pages.read_card_form(form)
        if card.problem:
            return render(services, token, view, values, card.problem, card.status)
        opaque, bill_to = card.opaque, card.bill_to
    result = approval.approve(services, token, signature, opaque=opaque, bill_to=bill_to,
                              shown_digest=form.get("orderDigest") or "")
    if result.state in ("approved", "pending"):
        return done_page(view.order, signature.name, result)
    if result.state == "changed":
        return pages.render("message.html", title="This order has changed", status=409, ok=False,
                            box_id="order-changed", paragraphs=[result.message], note="")
    if result.state in ("declined", "refused"):
        return render(services, token, view, values, result.message, 402 if result.state == "declined" else 422)
    return pages.link_problem_page(result.state)


def render(services: Services, token: str, view: approval.ApprovalView, values: Mapping[str, str] | None = None,
           error: str = "", status: int = 200) -> pages.Page:
    if view.state != "usable" or view.order is None:
        return pages.link_problem_page(view.state)
    order, contact = view.order, view.contact
    if values is None:
        values = {"firstName": contact.get("firstname") or "", "lastName": contact.get("lastname") or "",
                  "company": order.account.get("name") or "", "phoneNumber": contact.get("telephone1") or "",
                  "signatureName": contact.get("fullname") or ""}
    total = format_money(order.total, order)
    consent = f"approve this order and authorize the payment of {total}" if view.accepts_payment else \
        "approve this order"
    data: dict[str, Any] = {"formId": FORM_ID[view.accepts_payment], "signatureLimit": MAX_SIGNATURE_URL}
    scripts: tuple[str, ...] = ("signature.js",)            # first: its submit handler runs before the card form's
    accept_js = None
    if view.accepts_payment:
        data.update(pages.accept_js_data(*accept_js_auth(services)))
        scripts += ("card_form.js",)
        accept_js = services.accept_js_url
    return pages.render("order_approval.html", title=TITLE, status=status, accept_js_url=accept_js,
                        styles=("order.css",), scripts=scripts, page_data=data, contact=contact,
                        account_name=order.account.get("name") or "your company",
                        summary=order_summary(order, view.lines), accepts_payment=view.accepts_payment,
                        action=f"/api/{approval.ROUTE}/{token}", values=values, error=error, consent=consent,
                        total=total, max_signature_name=approval.MAX_SIGNATURE_NAME,
                        order_digest=approval.order_digest(order, view.lines))


def order_summary(order: Order, lines: list[dict[str, Any]]) -> Any:
    """The order's table (escaped markup), amounts in its currency."""
    def amount(value: Any) -> str:
        return format_money(value, order, code=False)

    row = order.row
    return pages.render_fragment(
        "_order_summary.html", order=order, number=row.get("ordernumber"),
        lines=[{"name": (line.get("productid") or {}).get("name") or line.get("productdescription") or "Item",
                "quantity": _quantity(line.get("quantity")), "price": amount(line.get("priceperunit")),
                "amount": amount(line.get("baseamount")), "tax": amount(line.get("tax"))} for line in lines],
        subtotal=amount(row.get("totallineitemamount")),
        discount=amount(row.get("discountamount")) if money(row.get("discountamount")) > 0 else "",
        tax=amount(row.get("totaltax")), total=format_money(order.total, order))


def done_page(order: Order | None, signer: str, result: approval.ApprovalResult) -> pages.Page:
    title = ("Thank you, your order is approved" if result.state == "approved" else
             "Thank you, we received your approval")
    name = order.name if order else "Your order"
    return pages.render("message.html", title=title, ok=True, box_id="confirmation",
                        paragraphs=[f"{name} was approved and signed by {signer}.", result.message],
                        note="You can close this page.")


def _quantity(value: Any) -> str:
    quantity = Decimal(value if value is not None else 0).normalize()
    return f"{quantity:f}"
