"""The one w365_configuration row: switches and defaults a maker sets (CONTRACT §4)."""
from __future__ import annotations

from typing import Any, Sequence

from core.services import Services

COLUMNS = ("w365_configurationid", "_w365_emailfromqueueid_value", "w365_linkexpiryhours",
           "w365_salescansendforapproval", "w365_approvalcanacceptpayment", "w365_enablecredithold")


def configuration(services: Services, columns: Sequence[str] = ()) -> dict[str, Any]:
    """The active configuration row, or {} when none exists (every switch then reads as off). `columns`: more
    columns to read besides COLUMNS."""
    select = COLUMNS + tuple(c for c in columns if c not in COLUMNS)
    rows = services.dataverse.query("w365_configurations", select=select, filter="statecode eq 0", top=1)
    return rows[0] if rows else {}
