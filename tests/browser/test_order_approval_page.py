"""The order approval page in headless Chromium, against the app served by the dev host in local mode: the emailed
link, the order's lines and total, a signature drawn on the canvas and typed, payment through the Accept.js stand-in,
the confirmation; used and expired links refused; the card never reaches our /api."""
from __future__ import annotations

import base64
import hashlib
import re
from decimal import Decimal
from pathlib import Path

import pytest

from core import footprint

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CARD = "4111111111111111"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _new_order(live_app, name: str) -> tuple[str, str]:
    """(order, contact): a fresh order like the demo one, of its own account, since the live app is shared by the
    session (the profile page tests expect the demo account without cards)."""
    ids, seed = live_app.ids, live_app.standin.seed
    account = seed("account", {"name": "Fabrikam", "accountnumber": f"FAB-{name[-4:]}", "creditonhold": False})
    contact = seed("contact", {"firstname": "Nancy", "lastname": "Davolio", "emailaddress1": "nancy@fabrikam.example",
                               "parentcustomerid_account@odata.bind": f"/accounts({account})"})
    order_id = seed("salesorder", {
        "name": name, "ordernumber": f"ORD-{name[-4:]}", "customerid_account@odata.bind": f"/accounts({account})",
        "pricelevelid@odata.bind": f"/pricelevels({ids['pricelevel']})",
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({ids['currency']})",
        "totallineitemamount": Decimal("220.00"), "totaltax": Decimal("17.60"), "totalamount": Decimal("237.60"),
        "w365_orderstatus": footprint.choice("salesorder", "w365_orderstatus", "Draft")})
    for product, quantity, price, tax in (("product_license", 3, "40.00", "9.60"), ("product_setup", 1, "100.00",
                                                                                   "8.00")):
        base = Decimal(price) * quantity
        seed("salesorderdetail", {"salesorderid@odata.bind": f"/salesorders({order_id})",
                                  "productid@odata.bind": f"/products({ids[product]})", "quantity": Decimal(quantity),
                                  "priceperunit": Decimal(price), "baseamount": base, "tax": Decimal(tax),
                                  "extendedamount": base + Decimal(tax)})
    return order_id, contact


def _emailed_link(live_app, order: tuple[str, str]) -> str:
    order_id, contact = order
    outcome = live_app.send("w365_SendOrderForApproval", "salesorder", order_id, ContactId=contact,
                            EmailSubject="Your order", EmailBody="<p>Hello Nancy,</p><p>Please approve: "
                                                                 "{Approval Link}</p>")
    assert outcome["status"] == "succeeded", outcome
    (email,) = [e for e in live_app.standin.sent_emails() if (e["regarding"] or {}).get("id") == order_id]
    return re.search(r'href="([^"]+/api/order-approvals/[A-Za-z0-9_-]{43})"', email["description"]).group(1)


@pytest.fixture(autouse=True)
def _leave_no_trace(live_app):
    """The live app is shared by the session: put its Dataverse back as it was (the profile page tests count the
    payment profiles)."""
    before = live_app.standin.store.snapshot()
    yield
    live_app.standin.store.restore(before)


@pytest.fixture
def payments_on(live_app):
    live_app.standin.update("w365_configuration", live_app.ids["configuration"], {"w365_approvalcanacceptpayment": True})


def _sign(page) -> None:
    pad = page.locator("#signature-pad")
    pad.scroll_into_view_if_needed()                 # the mouse only reaches what is inside the viewport
    box = pad.bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + w * 0.1, y + h * 0.7)
    page.mouse.down()
    for i in range(1, 25):
        page.mouse.move(x + w * (0.1 + 0.03 * i), y + h * (0.7 - 0.4 * ((i % 6) / 5)), steps=2)
    page.mouse.up()


def _fill_card(page) -> None:
    for field, value in (("#cardNumber", CARD), ("#expMonth", "12"), ("#expYear", "2030"), ("#cardCode", "123"),
                         ("#address", "1 Main St"), ("#city", "Redmond"), ("#state", "WA"), ("#zip", "98052"),
                         ("#country", "US")):
        page.fill(field, value)


def test_customer_signs_pays_and_approves(live_app, browser_page, payments_on):
    page = browser_page
    order = _new_order(live_app, "Fabrikam Cloud PCs 0001")
    order_id = order[0]
    url = _emailed_link(live_app, order)
    response = page.goto(url)
    assert response.status == 200 and response.headers["cache-control"] == "no-store"
    assert page.get_by_role("heading", name="Review and approve your order").is_visible()
    assert page.locator("#order-total").inner_text() == "$237.60 USD"
    assert page.locator("text=Cloud PC license").is_visible() and page.locator("text=$17.60").is_visible()
    assert page.input_value("#signatureName") == "Nancy Davolio"
    _sign(page)
    _fill_card(page)
    page.screenshot(path=str(DOCS / "order-approval-form.png"), full_page=True)

    page.click("button[type=submit]")
    page.wait_for_selector("text=Thank you, your order is approved")
    assert page.locator("text=was approved").first.is_visible()
    page.screenshot(path=str(DOCS / "order-approval-done.png"), full_page=True)
    assert not [m for m in page.console_messages if "Content Security Policy" in m]
    assert not [u for u in page.failed_responses if not u.endswith("/favicon.ico")]

    order = live_app.standin.get("salesorder", order_id)
    assert order["w365_orderstatus"] == footprint.choice("salesorder", "w365_orderstatus", "Activated")
    assert order["w365_signaturename"] == "Nancy Davolio" and order["w365_approvedon"]
    (signature,) = [n for n in live_app.standin.rows("annotation")
                    if (n.get("objectid") or {}).get("id") == order_id and n.get("isdocument")]
    drawn = base64.b64decode(signature["documentbody"])
    assert drawn.startswith(b"\x89PNG\r\n\x1a\n") and signature["mimetype"] == "image/png" and len(drawn) > 500
    charges = [t for t in live_app.standin.rows("w365_paymenttransaction")
               if (t.get("w365_salesorderid") or {}).get("id") == order_id]
    assert [t["w365_amount"] for t in charges] == [Decimal("237.60")]

    # The card went to the Accept.js stand-in only; our /api got the nonce, the bill-to and the signature.
    posts = [b for m, p, b in live_app.host.received if m == "POST" and p.startswith("/api/order-approvals/")]
    assert posts and b"dataValue=" in posts[-1] and b"signatureImage=data%3Aimage%2Fpng%3Bbase64" in posts[-1]
    for _, path, body in live_app.host.received:
        assert CARD not in path and CARD.encode() not in body

    again = page.goto(url)
    assert again.status == 410 and page.locator("text=This link has already been used").is_visible()


def test_approval_without_a_drawn_signature_is_stopped_in_the_browser(live_app, browser_page):
    page = browser_page
    page.goto(_emailed_link(live_app, _new_order(live_app, "Fabrikam Cloud PCs 0002")))
    assert page.locator("#cardNumber").count() == 0                     # payment off: sign and approve only
    received = len(live_app.host.received)
    page.click("button[type=submit]")
    page.wait_for_selector("#form-errors:has-text('Please sign in the signature box')")
    assert not [r for r in live_app.host.received[received:] if r[0] == "POST"]
    _sign(page)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Thank you, your order is approved")


def test_an_expired_link_is_refused(live_app, browser_page):
    url = _emailed_link(live_app, _new_order(live_app, "Fabrikam Cloud PCs 0003"))
    token_hash = hashlib.sha256(url.rsplit("/", 1)[1].encode()).hexdigest()
    (link,) = [r for r in live_app.standin.rows("w365_securelink") if r["w365_tokenhash"] == token_hash]
    live_app.standin.update("w365_securelink", link["w365_securelinkid"], {"w365_expireson": "2020-01-01T00:00:00Z"})
    response = browser_page.goto(url)
    assert response.status == 410 and browser_page.locator("text=This link has expired").is_visible()
    assert "237.60" not in browser_page.content()
