"""charge_new_card (createTransaction with profile.createProfile) and create_profile_from_transaction: the request the
client builds and the answers it reads, against the vendor-shaped fixture and against the simulator's rules."""
from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses

from core.errors import GatewayRefused, InvalidNonce, OutcomeUnknown
from core.ports import BillTo, ChargeOutcome, OpaqueData
from gateway.client import AuthorizeNetGateway
from standins.authorizenet import LOGIN_ID, SANDBOX_URL, TRANSACTION_KEY, AuthorizeNetSimulator

FIXTURE = json.loads((Path(__file__).with_name("fixtures") / "create_transaction_with_create_profile.json").read_text())
BILL_TO = BillTo(first_name="Nancy", last_name="Davolio", company="Fabrikam", address="1 Main St", city="Redmond",
                 state="WA", zip="98052", country="US", phone_number="555-0100")
VISA, MASTERCARD = "4111111111111111", "5424000000000015"


def _gateway() -> AuthorizeNetGateway:
    gateway = AuthorizeNetGateway(LOGIN_ID, TRANSACTION_KEY, session=requests.Session())
    gateway.read_retry_delay = 0
    return gateway


def _charge(gw: AuthorizeNetGateway, opaque: OpaqueData, *, customer: str = "99999456654", create: bool = True,
            bill_to: BillTo = BILL_TO, ref_id: str = "123456", invoice: str = "ORD-1001-1"):
    return gw.charge_new_card(opaque, Decimal("237.60"), ref_id=ref_id, invoice_number=invoice, bill_to=bill_to,
                              merchant_customer_id=customer, email="billing@fabrikam.example",
                              description="Order ORD-1001", create_profile=create)


# --- against the fixture --------------------------------------------------------------------------------------------

def _answering(name: str):
    rsps = responses.RequestsMock()
    rsps.add(responses.POST, SANDBOX_URL, body=b"\xef\xbb\xbf" + json.dumps(FIXTURE[name]).encode())
    return rsps


def test_the_request_is_the_documented_shape_in_the_xsd_order():
    with _answering("approved") as rsps:
        _charge(_gateway(), OpaqueData("COMMON.ACCEPT.INAPP.PAYMENT", "NONCE"))
        sent = json.loads(rsps.calls[0].request.body)["createTransactionRequest"]
    expected = FIXTURE["request"]["createTransactionRequest"]
    assert list(sent) == list(expected) and sent["refId"] == expected["refId"]
    # Same elements, same order (the gateway refuses another order), same values.
    assert list(sent["transactionRequest"]) == list(expected["transactionRequest"])
    assert sent["transactionRequest"] == expected["transactionRequest"]


def test_without_create_profile_no_profile_element_is_sent():
    with _answering("declined") as rsps:
        _charge(_gateway(), OpaqueData("COMMON.ACCEPT.INAPP.PAYMENT", "NONCE"), create=False)
        sent = json.loads(rsps.calls[0].request.body)["createTransactionRequest"]["transactionRequest"]
    assert "profile" not in sent and sent["payment"]["opaqueData"]["dataValue"] == "NONCE"


def test_an_approved_answer_carries_the_profiles_the_gateway_made():
    with _answering("approved"):
        result = _charge(_gateway(), OpaqueData("COMMON.ACCEPT.INAPP.PAYMENT", "NONCE"))
    assert (result.outcome, result.trans_id, result.account_number) == (ChargeOutcome.APPROVED, "60156217587",
                                                                         "XXXX1111")
    assert (result.customer_profile_id, result.payment_profile_id, result.profile_error) == (
        "1929820324", "1841987457", "")


def test_a_duplicate_customer_refused_inside_an_approved_answer_names_the_existing_customer():
    with _answering("approved_duplicate_customer"):
        result = _charge(_gateway(), OpaqueData("COMMON.ACCEPT.INAPP.PAYMENT", "NONCE"))
    assert result.outcome == ChargeOutcome.APPROVED and result.trans_id == "60156217588"
    assert (result.customer_profile_id, result.payment_profile_id, result.profile_error) == (
        "1929820324", "", "E00039")


def test_a_declined_answer_has_no_profile():
    with _answering("declined"):
        result = _charge(_gateway(), OpaqueData("COMMON.ACCEPT.INAPP.PAYMENT", "NONCE"))
    assert result.outcome == ChargeOutcome.DECLINED and result.error_code == "2"
    assert (result.customer_profile_id, result.payment_profile_id, result.profile_error) == ("", "", "")


def test_the_nonce_is_never_logged(caplog):
    caplog.set_level(logging.DEBUG)
    with _answering("approved"):
        _charge(_gateway(), OpaqueData("COMMON.ACCEPT.INAPP.PAYMENT", "SECRET-NONCE-VALUE"))
    assert "SECRET-NONCE-VALUE" not in caplog.text


# --- against the simulator ------------------------------------------------------------------------------------------

@pytest.fixture
def sim() -> AuthorizeNetSimulator:
    return AuthorizeNetSimulator()


@pytest.fixture
def gw(sim):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        sim.register_with_responses(rsps)
        yield _gateway()


def test_an_approved_charge_saves_the_card_as_a_new_customer_whose_default_it_is(sim, gw):
    result = _charge(gw, sim.issue_nonce(VISA, 12, 2030, "123"))
    assert result.outcome == ChargeOutcome.APPROVED and result.customer_profile_id and result.payment_profile_id
    card = gw.get_payment_profile(result.customer_profile_id, result.payment_profile_id)
    assert (card.card_number_masked, card.card_type, card.expiration, card.is_default) == (
        "XXXX1111", "Visa", "2030-12", True)
    assert card.bill_to == BILL_TO
    assert gw.find_customer_profile("99999456654") == result.customer_profile_id
    # The saved card is charged as any card on file, without a CVV.
    again = gw.charge_profile(result.customer_profile_id, result.payment_profile_id, Decimal("1.00"), ref_id="2",
                              invoice_number="ORD-1001-2")
    assert again.outcome == ChargeOutcome.APPROVED


@pytest.mark.parametrize("zip_code, outcome", [("46282", ChargeOutcome.DECLINED),
                                               ("46299", ChargeOutcome.HELD_FOR_REVIEW)])
def test_a_charge_that_is_not_approved_saves_nothing(sim, gw, zip_code, outcome):
    result = _charge(gw, sim.issue_nonce(VISA, 12, 2030, "123"), bill_to=BillTo(first_name="Nancy", zip=zip_code))
    assert result.outcome == outcome
    assert (result.customer_profile_id, result.payment_profile_id) == ("", "")
    assert gw.find_customer_profile("99999456654") is None


def test_the_nonce_works_once(sim, gw):
    nonce = sim.issue_nonce(VISA, 12, 2030, "123")
    assert _charge(gw, nonce).outcome == ChargeOutcome.APPROVED
    with pytest.raises(InvalidNonce):
        _charge(gw, nonce, ref_id="123457", invoice="ORD-1001-2")
    assert len(sim.charges()) == 1


def test_a_second_customer_with_the_same_id_is_refused_but_the_charge_stands(sim, gw):
    first = _charge(gw, sim.issue_nonce(VISA, 12, 2030, "123"))
    second = _charge(gw, sim.issue_nonce(MASTERCARD, 12, 2030, "123"), ref_id="2", invoice="ORD-1002-1")
    assert second.outcome == ChargeOutcome.APPROVED and second.profile_error == "E00039"
    assert (second.customer_profile_id, second.payment_profile_id) == (first.customer_profile_id, "")
    # The card of that approved charge goes into the existing customer from the transaction.
    payment = gw.create_profile_from_transaction(second.trans_id, first.customer_profile_id, default=True)
    cards = {c.payment_profile_id: c for c in gw.get_customer_profile(first.customer_profile_id)}
    assert cards[payment].card_number_masked == "XXXX0015" and cards[payment].is_default
    assert not cards[first.payment_profile_id].is_default
    with pytest.raises(GatewayRefused) as refused:                   # the same card twice
        gw.create_profile_from_transaction(second.trans_id, first.customer_profile_id)
    assert refused.value.code == "E00039"


def test_only_an_approved_transaction_can_be_saved(sim, gw):
    customer = _charge(gw, sim.issue_nonce(VISA, 12, 2030, "123")).customer_profile_id
    declined = _charge(gw, sim.issue_nonce(MASTERCARD, 12, 2030, "123"), create=False, ref_id="2",
                       invoice="ORD-1002-1", bill_to=BillTo(first_name="Nancy", zip="46282"))
    with pytest.raises(GatewayRefused) as refused:
        gw.create_profile_from_transaction(declined.trans_id, customer)
    assert refused.value.code == "E00099"


def test_a_lost_answer_is_unknown_and_not_resent(sim, gw):
    sim.fail_next("lost_after_commit")
    with pytest.raises(OutcomeUnknown):
        _charge(gw, sim.issue_nonce(VISA, 12, 2030, "123"))
    assert sim.calls["createTransaction"] == 1 and len(sim.charges()) == 1
    # The gateway did save the card: the customer can be found by its merchantCustomerId.
    assert gw.find_customer_profile("99999456654")
