"""Send for approval, the customer's approval page (through its HTTP trigger) and Convert to Draft, end to end."""
from __future__ import annotations

import base64
import datetime as dt
import re
import struct
import zlib
from decimal import Decimal
from urllib.parse import urlencode

import azure.functions as func
import pytest

from core import footprint
from core.configuration import SETTINGS_MAX_AGE
from handlers.orders.entry import order_approval_page
from tests.functions.charging_world import outcome

FORM = {"firstName": "Nancy", "lastName": "Davolio", "company": "Fabrikam", "address": "1 Main St",
        "city": "Redmond", "state": "WA", "zip": "98052", "country": "US", "phoneNumber": "555-0100",
        "email": "nancy@fabrikam.example"}


def png(width: int = 4, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x00\x00\x00\xff" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


SIGNATURE = "data:image/png;base64," + base64.b64encode(png()).decode()


def status(label: str) -> int:
    return footprint.choice("salesorder", "w365_orderstatus", label)


def order(world) -> dict:
    return world.row("salesorder", world.ids["order"])


def notes(world) -> list[dict]:
    return [n for n in world.rows("annotation") if (n.get("objectid") or {}).get("id") == world.ids["order"]]


def call(method: str, token: str, form: dict | None = None):
    if method == "POST" and form is not None and "orderDigest" not in form:
        form = {**form, **shown_digest(token)}            # as the browser posts the page it was shown
    body = urlencode(form).encode() if form is not None else b""
    request = func.HttpRequest(method, f"https://w365.example.test/api/order-approvals/{token}", body=body,
                               headers={"content-type": "application/x-www-form-urlencoded"},
                               route_params={"token": token})
    response = order_approval_page.build().get_user_function()(request)
    return response.status_code, response.get_body().decode(), dict(response.headers)


def shown_digest(token: str) -> dict:
    """The page's hidden digest of what it showed (none when the page shows no form)."""
    _, page, _ = call("GET", token)
    found = re.search(r'name="orderDigest" value="([0-9a-f]{64})"', page)
    return {"orderDigest": found.group(1)} if found else {}


def send_for_approval(world, *, user=None, body="Please approve: {Approval Link}"):
    return world.send("w365_SendOrderForApproval", "salesorder", world.ids["order"], user=user,
                      ContactId=world.ids["contact"], EmailSubject="Your order", EmailBody=body)


def token_from_email(world) -> str:
    email = world.standin.sent_emails()[-1]
    return re.search(r"/api/order-approvals/([A-Za-z0-9_-]{43})", email["description"]).group(1)


@pytest.fixture
def token(world):
    reply = send_for_approval(world)
    assert reply.body["status"] == "succeeded", reply.body
    return token_from_email(world)


def accept_payments(world, on: bool = True):
    world.standin.update("w365_configuration", world.ids["configuration"], {"w365_approvalcanacceptpayment": on})


def paid_form(world, *, zip_code: str = "98052", name: str = "Nancy Davolio") -> dict:
    nonce = world.simulator.issue_nonce("4111111111111111", 12, 2030, "123")
    return {**FORM, "zip": zip_code, "signatureName": name, "signatureImage": SIGNATURE,
            "dataDescriptor": nonce.descriptor, "dataValue": nonce.value}


# --- sending -----------------------------------------------------------------------------------------------------

def test_send_for_approval_emails_a_single_use_link_and_marks_the_order_pending(world, token):
    (link,) = world.rows("w365_securelink")
    assert link["w365_purpose"] == footprint.choice("w365_securelink", "w365_purpose", "Order Approval")
    assert link["w365_salesorderid"]["id"] == world.ids["order"] and token not in str(link)
    assert order(world)["w365_orderstatus"] == status("Pending Approval")
    email = world.standin.sent_emails()[-1]
    assert email["to"] == ["nancy@fabrikam.example"] and email["regarding"]["id"] == world.ids["order"]
    assert any(n["subject"] == "Sent for approval" for n in notes(world))


def test_a_template_without_the_placeholder_is_refused(world):
    reply = send_for_approval(world, body="Please approve: {Secure Link}")
    assert reply.body["status"] == "failed" and "{Approval Link}" in reply.message
    assert world.rows("w365_securelink") == [] and world.standin.sent_emails() == []


def test_salespeople_may_send_only_when_the_configuration_allows_it(world):
    refused = send_for_approval(world, user=world.ids["salesperson"])
    assert refused.body["status"] == "failed" and "administrators" in refused.message
    assert world.rows("w365_securelink") == []
    world.standin.update("w365_configuration", world.ids["configuration"], {"w365_salescansendforapproval": True})
    # Not a switch that gates money: a worker reuses the row briefly, so the change shows within SETTINGS_MAX_AGE.
    world.clock.advance(SETTINGS_MAX_AGE + dt.timedelta(seconds=1))
    assert send_for_approval(world, user=world.ids["salesperson"]).body["status"] == "succeeded"
    reader = world.standin.add_user("Rita Reader", roles=("Read Only",))
    assert "permission" in send_for_approval(world, user=reader).message


def test_a_new_link_withdraws_the_previous_one(world, token):
    assert send_for_approval(world).body["status"] == "succeeded"
    assert call("GET", token)[0] == 410
    assert call("GET", token_from_email(world))[0] == 200


# --- the page ----------------------------------------------------------------------------------------------------

def test_the_page_shows_lines_taxes_and_total_in_the_order_currency_with_strict_headers(world, token):
    code, body, headers = call("GET", token)
    assert code == 200
    for text in ("Cloud PC license", "Onboarding", "$40.00", "$120.00", "$9.60", "$17.60", "$237.60 USD",
                 "Nancy Davolio", 'name="signatureName"', 'name="signatureImage"', "<canvas"):
        assert text in body, text
    assert 'name="dataValue"' not in body and "<script src=" not in body     # payment is off by default
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and headers["Cache-Control"] == "no-store"


def test_the_page_escapes_what_it_shows(world, token):
    world.standin.update("salesorder", world.ids["order"], {"name": "<script>alert(1)</script>"})
    body = call("GET", token)[1]
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_approval_without_payment_records_the_signature_for_the_admin_to_submit(world, token):
    code, body, _ = call("POST", token, {"signatureName": "Nancy Davolio", "signatureImage": SIGNATURE})
    assert code == 200 and "approved" in body
    row = order(world)
    assert row["w365_signaturename"] == "Nancy Davolio" and row["w365_approvedon"]
    assert row["w365_orderstatus"] == status("Draft")
    (image,) = [n for n in notes(world) if n.get("isdocument")]
    assert image["mimetype"] == "image/png" and base64.b64decode(image["documentbody"]) == png()
    assert world.simulator.charges() == []
    assert call("GET", token)[0] == 410 and call("POST", token, {"signatureName": "X Y",
                                                                 "signatureImage": SIGNATURE})[0] == 410


@pytest.mark.parametrize("name,image,problem", [
    ("", SIGNATURE, "full name"),
    ("Nancy Davolio", "", "sign"),
    ("Nancy Davolio", "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8jpeg").decode(), "PNG"),
    ("Nancy Davolio", "data:image/png;base64," + base64.b64encode(b"GIF89a not a png").decode(), "PNG"),
    ("Nancy Davolio", "data:image/png;base64,%%%not-base64", "read"),
    ("Nancy Davolio", "data:image/png;base64," + base64.b64encode(png(2000, 2000)[:8] + b"\0" * 40_000).decode(),
     "too large"),
])
def test_a_bad_signature_is_refused_and_the_link_stays_usable(world, token, name, image, problem):
    code, body, _ = call("POST", token, {"signatureName": name, "signatureImage": image})
    assert code == 400 and problem in body
    assert order(world)["w365_orderstatus"] == status("Pending Approval") and not notes(world)[1:]
    assert call("GET", token)[0] == 200


def test_approval_with_payment_charges_activates_and_signs(world, token):
    accept_payments(world)
    code, body, headers = call("GET", token)
    assert code == 200 and "Approve and pay $237.60 USD" in body and 'name="dataValue"' in body
    assert "Visa" not in body and "XXXX" not in body                     # no card on file shown
    code, body, _ = call("POST", token, paid_form(world))
    assert code == 200 and "approved" in body, body
    row = order(world)
    assert row["w365_orderstatus"] == status("Activated") and row["w365_signaturename"] == "Nancy Davolio"
    (charge,) = world.rows("w365_paymenttransaction")
    assert charge["w365_outcome"] == outcome("Approved") and charge["w365_salesorderid"]["id"] == world.ids["order"]
    (profile,) = world.rows("w365_paymentprofile")
    assert profile["w365_source"] == footprint.choice("w365_paymentprofile", "w365_source", "Order")
    (link,) = world.rows("w365_securelink")
    assert link["w365_status"] == footprint.choice("w365_securelink", "w365_status", "Completed")
    assert link["w365_paymentprofileid"]["id"] == profile["w365_paymentprofileid"]
    assert call("POST", token, paid_form(world))[0] == 410
    assert len(world.simulator.charges()) == 1


def test_a_refused_card_on_the_page_keeps_the_link_for_another_card(world, token):
    accept_payments(world)
    code, body, _ = call("POST", token, paid_form(world, zip_code="46282"))
    assert code in (402, 422) and "try another card" in body
    row = order(world)
    assert row["w365_orderstatus"] == status("Declined") and row["w365_paymentdeclined"] is True
    code, body, _ = call("POST", token, paid_form(world))
    assert code == 200, body
    row = order(world)
    assert row["w365_orderstatus"] == status("Activated") and row["w365_paymentdeclined"] is False
    # The declined card was charged and declined (the gateway keeps declined transactions); only the second moved money.
    assert [c["status"] for c in world.simulator.charges()] == ["declined", "capturedPendingSettlement"]
    [card] = world.rows("w365_paymentprofile")                 # the declined card was not saved, the approved one was
    assert card["w365_cardlast4"] == "XXXX1111" and (link_row(world)["w365_paymentprofileid"]["id"]
                                                      == card["w365_paymentprofileid"])


def link_row(world) -> dict:
    (link,) = world.rows("w365_securelink")
    return link


def test_refused_cards_leave_one_signature_note_with_the_approval(world, token):
    accept_payments(world)
    for refused in (paid_form(world, zip_code="46282"), {**paid_form(world), "dataValue": "stale-nonce"}):
        assert call("POST", token, refused)[0] in (402, 422)
        assert not [n for n in notes(world) if n.get("isdocument")]
        assert not order(world)["w365_signaturename"]
    assert call("POST", token, paid_form(world, name="Nancy D. Davolio"))[0] == 200
    (image,) = [n for n in notes(world) if n.get("isdocument")]
    assert "Nancy D. Davolio" in image["notetext"] and base64.b64decode(image["documentbody"]) == png()
    row = order(world)
    assert row["w365_signaturename"] == "Nancy D. Davolio" and row["w365_approvedon"]


def test_an_expired_link_is_refused(world, token):
    world.clock.advance(dt.timedelta(hours=73))
    code, body, _ = call("GET", token)
    assert code == 410 and "expired" in body
    assert call("POST", token, {"signatureName": "Nancy Davolio", "signatureImage": SIGNATURE})[0] == 410


def test_an_unknown_token_is_a_404(world):
    assert call("GET", "x" * 43)[0] == 404


# --- convert to draft --------------------------------------------------------------------------------------------

def test_convert_to_draft_withdraws_a_pending_approval(world, token):
    reply = world.send("w365_ConvertOrderToDraft", "salesorder", world.ids["order"])
    assert reply.body["status"] == "succeeded" and "withdrawn" in reply.message
    assert order(world)["w365_orderstatus"] == status("Draft")
    assert call("GET", token)[0] == 410


def test_a_payment_held_for_review_uses_up_the_link_and_keeps_the_signature(world, token):
    accept_payments(world)
    code, body, _ = call("POST", token, paid_form(world, zip_code="46299"))
    assert code == 200 and "we received your approval" in body and "being confirmed" in body
    (charge,) = world.rows("w365_paymenttransaction")
    assert charge["w365_outcome"] == outcome("Held For Review")
    row = order(world)
    assert row["w365_signaturename"] == "Nancy Davolio" and row["w365_orderstatus"] == status("Pending Approval")
    assert call("GET", token)[0] == 410


# --- a claim whose work never finished, and declined cards -----------------------------------------------------------

def test_a_claim_cut_short_after_the_charge_is_finished_by_the_customers_retry_without_charging_again(world, token):
    from handlers.customer_pages import links
    from handlers.orders import payment

    accept_payments(world)
    check = links.check_link(world.services, token, "Order Approval")
    links.claim(world.services, check.row)
    # The process died after the gateway approved the charge and before the order was completed.
    profile_id = card_on_file_for_order(world)
    down = {"now": True}
    world.standin.fail_next(count=50, status=503,
                            match=lambda method, path: down["now"] and "ConvertSalesOrderToInvoice" in path)
    assert payment.submit_order_payment(world.services, world.ids["order"], payment.CardOnFile(profile_id),
                                        allowed=("Pending Approval",)).approved
    down["now"] = False
    assert order(world)["w365_orderstatus"] == status("Pending Approval")
    charges = len(world.simulator.charges())
    status_code, body, _ = call("POST", token, paid_form(world))
    assert status_code == 409 and "being processed" in body
    world.clock.advance(links.CLAIM_LEASE + dt.timedelta(seconds=1))
    status_code, body, _ = call("POST", token, paid_form(world))
    assert status_code == 200, body
    assert len(world.simulator.charges()) == charges                 # the retry re-checked the order's attempts
    assert order(world)["w365_orderstatus"] in (status("Activated"), status("Scheduled"))


def card_on_file_for_order(world) -> str:
    from tests.functions.charging_world import card_on_file
    return card_on_file(world, on_contract=False)


def test_five_declined_cards_lock_the_approval_link(world, token):
    from handlers.customer_pages import links

    accept_payments(world)
    for _ in range(links.MAX_DECLINED_CARDS - 1):
        status_code, body, _ = call("POST", token, paid_form(world, zip_code="46282"))
        assert status_code == 402, body
    status_code, body, _ = call("POST", token, paid_form(world, zip_code="46282"))
    assert status_code == 403 and "locked" in body.lower() and "contact" in body.lower()
    (link,) = [r for r in world.rows("w365_securelink") if r["w365_status"] != links.status("Cancelled")]
    assert link["w365_status"] == links.status("Locked")
    charges = len(world.simulator.charges())
    assert call("POST", token, paid_form(world))[0] == 403 and len(world.simulator.charges()) == charges



# --- what the customer agreed to is what is charged (CONTRACT §5) ------------------------------------------------------

def _change_the_order(world, change: str) -> None:
    line = world.ids["orderline1"]
    if change == "quantity":
        world.standin.update("salesorderdetail", line, {"quantity": Decimal(4), "baseamount": Decimal("160.00"),
                                                             "extendedamount": Decimal("172.80")})
    elif change == "price":
        world.standin.update("salesorderdetail", line, {"priceperunit": Decimal("41.00")})
    elif change == "tax":
        world.standin.update("salesorder", world.ids["order"], {"totaltax": Decimal("18.60")})
    elif change == "total":
        world.standin.update("salesorder", world.ids["order"], {"totalamount": Decimal("1.00")})
    elif change == "line added":
        world.standin.seed("salesorderdetail", {
            "salesorderid@odata.bind": f"/salesorders({world.ids['order']})",
            "productid@odata.bind": f"/products({world.ids['product_setup']})", "quantity": Decimal(1),
            "priceperunit": Decimal("100.00"), "baseamount": Decimal("100.00"), "tax": Decimal("8.00"),
            "extendedamount": Decimal("108.00")})
    else:
        euro = world.standin.seed("transactioncurrency", {"currencyname": "Euro", "isocurrencycode": "EUR",
                                                          "currencysymbol": "€", "exchangerate": Decimal("0.9")})
        world.standin.update("salesorder", world.ids["order"],
                             {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({euro})"})


@pytest.mark.parametrize("change", ["quantity", "price", "tax", "total", "line added", "currency"])
@pytest.mark.parametrize("pays", [True, False])
def test_an_order_changed_after_the_page_was_shown_is_not_charged_or_approved(world, token, change, pays):
    accept_payments(world, pays)
    form = {**(paid_form(world) if pays else {"signatureName": "Nancy Davolio", "signatureImage": SIGNATURE}),
            **shown_digest(token)}
    assert form.get("orderDigest")
    _change_the_order(world, change)
    status_code, body, _ = call("POST", token, form)
    assert status_code == 409 and "changed" in body and "sent again" in body, body
    assert world.simulator.charges() == [] and world.rows("w365_paymenttransaction") == []
    assert not [n for n in notes(world) if n["subject"] == "Customer signature"]
    assert order(world)["w365_orderstatus"] == status("Pending Approval")


def test_a_post_without_the_digest_is_not_taken_as_agreement(world, token):
    accept_payments(world)
    status_code, body, _ = call("POST", token, {**paid_form(world), "orderDigest": ""})
    assert status_code == 409 and world.simulator.charges() == []


def test_the_signature_note_records_the_amount_agreed(world, token):
    accept_payments(world)
    status_code, body, _ = call("POST", token, paid_form(world))
    assert status_code == 200, body
    [note] = [n for n in notes(world) if n["subject"] == "Customer signature"]
    assert "$237.60 USD" in note["notetext"]
