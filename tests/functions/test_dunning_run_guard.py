"""Three billing runs in a row with errors stop the timer and ask a person (handlers/dunning/run_guard.py)."""
from __future__ import annotations

import datetime as dt

from core import dates, footprint
from handlers.dunning import run_guard


def _run(world, n, status):
    world.standin.seed("w365_billingrun", {
        "w365_name": f"Billing run #{n}", "w365_startedon": dates.iso(world.clock.now() + dt.timedelta(days=n)),
        "w365_status": footprint.choice("w365_billingrun", "w365_status", status)})


def test_three_runs_with_errors_in_a_row_halt_the_timer_once(world):
    _run(world, 1, "Completed With Errors")
    _run(world, 2, "Completed With Errors")
    assert run_guard.halted_by_errors(world.services) is None
    _run(world, 3, "Completed With Errors")
    message = run_guard.halted_by_errors(world.services)
    assert message and "Billing run #1, Billing run #2, Billing run #3" in message
    assert run_guard.halted_by_errors(world.services) == message
    (row,) = [o for o in world.rows("w365_operation") if o["w365_requestid"].startswith("runs-halted:")]
    assert row["w365_status"] == footprint.choice("w365_operation", "w365_status", "Failed")


def test_a_clean_run_ends_the_streak(world):
    for n, status in enumerate(("Completed With Errors", "Completed With Errors", "Completed",
                                "Completed With Errors", "Completed With Errors"), start=1):
        _run(world, n, status)
    assert run_guard.halted_by_errors(world.services) is None
    _run(world, 6, "Running")
    assert run_guard.halted_by_errors(world.services) is None
