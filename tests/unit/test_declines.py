"""core.declines: which answers are declines (CONTRACT §6) and of which class."""
from __future__ import annotations

import pytest

from core import declines


@pytest.mark.parametrize("response_code,reason,kind", [
    ("2", "2", "Soft"), ("2", "3", "Soft"), ("2", "", "Soft"),
    ("2", "4", "Hard"), ("2", "27", "Hard"), ("2", "44", "Hard"), ("2", "45", "Hard"), ("2", "65", "Hard"),
    ("3", "6", "Hard"), ("3", "7", "Hard"), ("3", "8", "Hard"), (3, 8, "Hard"),
    ("3", "17", "Soft"), ("3", "78", "Soft"),
    ("2", "250", "Merchant"), ("2", "251", "Merchant"), ("2", "254", "Merchant"),
])
def test_declines_by_class(response_code, reason, kind):
    decline = declines.classify(response_code, reason)
    assert decline is not None and decline.kind == kind and decline.reason_code == str(reason)


@pytest.mark.parametrize("response_code,reason", [
    ("1", "1"), ("4", "252"), ("3", "11"), ("3", "19"), ("3", "57"), ("3", "13"), ("3", ""), ("", ""), (None, None),
])
def test_errors_approvals_and_holds_are_not_declines(response_code, reason):
    assert declines.classify(response_code, reason) is None


def test_advice_tells_an_admin_what_to_do_without_card_data():
    assert "has expired" in declines.classify("3", "8").advice and "new card" in declines.classify("3", "8").advice
    assert "fraud" in declines.classify("2", "251").advice and "not contacted" in declines.classify("2", "251").advice
    assert "later" in declines.classify("2", "2").advice
