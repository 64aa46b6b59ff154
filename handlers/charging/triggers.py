"""The charging Blueprint: the reconciler timer. Importing it registers the charging steps and queued work."""
from __future__ import annotations

import logging

import azure.functions as func

from core.composition import get_services

bp = func.Blueprint()
log = logging.getLogger(__name__)

from handlers.charging import invoices, reconciler, refunds  # noqa: E402,F401 - registers @step and @work_handler


@bp.function_name("charging_reconciler")
@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False, use_monitor=True)
def charging_reconciler(timer: func.TimerRequest) -> None:
    """Every 5 minutes (reconciler.SWEEP_EVERY): settle open attempts whose back-off step has come."""
    settled = reconciler.reconcile_due(get_services())
    if settled:
        log.info("charging reconciler: settled %d attempt(s)", settled)
