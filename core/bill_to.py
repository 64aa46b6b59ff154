"""The bill-to address, field by field, once: the `BillTo` attribute, its name in CONTRACT §2/§3 (the BillTo JSON
parameter, the customer pages' form and Authorize.Net's customerAddressType element, which share it), its
w365_paymentprofile column, the gateway's maximum length, and how a customer page asks for it.

The order is customerAddressType's sequence (the gateway's JSON is validated against the XSD's order). The ribbon's
Direct Entry dialog (webresources/w365_/scripts/directentry.js) and the payment profile form script
(paymentprofile.js) keep their own copies in JavaScript; tests/unit/test_bill_to_table.py checks they equal this one.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BillToField:
    attribute: str          # core.ports.BillTo
    name: str               # JSON / form / gateway element
    column: str             # w365_paymentprofile
    limit: int              # Authorize.Net customerAddressType facet (the column's max length too)
    label: str              # customer pages and the Direct Entry dialog
    autocomplete: str       # HTML autocomplete token
    required: bool          # the forms ask for it (the gateway itself requires none)


FIELDS = (
    BillToField("first_name", "firstName", "w365_billto_firstname", 50, "First name", "given-name", True),
    BillToField("last_name", "lastName", "w365_billto_lastname", 50, "Last name", "family-name", True),
    BillToField("company", "company", "w365_billto_company", 50, "Company", "organization", False),
    BillToField("address", "address", "w365_billto_address", 60, "Address", "street-address", True),
    BillToField("city", "city", "w365_billto_city", 40, "City", "address-level2", True),
    BillToField("state", "state", "w365_billto_state", 40, "State / region", "address-level1", False),
    BillToField("zip", "zip", "w365_billto_zip", 20, "ZIP / postal code", "postal-code", True),
    BillToField("country", "country", "w365_billto_country", 60, "Country", "country-name", True),
    BillToField("phone_number", "phoneNumber", "w365_billto_phone", 25, "Phone", "tel", False),
)
