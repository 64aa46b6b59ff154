"""Demo data for local mode and end-to-end tests: one customer with invoices, an order, providers and two people."""
from __future__ import annotations

from decimal import Decimal

from core.footprint import CONFIGURATION_DEFAULTS, choice
from standins.dataverse.http import DataverseStandIn

WEBHOOK_PROVIDER_URL = "http://127.0.0.1:7071/_local/provider"   # handlers/credit_hold/demo_provider.py


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
