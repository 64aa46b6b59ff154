"""The terminal command types Name=Value the way the footprint does, so what it sends is what Dataverse would send."""
from decimal import Decimal

import pytest

from core import footprint
from standins.devhost.__main__ import _column_types, _pairs, _parameter_types


def test_custom_api_parameters_follow_their_declared_types():
    values = _pairs(["Amount=40.10", "RequestId=123", "SetAsDefault=true", 'BillTo={"zip":"98052"}'],
                    {**_parameter_types("w365_ChargeInvoice"), **_parameter_types("w365_AddPaymentProfile")})
    assert values == {"Amount": Decimal("40.10"), "RequestId": "123", "SetAsDefault": True,
                      "BillTo": '{"zip":"98052"}'}


def test_columns_follow_their_types_so_a_numeric_text_stays_text():
    account = footprint.table("account")
    assert _pairs(["w365_gatewaycustomerprofileid=500", "creditonhold=false"], _column_types(account)) == {
        "w365_gatewaycustomerprofileid": "500", "creditonhold": False}
    subscription = footprint.table("w365_subscription")
    assert _pairs(["w365_quantity=5"], _column_types(subscription))["w365_quantity"] == Decimal("5")


@pytest.mark.parametrize("item", ["Amount=forty", "SetAsDefault=yes", "Amount"])
def test_a_bad_value_stops_with_a_message(item):
    with pytest.raises(SystemExit):
        _pairs([item], _parameter_types("w365_ChargeInvoice") | _parameter_types("w365_AddPaymentProfile"))
