"""HTML of the customer pages: one layout, strict headers, escaping, and the Accept.js card form.

No framework: every value goes through `esc()` (html.escape with quotes); the page's own script and style are inline
with a per-response CSP nonce, so the Content-Security-Policy allows only this page and Accept.js. The card inputs
have no `name`: the browser never posts the card; Accept.js turns it into opaqueData, which the form posts.
"""
from __future__ import annotations

import html
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

from core.ports import BillTo, OpaqueData
from core.bill_to import FIELDS as BILL_TO_FIELDS



def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class Page:
    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)


def security_headers(nonce: str, accept_js_url: str | None = None) -> dict[str, str]:
    script = f"'nonce-{nonce}'"
    connect = "'self'"
    frame = "'none'"
    if accept_js_url:
        origin = _origin(accept_js_url)
        if origin:
            # Accept.js posts the card to the gateway's API host and may use a frame of its own host.
            api = origin.replace("://jstest.", "://apitest.").replace("://js.", "://api2.")
            script += f" {origin}"
            extra = {origin, api} | ({"https://api.authorize.net"} if "://js." in origin else set())
            connect += " " + " ".join(sorted(extra))
            frame = origin
        else:
            script += " 'self'"               # local mode: the stand-in is served by this app
    policy = (f"default-src 'none'; script-src {script}; style-src 'nonce-{nonce}'; img-src 'self' data:; "
              f"connect-src {connect}; frame-src {frame}; form-action 'self'; base-uri 'none'; "
              f"frame-ancestors 'none'")
    return {"Content-Security-Policy": policy, "Cache-Control": "no-store", "Pragma": "no-cache",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f3f5f8}
main{max-width:40rem;margin:0 auto;padding:1.25rem}
.card{background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:1.5rem;margin:1rem 0}
h1{font-size:1.5rem;margin:.2rem 0 1rem}
h2{font-size:1.1rem;margin:0 0 .75rem}
fieldset{border:0;padding:0;margin:0 0 1.25rem}
legend{font-weight:600;font-size:1.1rem;margin-bottom:.5rem}
label{display:block;font-weight:500;margin:.6rem 0 .2rem}
input{width:100%;padding:.65rem .75rem;font:inherit;border:1px solid #8a94a3;border-radius:8px;background:#fff}
input:focus{outline:3px solid #9cc2ff;border-color:#1a5fd0}
.row{display:grid;grid-template-columns:1fr 1fr;gap:0 .9rem}
.row3{display:grid;grid-template-columns:1fr 1fr 1fr;gap:0 .9rem}
@media (max-width:30rem){.row,.row3{grid-template-columns:1fr}}
button{width:100%;margin-top:1rem;padding:.8rem;font:inherit;font-weight:600;color:#fff;background:#1a5fd0;border:0;
border-radius:8px;cursor:pointer}
button:disabled{background:#7d8ea8;cursor:progress}
.error{background:#fdecec;border:1px solid #d33;color:#8a1010;border-radius:8px;padding:.75rem;margin:0 0 1rem}
.error:empty{display:none}
.ok{border-left:6px solid #1d8a4e}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dt{color:#555}dd{margin:0}
.muted{color:#555;font-size:.9rem}
"""


def layout(title: str, content: str, *, status: int = 200, nonce: str | None = None,
           accept_js_url: str | None = None, script: str = "") -> Page:
    """A whole page. `content` and `script` are trusted markup built here (values already escaped)."""
    nonce = nonce or secrets.token_urlsafe(16)
    accept = f'<script src="{esc(accept_js_url)}" nonce="{nonce}"></script>\n' if accept_js_url else ""
    inline = f'<script nonce="{nonce}">{script}</script>\n' if script else ""
    body = (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="referrer" content="no-referrer">\n<meta name="robots" content="noindex">\n'
            f'<title>{esc(title)}</title>\n<style nonce="{nonce}">{STYLE}</style>\n</head>\n<body>\n'
            f'<main id="main">\n{content}\n</main>\n{accept}{inline}</body>\n</html>\n')
    return Page(status, body, security_headers(nonce, accept_js_url))


def message_page(title: str, text: str, *, status: int, ok: bool = False) -> Page:
    return layout(title, f'<div class="card{" ok" if ok else ""}" role="{"status" if ok else "alert"}">'
                         f'<h1>{esc(title)}</h1><p>{esc(text)}</p></div>', status=status)


LINK_PAGES = {
    "unknown": (404, "Link not found", "This link is not valid. Please check that you copied the whole link, or ask "
                                       "us for a new one."),
    "expired": (410, "This link has expired", "For your security, this link could be used only for a limited time. "
                                              "Please ask us for a new one."),
    "used": (410, "This link has already been used", "The form behind this link was already completed, so it "
                                                     "cannot be used again. Thank you!"),
    "cancelled": (410, "This link is no longer active", "This link was withdrawn. Please ask us for a new one "
                                                        "if you still need it."),
}


def link_problem_page(state: str) -> Page:
    """The page for a link that cannot be used: it says nothing about whose link it was."""
    status, title, text = LINK_PAGES.get(state, LINK_PAGES["unknown"])
    return message_page(title, text, status=status)


def bill_to_fields(values: Mapping[str, str]) -> str:
    parts = []
    for f in BILL_TO_FIELDS:
        required = " required" if f.required else ""
        mark = "" if required else ' <span class="muted">(optional)</span>'
        parts.append(f'<div><label for="{f.name}">{esc(f.label)}{mark}</label>'
                     f'<input id="{f.name}" name="{f.name}" autocomplete="{f.autocomplete}" maxlength="{f.limit}"'
                     f' value="{esc(values.get(f.name, ""))}"{required}></div>')
    grouped = [parts[0] + parts[1], parts[2], parts[3], parts[4] + parts[5], parts[6] + parts[7], parts[8]]
    return "\n".join(f'<div class="row">{g}</div>' if g.count("<label") == 2 else g for g in grouped)


def card_fields() -> str:
    """Card inputs WITHOUT `name`: they are never posted. Accept.js reads them in the browser."""
    return ('<fieldset><legend>Card</legend>'
            '<label for="cardNumber">Card number</label>'
            '<input id="cardNumber" inputmode="numeric" autocomplete="cc-number" maxlength="23" required>'
            '<div class="row3"><div><label for="expMonth">Expiry month (MM)</label>'
            '<input id="expMonth" inputmode="numeric" autocomplete="cc-exp-month" maxlength="2" placeholder="MM" '
            'required></div><div><label for="expYear">Expiry year (YYYY)</label>'
            '<input id="expYear" inputmode="numeric" autocomplete="cc-exp-year" maxlength="4" placeholder="YYYY" '
            'required></div><div><label for="cardCode">Security code</label>'
            '<input id="cardCode" inputmode="numeric" autocomplete="cc-csc" maxlength="4" required></div></div>'
            '<p class="muted">Your card details go straight to our payment processor, Authorize.Net; they are not '
            'sent to us.</p></fieldset>'
            '<input type="hidden" name="dataDescriptor" id="dataDescriptor">'
            '<input type="hidden" name="dataValue" id="dataValue">')


def card_form_script(client_key: str, login_id: str) -> str:
    """The submit handler: Accept.dispatchData, then post only opaqueData and the named fields."""
    # "<" escaped so that no value can close the <script> element.
    auth = json.dumps({"clientKey": client_key, "apiLoginID": login_id}).replace("<", "\\u003c")
    return """
(function () {
  var form = document.getElementById("card-form");
  var errors = document.getElementById("form-errors");
  var button = form.querySelector("button[type=submit]");
  var authData = %s;
  function value(id) { return document.getElementById(id).value.replace(/\\s+/g, ""); }
  function fail(text) {
    errors.textContent = text; button.disabled = false; button.textContent = button.dataset.label;
    errors.focus();
  }
  form.addEventListener("submit", function (event) {
    if (document.getElementById("dataValue").value) { return; }
    event.preventDefault();
    if (typeof Accept === "undefined") { fail("The secure card service could not be loaded. Please try again."); return; }
    button.disabled = true; button.dataset.label = button.textContent; button.textContent = "Saving\\u2026";
    errors.textContent = "";
    var secureData = {authData: authData, cardData: {cardNumber: value("cardNumber"), month: value("expMonth"),
                      year: value("expYear"), cardCode: value("cardCode")}};
    Accept.dispatchData(secureData, function (response) {
      if (!response || !response.messages || response.messages.resultCode === "Error") {
        var list = (response && response.messages && response.messages.message) || [];
        fail(list.map(function (m) { return m.text; }).join(" ") || "The card could not be checked.");
        return;
      }
      document.getElementById("dataDescriptor").value = response.opaqueData.dataDescriptor;
      document.getElementById("dataValue").value = response.opaqueData.dataValue;
      ["cardNumber", "expMonth", "expYear", "cardCode"].forEach(function (id) {
        document.getElementById(id).value = "";
      });
      form.submit();
    });
  });
})();
""" % auth


def card_form(*, action: str, intro: str, values: Mapping[str, str], error: str = "", extra_fields: str = "",
              email: str = "", submit_label: str = "Save card") -> str:
    """The whole form: errors region, the caller's extra markup, the card and the bill-to address.
    `intro` and `extra_fields` are trusted markup; `values`, `error`, `email` are escaped here."""
    return (f'<form id="card-form" method="post" action="{esc(action)}">'
            f'<div id="form-errors" class="error" role="alert" tabindex="-1">{esc(error)}</div>'
            f'{intro}{extra_fields}{card_fields()}'
            f'<fieldset><legend>Billing address</legend>{bill_to_fields(values)}</fieldset>'
            f'<input type="hidden" name="email" value="{esc(email)}">'
            f'<button type="submit">{esc(submit_label)}</button></form>')


def bill_to_from_form(form: Mapping[str, str]) -> tuple[BillTo, list[str]]:
    """The posted bill-to, trimmed and cut to the gateway's limits, and the labels of required fields left empty."""
    values = {f.attribute: (form.get(f.name) or "").strip()[:f.limit] for f in BILL_TO_FIELDS}
    missing = [f.label for f in BILL_TO_FIELDS if f.required and not values[f.attribute]]
    return BillTo(**values), missing


@dataclass(frozen=True)
class CardForm:
    """A posted card form: the Accept.js nonce and the bill-to, or the problem to show (with its HTTP status)."""
    opaque: OpaqueData | None
    bill_to: BillTo
    problem: str = ""
    status: int = 200


def read_card_form(form: Mapping[str, str]) -> CardForm:
    bill_to, missing = bill_to_from_form(form)
    descriptor, value = form.get("dataDescriptor", ""), form.get("dataValue", "")
    if not descriptor or not value:
        return CardForm(None, bill_to, "The card details did not reach the payment service. Please enter the card "
                                       "again (JavaScript must be on).", 400)
    if missing:
        return CardForm(None, bill_to, "Please fill in: " + ", ".join(missing) + ".", 422)
    return CardForm(OpaqueData(descriptor, value), bill_to)


def form_values(bill_to: BillTo) -> dict[str, str]:
    return {f.name: getattr(bill_to, f.attribute) for f in BILL_TO_FIELDS}
