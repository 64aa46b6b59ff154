"""Every charge is in the merchant's currency (AUTHORIZENET_CURRENCY, default USD; CONTRACT §1, §5): an invoice or
order in another currency is refused before any attempt row, gateway profile or gateway call; amounts are shown in the
record's own currency."""
from __future__ import annotations

import json
import re
from decimal import Decimal

from core.settings import Settings
from tests.conftest import TEST_SETTINGS
from tests.functions.charging_world import VISA, card_on_file, charge

BILL_TO = {"firstName": "Nancy", "lastName": "Davolio", "zip": "98052", "country": "US"}


def in_euros(world, table: str, key: str) -> None:
    euro = world.standin.seed("transactioncurrency", {"currencyname": "Euro", "isocurrencycode": "EUR",
                                                      "currencysymbol": "€", "exchangerate": Decimal("0.9")})
    world.standin.update(table, world.ids[key], {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({euro})"})


def gateway_state(world) -> tuple[int, int, int]:
    customers = world.simulator._customers
    return (len(world.simulator.charges()), len(customers),
            sum(len(c["payment_profiles"]) for c in customers.values()))


def test_an_invoice_in_another_currency_is_refused_before_any_attempt(world):
    card_on_file(world)
    in_euros(world, "invoice", "invoice1")
    before = gateway_state(world)
    reply = charge(world, "40.00")
    assert reply.status == 200 and reply.body["status"] == "failed", reply.body
    assert "EUR" in reply.message and "USD" in reply.message and "AUTHORIZENET_CURRENCY" in reply.message
    assert world.rows("w365_paymenttransaction") == [] and gateway_state(world) == before


def test_with_the_merchant_in_euros_a_euro_invoice_is_charged_and_shown_in_euros_and_a_dollar_one_refused(world):
    world.services.settings = Settings({**TEST_SETTINGS, "AUTHORIZENET_CURRENCY": "eur"})
    card_on_file(world)
    in_euros(world, "invoice", "invoice1")
    reply = charge(world, "40.00")
    assert reply.body["status"] == "succeeded", reply.body
    assert "€40.00 EUR" in reply.message and "$" not in reply.message
    refused = charge(world, "10.00", invoice="invoice2")
    assert refused.body["status"] == "failed" and "USD" in refused.message
    assert len(world.simulator.charges()) == 1


def test_an_order_in_another_currency_is_refused_before_the_new_card_reaches_the_gateway(world):
    in_euros(world, "salesorder", "order")
    before = gateway_state(world)
    nonce = world.simulator.issue_nonce(VISA, 12, 2030, "123")
    reply = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"],
                       OpaqueDataDescriptor=nonce.descriptor, OpaqueDataValue=nonce.value, BillTo=json.dumps(BILL_TO))
    assert reply.body["status"] == "failed" and "EUR" in reply.message, reply.body
    assert world.rows("w365_paymenttransaction") == [] and world.rows("w365_paymentprofile") == []
    assert gateway_state(world) == before


def test_an_order_in_another_currency_is_refused_with_a_card_on_file(world):
    profile_id = card_on_file(world, on_contract=False)
    in_euros(world, "salesorder", "order")
    reply = world.send("w365_SubmitOrderPayment", "salesorder", world.ids["order"], PaymentProfileId=profile_id)
    assert reply.body["status"] == "failed" and "EUR" in reply.message, reply.body
    assert world.simulator.charges() == [] and world.rows("w365_paymenttransaction") == []


def test_the_approval_page_refuses_an_order_in_another_currency_before_any_card_or_charge(world):
    from tests.functions.test_orders_approval import accept_payments, call, paid_form, send_for_approval

    accept_payments(world)
    in_euros(world, "salesorder", "order")
    assert send_for_approval(world).body["status"] == "succeeded"
    token = re.search(r"/api/order-approvals/([A-Za-z0-9_-]{43})",
                      world.standin.sent_emails()[-1]["description"]).group(1)
    status_code, page, _ = call("GET", token)                 # said before the customer types a card
    assert status_code == 200 and "is in EUR" in page
    before = gateway_state(world)
    status_code, body, _ = call("POST", token, paid_form(world))
    assert status_code == 422 and "EUR" in body, body
    assert gateway_state(world) == before and world.rows("w365_paymenttransaction") == []
