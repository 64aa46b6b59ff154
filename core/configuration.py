"""The one w365_configuration row: switches and defaults a maker sets (CONTRACT §4)."""
from __future__ import annotations

import datetime as dt
import weakref
from typing import Any, Sequence

from core.ports import Read
from core.services import Services

COLUMNS = ("w365_configurationid", "_w365_emailfromqueueid_value", "w365_linkexpiryhours",
           "w365_salescansendforapproval", "w365_approvalcanacceptpayment", "w365_enablecredithold")
# How stale a configuration read by queued work at volume (a billing run's charges and their settlements) may be:
# a switch turned off stops the work within this time, without one configuration read per charge.
BACKGROUND_MAX_AGE = dt.timedelta(minutes=1)


# The switches that gate money (CONTRACT §4, §6): whoever decides on them reads them fresh, never from a cache.
MONEY_SWITCHES = frozenset({"w365_autopayenabled", "w365_enablecredithold", "w365_approvalcanacceptpayment"})
# How long a worker reuses the rest of the row (email queue, link expiry, templates, who may send for approval):
# a maker's change shows within this time, and a busy worker does not read the row for every button and message.
SETTINGS_MAX_AGE = dt.timedelta(seconds=30)
# Per worker: keyed by the Dataverse client the worker's Services share (every copy a call makes of its Services
# keeps the same client), so the cache outlives one invocation but never crosses environments or tests.
_CACHES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def configuration(services: Services, columns: Sequence[str] = (), *,
                  max_age: dt.timedelta | None = None) -> dict[str, Any]:
    """The active configuration row, or {} when none exists (every switch then reads as off). `columns`: more
    columns to read besides COLUMNS. `max_age`: a read of the same columns by this worker that recent is reused;
    None reads now (the money switches: `money_switches`)."""
    select = _select(columns)
    cache = _cache(services)
    now = services.clock.now()
    if max_age is not None:
        cached = cache.get(select)
        if cached is not None and now - cached[0] <= max_age:
            return cached[1]
    rows = services.dataverse.query("w365_configurations", select=select, filter="statecode eq 0", top=1)
    row = rows[0] if rows else {}
    cache[select] = (now, row)
    return row


def settings_row(services: Services, columns: Sequence[str] = (), *,
                 prefetched: Sequence[Any] | None = None) -> dict[str, Any]:
    """The row for what does not gate money, reused by the worker for SETTINGS_MAX_AGE. Refuses to hand out a
    money switch from it. `prefetched`: the answers to `settings_reads` from the caller's read $batch."""
    if MONEY_SWITCHES & set(columns):
        raise ValueError("money switches are read fresh: use money_switches()")
    if prefetched:
        rows = prefetched[0]
        _cache(services)[_select(columns)] = (services.clock.now(), rows[0] if rows else {})
    row = configuration(services, columns, max_age=SETTINGS_MAX_AGE)
    return {k: v for k, v in row.items() if k not in MONEY_SWITCHES}


def settings_reads(services: Services, columns: Sequence[str] = ()) -> list[Read]:
    """What a caller's read $batch should carry so that `settings_row` needs no request of its own: nothing while
    the worker's copy is fresh, else the row's read."""
    cached = _cache(services).get(_select(columns))
    if cached is not None and services.clock.now() - cached[0] <= SETTINGS_MAX_AGE:
        return []
    return [Read.query("w365_configurations", select=_select(columns), filter="statecode eq 0", top=1)]


def _select(columns: Sequence[str]) -> tuple[str, ...]:
    return COLUMNS + tuple(c for c in columns if c not in COLUMNS)


def money_switches_read(columns: Sequence[str] = ()) -> Read:
    """The row, read now, as part of a caller's read $batch (the answer is a list of at most one row)."""
    return Read.query("w365_configurations", select=_select(columns), filter="statecode eq 0", top=1)


def money_switches(services: Services, columns: Sequence[str] = ()) -> dict[str, Any]:
    """The row read now: for decisions on the switches that gate money (and it refreshes the worker's copy)."""
    return configuration(services, columns)


def _cache(services: Services) -> dict:
    try:
        return _CACHES.setdefault(services.dataverse, {})
    except TypeError:                      # a client that cannot be weakly referenced: no cache
        return {}
