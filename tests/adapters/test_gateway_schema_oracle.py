"""The `authorizenet` SDK's generated XSD bindings as the oracle for what our client sends.

The gateway rejects JSON whose keys leave the XSD sequence order (E00003), and its facets are the field limits. Every
request the client sends in a full run against the simulator is checked: key order, known elements, maxLength /
minLength, enumerations, booleans. The SDK is imported here only, never by the app.
"""
from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
import requests
import responses

from core.ports import BillTo
from gateway import client as client_module
from gateway.client import AuthorizeNetGateway
from standins.authorizenet import AuthorizeNetSimulator
from core.bill_to import FIELDS as BILL_TO_FIELDS

apicontracts = pytest.importorskip("authorizenet.apicontractsv1")
pyxb = pytest.importorskip("pyxb")

ElementDeclaration = pyxb.binding.content.ElementDeclaration
ComplexType = pyxb.binding.basis.complexTypeDefinition


def sequence(type_binding) -> list:
    """Element declarations in XSD sequence order: base type first; PyXB generates them in schema order and class
    bodies keep definition order."""
    return [value for klass in reversed(type_binding.__mro__) for value in vars(klass).values()
            if isinstance(value, ElementDeclaration)]


def facet(type_binding, name: str):
    found = getattr(type_binding, f"_CF_{name}", None)
    return None if found is None else found.value()


def check(node, type_binding, path: str, problems: list[str]) -> None:
    declarations = {d.name().localName(): d for d in sequence(type_binding)}
    order = list(declarations)
    keys = list(node)
    unknown = [key for key in keys if key not in declarations]
    if unknown:
        problems.append(f"{path}: unknown elements {unknown}")
        return
    if keys != sorted(keys, key=order.index):
        problems.append(f"{path}: order {keys}, XSD wants {[k for k in order if k in keys]}")
    for key, value in node.items():
        declaration = declarations[key]
        child = declaration.elementBinding().typeDefinition()
        values = value if declaration.isPlural() and isinstance(value, list) else [value]
        for item in values:
            where = f"{path}.{key}"
            if issubclass(child, ComplexType):
                if not isinstance(item, dict):
                    problems.append(f"{where}: expected an object")
                else:
                    check(item, child, where, problems)
                continue
            if issubclass(child, pyxb.binding.datatypes.boolean):
                if not isinstance(item, bool):
                    problems.append(f"{where}: expected a JSON boolean")
                continue
            text = str(item)
            longest, shortest = facet(child, "maxLength"), facet(child, "minLength")
            if longest is not None and len(text) > longest:
                problems.append(f"{where}: {len(text)} characters > maxLength {longest}")
            if shortest is not None and len(text) < shortest:
                problems.append(f"{where}: {len(text)} characters < minLength {shortest}")
            enumeration = getattr(child, "_CF_enumeration", None)
            allowed = [str(v) for v in enumeration.values()] if enumeration is not None else []
            if allowed and text not in allowed:
                problems.append(f"{where}: {text!r} not in {allowed}")
            if issubclass(child, pyxb.binding.datatypes.decimal):
                amount = Decimal(text)
                if amount != amount.quantize(Decimal("0.01")) or "." not in text:
                    problems.append(f"{where}: {text!r} is not a two-place amount")


@pytest.fixture(scope="module")
def sent_requests() -> list[dict]:
    """Every request body of a run through every client operation."""
    # Credentials within the XSD's limits (name <= 25, transactionKey <= 16), as real ones are.
    sim = AuthorizeNetSimulator(login_id="oracleLoginId", transaction_key="oracleTransKey16")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        sim.register_with_responses(rsps)
        gw = AuthorizeNetGateway("oracleLoginId", "oracleTransKey16", session=requests.Session())
        bill_to = BillTo("Ann", "Lee", "Contoso", "1 Main St", "Bellevue", "WA", "98004", "US", "425-555-0100")
        customer = gw.create_customer_profile("ACC-1", description="Contoso Ltd", email="ap@contoso.com")
        payment = gw.create_payment_profile(customer, sim.issue_nonce("4111111111111111", "12", "2030", "123"),
                                            bill_to, default=True)
        gw.get_customer_profile(customer)
        gw.create_customer_with_card("ACC-2", sim.issue_nonce("4111111111111111", "12", "2030", "123"), bill_to,
                                     description="Fabrikam", email="ap@fabrikam.com", default=True)
        gw.update_payment_profile(customer, payment, bill_to, default=True)
        gw.update_payment_profile(customer, payment, bill_to, card_number_masked="XXXX1111")
        gw.update_payment_profile(customer, payment, bill_to,
                                  opaque=sim.issue_nonce("5424000000000015", "12", "2030", "123"))
        charge = gw.charge_profile(customer, payment, Decimal("125.50"), ref_id="pay-1", invoice_number="INV-1",
                                   description="Invoice INV-1")
        voided = gw.charge_profile(customer, payment, Decimal("5.00"), ref_id="pay-2", invoice_number="INV-2")
        gw.void(voided.trans_id, ref_id="void-1")
        sim.settle()
        gw.refund(charge.trans_id, Decimal("1.00"), card_number_masked="XXXX0015", ref_id="rf-1",
                  customer_profile_id=customer, payment_profile_id=payment)
        gw.refund(charge.trans_id, Decimal("1.00"), card_number_masked="XXXX0015", ref_id="rf-2")
        gw.get_transaction_details(charge.trans_id)
        gw.list_customer_transactions(customer, payment)
        gw.list_unsettled_transactions()
        [batch] = gw.list_settled_batches(sim.clock.now() - datetime.timedelta(days=1), sim.clock.now())
        gw.list_batch_transactions(batch.batch_id)
        gw.public_client_key()
        new_card = gw.charge_new_card(sim.issue_nonce("6011000000000012", "12", "2030", "123"), Decimal("20.00"),
                                      ref_id="pay-3", invoice_number="ORD-1-1", bill_to=bill_to,
                                      merchant_customer_id="ACC-3", email="ap@litware.com", description="Order ORD-1")
        gw.charge_new_card(sim.issue_nonce("4111111111111111", "12", "2030", "123"), Decimal("21.00"),
                           ref_id="pay-4", invoice_number="ORD-2-1", bill_to=bill_to, merchant_customer_id="ACC-3",
                           create_profile=False)
        gw.create_profile_from_transaction(new_card.trans_id, customer, default=True)
        gw.find_customer_profile("ACC-3")
        gw.delete_payment_profile(customer, payment)
        return [json.loads(call.request.body) for call in rsps.calls]


def test_every_request_type_of_the_client_is_covered(sent_requests):
    assert {name for body in sent_requests for name in body} == {
        "createCustomerProfileRequest", "createCustomerPaymentProfileRequest", "getCustomerProfileRequest",
        "getCustomerPaymentProfileRequest", "updateCustomerPaymentProfileRequest",
        "deleteCustomerPaymentProfileRequest", "createTransactionRequest", "getTransactionDetailsRequest",
        "getTransactionListForCustomerRequest", "getUnsettledTransactionListRequest", "getMerchantDetailsRequest",
        "getSettledBatchListRequest", "getTransactionListRequest", "createCustomerProfileFromTransactionRequest"}


def test_requests_follow_the_xsd_order_and_facets(sent_requests):
    problems: list[str] = []
    for body in sent_requests:
        (name, request), = body.items()
        check(request, getattr(apicontracts, name).typeDefinition(), name, problems)
    assert problems == []


def test_the_checker_catches_a_wrong_order():
    problems: list[str] = []
    check({"transactionType": "authCaptureTransaction", "order": {"invoiceNumber": "I" * 21}, "amount": "1.00"},
          apicontracts.transactionRequestType, "tx", problems)
    assert any("order" in p and "XSD wants" in p for p in problems)
    assert any("maxLength 20" in p for p in problems)


def test_client_limits_match_the_xsd_facets():
    max_length = lambda type_binding, element: facet(  # noqa: E731
        {d.name().localName(): d for d in sequence(type_binding)}[element].elementBinding().typeDefinition(),
        "maxLength")
    limits = client_module.LIMITS
    assert limits["refId"] == max_length(apicontracts.ANetApiRequest, "refId")
    assert limits["invoiceNumber"] == max_length(apicontracts.orderType, "invoiceNumber")
    assert limits["orderDescription"] == max_length(apicontracts.orderType, "description")
    assert limits["merchantCustomerId"] == max_length(apicontracts.customerProfileType, "merchantCustomerId")
    assert limits["profileDescription"] == max_length(apicontracts.customerProfileType, "description")
    assert limits["email"] == max_length(apicontracts.customerProfileType, "email")
    address = [(d.name().localName(), facet(d.elementBinding().typeDefinition(), "maxLength"))
               for d in sequence(apicontracts.customerAddressType)]
    ours = [(field.name, field.limit) for field in BILL_TO_FIELDS]
    assert ours == address[:len(ours)]
    modes = {str(v) for v in apicontracts.validationModeEnum._CF_enumeration.values()}
    assert set(client_module.VALIDATION_MODES) <= modes
