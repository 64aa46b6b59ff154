"""AuthorizeNetGateway against the simulator, through `responses` (no network)."""
from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal

import pytest
import requests
import responses

from core.errors import (BadRequest, ConfigurationError, GatewayAuthError, GatewayError, GatewayNotFound,
                         GatewayRefused, GatewayUnavailable, InvalidNonce, OutcomeUnknown)
from core.ports import BillTo, ChargeOutcome
from gateway.client import ENDPOINTS, AuthorizeNetGateway
from standins.authorizenet import LOGIN_ID, SANDBOX_URL, TRANSACTION_KEY, AuthorizeNetSimulator

CARD, CVV = "4111111111111111", "900"
HOME = BillTo(first_name="Zoë", last_name="Müller", company="Zoë Müller GmbH", address="1 Main St", city="Bellevue",
              state="WA", zip="98004", country="US", phone_number="425-555-0100")


class ManualClock:
    def __init__(self) -> None:
        self.moment = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone.utc)

    def now(self) -> dt.datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += dt.timedelta(**delta)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sim(clock: ManualClock) -> AuthorizeNetSimulator:
    return AuthorizeNetSimulator(clock)


@pytest.fixture
def rsps(sim: AuthorizeNetSimulator):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        sim.register_with_responses(mock)
        yield mock


@pytest.fixture
def gw(rsps) -> AuthorizeNetGateway:
    gateway = AuthorizeNetGateway(LOGIN_ID, TRANSACTION_KEY, session=requests.Session())
    gateway.read_retry_delay = 0
    return gateway


def sent(rsps, index: int = -1) -> dict:
    """The JSON body of a request the client sent."""
    return json.loads(rsps.calls[index].request.body)


def new_profile(gw, sim, *, bill_to: BillTo = HOME, card: str = CARD, default: bool = True) -> tuple[str, str]:
    customer = gw.create_customer_profile(f"ACC-{len(sim.transactions())}-{card[-4:]}")
    payment = gw.create_payment_profile(customer, sim.issue_nonce(card, "12", "2030", CVV), bill_to, default=default)
    return customer, payment


# --- CIM ------------------------------------------------------------------------------------------------------------

def test_customer_profile_duplicate_returns_the_existing_id(gw, rsps):
    first = gw.create_customer_profile("ACC-1", description="Contoso", email="ap@contoso.com")
    assert gw.create_customer_profile("ACC-1", description="Contoso") == first
    assert sent(rsps)["createCustomerProfileRequest"]["profile"] == {"merchantCustomerId": "ACC-1",
                                                                     "description": "Contoso"}


def test_first_card_creates_the_customer_and_its_payment_profile_in_one_call(gw, sim, rsps):
    customer, payment = gw.create_customer_with_card("ACC-9", sim.issue_nonce(CARD, "12", "2030", CVV), HOME,
                                                     description="Contoso", default=True)
    assert len(rsps.calls) == 1
    body = sent(rsps)["createCustomerProfileRequest"]
    assert body["validationMode"] == "liveMode"
    assert body["profile"]["paymentProfiles"][0]["payment"]["opaqueData"]["dataDescriptor"] == \
        "COMMON.ACCEPT.INAPP.PAYMENT"
    assert body["profile"]["paymentProfiles"][0]["defaultPaymentProfile"] is True
    [profile] = gw.get_customer_profile(customer)
    assert (profile.payment_profile_id, profile.card_number_masked, profile.bill_to) == (payment, "XXXX1111", HOME)


def test_first_card_refused_creates_nothing(gw, sim):
    with pytest.raises(GatewayRefused) as refused:
        gw.create_customer_with_card("ACC-9", sim.issue_nonce(CARD, "12", "2030"), BillTo(zip="46282"))
    assert refused.value.code == "E00027"
    with pytest.raises(GatewayNotFound):          # no customer profile was left behind
        gw._call("getCustomerProfile", {"merchantCustomerId": "ACC-9"}, retry=True)


def test_first_card_of_a_customer_that_exists_adds_the_card_to_it(gw, sim, rsps):
    existing = gw.create_customer_profile("ACC-9")
    customer, payment = gw.create_customer_with_card("ACC-9", sim.issue_nonce(CARD, "12", "2030", CVV), HOME)
    assert customer == existing and [p.payment_profile_id for p in gw.get_customer_profile(customer)] == [payment]


# Authorize.Net's published sample (developer.authorize.net, "Accept.js: Sample Create Customer Profile Request",
# as kept in the AuthorizeNet sample-code docs): the ids come back as a bare JSON list of strings.
PUBLISHED_CREATE_CUSTOMER_PROFILE_RESPONSE = {
    "customerProfileId": "527262", "customerPaymentProfileIdList": ["86"], "customerShippingAddressIdList": [],
    "validationDirectResponseList": ["1,1,1,This transaction has been approved.,AJ10K8,Y,10585,none,Test transaction "
                                     "for ValidateCustomerPaymentProfile.,0.00,CC,auth_only,MerchantCustID"],
    "messages": {"resultCode": "Ok", "message": [{"code": "I00001", "text": "Successful."}]}}


def test_first_card_reads_the_published_answer():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, SANDBOX_URL, json=PUBLISHED_CREATE_CUSTOMER_PROFILE_RESPONSE)
        gateway = AuthorizeNetGateway(LOGIN_ID, TRANSACTION_KEY)
        from core.ports import OpaqueData
        assert gateway.create_customer_with_card("MerchantCustID", OpaqueData("COMMON.ACCEPT.INAPP.PAYMENT", "x"),
                                                 HOME) == ("527262", "86")


def test_update_with_the_masked_card_given_sends_no_read_and_keeps_the_stored_expiry(gw, sim, rsps):
    customer, payment = new_profile(gw, sim, default=False)
    before = len(rsps.calls)
    gw.update_payment_profile(customer, payment, BillTo(first_name="Ann", zip="10001"),
                              card_number_masked="XXXX1111")
    assert len(rsps.calls) == before + 1
    assert sent(rsps)["updateCustomerPaymentProfileRequest"]["paymentProfile"]["payment"] == {
        "creditCard": {"cardNumber": "XXXX1111", "expirationDate": "XXXX"}}
    stored = gw._call("getCustomerPaymentProfile", {"customerProfileId": customer, "customerPaymentProfileId": payment,
                                                    "unmaskExpirationDate": True}, retry=True)
    assert stored["paymentProfile"]["payment"]["creditCard"]["expirationDate"] == "2030-12"
    assert stored["paymentProfile"]["billTo"] == {"firstName": "Ann", "zip": "10001"}


def test_payment_profile_round_trip_keeps_utf8_and_masks_the_card(gw, sim, rsps):
    customer, payment = new_profile(gw, sim)
    body = sent(rsps)["createCustomerPaymentProfileRequest"]
    assert body["validationMode"] == "liveMode"
    assert body["paymentProfile"]["payment"]["opaqueData"]["dataDescriptor"] == "COMMON.ACCEPT.INAPP.PAYMENT"

    profile = gw.get_payment_profile(customer, payment)
    # unmaskExpirationDate: the expiry is not card data (CONTRACT §4) and drives the expiry notices
    assert (profile.card_type, profile.card_number_masked, profile.expiration) == ("Visa", "XXXX1111", "2030-12")
    assert sent(rsps)["getCustomerPaymentProfileRequest"]["unmaskExpirationDate"] is True
    assert profile.bill_to == HOME        # "Zoë Müller GmbH" survives: decoded as UTF-8, not Latin-1
    assert profile.is_default is True
    assert gw.get_customer_profile(customer) == [profile]


def test_duplicate_payment_profile_returns_the_existing_id(gw, sim):
    customer, payment = new_profile(gw, sim)
    again = gw.create_payment_profile(customer, sim.issue_nonce(CARD, "12", "2030", CVV), HOME)
    assert again == payment
    assert len(gw.get_customer_profile(customer)) == 1


def test_used_or_expired_nonce_is_invalid_nonce(gw, sim, clock):
    customer = gw.create_customer_profile("ACC-1")
    nonce = sim.issue_nonce(CARD, "12", "2030", CVV)
    gw.create_payment_profile(customer, nonce, HOME)
    with pytest.raises(InvalidNonce) as used:
        gw.create_payment_profile(customer, nonce, HOME)
    assert used.value.code == "E00114"

    stale = sim.issue_nonce("5424000000000015", "12", "2030", CVV)
    clock.advance(minutes=15, seconds=1)
    with pytest.raises(InvalidNonce):
        gw.create_payment_profile(customer, stale, HOME)


def test_live_mode_validation_decline_is_a_refusal_with_its_text(gw, sim):
    customer = gw.create_customer_profile("ACC-1")
    with pytest.raises(GatewayRefused) as refused:
        gw.create_payment_profile(customer, sim.issue_nonce(CARD, "12", "2030"), BillTo(zip="46282"))
    assert refused.value.code == "E00027" and "declined" in refused.value.text
    assert gw.get_customer_profile(customer) == []


def test_validation_mode_is_configurable(rsps, sim):
    gateway = AuthorizeNetGateway(LOGIN_ID, TRANSACTION_KEY, validation_mode="none")
    customer = gateway.create_customer_profile("ACC-1")
    gateway.create_payment_profile(customer, sim.issue_nonce(CARD, "12", "2030"), BillTo(zip="46282"))
    assert sent(rsps)["createCustomerPaymentProfileRequest"]["validationMode"] == "none"


def test_update_without_new_card_resends_the_masked_card(gw, sim, rsps):
    customer, payment = new_profile(gw, sim, default=False)
    gw.update_payment_profile(customer, payment, BillTo(first_name="Ann", zip="10001"), default=True)
    body = sent(rsps)["updateCustomerPaymentProfileRequest"]
    assert body["paymentProfile"]["payment"] == {"creditCard": {"cardNumber": "XXXX1111", "expirationDate": "XXXX"}}
    assert "validationMode" not in body
    profile = gw.get_payment_profile(customer, payment)
    assert profile.bill_to == BillTo(first_name="Ann", zip="10001") and profile.is_default
    assert profile.card_number_masked == "XXXX1111"


def test_update_with_a_new_card(gw, sim, rsps):
    customer, payment = new_profile(gw, sim)
    gw.update_payment_profile(customer, payment, HOME, opaque=sim.issue_nonce("5424000000000015", "1", "31", "123"))
    assert sent(rsps)["updateCustomerPaymentProfileRequest"]["validationMode"] == "liveMode"
    profile = gw.get_payment_profile(customer, payment)
    assert (profile.card_type, profile.card_number_masked) == ("MasterCard", "XXXX0015")


def test_delete_then_not_found(gw, sim):
    customer, payment = new_profile(gw, sim)
    gw.delete_payment_profile(customer, payment)
    with pytest.raises(GatewayNotFound) as missing:
        gw.get_payment_profile(customer, payment)
    assert missing.value.code == "E00040"
    with pytest.raises(GatewayNotFound):
        gw.delete_payment_profile(customer, payment)
    with pytest.raises(GatewayNotFound):
        gw.get_customer_profile("999999")


def test_wrong_transaction_key_is_an_auth_error_without_the_key(rsps):
    gateway = AuthorizeNetGateway(LOGIN_ID, "wrongKey99999999")
    with pytest.raises(GatewayAuthError) as failure:
        gateway.create_customer_profile("ACC-1")
    assert failure.value.code == "E00007" and not isinstance(failure.value, GatewayRefused)   # ours, not a refusal
    assert "wrongKey99999999" not in str(failure.value) and "wrongKey" not in repr(gateway)


# --- Charges ---------------------------------------------------------------------------------------------------------

def test_approved_charge_is_data_and_recorded_once(gw, sim, rsps):
    customer, payment = new_profile(gw, sim)
    result = gw.charge_profile(customer, payment, Decimal("125.5"), ref_id="pay-1", invoice_number="INV-000123")
    assert result.outcome == ChargeOutcome.APPROVED and result.response_code == "1"
    assert result.trans_id and result.auth_code and result.account_number == "XXXX1111"
    assert result.account_type == "Visa" and result.ref_id == "pay-1"
    request = sent(rsps)["createTransactionRequest"]
    assert request["refId"] == "pay-1"
    assert request["transactionRequest"]["amount"] == "125.50"
    assert request["transactionRequest"]["order"] == {"invoiceNumber": "INV-000123"}
    assert request["transactionRequest"]["transactionSettings"] == {
        "setting": [{"settingName": "duplicateWindow", "settingValue": "600"}]}
    [charge] = sim.charges()
    assert (charge["trans_id"], charge["ref_id"], charge["amount"]) == (result.trans_id, "pay-1", Decimal("125.50"))


@pytest.mark.parametrize("zip_code, outcome, code, error_code", [
    ("46282", ChargeOutcome.DECLINED, "2", "2"),
    ("46299", ChargeOutcome.HELD_FOR_REVIEW, "4", ""),
])
def test_decline_and_held_for_review_are_results(gw, sim, zip_code, outcome, code, error_code):
    customer, payment = new_profile(gw, sim)
    gw.update_payment_profile(customer, payment, BillTo(zip=zip_code))      # no re-validation without a new card
    result = gw.charge_profile(customer, payment, Decimal("10.00"), ref_id="pay-1", invoice_number="INV-1")
    assert (result.outcome, result.response_code, result.error_code) == (outcome, code, error_code)
    assert result.reason


def test_duplicate_inside_the_window_is_error_11_with_the_original(gw, sim, clock):
    customer, payment = new_profile(gw, sim)
    first = gw.charge_profile(customer, payment, Decimal("10.00"), ref_id="pay-1", invoice_number="INV-1")
    again = gw.charge_profile(customer, payment, Decimal("10.00"), ref_id="pay-2", invoice_number="INV-1")
    assert (again.outcome, again.error_code, again.trans_id) == (ChargeOutcome.ERROR, "11", first.trans_id)
    assert len(sim.charges()) == 1
    clock.advance(seconds=601)
    later = gw.charge_profile(customer, payment, Decimal("10.00"), ref_id="pay-3", invoice_number="INV-1")
    assert later.outcome == ChargeOutcome.APPROVED and len(sim.charges()) == 2


def test_charge_on_unknown_profile_is_not_found_and_charges_nothing(gw, sim):
    with pytest.raises(GatewayNotFound):
        gw.charge_profile("500000999", "600000999", Decimal("1.00"), ref_id="pay-1", invoice_number="INV-1")
    assert sim.charges() == []


def test_void_refund_details_and_lists(gw, sim):
    customer, payment = new_profile(gw, sim)
    voided = gw.charge_profile(customer, payment, Decimal("20.00"), ref_id="pay-1", invoice_number="INV-1")
    assert gw.void(voided.trans_id, ref_id="void-1").outcome == ChargeOutcome.APPROVED
    assert gw.get_transaction_details(voided.trans_id).status == "voided"

    paid = gw.charge_profile(customer, payment, Decimal("30.00"), ref_id="pay-2", invoice_number="INV-2")
    early = gw.refund(paid.trans_id, Decimal("5.00"), card_number_masked="XXXX1111", ref_id="rf-1",
                      customer_profile_id=customer, payment_profile_id=payment)
    assert (early.outcome, early.error_code) == (ChargeOutcome.ERROR, "54")     # not settled yet
    assert [t.trans_id for t in gw.list_unsettled_transactions()] == [voided.trans_id, paid.trans_id]

    sim.settle()
    details = gw.get_transaction_details(paid.trans_id)
    assert (details.ref_id, details.status, details.amount, details.settle_amount, details.invoice_number) == (
        "pay-2", "settledSuccessfully", Decimal("30.00"), Decimal("30.00"), "INV-2")
    assert (details.customer_profile_id, details.payment_profile_id) == (customer, payment)
    assert details.transaction_type == "authCaptureTransaction" and details.submitted_at == sim.clock.now()

    refund = gw.refund(paid.trans_id, Decimal("5.00"), card_number_masked="XXXX1111", ref_id="rf-2",
                       customer_profile_id=customer, payment_profile_id=payment)
    assert refund.outcome == ChargeOutcome.APPROVED and refund.trans_id != paid.trans_id
    too_much = gw.refund(paid.trans_id, Decimal("25.01"), card_number_masked="XXXX1111", ref_id="rf-3")
    assert too_much.error_code == "55"
    assert gw.get_transaction_details(refund.trans_id).ref_id == "rf-2"

    history = gw.list_customer_transactions(customer)
    assert [t.trans_id for t in history] == [voided.trans_id, paid.trans_id, refund.trans_id]
    assert history[1].settle_amount == Decimal("30.00") and history[1].payment_profile_id == payment
    assert gw.list_unsettled_transactions() == [history[2]]
    assert gw.list_customer_transactions(customer, "600000999") == []


def test_settled_batches_and_their_transactions_by_the_simulators_clock(gw, sim, clock):
    customer, payment = new_profile(gw, sim)
    before = clock.now()
    first = gw.charge_profile(customer, payment, Decimal("20.00"), ref_id="pay-1", invoice_number="INV-1")
    clock.advance(hours=20)
    first_batch = sim.settle()
    second = gw.charge_profile(customer, payment, Decimal("30.00"), ref_id="pay-2", invoice_number="INV-2")
    clock.advance(days=40)                             # a span longer than the API's 31 days: asked in pieces
    second_batch = sim.settle()
    assert sim.settle() is None                        # nothing left: no empty batch
    batches = gw.list_settled_batches(before, clock.now())
    assert [(b.batch_id, b.state) for b in batches] == [(first_batch, "settledSuccessfully"),
                                                        (second_batch, "settledSuccessfully")]
    assert batches[0].settled_at == before + dt.timedelta(hours=20)
    assert sim.calls["getSettledBatchList"] == 2
    assert [t.trans_id for t in gw.list_batch_transactions(first_batch)] == [first.trans_id]
    [summary] = gw.list_batch_transactions(second_batch)
    assert (summary.trans_id, summary.status, summary.invoice_number) == (second.trans_id, "settledSuccessfully",
                                                                         "INV-2")
    assert gw.list_settled_batches(clock.now() - dt.timedelta(days=1), clock.now())[0].batch_id == second_batch
    assert gw.list_unsettled_transactions() == []
    with pytest.raises(GatewayNotFound):
        gw.list_batch_transactions("424242")


def test_transaction_lists_are_read_to_the_last_page(gw, sim, monkeypatch):
    from gateway import client as client_module
    monkeypatch.setattr(client_module, "_PAGE_LIMIT", 3)
    customer, payment = new_profile(gw, sim)
    made = [gw.charge_profile(customer, payment, Decimal(f"{n}.00"), ref_id=f"pay-{n}", invoice_number=f"INV-{n}")
            for n in range(1, 8)]
    assert [t.trans_id for t in gw.list_unsettled_transactions()] == [m.trans_id for m in made]
    assert sim.calls["getUnsettledTransactionList"] == 3           # 3 + 3 + 1
    batch = sim.settle()
    assert [t.trans_id for t in gw.list_batch_transactions(batch)] == [m.trans_id for m in made]
    assert [t.trans_id for t in gw.list_customer_transactions(customer)] == [m.trans_id for m in made]


@pytest.mark.parametrize("paging, sorting", [({"limit": 1001, "offset": 1}, None), ({"limit": 10, "offset": 0}, None),
                                             (None, {"orderBy": "amount", "orderDescending": False})])
def test_the_simulator_refuses_paging_and_sorting_outside_the_schema(gw, sim, paging, sorting):
    request = {"merchantAuthentication": {"name": LOGIN_ID, "transactionKey": TRANSACTION_KEY}}
    request.update({k: v for k, v in (("sorting", sorting), ("paging", paging)) if v is not None})
    answer = requests.post(SANDBOX_URL, data=json.dumps({"getUnsettledTransactionListRequest": request}))
    body = json.loads(answer.content.decode("utf-8-sig"))
    assert body["messages"]["resultCode"] == "Error" and body["messages"]["message"][0]["code"] == "E00003"


def test_public_client_key(gw, sim):
    assert gw.public_client_key() == sim.public_client_key


def test_environment_picks_the_endpoint():
    assert AuthorizeNetGateway("a", "b", environment="production").endpoint == ENDPOINTS["production"]
    assert AuthorizeNetGateway("a", "b").endpoint == SANDBOX_URL
    with pytest.raises(ConfigurationError):
        AuthorizeNetGateway("a", "b", environment="live")


# --- Faults: a charge is never resent and never read as a decline -----------------------------------------------------

def test_answer_lost_after_commit_is_outcome_unknown_and_one_charge(gw, sim, rsps):
    customer, payment = new_profile(gw, sim)
    calls_before = len(rsps.calls)
    sim.fail_next("lost_after_commit")
    with pytest.raises(OutcomeUnknown):
        gw.charge_profile(customer, payment, Decimal("10.00"), ref_id="pay-1", invoice_number="INV-1")
    assert len(rsps.calls) == calls_before + 1          # not resent
    [charge] = sim.charges()
    assert charge["ref_id"] == "pay-1" and charge["status"] == "capturedPendingSettlement"


@pytest.mark.parametrize("fault", ["http_500", "malformed", "empty", "html"])
def test_unreadable_charge_answers_are_outcome_unknown(gw, sim, rsps, fault):
    customer, payment = new_profile(gw, sim)
    calls_before = len(rsps.calls)
    sim.fail_next(fault)
    with pytest.raises(OutcomeUnknown):
        gw.charge_profile(customer, payment, Decimal("10.00"), ref_id="pay-1", invoice_number="INV-1")
    assert len(rsps.calls) == calls_before + 1
    assert len(sim.charges()) == 1


def test_refused_connection_is_unavailable_and_charges_nothing(gw, sim):
    customer, payment = new_profile(gw, sim)
    sim.fail_next("refused")
    with pytest.raises(GatewayUnavailable):
        gw.charge_profile(customer, payment, Decimal("10.00"), ref_id="pay-1", invoice_number="INV-1")
    assert sim.charges() == []


def test_answer_without_bom_is_read(gw, sim):
    customer, payment = new_profile(gw, sim)
    sim.fail_next("no_bom")
    result = gw.charge_profile(customer, payment, Decimal("10.00"), ref_id="pay-1", invoice_number="INV-1")
    assert result.outcome == ChargeOutcome.APPROVED


def test_reads_are_retried_then_unavailable(gw, sim, rsps):
    customer, payment = new_profile(gw, sim)
    sim.fail_next("http_500", count=2, operation="getCustomerPaymentProfile")
    assert gw.get_payment_profile(customer, payment).payment_profile_id == payment
    sim.fail_next("malformed", count=3, operation=None)
    calls_before = len(rsps.calls)
    with pytest.raises(GatewayUnavailable):
        gw.get_transaction_details("120000000001")
    assert len(rsps.calls) == calls_before + 3


def test_cim_write_with_lost_answer_is_not_resent(gw, sim, rsps):
    customer = gw.create_customer_profile("ACC-1")
    sim.fail_next("lost_after_commit", operation="createCustomerPaymentProfile")
    calls_before = len(rsps.calls)
    with pytest.raises(OutcomeUnknown):
        gw.create_payment_profile(customer, sim.issue_nonce(CARD, "12", "2030"), HOME)
    assert len(rsps.calls) == calls_before + 1


# --- Input checked before sending ------------------------------------------------------------------------------------

@pytest.mark.parametrize("amount, error", [
    (10.5, TypeError), (Decimal("10.123"), BadRequest), (Decimal("0"), BadRequest), (Decimal("-5.00"), BadRequest),
    (Decimal("NaN"), BadRequest),
])
def test_bad_amounts_are_refused_before_sending(gw, rsps, amount, error):
    with pytest.raises(error):
        gw.charge_profile("1", "2", amount, ref_id="pay-1", invoice_number="INV-1")
    assert len(rsps.calls) == 0


def test_whole_amount_is_sent_with_two_places(gw, sim, rsps):
    customer, payment = new_profile(gw, sim)
    gw.charge_profile(customer, payment, Decimal("10"), ref_id="pay-1", invoice_number="INV-1")
    assert sent(rsps)["createTransactionRequest"]["transactionRequest"]["amount"] == "10.00"


@pytest.mark.parametrize("call", [
    lambda gw: gw.charge_profile("1", "2", Decimal("1.00"), ref_id="r" * 21, invoice_number="INV-1"),
    lambda gw: gw.charge_profile("1", "2", Decimal("1.00"), ref_id="", invoice_number="INV-1"),
    lambda gw: gw.charge_profile("1", "2", Decimal("1.00"), ref_id="pay-1", invoice_number="I" * 21),
    lambda gw: gw.void("1", ref_id="r" * 21),
    lambda gw: gw.create_customer_profile("A" * 21),
    lambda gw: gw.create_customer_profile(""),
    lambda gw: gw.update_payment_profile("1", "2", BillTo(state="S" * 41)),
    lambda gw: gw.update_payment_profile("1", "2", BillTo(phone_number="1" * 26)),
])
def test_field_limits_are_enforced_before_sending(gw, rsps, call):
    with pytest.raises(BadRequest):
        call(gw)
    assert len(rsps.calls) == 0


# --- No secrets anywhere ---------------------------------------------------------------------------------------------

def test_no_key_nonce_card_or_cvv_in_logs_or_errors(gw, sim, rsps, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    customer = gw.create_customer_profile("ACC-1")
    nonce = sim.issue_nonce(CARD, "12", "2030", CVV)
    payment = gw.create_payment_profile(customer, nonce, HOME)
    for attempt in (
        lambda: gw.create_payment_profile(customer, nonce, HOME),                      # used nonce
        lambda: AuthorizeNetGateway(LOGIN_ID, "wrongKey99999999").public_client_key(),
        lambda: (sim.fail_next("lost_after_commit"),
                 gw.charge_profile(customer, payment, Decimal("1.00"), ref_id="pay-1", invoice_number="INV-1")),
        lambda: (sim.fail_next("refused", count=3, operation=None), gw.get_customer_profile(customer)),
    ):
        with pytest.raises(GatewayError) as failure:
            attempt()
        errors.append(f"{failure.value!s} {failure.value!r} {failure.value.text}")
    everything = caplog.text + " ".join(errors)
    assert "createCustomerPaymentProfile" in caplog.text          # the log does say what happened
    for secret in (TRANSACTION_KEY, "wrongKey99999999", nonce.value, CARD, "1111111111", '"900"'):
        assert secret not in everything


def test_a_charge_answered_with_a_system_error_is_outcome_unknown_not_a_refusal():
    """E00001 "An error occurred during processing" says nothing about whether the charge went through; closing the
    attempt as refused would let the invoice be charged again."""
    answer = b"\xef\xbb\xbf" + json.dumps({"refId": "R-1", "messages": {"resultCode": "Error", "message": [
        {"code": "E00001", "text": "An error occurred during processing. Please try again."}]}}).encode()
    with responses.RequestsMock() as mock:
        mock.add("POST", SANDBOX_URL, body=answer, status=200, content_type="application/json")
        gateway = AuthorizeNetGateway(LOGIN_ID, TRANSACTION_KEY, session=requests.Session())
        with pytest.raises(OutcomeUnknown):
            gateway.charge_profile("1", "2", Decimal("5.00"), ref_id="R-1", invoice_number="INV-1")
        with pytest.raises(GatewayRefused) as refused:               # a read's E00001 is a refusal of the read
            gateway.get_transaction_details("120000000001")
    assert not isinstance(refused.value, OutcomeUnknown)
