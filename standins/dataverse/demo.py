"""Demo data for local mode and end-to-end tests: one customer with invoices, an order, providers and two people."""
from __future__ import annotations

from decimal import Decimal

from core.footprint import CONFIGURATION_DEFAULTS, choice
from core.settings import LOCAL_DEFAULT_BASE_URL
from standins import LOCAL_PROVIDER_PATH
from standins.dataverse.http import DataverseStandIn

WEBHOOK_PROVIDER_URL = LOCAL_DEFAULT_BASE_URL + LOCAL_PROVIDER_PATH   # standins/demo_provider.py on the dev host


def seed_demo(standin: DataverseStandIn) -> dict[str, str]:
    """Seeds the rows and returns their ids by name (configuration, account, contact, invoice1, ...)."""
    s = standin.seed
    ids: dict[str, str] = {}
    ids["queue"] = s("queue", {"name": "Billing", "emailaddress": "billing@contoso.example"})
    ids["configuration"] = s("w365_configuration", {
        **CONFIGURATION_DEFAULTS, "w365_emailfromqueueid@odata.bind": f"/queues({ids['queue']})"})
    ids["currency"] = s("transactioncurrency", {"currencyname": "US Dollar", "isocurrencycode": "USD",
                                                "currencysymbol": "$", "exchangerate": Decimal("1")})
    currency = f"/transactioncurrencies({ids['currency']})"
    ids["pricelevel"] = s("pricelevel", {"name": "Retail", "transactioncurrencyid@odata.bind": currency})
    pricelevel = f"/pricelevels({ids['pricelevel']})"
    ids["account"] = s("account", {"name": "Fabrikam", "accountnumber": "FAB-001", "creditonhold": False,
                                   "emailaddress1": "ap@fabrikam.example", "w365_gatewaycustomerprofileid": None,
                                   "transactioncurrencyid@odata.bind": currency})
    account = f"/accounts({ids['account']})"
    ids["contact"] = s("contact", {"firstname": "Nancy", "lastname": "Davolio",
                                   "emailaddress1": "nancy@fabrikam.example",
                                   "parentcustomerid_account@odata.bind": account})
    standin.update("account", ids["account"], {"primarycontactid@odata.bind": f"/contacts({ids['contact']})"})
    ids["billingcontract"] = s("w365_billingcontract", {"w365_name": "Fabrikam billing",
                                                        "w365_accountid@odata.bind": account})
    for key, number, total in (("invoice1", "INV-1001", Decimal("120.00")), ("invoice2", "INV-1002",
                                                                             Decimal("250.00"))):
        ids[key] = s("invoice", {
            "name": f"Fabrikam {number}", "invoicenumber": number, "customerid_account@odata.bind": account,
            "pricelevelid@odata.bind": pricelevel, "transactioncurrencyid@odata.bind": currency,
            "totalamount": total, "totallineitemamount": total, "totaltax": Decimal("0.00"),
            "w365_billingcontractid@odata.bind": f"/w365_billingcontracts({ids['billingcontract']})",
            "w365_amountpaid": Decimal("0.00"), "w365_balance": total})
    ids["product_license"] = s("product", {"name": "Cloud PC license", "productnumber": "W365-ENT",
                                           "price": Decimal("40.00"), "statecode": 0, "statuscode": 1})
    ids["product_setup"] = s("product", {"name": "Onboarding", "productnumber": "W365-SETUP",
                                         "price": Decimal("100.00"), "statecode": 0, "statuscode": 1})
    ids["order"] = s("salesorder", {
        "name": "Fabrikam Cloud PCs", "ordernumber": "ORD-2001", "customerid_account@odata.bind": account,
        "pricelevelid@odata.bind": pricelevel, "transactioncurrencyid@odata.bind": currency,
        "totallineitemamount": Decimal("220.00"), "totaltax": Decimal("17.60"), "totalamount": Decimal("237.60"),
        "w365_orderstatus": choice("salesorder", "w365_orderstatus", "Draft"), "w365_paymentdeclined": False})
    order = f"/salesorders({ids['order']})"
    for key, product, quantity, price, tax in (("orderline1", "product_license", 3, "40.00", "9.60"),
                                               ("orderline2", "product_setup", 1, "100.00", "8.00")):
        base = Decimal(price) * quantity
        ids[key] = s("salesorderdetail", {
            "salesorderid@odata.bind": order, "productid@odata.bind": f"/products({ids[product]})",
            "quantity": Decimal(quantity), "priceperunit": Decimal(price), "baseamount": base,
            "tax": Decimal(tax), "extendedamount": base + Decimal(tax)})
    ids["provider_manual"] = s("w365_provider", {"w365_name": "Manual provisioning",
                                                 "w365_type": choice("w365_provider", "w365_type", "Manual")})
    ids["provider_webhook"] = s("w365_provider", {"w365_name": "Demo webhook provider",
                                                  "w365_type": choice("w365_provider", "w365_type", "Webhook"),
                                                  "w365_endpointurl": WEBHOOK_PROVIDER_URL})
    ids["admin"] = standin.add_user("Alex Admin", roles=("System Administrator", "W365 Billing Manager"),
                                    email="alex@contoso.example")
    ids["salesperson"] = standin.add_user("Sam Sales", roles=("Salesperson",), email="sam@contoso.example")
    ids["app_user"] = standin.app_user_id
    return ids


def seed_history(standin: DataverseStandIn, ids: dict[str, str], *, days: int = 60, seed: int = 365) -> None:
    """Two months of payment history for the demo account, the same on every run (a seeded generator): approved,
    declined and failed charges, a few attempts still open, daily billing runs and invoices in dunning. What the
    dashboard's charts are rendered from (python -m installer.render); `seed_demo` alone stays as small as it was."""
    import datetime as dt
    import random

    from core import dates

    rng = random.Random(seed)
    s = standin.seed
    now = dates.parse(standin.store.now_iso())
    account = f"/accounts({ids['account']})"
    pt = "w365_paymenttransaction"

    def stamp(moment: dt.datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def attempt(number: int, moment: dt.datetime, outcome: str, amount: Decimal, reason: str | None = None,
                decline: str | None = None, source: str = "Autopay") -> None:
        s(pt, {"w365_name": f"Charge {amount} ({outcome})", "w365_refid": f"H{seed}-{number}",
               "w365_type": choice(pt, "w365_type", "Charge"), "w365_outcome": choice(pt, "w365_outcome", outcome),
               "w365_amount": amount, "w365_source": choice(pt, "w365_source", source), "w365_reasoncode": reason,
               "w365_declinetype": choice(pt, "w365_declinetype", decline) if decline else None,
               "w365_accountid@odata.bind": account, "createdon": stamp(moment),
               "statecode": 0 if outcome in ("Approved", "Pending", "Unknown", "Held For Review") else 1,
               "statuscode": 1 if outcome in ("Approved", "Pending", "Unknown", "Held For Review") else 2})

    declines = (("2", "Soft"), ("2", "Soft"), ("3", "Soft"), ("4", "Hard"), ("27", "Hard"), ("65", "Hard"),
                ("44", "Hard"), ("250", "Merchant"))
    number = 0
    for back in range(days, 0, -1):
        day = (now - dt.timedelta(days=back)).replace(hour=6, minute=0, second=0, microsecond=0)
        failed = recovered = Decimal("0.00")
        for i in range(rng.randint(3, 9)):
            number += 1
            amount = Decimal(rng.choice(("49.00", "99.00", "120.00", "240.00", "480.00")))
            roll = rng.random()
            moment = day + dt.timedelta(minutes=7 * i)
            if roll < 0.82:
                retry = rng.random() < 0.15
                attempt(number, moment, "Approved", amount, source="Retry" if retry else "Autopay")
                recovered += amount if retry else Decimal(0)
            elif roll < 0.97:
                reason, kind = rng.choice(declines)
                attempt(number, moment, "Declined", amount, reason, kind)
                failed += amount
            else:
                attempt(number, moment, "Error", amount, "E00027")
        s("w365_billingrun", {"w365_name": f"Billing run {day:%Y-%m-%d}", "w365_asof": stamp(day),
                              "w365_trigger": choice("w365_billingrun", "w365_trigger", "Timer"),
                              "w365_status": choice("w365_billingrun", "w365_status", "Completed"),
                              "w365_startedon": stamp(day), "w365_completedon": stamp(day + dt.timedelta(minutes=40)),
                              "w365_amountfailed": failed, "w365_amountrecovered": recovered})
    for outcome, count in (("Pending", 1), ("Unknown", 2), ("Held For Review", 2)):
        for _ in range(count):
            number += 1
            attempt(number, now - dt.timedelta(hours=rng.randint(1, 20)), outcome,
                    Decimal(rng.choice(("99.00", "240.00"))), source="Manual")
    statuses = ("Retrying",) * 7 + ("Awaiting Card",) * 5 + ("Exhausted",) * 2 + ("Recovered",) * 9 + \
        ("Needs Review",)
    for i, status in enumerate(statuses):
        s("invoice", {"name": f"Fabrikam INV-{3000 + i}", "invoicenumber": f"INV-{3000 + i}",
                      "customerid_account@odata.bind": account, "totalamount": Decimal("240.00"),
                      "w365_balance": Decimal("0.00") if status == "Recovered" else Decimal("240.00"),
                      "w365_dunningstatus": choice("invoice", "w365_dunningstatus", status),
                      "w365_failedattempts": rng.randint(1, 4)})


def point_demo_provider_at(standin: DataverseStandIn, base_url: str) -> None:
    """The Webhook providers that post to a dev host's demo provider follow the host's port (the saved local data may
    come from a run on another port); providers pointing anywhere else are left alone."""
    wanted = base_url.rstrip("/") + LOCAL_PROVIDER_PATH
    for row in standin.rows("w365_provider"):
        url = row.get("w365_endpointurl") or ""
        if url != wanted and url.startswith("http://127.0.0.1:") and url.endswith(LOCAL_PROVIDER_PATH):
            standin.update("w365_provider", row["w365_providerid"], {"w365_endpointurl": wanted})
