"""The customer's Profile Request page through the HTTP trigger itself (the browser test drives it for real)."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

import azure.functions as func
import pytest

from core.errors import DataverseAuthError, DataverseError, GatewayError
from handlers.customer_pages import links
from handlers.payment_profiles.entry import profile_request_page
from handlers.payment_profiles.profile_request import PAGE_PURPOSES

FORM = {"firstName": "Nancy", "lastName": "Davolio", "company": "Fabrikam", "address": "1 Main St",
        "city": "Springfield", "state": "IL", "zip": "62701", "country": "US", "phoneNumber": "555-0100",
        "email": "nancy@fabrikam.example"}


def _call(method, token, form=None):
    body = urlencode(form).encode() if form is not None else b""
    request = func.HttpRequest(method, f"https://w365.example.test/api/profile-requests/{token}", body=body,
                               headers={"content-type": "application/x-www-form-urlencoded"},
                               route_params={"token": token})
    response = profile_request_page.build().get_user_function()(request)
    return response.status_code, response.get_body().decode(), dict(response.headers)


@pytest.fixture
def token(world):
    reply = world.send("w365_AddPaymentProfile", "account", world.ids["account"], ContactId=world.ids["contact"],
                       Method="ProfileRequest", EmailSubject="Card", EmailBody="Link: {Secure Link}")
    assert reply.body["status"] == "succeeded", reply.body
    email = world.row("email", reply.body["emailId"])
    return re.search(r"/api/profile-requests/([A-Za-z0-9_-]{43})", email["description"]).group(1)


def _posted(world, number="4111111111111111", **changes):
    opaque = world.simulator.issue_nonce(number, 12, 2030, "123")
    return {**FORM, **changes, "dataDescriptor": opaque.descriptor, "dataValue": opaque.value}


def _link(world):
    (row,) = world.rows("w365_securelink")
    return row


def test_the_form_shows_the_contact_with_strict_headers_and_unnamed_card_inputs(world, token):
    status, body, headers = _call("GET", token)
    assert status == 200
    assert "Nancy Davolio" in body and "nancy@fabrikam.example" in body
    assert headers["Cache-Control"] == "no-store" and headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "https://jstest.authorize.net" in csp and "unsafe-inline" not in csp
    assert '<script src="https://jstest.authorize.net/v1/Accept.js"' in body
    for card_input in re.findall(r'<input id="(?:cardNumber|expMonth|expYear|cardCode)"[^>]*>', body):
        assert " name=" not in card_input
    for name in ("dataDescriptor", "dataValue", "firstName", "lastName", "company", "address", "city", "state", "zip",
                 "country", "phoneNumber", "email"):
        assert f'name="{name}"' in body
    assert '"clientKey": "sim-public-client-key"' in body and '"apiLoginID": "sim-login"' in body


def test_values_on_the_page_are_escaped(world, token):
    world.standin.update("contact", world.ids["contact"], {"firstname": "<script>alert(1)</script>"})
    status, body, _ = _call("GET", token)
    assert status == 200 and "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_a_submit_saves_the_card_once_and_completes_the_link(world, token):
    status, body, _ = _call("POST", token, _posted(world))
    assert status == 200 and "card is saved" in body
    (profile,) = world.rows("w365_paymentprofile")
    assert profile["w365_source"] == world.choice("w365_paymentprofile", "w365_source", "Profile Request")
    assert profile["w365_syncstatus"] == world.choice("w365_paymentprofile", "w365_syncstatus", "Pending Sync")
    link = _link(world)
    assert link["w365_status"] == links.status("Completed") and link["w365_completedon"]
    assert link["w365_paymentprofileid"]["id"] == profile["w365_paymentprofileid"]
    status, body, _ = _call("POST", token, _posted(world, "5424000000000015"))
    assert status == 410 and "already been used" in body and len(world.rows("w365_paymentprofile")) == 1
    status, body, _ = _call("GET", token)
    assert status == 410 and "already been used" in body and "Nancy" not in body


def test_a_refused_card_shows_why_and_leaves_the_link_usable(world, token):
    status, body, _ = _call("POST", token, _posted(world, zip="46282"))
    assert status == 422 and "refused the card" in body
    assert 'value="46282"' in body                    # the customer's entries are kept
    assert world.rows("w365_paymentprofile") == [] and _link(world)["w365_status"] == links.status("Sent")
    status, body, _ = _call("POST", token, _posted(world))
    assert status == 200 and len(world.rows("w365_paymentprofile")) == 1


def test_missing_fields_and_missing_card_data_are_refused(world, token):
    status, body, _ = _call("POST", token, {**FORM, "dataDescriptor": "", "dataValue": ""})
    assert status == 400 and "card details did not reach" in body
    status, body, _ = _call("POST", token, _posted(world, city=""))
    assert status == 422 and "City" in body
    assert _link(world)["w365_status"] == links.status("Sent")


def test_an_expired_link_shows_the_expiry_page_and_is_marked_expired(world, token):
    world.clock.advance(dt.timedelta(hours=72, seconds=1))
    status, body, _ = _call("GET", token)
    assert status == 410 and "expired" in body and "Nancy" not in body and "Fabrikam" not in body
    assert _link(world)["w365_status"] == links.status("Expired")
    status, body, _ = _call("POST", token, _posted(world))
    assert status == 410 and world.rows("w365_paymentprofile") == []


@pytest.mark.parametrize("bad", ["x" * 43, "short", "../../etc"])
def test_an_unknown_link_reveals_nothing(world, bad):
    status, body, headers = _call("GET", bad)
    assert status == 404 and "not valid" in body and headers["Cache-Control"] == "no-store"


def test_a_cancelled_link_is_refused(world, token):
    world.standin.update("w365_securelink", _link(world)["w365_securelinkid"], {"w365_status": links.status("Cancelled")})
    status, body, _ = _call("GET", token)
    assert status == 410 and "no longer active" in body


# --- a claim whose work never finished, and declined cards -----------------------------------------------------------

def _crashed_claim(world, token):
    """A submit claimed the link, then its process died (no release, no completion)."""
    check = links.check_link(world.services, token, PAGE_PURPOSES)
    assert check.usable
    links.claim(world.services, check.row)


def test_a_claim_whose_work_never_finished_is_usable_again_after_the_lease(world, token):
    _crashed_claim(world, token)
    status, body, _ = _call("POST", token, _posted(world))
    assert status == 409 and "being processed" in body
    assert world.rows("w365_paymentprofile") == []
    world.clock.advance(links.CLAIM_LEASE + dt.timedelta(seconds=1))
    status, body, _ = _call("GET", token)
    assert status == 200
    status, body, _ = _call("POST", token, _posted(world))                  # the customer's retry works
    assert status == 200 and "card is saved" in body
    assert len(world.rows("w365_paymentprofile")) == 1 and _link(world)["w365_status"] == links.status("Completed")


def test_five_declined_cards_lock_the_link_and_note_the_account(world, token):
    for attempt in range(1, links.MAX_DECLINED_CARDS):
        status, body, _ = _call("POST", token, _posted(world, zip="46282"))
        assert status == 422 and "refused the card" in body
        assert _link(world)["w365_declinedcards"] == attempt
    status, body, _ = _call("POST", token, _posted(world, zip="46282"))
    assert status == 403 and "contact" in body.lower() and "locked" in body.lower()
    link = _link(world)
    assert link["w365_status"] == links.status("Locked") and link["w365_declinedcards"] == links.MAX_DECLINED_CARDS
    status, body, _ = _call("POST", token, _posted(world))                   # a good card no longer gets through
    assert status == 403 and world.rows("w365_paymentprofile") == []
    assert _call("GET", token)[0] == 403
    account_notes = [n for n in world.rows("annotation")
                     if (n.get("objectid") or {}).get("id") == world.ids["account"]]
    assert any("locked" in n["subject"].lower() and "5" in n["notetext"] for n in account_notes)



# --- outages and failures answer with the pages' own error page --------------------------------------------------------

@pytest.mark.parametrize("failure,expected", [
    (lambda: DataverseAuthError("Could not reach login.microsoftonline.com", is_transient=True), 503),
    (lambda: DataverseAuthError("Could not get a Dataverse token: invalid_client"), 500),
    (lambda: DataverseError("Dataverse answered HTTP 400", status=400), 500),
    (lambda: RuntimeError("a bug"), 500),
    (lambda: GatewayError("E00001 An error occurred during processing", code="E00001"), 500),
])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_failures_answer_with_the_pages_own_error_page(world, token, monkeypatch, failure, expected, method):
    def fail(*args, **kwargs):
        raise failure()

    monkeypatch.setattr(world.services.dataverse, "query", fail)
    status, body, headers = _call(method, token, _posted(world) if method == "POST" else None)
    assert status == expected
    assert "<html" in body and "a bug" not in body and "invalid_client" not in body
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert headers["Cache-Control"] == "no-store" and headers["X-Content-Type-Options"] == "nosniff"
    assert ("Retry-After" in headers) == (expected == 503)


@pytest.mark.parametrize("encoded", ["%ED%A0%80", "%ED%B0%80x", "a%ED%A0%80b"])
def test_a_lone_surrogate_in_a_form_field_is_refused_before_anything_is_written(world, token, encoded):
    from urllib.parse import urlencode

    form = urlencode(_posted(world)) + f"&firstName={encoded}"
    request = func.HttpRequest("POST", f"https://w365.example.test/api/profile-requests/{token}", body=form.encode(),
                               headers={"content-type": "application/x-www-form-urlencoded"},
                               route_params={"token": token})
    response = profile_request_page.build().get_user_function()(request)
    assert response.status_code == 400
    assert world.rows("w365_paymentprofile") == [] and world.simulator._customers == {}
    assert _link(world)["w365_status"] == links.status("Sent")
