"""The Profile Request page in headless Chromium, against the app served by the dev host in local mode: the emailed
link, the Accept.js stand-in, the success page, a used link, an expired link; the card never reaches our /api."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CARD = "4111111111111111"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _emailed_link(live_app) -> str:
    outcome = live_app.send("w365_AddPaymentProfile", "account", live_app.ids["account"],
                            ContactId=live_app.ids["contact"], Method="ProfileRequest", EmailSubject="Your card",
                            EmailBody="<p>Hello Nancy,</p><p>Please add your card: {Secure Link}</p>")
    assert outcome["status"] == "succeeded", outcome
    email = live_app.standin.get("email", outcome["emailId"])
    return re.search(r'href="([^"]+/api/profile-requests/[A-Za-z0-9_-]{43})"', email["description"]).group(1)


def _fill_and_submit(page) -> None:
    page.fill("#cardNumber", CARD)
    page.fill("#expMonth", "12")
    page.fill("#expYear", "2030")
    page.fill("#cardCode", "123")
    page.fill("#address", "1 Main St")
    page.fill("#city", "Springfield")
    page.fill("#state", "IL")
    page.fill("#zip", "62701")
    page.fill("#country", "US")
    page.click("button[type=submit]")


def test_customer_saves_a_card_through_the_emailed_link(live_app, browser_page):
    page = browser_page
    url = _emailed_link(live_app)
    response = page.goto(url)
    assert response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert page.get_by_role("heading", name="Add a payment card").is_visible()
    assert page.locator("text=nancy@fabrikam.example").is_visible()
    assert page.input_value("#firstName") == "Nancy"
    page.screenshot(path=str(DOCS / "profile-request-form.png"), full_page=True)

    _fill_and_submit(page)
    page.wait_for_selector("text=Thank you, your card is saved")
    page.screenshot(path=str(DOCS / "profile-request-done.png"), full_page=True)
    assert not [m for m in page.console_messages if "Content Security Policy" in m]
    assert not [u for u in page.failed_responses if not u.endswith("/favicon.ico")]

    profiles = live_app.standin.rows("w365_paymentprofile")
    assert len(profiles) == 1 and profiles[0]["w365_billto_city"] == "Springfield"

    again = page.goto(url)
    assert again.status == 410
    assert page.locator("text=This link has already been used").is_visible()

    # The card went to the Accept.js stand-in only: none of the requests our /api routes received carries it.
    posts = [(m, p, b) for m, p, b in live_app.host.received if p.startswith("/api/profile-requests/")]
    assert any(m == "POST" for m, _, _ in posts)
    for _, path, body in live_app.host.received:
        assert CARD not in path and CARD.encode() not in body
    posted = [b for m, p, b in posts if m == "POST"][0].decode()
    assert "dataValue=" in posted and "firstName=Nancy" in posted and "cardNumber" not in posted


def test_an_expired_link_shows_the_expiry_page(live_app, browser_page):
    url = _emailed_link(live_app)
    token_hash = __import__("hashlib").sha256(url.rsplit("/", 1)[1].encode()).hexdigest()
    (link,) = [r for r in live_app.standin.rows("w365_securelink") if r["w365_tokenhash"] == token_hash]
    live_app.standin.update("w365_securelink", link["w365_securelinkid"], {"w365_expireson": "2020-01-01T00:00:00Z"})
    response = browser_page.goto(url)
    assert response.status == 410
    assert browser_page.locator("text=This link has expired").is_visible()
    assert "Nancy" not in browser_page.content()


def test_a_refused_card_is_shown_and_the_link_stays_usable(live_app, browser_page):
    page = browser_page
    url = _emailed_link(live_app)
    page.goto(url)
    _fill_and_submit(page)
    page.wait_for_selector("text=Thank you, your card is saved")      # first card on file for the account
    url = _emailed_link(live_app)
    page.goto(url)
    page.fill("#cardNumber", "5424000000000015")
    page.fill("#expMonth", "12")
    page.fill("#expYear", "2030")
    page.fill("#cardCode", "123")
    for field, value in (("#address", "2 Side St"), ("#city", "Springfield"), ("#zip", "46282"), ("#country", "US")):
        page.fill(field, value)
    page.click("button[type=submit]")
    page.wait_for_selector("text=refused the card")
    assert page.input_value("#zip") == "46282" and page.input_value("#cardNumber") == ""
    assert page.goto(url).status == 200                                 # still usable


def test_accept_js_errors_are_shown_without_posting(live_app, browser_page):
    page = browser_page
    page.goto(_emailed_link(live_app))
    received = len(live_app.host.received)
    page.fill("#cardNumber", "4111111111111112")                       # fails Luhn in the Accept.js stand-in
    page.fill("#expMonth", "12")
    page.fill("#expYear", "2030")
    page.fill("#cardCode", "123")
    for field, value in (("#address", "1 Main St"), ("#city", "Springfield"), ("#zip", "62701"), ("#country", "US")):
        page.fill(field, value)
    page.click("button[type=submit]")
    page.wait_for_selector("#form-errors:has-text('valid credit card number')")
    assert not [r for r in live_app.host.received[received:] if r[0] == "POST"]
