"""Dunning of one invoice as a pure function of (current state, event) (CONTRACT §6 "Declines", "Recovery").

The state is the invoice's four columns (`w365_dunningstatus`, `w365_failedattempts`, `w365_firstfailedon`,
`w365_nextretryon`); each event returns the next state and the side effects to carry out (a card-update email, the
final action). Nothing here reads or writes: settlement.py applies a step inside the payment's own changeset, so a
transition happens exactly once per settled transaction, whichever path settles it.

The retry schedule (`w365_retryschedule`, default `3,7,14,21`) counts days from the first failure: the n-th failed
automatic attempt is retried on `firstfailedon + schedule[n-1]`; when no day is left the invoice is Exhausted. An
Awaiting Card invoice uses the same days to re-send the card-update email, then becomes Exhausted too.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from core import dates, declines, footprint

NONE, RETRYING, AWAITING_CARD, EXHAUSTED, RECOVERED, NEEDS_REVIEW = (
    "None", "Retrying", "Awaiting Card", "Exhausted", "Recovered", "Needs Review")
DEFAULT_SCHEDULE = (3, 7, 14, 21)
MAX_RETRY_DAYS = 366
MAX_RETRIES = 12

# Side effects a step asks for.
SEND_CARD_UPDATE = "send card update"
FINAL_ACTION = "final action"


def status_value(label: str) -> int:
    return footprint.choice("invoice", "w365_dunningstatus", label)


def status_label(value: int | None) -> str:
    return footprint.label("invoice", "w365_dunningstatus", value) if value is not None else NONE


@dataclass(frozen=True)
class Dunning:
    status: str = NONE
    failed_attempts: int = 0
    first_failed_on: dt.datetime | None = None
    next_retry_on: dt.datetime | None = None

    @staticmethod
    def of(invoice: Mapping[str, Any]) -> "Dunning":
        """From an invoice row (empty columns, as on invoices made before dunning, read as None / 0)."""
        return Dunning(status_label(invoice.get("w365_dunningstatus")), int(invoice.get("w365_failedattempts") or 0),
                       dates.parse(invoice.get("w365_firstfailedon")), dates.parse(invoice.get("w365_nextretryon")))

    def columns(self) -> dict[str, Any]:
        return {"w365_dunningstatus": status_value(self.status), "w365_failedattempts": self.failed_attempts,
                "w365_firstfailedon": dates.iso(self.first_failed_on) if self.first_failed_on else None,
                "w365_nextretryon": dates.iso(self.next_retry_on) if self.next_retry_on else None}

    @property
    def in_dunning(self) -> bool:
        return self.status not in (NONE, RECOVERED)


@dataclass(frozen=True)
class Step:
    state: Dunning
    actions: tuple[str, ...] = ()
    why: str = ""                    # one sentence for the transaction's result and notes

    def changed(self, before: Dunning) -> bool:
        return self.state != before


def parse_schedule(text: str | None) -> tuple[tuple[int, ...], str]:
    """(days, problem). Empty means the default. An invalid schedule (not whole days, not increasing, out of range)
    falls back to the default and `problem` says why, for a note: a billing run must not stop for a typo."""
    if not (text or "").strip():
        return DEFAULT_SCHEDULE, ""
    parts = [p.strip() for p in str(text).split(",")]
    if not all(p.isdigit() for p in parts):
        return DEFAULT_SCHEDULE, f"'{text}' is not a comma-separated list of whole days"
    days = tuple(int(p) for p in parts)
    if len(days) > MAX_RETRIES:
        return DEFAULT_SCHEDULE, f"'{text}' has more than {MAX_RETRIES} retries"
    if days[0] < 1 or days[-1] > MAX_RETRY_DAYS or any(b <= a for a, b in zip(days, days[1:])):
        return DEFAULT_SCHEDULE, (f"'{text}' must count days after the first failure, increasing, from 1 to "
                                  f"{MAX_RETRY_DAYS}")
    return days, ""


def _day(first: dt.datetime, days: int) -> dt.datetime:
    """The retry moment `days` after the first failure: that UTC calendar day (dates compare as UTC days)."""
    start = first.astimezone(dt.timezone.utc)
    return dt.datetime(start.year, start.month, start.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=days)


def after_payment(state: Dunning, *, balance_after: Decimal, now: dt.datetime) -> Step:
    """An approved payment by any path. Only a zero balance ends dunning; a partial payment keeps state and schedule."""
    if balance_after > 0 or not state.in_dunning:
        return Step(state)
    return Step(dataclasses.replace(state, status=RECOVERED, next_retry_on=None),
                why="paid in full, so dunning ended (Recovered)")


def after_decline(state: Dunning, decline: declines.Decline, *, automatic: bool, now: dt.datetime,
                  schedule: tuple[int, ...]) -> Step:
    """A declined charge. Only automatic ones (Autopay, Retry) move dunning: a person's Charge does not."""
    if not automatic:
        return Step(state)
    if decline.kind == declines.MERCHANT:
        return Step(dataclasses.replace(state, status=NEEDS_REVIEW, next_retry_on=None),
                    why="the fraud filters declined it, so it waits for a person (Needs Review; no email, no retry)")
    failed = state.failed_attempts + 1
    first = state.first_failed_on or now
    counted = dataclasses.replace(state, failed_attempts=failed, first_failed_on=first)
    if failed > len(schedule):
        return _exhausted(counted, f"the last retry ({failed} failed attempts) was declined")
    next_on = _day(first, schedule[failed - 1])
    if decline.kind == declines.HARD:
        return Step(dataclasses.replace(counted, status=AWAITING_CARD, next_retry_on=next_on), (SEND_CARD_UPDATE,),
                    why=f"the customer was asked for a new card (Awaiting Card; asked again {next_on:%Y-%m-%d})")
    return Step(dataclasses.replace(counted, status=RETRYING, next_retry_on=next_on),
                why=f"retried on {next_on:%Y-%m-%d} (attempt {failed} of {len(schedule) + 1})")


def no_usable_card(state: Dunning, *, now: dt.datetime, schedule: tuple[int, ...]) -> Step:
    """An automatic collection found no card it can charge: Awaiting Card and the card-update email. The first
    failure starts the schedule (for the re-sends) even though nothing was declined."""
    if state.status == AWAITING_CARD:
        return Step(state)
    first = state.first_failed_on or now
    upcoming = _upcoming_day(first, now, schedule)
    if upcoming is None:
        return _exhausted(dataclasses.replace(state, first_failed_on=first), "no card and no retry day left")
    return Step(dataclasses.replace(state, status=AWAITING_CARD, first_failed_on=first, next_retry_on=upcoming),
                (SEND_CARD_UPDATE,), why="no usable card: the customer was asked for one (Awaiting Card)")


def schedule_day(state: Dunning, *, now: dt.datetime, schedule: tuple[int, ...]) -> Step:
    """The daily sweep for an Awaiting Card invoice: on its day, ask again; when no day is left, Exhausted."""
    if state.status != AWAITING_CARD or state.next_retry_on is None or state.next_retry_on.date() > now.date():
        return Step(state)
    upcoming = _upcoming_day(state.first_failed_on or now, now, schedule)
    if upcoming is None:
        return _exhausted(state, "no new card came before the last day of the schedule")
    return Step(dataclasses.replace(state, next_retry_on=upcoming), (SEND_CARD_UPDATE,),
                why=f"the card-update email was sent again (next {upcoming:%Y-%m-%d})")


def card_usable(state: Dunning, *, now: dt.datetime) -> Step:
    """A profile of the account became usable: Awaiting Card and Exhausted invoices are collected by the next run."""
    if state.status not in (AWAITING_CARD, EXHAUSTED):
        return Step(state)
    return Step(dataclasses.replace(state, status=RETRYING, next_retry_on=now),
                why="a usable card is on file, so the next billing run collects it (Retrying)")


def _upcoming_day(first: dt.datetime, now: dt.datetime, schedule: tuple[int, ...]) -> dt.datetime | None:
    return next((_day(first, d) for d in schedule if _day(first, d).date() > now.date()), None)


def _exhausted(state: Dunning, why: str) -> Step:
    return Step(dataclasses.replace(state, status=EXHAUSTED, next_retry_on=None), (FINAL_ACTION,),
                why=f"{why}: dunning is Exhausted")
