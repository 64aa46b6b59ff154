"""refunds.validate_amount and refunds.decide are pure: the rules of a refund without Dataverse or the gateway."""
from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import BusinessRuleViolation, ConflictInProgress
from core.ports import TransactionDetails
from handlers.charging import attempts, refunds

CHARGE = {"w365_refid": "ABCDEF123456-1", "w365_amount": Decimal("120.00"), "w365_gatewaytransactionid": "600",
          "w365_type": attempts.type_value("Charge"), "w365_outcome": attempts.outcome_value("Approved"),
          "w365_paymentprofileid": {"w365_cardlast4": "XXXX1111"},
          "w365_invoiceid": {"transactioncurrencyid": {"currencysymbol": "£", "isocurrencycode": "GBP"}}}


def _details(status, account="XXXX0015"):
    return TransactionDetails("600", "ABCDEF123456-1", status, "1", Decimal("120.00"), Decimal("120.00"),
                              account_number=account)


def _refund(amount, outcome="Approved", statecode=1):
    return {"w365_amount": Decimal(amount), "w365_outcome": attempts.outcome_value(outcome), "statecode": statecode}


def test_the_amount_is_what_is_left_never_more_and_nothing_while_a_refund_is_open():
    assert refunds.validate_amount(CHARGE, [_refund("20.00"), _refund("5.00", "Declined")], None) == Decimal("100.00")
    with pytest.raises(BusinessRuleViolation, match=r"£100.01 GBP is more than .* \(£100.00 GBP of £120.00 GBP\)"):
        refunds.validate_amount(CHARGE, [_refund("20.00")], Decimal("100.01"))
    with pytest.raises(BusinessRuleViolation, match="already been refunded in full"):
        refunds.validate_amount(CHARGE, [_refund("120.00")], None)
    with pytest.raises(ConflictInProgress):
        refunds.validate_amount(CHARGE, [_refund("20.00", "Pending", 0)], Decimal("1.00"))


def test_unsettled_is_a_void_in_full_only_settled_a_refund_to_the_card_charged():
    void = refunds.decide(CHARGE, [], Decimal("120.00"), _details("capturedPendingSettlement"))
    assert (void.kind, void.ref_id, void.number) == (attempts.VOID, "ABCDEF123456-1R1", 1)
    with pytest.raises(BusinessRuleViolation, match=r"void all of it \(£120.00 GBP\)"):
        refunds.decide(CHARGE, [], Decimal("20.00"), _details("capturedPendingSettlement"))
    refund = refunds.decide(CHARGE, [_refund("20.00")], Decimal("20.00"), _details("settledSuccessfully"))
    assert (refund.kind, refund.ref_id, refund.card) == (attempts.REFUND, "ABCDEF123456-1R2", "XXXX0015")
    with pytest.raises(BusinessRuleViolation, match="cannot be refunded"):
        refunds.decide(CHARGE, [], Decimal("20.00"), _details("declined"))


def test_too_many_attempts_do_not_fit_the_gateways_ref_id():
    with pytest.raises(BusinessRuleViolation, match="too many refund attempts"):
        refunds.decide({**CHARGE, "w365_refid": "ABCDEF123456-1234"}, [_refund("0.01", "Error")] * 99,
                       Decimal("1.00"), _details("settledSuccessfully"))      # ABCDEF123456-1234R100: 21 characters
