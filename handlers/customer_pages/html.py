"""The customer pages' rendering: Jinja2 templates (templates/, autoescaping on) with strict headers, and what the
pages share (link problems, the Accept.js card form's posted fields).

The pages' stylesheets and scripts are static files (static/) inlined with a per-response CSP nonce, so the
Content-Security-Policy allows only this response and Accept.js. The card inputs have no `name`: the browser never
posts the card; Accept.js turns it into opaqueData, which the form posts.
"""
from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from core.ports import BillTo, OpaqueData
from core.bill_to import FIELDS as BILL_TO_FIELDS

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"


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


def render(template: str, *, title: str, status: int = 200, accept_js_url: str | None = None,
           styles: tuple[str, ...] = (), scripts: tuple[str, ...] = (), page_data: Any = None,
           **context: Any) -> Page:
    """A whole page from templates/<template> with the strict headers. `styles` and `scripts` name static files
    (besides page.css) inlined with this response's CSP nonce; `page_data` is what the scripts read (as JSON)."""
    nonce = secrets.token_urlsafe(16)
    body = _environment().get_template(template).render(
        title=title, nonce=nonce, accept_js_url=accept_js_url, page_data=page_data,
        styles=[static_file(name) for name in ("page.css", *styles)],
        scripts=[static_file(name) for name in scripts], **context)
    return Page(status, body, security_headers(nonce, accept_js_url))


def render_fragment(template: str, **context: Any) -> Any:
    """Part of a page (a Markup string: already escaped, safe to place in another template)."""
    from markupsafe import Markup

    return Markup(_environment().get_template(template).render(**context))


@functools.lru_cache(maxsize=None)
def _environment() -> Any:
    # jinja2 is imported here, at the first page a worker renders, never when function_app is imported: the cold
    # start of every other trigger does not pay for it.
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True,
        finalize=lambda value: "" if value is None else value, auto_reload=False)
    environment.globals["BILL_TO_FIELDS"] = BILL_TO_FIELDS
    return environment


@functools.lru_cache(maxsize=None)
def static_file(name: str) -> str:
    """A stylesheet or script of static/, read once per worker.

    Inlined rather than served by a route: the page stays one response, the CSP keeps allowing only this response's
    nonce (no 'self' script source, no extra anonymous route to harden), and the tests see exactly what ships."""
    text = (STATIC / name).read_text(encoding="utf-8")
    if "</" in text:                     # would end the inline <style>/<script> element early
        raise ValueError(f"static/{name} contains '</'; it cannot be inlined")
    return text


def message_page(title: str, text: str, *, status: int, ok: bool = False) -> Page:
    return render("message.html", title=title, paragraphs=[text], ok=ok, status=status)


LINK_PAGES = {
    "unknown": (404, "Link not found", "This link is not valid. Please check that you copied the whole link, or ask "
                                       "us for a new one."),
    "expired": (410, "This link has expired", "For your security, this link could be used only for a limited time. "
                                              "Please ask us for a new one."),
    "used": (410, "This link has already been used", "The form behind this link was already completed, so it "
                                                     "cannot be used again. Thank you!"),
    "cancelled": (410, "This link is no longer active", "This link was withdrawn. Please ask us for a new one "
                                                        "if you still need it."),
    "locked": (403, "This link is locked", "Too many cards were declined through this link, so it is locked. Please "
                                           "contact the person who sent it to you."),
    "busy": (409, "This link is being processed", "A submission through this link is being processed. Please wait a "
                                                  "few minutes, then open the link again."),
}


def link_problem_page(state: str) -> Page:
    """The page for a link that cannot be used: it says nothing about whose link it was."""
    status, title, text = LINK_PAGES.get(state, LINK_PAGES["unknown"])
    return message_page(title, text, status=status)


def accept_js_data(client_key: str, login_id: str) -> dict[str, Any]:
    """What static/card_form.js reads from #page-data."""
    return {"authData": {"clientKey": client_key, "apiLoginID": login_id}}


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
