"""Recovery numbers: per run and per month of the first failure (handlers/dunning/recovery_numbers.py)."""
from __future__ import annotations

from decimal import Decimal

from core import footprint
from handlers.dunning import recovery_numbers as numbers


def _t(amount, outcome, source, created, kind="Charge"):
    return {"w365_amount": Decimal(amount), "createdon": created,
            "w365_type": footprint.choice("w365_paymenttransaction", "w365_type", kind),
            "w365_outcome": footprint.choice("w365_paymenttransaction", "w365_outcome", outcome),
            "w365_source": footprint.choice("w365_paymenttransaction", "w365_source", source)}


def _invoice(first, status, *transactions, total="100.00"):
    return {"invoiceid": first + status, "totalamount": Decimal(total), "w365_amountpaid": Decimal("0"),
            "w365_firstfailedon": first,
            "w365_dunningstatus": footprint.choice("invoice", "w365_dunningstatus", status),
            "w365_paymenttransaction_invoiceid": list(transactions)}


def test_a_month_counts_its_first_failures_rate_and_median():
    rows = [
        _invoice("2026-10-01T06:00:00Z", "Recovered", _t("100", "Declined", "Autopay", "2026-10-01T06:00:00Z"),
                 _t("100", "Approved", "Retry", "2026-10-04T06:00:00Z")),                       # 3 days
        _invoice("2026-10-10T06:00:00Z", "Recovered", _t("50", "Declined", "Autopay", "2026-10-10T06:00:00Z"),
                 _t("20", "Approved", "Manual", "2026-10-12T06:00:00Z"),
                 _t("30", "Approved", "Customer Page", "2026-10-17T06:00:00Z"), total="50"),    # 7 days
        _invoice("2026-10-20T06:00:00Z", "Exhausted", _t("80", "Declined", "Autopay", "2026-10-20T06:00:00Z")),
        _invoice("2026-10-25T06:00:00Z", "Recovered", _t("40", "Declined", "Autopay", "2026-10-25T06:00:00Z"),
                 _t("40", "Approved", "Retry", "2026-11-05T06:00:00Z"), total="40"),            # 11 days, in Oct
        _invoice("2026-11-02T06:00:00Z", "Retrying", _t("60", "Declined", "Autopay", "2026-11-02T06:00:00Z")),
    ]
    october, november = numbers.summarize(rows)
    assert (october.month, october.invoices_failed, october.invoices_recovered) == ("2026-10", 4, 3)
    assert (october.amount_failed, october.amount_recovered) == (Decimal("270.00"), Decimal("190.00"))
    assert october.recovery_rate == Decimal("75.0") and october.amount_rate == Decimal("70.4")
    assert october.median_days_to_recover == Decimal("7.0")
    assert (november.invoices_failed, november.invoices_recovered, november.median_days_to_recover) == (1, 0, None)
    assert november.recovery_rate == Decimal("0.0")


def test_run_amounts_are_declined_automatic_charges_and_approved_retries():
    failed, recovered = numbers.run_amounts([
        _t("10", "Declined", "Autopay", ""), _t("20", "Declined", "Retry", ""), _t("30", "Approved", "Retry", ""),
        _t("40", "Approved", "Autopay", ""), _t("50", "Declined", "Manual", ""), _t("60", "Error", "Retry", ""),
        _t("70", "Approved", "Retry", "", kind="Refund")])
    assert (failed, recovered) == (Decimal("30.00"), Decimal("30.00"))
