"""The sandbox simulator on the wire: raw JSON through `handle`, the WSGI app, the nonce endpoint, Accept.js and
webhooks."""
from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import subprocess
import threading
from decimal import Decimal
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.util import setup_testing_defaults

import pytest

from gateway.signature import verify_signature
from standins.authorizenet import (ACCEPT_DESCRIPTOR, LOGIN_ID, PUBLIC_CLIENT_KEY, SANDBOX_URL, SIGNATURE_KEY,
                               TRANSACTION_KEY, AcceptError, AuthorizeNetSimulator, TransportFault)

AUTH = {"name": LOGIN_ID, "transactionKey": TRANSACTION_KEY}


class ManualClock:
    def __init__(self) -> None:
        self.moment = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone.utc)

    def now(self) -> dt.datetime:
        return self.moment


@pytest.fixture
def sim() -> AuthorizeNetSimulator:
    return AuthorizeNetSimulator(ManualClock())


def api(sim, operation: str, **fields) -> dict:
    body = json.dumps({f"{operation}Request": {"merchantAuthentication": AUTH, **fields}}).encode()
    status, headers, raw = sim.handle("POST", SANDBOX_URL, {"Content-Type": "application/json"}, body)
    assert status == 200 and raw.startswith(b"\xef\xbb\xbf")          # the gateway's BOM
    return json.loads(raw.decode("utf-8-sig"), parse_float=Decimal)


def codes(answer: dict) -> list[str]:
    return [m["code"] for m in answer["messages"]["message"]]


def stored_profile(sim, *, zip_code="98004", card="4111111111111111", cvv="") -> tuple[str, str]:
    customer = api(sim, "createCustomerProfile", profile={"merchantCustomerId": f"M{len(sim._customers)}"})
    nonce = sim.issue_nonce(card, "12", "2030", cvv)
    created = api(sim, "createCustomerPaymentProfile", customerProfileId=customer["customerProfileId"],
                  paymentProfile={"billTo": {"zip": zip_code},
                                  "payment": {"opaqueData": {"dataDescriptor": nonce.descriptor,
                                                             "dataValue": nonce.value}}},
                  validationMode="testMode")
    return customer["customerProfileId"], created["customerPaymentProfileId"]


def charge(sim, customer: str, payment: str, amount="10.00", invoice="INV-1", ref_id="pay-1") -> dict:
    return api(sim, "createTransaction", refId=ref_id, transactionRequest={
        "transactionType": "authCaptureTransaction", "amount": amount,
        "profile": {"customerProfileId": customer, "paymentProfile": {"paymentProfileId": payment}},
        "order": {"invoiceNumber": invoice}})


def test_requests_that_are_not_the_api_are_refused(sim):
    assert sim.handle("GET", "https://apitest.authorize.net/other", {}, b"")[0] == 404
    assert sim.handle("GET", SANDBOX_URL, {}, b"")[0] == 405
    answer = json.loads(sim.handle("POST", SANDBOX_URL, {}, b"not json")[2].decode("utf-8-sig"))
    assert answer["messages"]["resultCode"] == "Error" and codes(answer) == ["E00003"]


def test_wrong_credentials_are_e00007(sim):
    body = json.dumps({"getMerchantDetailsRequest": {"merchantAuthentication": {"name": LOGIN_ID,
                                                                                 "transactionKey": "nope"}}})
    answer = json.loads(sim.handle("POST", SANDBOX_URL, {}, body)[2].decode("utf-8-sig"))
    assert codes(answer) == ["E00007"]


def test_merchant_customer_id_duplicate_names_the_existing_id(sim):
    first = api(sim, "createCustomerProfile", profile={"merchantCustomerId": "ACC-1"})
    again = api(sim, "createCustomerProfile", profile={"merchantCustomerId": "ACC-1", "email": "x@y.z"})
    assert codes(again) == ["E00039"]
    assert f"ID {first['customerProfileId']} already exists" in again["messages"]["message"][0]["text"]
    assert codes(api(sim, "createCustomerProfile", profile={})) == ["E00041"]
    assert codes(api(sim, "createCustomerProfile", profile={"merchantCustomerId": "A" * 21})) == ["E00003"]


def test_refid_is_echoed_and_limits_are_enforced(sim):
    customer, payment = stored_profile(sim)
    assert charge(sim, customer, payment, ref_id="pay-9")["refId"] == "pay-9"
    assert codes(charge(sim, customer, payment, invoice="I" * 21)) == ["E00003"]


@pytest.mark.parametrize("zip_code, avs", [("46201", "A"), ("46205", "N"), ("46217", "Z"), ("98004", "Y")])
def test_avs_result_follows_the_billing_zip(sim, zip_code, avs):
    customer, payment = stored_profile(sim, zip_code=zip_code)
    assert charge(sim, customer, payment)["transactionResponse"]["avsResultCode"] == avs


@pytest.mark.parametrize("cvv, result", [("900", "M"), ("901", "N"), ("902", "S"), ("903", "U"), ("904", "P")])
def test_cvv_result_follows_the_card_code(sim, cvv, result):
    nonce = sim.issue_nonce("4007000000027", "12", "2030", cvv)
    answer = api(sim, "createTransaction", refId="pay-1", transactionRequest={
        "transactionType": "authCaptureTransaction", "amount": "3.00",
        "payment": {"opaqueData": {"dataDescriptor": nonce.descriptor, "dataValue": nonce.value}}})
    assert answer["transactionResponse"]["cvvResultCode"] == result
    # Validating a new payment profile reports it too (validationDirectResponse field 39).
    customer = api(sim, "createCustomerProfile", profile={"merchantCustomerId": "ACC-1"})["customerProfileId"]
    nonce = sim.issue_nonce("4012888818888", "12", "2030", cvv)
    created = api(sim, "createCustomerPaymentProfile", customerProfileId=customer, validationMode="liveMode",
                  paymentProfile={"payment": {"opaqueData": {"dataDescriptor": nonce.descriptor,
                                                             "dataValue": nonce.value}}})
    assert created["validationDirectResponse"].split(",")[38] == result


def test_decline_held_and_expired_card(sim):
    customer, payment = stored_profile(sim, zip_code="46282")
    declined = charge(sim, customer, payment)
    assert declined["transactionResponse"]["responseCode"] == "2" and codes(declined) == ["E00027"]
    customer, payment = stored_profile(sim, zip_code="46299")
    held = charge(sim, customer, payment)["transactionResponse"]
    assert held["responseCode"] == "4" and held["messages"][0]["code"] == "252"
    sim.approve_held(held["transId"])
    assert sim.transactions()[-1]["status"] == "capturedPendingSettlement"
    customer, payment = stored_profile(sim)
    sim.clock.moment = dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc)
    expired = charge(sim, customer, payment)["transactionResponse"]
    assert (expired["responseCode"], expired["errors"][0]["errorCode"]) == ("3", "8")


def test_update_needs_payment_and_unknown_records_are_e00040(sim):
    customer, payment = stored_profile(sim)
    answer = api(sim, "updateCustomerPaymentProfile", customerProfileId=customer,
                 paymentProfile={"billTo": {"zip": "1"}, "customerPaymentProfileId": payment})
    assert codes(answer) == ["E00029"]
    assert codes(api(sim, "getTransactionDetails", transId="1")) == ["E00040"]
    assert codes(api(sim, "getCustomerPaymentProfile", customerProfileId=customer,
                     customerPaymentProfileId="1")) == ["E00040"]


def test_settle_moves_captures_and_charges_lists_each_once(sim):
    customer, payment = stored_profile(sim)
    approved = charge(sim, customer, payment)["transactionResponse"]
    assert charge(sim, customer, payment, ref_id="pay-2")["transactionResponse"]["transId"] == approved["transId"]
    [recorded] = sim.charges()
    assert (recorded["ref_id"], recorded["status"], recorded["account_number"]) == (
        "pay-1", "capturedPendingSettlement", "XXXX1111")
    assert "card" not in recorded
    sim.settle()
    assert sim.charges()[0]["status"] == "settledSuccessfully"
    details = api(sim, "getTransactionDetails", transId=approved["transId"])
    assert details["transrefId"] == "pay-1" and details["transaction"]["settleAmount"] == Decimal("10.00")


# --- Accept.js and nonces ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("card, month, year, cvv, code", [
    ("4111111111111112", "12", "2030", "123", "E_WC_05"),      # Luhn
    ("41111", "12", "2030", "123", "E_WC_05"),
    ("4111111111111111", "13", "2030", "123", "E_WC_06"),
    ("4111111111111111", "12", "230", "123", "E_WC_07"),
    ("4111111111111111", "1", "2024", "123", "E_WC_08"),       # before the clock's March 2025
    ("4111111111111111", "12", "2030", "12", "E_WC_15"),
    ("370000000000002", "12", "2030", "123", "E_WC_15"),       # Amex wants 4 digits
])
def test_issue_nonce_refuses_what_accept_js_refuses(sim, card, month, year, cvv, code):
    with pytest.raises(AcceptError) as refusal:
        sim.issue_nonce(card, month, year, cvv)
    assert refusal.value.code == code and card not in str(refusal.value)


def test_nonce_endpoint_answers_like_accept_js(sim):
    def post(secure: dict) -> dict:
        status, _, raw = sim.handle("POST", "http://127.0.0.1:7071/_local/authorizenet/accept/nonce", {},
                                    json.dumps(secure).encode())
        assert status == 200
        return json.loads(raw)

    auth = {"clientKey": PUBLIC_CLIENT_KEY, "apiLoginID": LOGIN_ID}
    ok = post({"authData": auth, "cardData": {"cardNumber": "4111111111111111", "month": "12", "year": "30",
                                              "cardCode": "123"}})
    assert ok["messages"]["resultCode"] == "Ok" and ok["opaqueData"]["dataDescriptor"] == ACCEPT_DESCRIPTOR
    bad = post({"authData": auth, "cardData": {"cardNumber": "1234", "month": "12", "year": "30"}})
    assert bad["messages"] == {"resultCode": "Error",
                               "message": [{"code": "E_WC_05", "text": "Please provide valid credit card number."}]}
    wrong_key = post({"authData": {**auth, "clientKey": "x"}, "cardData": {}})
    assert wrong_key["messages"]["message"][0]["code"] == "E_WC_21"


def wsgi_call(app, method: str, path: str, body: bytes = b"") -> tuple[str, bytes]:
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(REQUEST_METHOD=method, SCRIPT_NAME="/_local/authorizenet", PATH_INFO=path,
                   CONTENT_LENGTH=str(len(body)), **{"wsgi.input": io.BytesIO(body)})
    started: list = []
    out = b"".join(app(environ, lambda status, headers: started.append(status)))
    return started[0], out


def test_wsgi_app_serves_api_nonce_and_accept_js(sim):
    app = sim.wsgi_app()
    status, script = wsgi_call(app, "GET", "/Accept.js")
    assert status == "200 OK" and b"dispatchData" in script
    body = json.dumps({"getMerchantDetailsRequest": {"merchantAuthentication": AUTH}}).encode()
    status, raw = wsgi_call(app, "POST", "/xml/v1/request.api", body)
    assert json.loads(raw.decode("utf-8-sig"))["publicClientKey"] == PUBLIC_CLIENT_KEY
    sim.fail_next("lost_after_commit", operation=None)
    assert wsgi_call(app, "POST", "/xml/v1/request.api", body) == ("504 Gateway Timeout", b"")
    sim.fail_next("refused", operation=None)
    assert wsgi_call(app, "POST", "/xml/v1/request.api", body)[0] == "502 Bad Gateway"


def test_handle_raises_transport_faults_for_the_adapters(sim):
    sim.fail_next("refused", operation=None)
    with pytest.raises(TransportFault):
        api(sim, "getMerchantDetails")
    with pytest.raises(ValueError):
        sim.fail_next("bogus")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_accept_js_stand_in_in_node_against_the_wsgi_app(sim, tmp_path):
    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    def mounted(environ, start_response):
        environ["SCRIPT_NAME"], environ["PATH_INFO"] = "/_local/authorizenet", environ["PATH_INFO"][20:]
        return sim.wsgi_app()(environ, start_response)

    server = make_server("127.0.0.1", 0, mounted, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/_local/authorizenet"
    script = tmp_path / "run.js"
    script.write_text(f"""
      globalThis.document = {{ currentScript: {{ src: "{base}/Accept.js" }} }};
      const source = await (await fetch("{base}/Accept.js")).text();
      new Function(source)();
      const dispatch = (card) => new Promise((resolve) => Accept.dispatchData(
          {{ authData: {{ clientKey: "{PUBLIC_CLIENT_KEY}", apiLoginID: "{LOGIN_ID}" }}, cardData: card }}, resolve));
      const ok = await dispatch({{ cardNumber: "4111111111111111", month: "12", year: "2030", cardCode: "123" }});
      const bad = await dispatch({{ cardNumber: "4111111111111111", month: "00", year: "2030", cardCode: "123" }});
      console.log(JSON.stringify({{ ok, bad }}));
    """)
    try:
        run = subprocess.run(["node", "--input-type=module", "-e", script.read_text()], capture_output=True,
                             text=True, timeout=30)
    finally:
        server.shutdown()
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)
    assert results["bad"]["messages"]["message"][0]["code"] == "E_WC_06"
    opaque = results["ok"]["opaqueData"]
    assert opaque["dataDescriptor"] == ACCEPT_DESCRIPTOR
    customer = api(sim, "createCustomerProfile", profile={"merchantCustomerId": "ACC-1"})["customerProfileId"]
    created = api(sim, "createCustomerPaymentProfile", customerProfileId=customer,
                  paymentProfile={"payment": {"opaqueData": opaque}})
    assert created["messages"]["resultCode"] == "Ok"             # the browser's nonce is one the simulator knows


# --- Webhooks ---------------------------------------------------------------------------------------------------------

def test_webhook_for_is_signed_over_the_raw_body(sim):
    body, headers = sim.webhook_for("net.authorize.payment.authcapture.created",
                                    {"authAmount": Decimal("45.00"), "entityName": "transaction", "id": "1"})
    assert b'"authAmount": 45.00' in body
    assert verify_signature(body, headers["X-ANET-Signature"], SIGNATURE_KEY)
    assert not verify_signature(json.dumps(json.loads(body)).encode(), headers["X-ANET-Signature"], SIGNATURE_KEY)
    body, headers = sim.webhook_for("x", {}, signature_key="OTHER")
    assert verify_signature(body, headers["X-ANET-Signature"], "OTHER")


def test_emitted_webhooks_follow_what_happens(sim):
    delivered: list[dict] = []
    sim.emit_webhooks_to(delivered, "K" * 128)
    customer, payment = stored_profile(sim)
    approved = charge(sim, customer, payment)["transactionResponse"]
    api(sim, "createTransaction", refId="void-1", transactionRequest={"transactionType": "voidTransaction",
                                                                      "refTransId": approved["transId"]})
    assert [d["event_type"] for d in delivered] == [
        "net.authorize.customer.created", "net.authorize.customer.paymentProfile.created",
        "net.authorize.payment.authcapture.created", "net.authorize.payment.void.created"]
    for delivery in delivered:
        assert verify_signature(delivery["body"], delivery["headers"]["X-ANET-Signature"], "K" * 128)
    payload = json.loads(delivered[2]["body"])["payload"]
    assert (payload["id"], payload["merchantReferenceId"], payload["authAmount"]) == (approved["transId"], "pay-1",
                                                                                      10.0)
    assert payload["entityName"] == "transaction"


def test_storage_path_keeps_profiles_and_transactions_across_restarts(tmp_path):
    path = tmp_path / "authorizenet.json"
    first = AuthorizeNetSimulator(ManualClock(), storage_path=path)
    customer, payment = stored_profile(first)
    approved = charge(first, customer, payment)["transactionResponse"]
    first.settle()

    again = AuthorizeNetSimulator(ManualClock(), storage_path=path)
    assert [c["trans_id"] for c in again.charges()] == [approved["transId"]]
    assert again.charges()[0]["status"] == "settledSuccessfully" and again.charges()[0]["amount"] == Decimal("10.00")
    profile = api(again, "getCustomerPaymentProfile", customerProfileId=customer, customerPaymentProfileId=payment)
    assert profile["paymentProfile"]["payment"]["creditCard"]["cardNumber"] == "XXXX1111"
    assert api(again, "createCustomerProfile", profile={"merchantCustomerId": "new"})["customerProfileId"] != customer


def test_a_malformed_request_is_e00003_not_a_crash(sim):
    customer, payment = stored_profile(sim)
    answer = api(sim, "createTransaction", refId="pay-1", transactionRequest={
        "transactionType": "authCaptureTransaction", "amount": "1.00",
        "profile": {"customerProfileId": customer, "paymentProfile": {"paymentProfileId": payment}},
        "transactionSettings": {"setting": [{"settingName": "duplicateWindow", "settingValue": "soon"}]}})
    assert codes(answer) == ["E00003"] and sim.charges() == []
