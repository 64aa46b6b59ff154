"""The attempt-state transition table (handlers/charging/outcomes.py) as data: which outcome may follow which."""
from __future__ import annotations

import pytest

from core import footprint
from core.ports import ChargeOutcome
from handlers.charging import outcomes
from handlers.charging.outcomes import APPROVED, DECLINED, ERROR, HELD, PENDING, UNKNOWN

EVERY = (PENDING, APPROVED, DECLINED, ERROR, HELD, UNKNOWN)


def test_every_outcome_of_the_column_is_in_the_table_and_nothing_else():
    assert set(outcomes.TRANSITIONS) == set(EVERY)
    for label in EVERY:
        footprint.choice("w365_paymenttransaction", "w365_outcome", label)          # raises for an unknown label


@pytest.mark.parametrize("current, allowed", [
    (PENDING, {APPROVED, DECLINED, ERROR, HELD, UNKNOWN}),
    (UNKNOWN, {APPROVED, DECLINED, ERROR, HELD}),          # the gateway's records decide; never back to Pending
    (HELD, {APPROVED, DECLINED}),                          # a review ends approved or declined, never Error
    (APPROVED, set()), (DECLINED, set()), (ERROR, set()),  # final: a refund is a row of its own
])
def test_allowed_transitions(current, allowed):
    for new in EVERY:
        assert outcomes.may_settle(current, new) is (new in allowed), (current, new)


def test_open_outcomes_are_those_with_a_transition_left_and_only_approved_is_refundable():
    assert set(outcomes.OPEN_OUTCOMES) == {PENDING, UNKNOWN, HELD}
    assert [outcomes.is_open(o) for o in EVERY] == [True, False, False, False, True, True]
    assert outcomes.REFUNDABLE == {APPROVED}


def test_every_gateway_answer_has_a_label():
    answers = [v for k, v in vars(ChargeOutcome).items() if k.isupper()]
    assert sorted(outcomes.label_of(a) for a in answers) == sorted({APPROVED, DECLINED, ERROR, HELD})
