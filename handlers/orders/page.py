"""The order approval page (GET/POST /api/order-approvals/{token}) as HTML: the order's lines and totals in its
currency, a signature (typed name + a drawn PNG), the Accept.js card form when the configuration lets the customer pay
here, and Approve. Layout, headers, escaping and the card form are the shared customer-page ones
(handlers/customer_pages/); the work is approval.py, the HTTP trigger __init__.py."""
from __future__ import annotations

import json
import secrets
from decimal import Decimal
from typing import Any, Mapping

from app.composition import accept_js_auth
from core.services import Services
from handlers.customer_pages import html as pages
from handlers.customer_pages.html import esc
from handlers.orders import approval
from handlers.orders.records import Order, format_money, money

TITLE = "Review and approve your order"
FORM_ID = {True: "card-form", False: "approval-form"}      # card-form: the id the shared card script expects
MAX_SIGNATURE_URL = len(approval.PNG_DATA_URL) + approval.MAX_SIGNATURE_BASE64

STYLE = """
table{width:100%;border-collapse:collapse;margin:.5rem 0}
th,td{padding:.45rem .3rem;border-bottom:1px solid #e1e5eb;text-align:left;vertical-align:top}
.num{text-align:right;white-space:nowrap}
tfoot th{font-weight:500;text-align:right}
tfoot tr.total th,tfoot tr.total td{font-weight:700;font-size:1.1rem;border-bottom:0}
canvas{display:block;width:100%;height:auto;aspect-ratio:500/160;border:1px dashed #8a94a3;border-radius:8px;
background:#fff;touch-action:none;cursor:crosshair}
button.secondary{width:auto;margin:.5rem 0 0;padding:.4rem .8rem;color:#1a5fd0;background:#fff;border:1px solid #1a5fd0}
"""

SIGNATURE_SCRIPT = """
(function () {
  var form = document.getElementById(%(form)s);
  var canvas = document.getElementById("signature-pad");
  var image = document.getElementById("signatureImage");
  var errors = document.getElementById("form-errors");
  var pen = canvas.getContext("2d");
  var drawn = false, last = null;
  pen.lineWidth = 2.5; pen.lineCap = "round"; pen.lineJoin = "round"; pen.strokeStyle = "#111827";
  function at(event) {
    var box = canvas.getBoundingClientRect();
    return {x: (event.clientX - box.left) * canvas.width / box.width,
            y: (event.clientY - box.top) * canvas.height / box.height};
  }
  canvas.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    last = at(event);
    if (canvas.setPointerCapture) { canvas.setPointerCapture(event.pointerId); }
  });
  canvas.addEventListener("pointermove", function (event) {
    if (!last) { return; }
    var next = at(event);
    pen.beginPath(); pen.moveTo(last.x, last.y); pen.lineTo(next.x, next.y); pen.stroke();
    last = next; drawn = true;
  });
  ["pointerup", "pointercancel"].forEach(function (name) {
    canvas.addEventListener(name, function () { last = null; });
  });
  document.getElementById("signature-clear").addEventListener("click", function () {
    pen.clearRect(0, 0, canvas.width, canvas.height); drawn = false; image.value = "";
  });
  // Registered before the card script's handler: a missing signature stops the submit before Accept.js runs.
  form.addEventListener("submit", function (event) {
    var name = document.getElementById("signatureName").value.trim();
    var problem = name.length < 2 ? "Please type your full name to sign." :
                  !drawn ? "Please sign in the signature box." : "";
    if (!problem) {
      image.value = canvas.toDataURL("image/png");
      if (image.value.length > %(limit)d) {
        image.value = ""; problem = "The signature is too detailed. Please clear it and sign again.";
      }
    }
    if (problem) {
      event.preventDefault(); event.stopImmediatePropagation();
      errors.textContent = problem; errors.focus();
    }
  });
})();
"""


def show(services: Services, token: str) -> pages.Page:
    return render(services, token, approval.open_approval(services, token))


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
    result = approval.approve(services, token, signature, opaque=opaque, bill_to=bill_to)
    if result.state in ("approved", "pending"):
        return done_page(view.order, signature.name, result)
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
    nonce = secrets.token_urlsafe(16)
    action = f"/api/{approval.ROUTE}/{token}"
    form_id = FORM_ID[view.accepts_payment]
    total = format_money(order.total, order)
    consent = f"approve this order and authorize the payment of {total}" if view.accepts_payment else \
        "approve this order"
    signing = signature_fields(values.get("signatureName", ""), consent)
    if view.accepts_payment:
        form = pages.card_form(action=action, intro="<h2>Sign and pay</h2>", values=values, error=error,
                               extra_fields=signing, email=contact.get("emailaddress1") or "",
                               submit_label=f"Approve and pay {total}")
        client_key, login_id = accept_js_auth(services)
        script = _signature_script(form_id) + pages.card_form_script(client_key, login_id)
        accept_js = services.accept_js_url
    else:
        form = (f'<form id="{form_id}" method="post" action="{esc(action)}">'
                f'<div id="form-errors" class="error" role="alert" tabindex="-1">{esc(error)}</div>'
                f'<h2>Sign</h2>{signing}<button type="submit">Approve order</button></form>')
        script, accept_js = _signature_script(form_id), None
    content = (f'<style nonce="{nonce}">{STYLE}</style><h1>{TITLE}</h1>'
               f'<p>Hello {esc(contact.get("fullname") or "")}, please review this order for '
               f'{esc(order.account.get("name") or "your company")}, then sign to approve it.</p>'
               f'{order_summary(order, view.lines)}'
               f'<section class="card">{form}</section>')
    return pages.layout(TITLE, content, status=status, nonce=nonce, accept_js_url=accept_js, script=script)


def signature_fields(name: str, consent: str) -> str:
    return (f'<fieldset><legend>Signature</legend>'
            f'<p class="muted">By typing your name and signing below you {esc(consent)}.</p>'
            f'<label for="signatureName">Your full name</label>'
            f'<input id="signatureName" name="signatureName" autocomplete="name" '
            f'maxlength="{approval.MAX_SIGNATURE_NAME}" value="{esc(name)}" required>'
            f'<p id="signature-label"><strong>Sign here</strong> (with your mouse, finger or pen)</p>'
            f'<canvas id="signature-pad" width="500" height="160" role="img" aria-labelledby="signature-label">'
            f'</canvas><button type="button" id="signature-clear" class="secondary">Clear signature</button>'
            f'<input type="hidden" name="signatureImage" id="signatureImage"></fieldset>')


def _signature_script(form_id: str) -> str:
    return SIGNATURE_SCRIPT % {"form": json.dumps(form_id), "limit": MAX_SIGNATURE_URL}


def order_summary(order: Order, lines: list[dict[str, Any]]) -> str:
    def amount(value: Any) -> str:
        return esc(format_money(value, order, code=False))

    rows = "".join(
        f'<tr><td>{esc((line.get("productid") or {}).get("name") or line.get("productdescription") or "Item")}</td>'
        f'<td class="num">{esc(_quantity(line.get("quantity")))}</td><td class="num">{amount(line.get("priceperunit"))}'
        f'</td><td class="num">{amount(line.get("baseamount"))}</td><td class="num">{amount(line.get("tax"))}</td></tr>'
        for line in lines)
    row = order.row
    foot = f'<tr><th colspan="4">Subtotal</th><td class="num">{amount(row.get("totallineitemamount"))}</td></tr>'
    if money(row.get("discountamount")) > 0:
        foot += f'<tr><th colspan="4">Discount</th><td class="num">-{amount(row.get("discountamount"))}</td></tr>'
    foot += (f'<tr><th colspan="4">Tax</th><td class="num">{amount(row.get("totaltax"))}</td></tr>'
             f'<tr class="total"><th colspan="4">Total</th>'
             f'<td class="num" id="order-total">{esc(format_money(order.total, order))}</td></tr>')
    number = row.get("ordernumber")
    return (f'<section class="card" aria-labelledby="order-title"><h2 id="order-title">'
            f'{esc(order.name)}{" (" + esc(number) + ")" if number else ""}</h2>'
            f'<table><thead><tr><th scope="col">Item</th><th scope="col" class="num">Quantity</th>'
            f'<th scope="col" class="num">Unit price</th><th scope="col" class="num">Amount</th>'
            f'<th scope="col" class="num">Tax</th></tr></thead><tbody>{rows}</tbody><tfoot>{foot}</tfoot></table>'
            f'</section>')


def done_page(order: Order | None, signer: str, result: approval.ApprovalResult) -> pages.Page:
    title = "Thank you, your order is approved" if result.state == "approved" else "Thank you, we received your approval"
    name = esc(order.name) if order else "Your order"
    return pages.layout(title, f'<div class="card ok" role="status" id="confirmation"><h1>{esc(title)}</h1>'
                               f'<p>{name} was approved and signed by {esc(signer)}.</p><p>{esc(result.message)}</p>'
                               f'<p class="muted">You can close this page.</p></div>')


def _quantity(value: Any) -> str:
    quantity = Decimal(value if value is not None else 0).normalize()
    return f"{quantity:f}"
