"""After the payment profile flows, no card number (a Luhn-valid run of 13-19 digits) and no Accept.js nonce is in
any stand-in table or in the captured logs."""
from __future__ import annotations

import json
import logging
import re
from urllib.parse import urlencode

import azure.functions as func

from core import footprint
from standins.authorizenet import luhn_valid
from handlers.payment_profiles.entry import profile_request_page

# A run of digits inside a hex string (a SHA-256 token hash, a digest) is part of that string, not a card number:
# without the hex neighbours, one digest in ~3,000 holds a brand-prefixed Luhn-valid run and the sweep fails at random.
DIGITS = re.compile(r"(?<![0-9a-fA-F])\d{13,19}(?![0-9a-fA-F])")
BILL_TO = json.dumps({"firstName": "Nancy", "lastName": "Davolio", "address": "1 Main St", "city": "Springfield",
                      "zip": "62701", "country": "US"})




# Issuer prefixes and lengths of the card brands Authorize.Net takes (Visa, Mastercard, Amex, Discover, JCB, Diners):
# a Luhn-valid run of digits is a card number only when it could be issued as one. Without this, one id in ten that
# happens to be 13-19 digits long passes Luhn by chance and the sweep fails at random.
CARD_BRANDS = re.compile(r"4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)\d{12}"
                         r"|3[47]\d{13}|6(?:011|4[4-9]\d|5\d\d)\d{12,15}|35(?:2[89]|[3-8]\d)\d{12,15}"
                         r"|3(?:0[0-5]|[68]\d)\d{11,16}")


def card_numbers_in(text: str) -> list[str]:
    return [n for n in DIGITS.findall(text) if luhn_valid(n) and CARD_BRANDS.fullmatch(n)]


def test_the_sweep_finds_a_card_number():
    assert card_numbers_in("x 4111111111111111 y") == ["4111111111111111"]
    assert card_numbers_in("a 370000000000002, 6011000000000012; 5424000000000015") == [
        "370000000000002", "6011000000000012", "5424000000000015"]
    assert card_numbers_in("4111111111111112 and 500000001") == []
    assert card_numbers_in("id 12000000000006") == []          # Luhn-valid, but no card brand starts with 1


def test_no_card_number_or_nonce_is_left_after_the_flows(world, caplog):
    caplog.set_level(logging.DEBUG)
    nonces = []

    def nonce(number):
        opaque = world.simulator.issue_nonce(number, 12, 2030, "1234" if number.startswith("37") else "123")
        nonces.append(opaque.value)
        return opaque

    account, contact = world.ids["account"], world.ids["contact"]
    opaque = nonce("4111111111111111")
    added = world.send("w365_AddPaymentProfile", "account", account, ContactId=contact, Method="DirectEntry",
                       OpaqueDataDescriptor=opaque.descriptor, OpaqueDataValue=opaque.value, BillTo=BILL_TO,
                       SetAsDefault=True)
    profile_id = added.body["paymentProfileId"]
    world.send("w365_SyncPaymentProfile", "w365_paymentprofile", profile_id)
    opaque = nonce("5424000000000015")
    world.send("w365_UpdatePaymentProfile", "w365_paymentprofile", profile_id, BillTo=BILL_TO,
               OpaqueDataDescriptor=opaque.descriptor, OpaqueDataValue=opaque.value)
    opaque = nonce("370000000000002")
    refused = world.send("w365_AddPaymentProfile", "account", account, ContactId=contact, Method="DirectEntry",
                         OpaqueDataDescriptor=opaque.descriptor, OpaqueDataValue=opaque.value,
                         BillTo=BILL_TO.replace("62701", "46282"))
    assert refused.body["status"] == "failed"
    request = world.send("w365_AddPaymentProfile", "account", account, ContactId=contact, Method="ProfileRequest",
                         EmailSubject="Card", EmailBody="{Secure Link}")
    token = re.search(r"profile-requests/([A-Za-z0-9_-]{43})",
                      world.row("email", request.body["emailId"])["description"]).group(1)
    opaque = nonce("6011000000000012")
    form = {"firstName": "Nancy", "lastName": "Davolio", "address": "1 Main St", "city": "Springfield",
            "zip": "62701", "country": "US", "dataDescriptor": opaque.descriptor, "dataValue": opaque.value}
    response = profile_request_page.build().get_user_function()(func.HttpRequest(
        "POST", f"https://w365.example.test/api/profile-requests/{token}", body=urlencode(form).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"}, route_params={"token": token}))
    assert response.status_code == 200
    world.send("w365_SyncPaymentProfiles", "account", account)
    world.send("w365_DeactivatePaymentProfile", "w365_paymentprofile", profile_id)

    tables = json.dumps({t.logical_name: world.standin.rows(t.logical_name) for t in footprint.TABLES}, default=str)
    logs = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert len(world.rows("w365_paymentprofile")) == 2
    assert card_numbers_in(tables) == [], card_numbers_in(tables)
    assert card_numbers_in(logs) == [], [line for line in logs.splitlines() if card_numbers_in(line)][:3]
    for number in ("4111111111111111", "5424000000000015", "370000000000002", "6011000000000012"):
        assert number not in tables, number
        assert number not in logs, [line for line in logs.splitlines() if number in line][:3]
    for value in nonces:
        assert value not in tables and value not in logs
