"""The one w365_configuration row: switches and defaults a maker sets (CONTRACT §4)."""
from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from core.services import Services

COLUMNS = ("w365_configurationid", "_w365_emailfromqueueid_value", "w365_linkexpiryhours",
           "w365_salescansendforapproval", "w365_approvalcanacceptpayment", "w365_enablecredithold")
# How stale a configuration read by queued work at volume (a billing run's charges and their settlements) may be:
# a switch turned off stops the work within this time, without one configuration read per charge.
BACKGROUND_MAX_AGE = dt.timedelta(minutes=1)


def configuration(services: Services, columns: Sequence[str] = (), *,
                  max_age: dt.timedelta | None = None) -> dict[str, Any]:
    """The active configuration row, or {} when none exists (every switch then reads as off). `columns`: more
    columns to read besides COLUMNS. `max_age`: a read of the same columns by the same Services that recent is
    reused (per instance; queued work only, never a person's button)."""
    select = COLUMNS + tuple(c for c in columns if c not in COLUMNS)
    if max_age is not None:
        cache = services.__dict__.setdefault("_configuration_cache", {})
        now = services.clock.now()
        cached = cache.get(select)
        if cached is not None and now - cached[0] <= max_age:
            return cached[1]
    rows = services.dataverse.query("w365_configurations", select=select, filter="statecode eq 0", top=1)
    row = rows[0] if rows else {}
    if max_age is not None:
        cache[select] = (now, row)
    return row
