"""Gateway errors never count toward dunning, but they must not go unnoticed either (CONTRACT §6 "Declines"): after
3 billing runs in a row closed Completed With Errors, the timer starts no more runs and a w365_operation row asks a
person to look. A person's Run Billing (w365_RunBilling) still starts one: pressing it is the acknowledgement, and a
run that completes cleanly ends the streak."""
from __future__ import annotations

from core import footprint
from core.errors import DuplicateRecord
from core.operations import OPERATIONS, status_value
from core.services import Services

RUNS = "w365_billingruns"
ERRORS_IN_A_ROW = 3
WITH_ERRORS = footprint.choice("w365_billingrun", "w365_status", "Completed With Errors")
RUNNING = footprint.choice("w365_billingrun", "w365_status", "Running")


def halted_by_errors(services: Services) -> str | None:
    """Why the timer must not start a run, or None. Writes (once per streak) the w365_operation row asking a
    person."""
    rows = services.dataverse.query(RUNS, select=("w365_billingrunid", "w365_name", "w365_status"),
                                    filter=f"w365_status ne {RUNNING}", orderby="w365_startedon desc",
                                    top=ERRORS_IN_A_ROW)
    if len(rows) < ERRORS_IN_A_ROW or any(r.get("w365_status") != WITH_ERRORS for r in rows):
        return None
    names = ", ".join(r.get("w365_name") or r["w365_billingrunid"] for r in reversed(rows))
    message = (f"The last {ERRORS_IN_A_ROW} billing runs ({names}) completed with errors, so the timer starts no "
               "more runs. Look at their skipped and errored invoices (Authorize.Net outages, credentials, "
               "Dataverse), fix the cause, then press Run Billing: a run without errors resumes the timer.")
    try:
        services.dataverse.create(OPERATIONS, {
            "w365_name": "Billing runs stopped: errors in a row",
            "w365_requestid": f"runs-halted:{rows[0]['w365_billingrunid']}",
            "w365_message": message, "w365_status": status_value(False), "w365_messagename": "w365_RunBilling",
            "w365_regardingtable": "w365_billingrun", "w365_regardingid": rows[0]["w365_billingrunid"]})
    except DuplicateRecord:
        pass                                     # asked already for this streak
    return message
