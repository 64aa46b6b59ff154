"""Shared set-up of the charging tests and the benchmark: a synced card on file for the demo account, the billing
contract pointing at it, and the books as the gateway and Dataverse each keep them."""
from __future__ import annotations

from decimal import Decimal

from core import footprint
from core.ports import BillTo

VISA = "4111111111111111"
PAID_AT_GATEWAY = ("capturedPendingSettlement", "settledSuccessfully")


def card_on_file(world, *, zip_code: str = "98052", on_contract: bool = True, number: str = VISA) -> str:
    """A Visa in the simulator and its Active, Synced w365_paymentprofile row (the account's default)."""
    gateway = world.services.gateway
    customer = gateway.create_customer_profile("FAB-001", description="Fabrikam")
    nonce = world.simulator.issue_nonce(number, 12, 2030, "123")
    bill_to = BillTo(first_name="Nancy", last_name="Davolio", zip="98052")
    payment = gateway.create_payment_profile(customer, nonce, bill_to, default=True)
    if zip_code != bill_to.zip:         # the simulator's decline/held triggers: a new card with them fails validation
        gateway.update_payment_profile(customer, payment, BillTo(first_name="Nancy", last_name="Davolio",
                                                                 zip=zip_code), default=True)
    profile_id = world.standin.seed("w365_paymentprofile", {
        "w365_name": "Visa XXXX1111", "w365_accountid@odata.bind": f"/accounts({world.ids['account']})",
        "w365_customerprofileid": customer, "w365_paymentprofileidgateway": payment, "w365_cardtype": "Visa",
        "w365_cardlast4": "XXXX1111", "w365_isdefault": True, "statecode": 0, "statuscode": 1,
        "w365_syncstatus": footprint.choice("w365_paymentprofile", "w365_syncstatus", "Synced"),
        "w365_source": footprint.choice("w365_paymentprofile", "w365_source", "Direct Entry")})
    if on_contract:
        world.standin.update("w365_billingcontract", world.ids["billingcontract"],
                             {"w365_paymentprofileid@odata.bind": f"/w365_paymentprofiles({profile_id})"})
    return profile_id


def charge(world, amount: str | None = None, invoice: str = "invoice1", **kw):
    params = {"Amount": Decimal(amount)} if amount is not None else {}
    return world.send("w365_ChargeInvoice", "invoice", world.ids[invoice], **params, **kw)


def transactions(world, invoice: str = "invoice1") -> list[dict]:
    return [t for t in world.rows("w365_paymenttransaction")
            if (t.get("w365_invoiceid") or {}).get("id") == world.ids[invoice]]


def outcome(label: str) -> int:
    return footprint.choice("w365_paymenttransaction", "w365_outcome", label)


def gateway_net(world, invoice_number: str = "INV-1001") -> Decimal:
    """What the gateway really took for the invoice: approved charges minus refunds and voids."""
    net = Decimal("0.00")
    by_id = {t["trans_id"]: t for t in world.simulator.transactions()}
    for t in by_id.values():
        number = t["invoice_number"] or ""
        if number != invoice_number and not number.startswith(invoice_number + "-"):   # INV-1001-2: attempt 2
            continue
        if t["type"] == "authCaptureTransaction" and t["status"] in PAID_AT_GATEWAY:
            net += t["amount"]
        elif t["type"] == "refundTransaction" and t["response_code"] == "1":
            net -= t["amount"]
    return net


def assert_books_agree(world, invoice: str = "invoice1", invoice_number: str = "INV-1001") -> Decimal:
    """The gateway's net equals the invoice's amount paid and the approved transaction rows, to the cent; the
    invoice's balance and state follow."""
    row = world.row("invoice", world.ids[invoice])
    net = gateway_net(world, invoice_number)
    approved = outcome("Approved")
    signed = Decimal("0.00")
    for t in transactions(world, invoice):
        if t["w365_outcome"] == approved:
            kind = footprint.label("w365_paymenttransaction", "w365_type", t["w365_type"])
            signed += t["w365_amount"] if kind == "Charge" else -t["w365_amount"]
    assert row["w365_amountpaid"] == net == signed, (row["w365_amountpaid"], net, signed)
    assert row["w365_amountpaid"] + row["w365_balance"] == row["totalamount"]
    expected = (0, None) if net == 0 else ((2, 100001) if net == row["totalamount"] else (2, 100002))
    assert row["statecode"] == expected[0]
    if expected[1] is not None:
        assert row["statuscode"] == expected[1]
    return net


class ProcessDied(BaseException):
    """Stands for the worker being killed: not an Exception, so no handler of ours catches it."""


def charge_dying(world, monkeypatch, amount: str, *, at: str, invoice: str = "invoice1") -> None:
    """A charge whose worker dies `at` "gateway" (before the charge is sent) or "write" (after the gateway approved,
    before Dataverse recorded it): the attempt row stays Pending."""
    import pytest

    def die(*args, **kwargs):
        raise ProcessDied()
    with monkeypatch.context() as patch:
        if at == "gateway":
            patch.setattr(world.services.gateway, "charge_profile", die)
        else:
            patch.setattr(world.services.dataverse, "batch", die)
        with pytest.raises(ProcessDied):
            charge(world, amount, invoice=invoice)


def same_amount_invoices(world, count: int, total: str = "40.00") -> list[str]:
    """`count` more invoices of the demo account, all of the same amount (INV-2000, INV-2001 ...); their keys."""
    keys = []
    for n in range(count):
        key = f"same{n}"
        world.ids[key] = world.standin.seed("invoice", {
            "name": f"Fabrikam INV-{2000 + n}", "invoicenumber": f"INV-{2000 + n}",
            "customerid_account@odata.bind": f"/accounts({world.ids['account']})",
            "pricelevelid@odata.bind": f"/pricelevels({world.ids['pricelevel']})",
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({world.ids['currency']})",
            "totalamount": Decimal(total), "totallineitemamount": Decimal(total), "totaltax": Decimal("0.00"),
            "w365_billingcontractid@odata.bind": f"/w365_billingcontracts({world.ids['billingcontract']})",
            "w365_amountpaid": Decimal("0.00"), "w365_balance": Decimal(total)})
        keys.append(key)
    return keys


def lost_answer(world, invoice: str, amount: str = "40.00") -> str:
    """A charge the gateway approved whose answer never came back: the attempt is Unknown. Its transaction id."""
    world.simulator.fail_next("lost_after_commit")
    reply = charge(world, amount, invoice=invoice)
    assert "being confirmed" in reply.message, reply.body
    [row] = transactions(world, invoice)
    return row["w365_paymenttransactionid"]
