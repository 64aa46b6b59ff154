"""handlers/dunning/states.py: the dunning transitions as a function of (state, event)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from core.declines import Decline
from handlers.dunning import states
from handlers.dunning.states import Dunning

T0 = dt.datetime(2026, 11, 21, 6, 0, tzinfo=dt.timezone.utc)
SOFT, HARD, MERCHANT = Decline("2", "Soft"), Decline("8", "Hard"), Decline("251", "Merchant")
SCHEDULE = states.DEFAULT_SCHEDULE


def _day(n):
    return dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc) + dt.timedelta(days=n)


def test_soft_declines_run_the_whole_schedule_then_exhaust():
    state, now = Dunning(), T0
    expected = [(1, 3), (2, 7), (3, 14), (4, 21)]
    for failed, day in expected:
        step = states.after_decline(state, SOFT, automatic=True, now=now, schedule=SCHEDULE)
        state = step.state
        assert (state.status, state.failed_attempts, state.next_retry_on) == ("Retrying", failed, _day(day))
        assert state.first_failed_on == T0 and step.actions == ()
        now = state.next_retry_on + dt.timedelta(hours=6)
    step = states.after_decline(state, SOFT, automatic=True, now=now, schedule=SCHEDULE)
    assert step.state.status == "Exhausted" and step.state.failed_attempts == 5 and step.state.next_retry_on is None
    assert step.actions == (states.FINAL_ACTION,)


def test_hard_decline_asks_for_a_card_and_resends_on_schedule_days_then_exhausts():
    step = states.after_decline(Dunning(), HARD, automatic=True, now=T0, schedule=SCHEDULE)
    assert step.state.status == "Awaiting Card" and step.actions == (states.SEND_CARD_UPDATE,)
    state = step.state
    assert states.schedule_day(state, now=_day(2), schedule=SCHEDULE).state == state      # not yet
    for day in (3, 7, 14):
        step = states.schedule_day(state, now=_day(day) + dt.timedelta(hours=6), schedule=SCHEDULE)
        assert step.actions == (states.SEND_CARD_UPDATE,) and step.state.status == "Awaiting Card"
        state = step.state
    assert state.next_retry_on == _day(21)
    step = states.schedule_day(state, now=_day(21) + dt.timedelta(hours=6), schedule=SCHEDULE)
    assert step.state.status == "Exhausted" and step.actions == (states.FINAL_ACTION,)


def test_merchant_decline_waits_for_a_person_without_email_or_count():
    step = states.after_decline(Dunning(), MERCHANT, automatic=True, now=T0, schedule=SCHEDULE)
    assert step.state == Dunning(status="Needs Review") and step.actions == ()


def test_a_person_s_declined_charge_does_not_move_dunning():
    state = Dunning("Retrying", 1, T0, _day(3))
    assert states.after_decline(state, HARD, automatic=False, now=T0, schedule=SCHEDULE).state == state


@pytest.mark.parametrize("status", ["Retrying", "Awaiting Card", "Exhausted", "Needs Review"])
def test_only_a_zero_balance_recovers(status):
    state = Dunning(status, 2, T0, _day(7))
    assert states.after_payment(state, balance_after=Decimal("0.01"), now=T0).state == state
    step = states.after_payment(state, balance_after=Decimal("0.00"), now=T0)
    assert step.state == Dunning("Recovered", 2, T0, None)


def test_a_payment_outside_dunning_changes_nothing():
    assert states.after_payment(Dunning(), balance_after=Decimal("0"), now=T0).state == Dunning()


@pytest.mark.parametrize("status,becomes", [("Awaiting Card", "Retrying"), ("Exhausted", "Retrying"),
                                            ("Retrying", "Retrying"), ("Needs Review", "Needs Review")])
def test_a_usable_card_makes_waiting_invoices_retry_now(status, becomes):
    state = Dunning(status, 1, T0, _day(3))
    step = states.card_usable(state, now=_day(1))
    assert step.state.status == becomes
    if status in ("Awaiting Card", "Exhausted"):
        assert step.state.next_retry_on == _day(1)


def test_no_card_starts_the_schedule_once():
    step = states.no_usable_card(Dunning(), now=T0, schedule=SCHEDULE)
    assert (step.state.status, step.state.next_retry_on, step.actions) == (
        "Awaiting Card", _day(3), (states.SEND_CARD_UPDATE,))
    assert states.no_usable_card(step.state, now=T0, schedule=SCHEDULE).actions == ()


@pytest.mark.parametrize("text,days,ok", [
    ("3,7,14,21", (3, 7, 14, 21), True), (" 1, 2 ", (1, 2), True), ("", states.DEFAULT_SCHEDULE, True),
    ("7,3", states.DEFAULT_SCHEDULE, False), ("3,x", states.DEFAULT_SCHEDULE, False),
    ("0,3", states.DEFAULT_SCHEDULE, False), ("3,3", states.DEFAULT_SCHEDULE, False),
    ("400", states.DEFAULT_SCHEDULE, False), ("-1", states.DEFAULT_SCHEDULE, False),
])
def test_schedule_parsing_falls_back_to_the_default_with_a_reason(text, days, ok):
    parsed, problem = states.parse_schedule(text)
    assert parsed == days and (problem == "") == ok


def test_columns_round_trip():
    state = Dunning("Retrying", 2, T0, _day(7))
    assert Dunning.of(state.columns()) == state
    assert Dunning.of({}) == Dunning()
