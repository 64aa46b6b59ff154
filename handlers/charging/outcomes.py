"""The attempt's outcome (w365_paymenttransaction.w365_outcome) and the one table of the changes allowed to it.

Every writer that settles an attempt asks this table first: the charging core when it records the gateway's answer
(attempts.commit), the reconciler (reconciler.reconcile_attempt), the gateway webhooks (transaction_events: "already
recorded" is "no transition left") and refunds (only an approved charge is refunded, and an open refund blocks the
next). So a late or repeated answer (a queued write after the reconciler, a webhook after the button) can never turn
a final outcome into another one.

- Pending: the row exists and the gateway was (or is being) called. Anything can follow.
- Unknown: the answer was lost; the gateway's own records decide (never a resend). Held is possible when the charge
  turns out to be in fraud review.
- Held For Review: the gateway made the transaction and a person reviews it: it ends approved or declined. A held
  charge is never closed as Error by a timeout (Error frees the invoice for another charge while this one may still
  be approved): if the gateway stops showing it, it stays open and a person is asked to look.
- Approved, Declined, Error: final. An approved charge's money goes back only through a Refund or Void row of its own
  (refund bookkeeping), never by changing the charge's outcome.
"""
from __future__ import annotations

from typing import Mapping

from core.ports import ChargeOutcome

PENDING, APPROVED, DECLINED, ERROR, HELD, UNKNOWN = (
    "Pending", "Approved", "Declined", "Error", "Held For Review", "Unknown")

TRANSITIONS: Mapping[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, DECLINED, ERROR, HELD, UNKNOWN}),
    UNKNOWN: frozenset({APPROVED, DECLINED, ERROR, HELD}),
    HELD: frozenset({APPROVED, DECLINED}),
    APPROVED: frozenset(),
    DECLINED: frozenset(),
    ERROR: frozenset(),
}
# Open = some transition is left: a charge "in progress", no second one until it is settled.
OPEN_OUTCOMES = tuple(outcome for outcome, later in TRANSITIONS.items() if later)
# The only outcome a Refund or Void can be booked against.
REFUNDABLE = frozenset({APPROVED})

_OF_RESULT = {ChargeOutcome.APPROVED: APPROVED, ChargeOutcome.DECLINED: DECLINED, ChargeOutcome.ERROR: ERROR,
              ChargeOutcome.HELD_FOR_REVIEW: HELD}


def label_of(result: ChargeOutcome) -> str:
    """The outcome label a gateway answer settles an attempt to."""
    return _OF_RESULT[result]


def is_open(outcome: str) -> bool:
    return bool(TRANSITIONS[outcome])


def may_settle(current: str, new: str) -> bool:
    """Whether an attempt that is `current` may become `new` (staying the same is not a transition)."""
    return new in TRANSITIONS[current]
