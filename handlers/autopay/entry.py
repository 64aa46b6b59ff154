"""The autopay capability's registrations: w365_RunBilling on the configuration, the autopay switch (Update of
w365_configuration), the queued selection, charges and run checks, and the billing-run timer."""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Mapping

import azure.functions as func

from app.composition import get_services
from core import permissions
from core.context import PluginContext
from core.errors import BusinessRuleViolation, PlatformUnavailable
from core.services import Services
from core.steps import Outcome, Registry
from handlers.autopay import charge, dead_letters, runs, switch
from handlers.dunning import run_guard

bp = func.Blueprint()
log = logging.getLogger(__name__)
# The Functions host resolves %W365_BILLING_SCHEDULE% from the app setting (default 0 0 6 * * *, UTC).
SCHEDULE = "%W365_BILLING_SCHEDULE%"


@bp.function_name("billing_run_timer")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False, use_monitor=True)
def billing_run_timer(timer: func.TimerRequest) -> None:
    services = get_services()
    halted = run_guard.halted_by_errors(services)       # 3 runs in a row with errors: a person looks first
    if halted:
        log.warning("billing run timer: no run started: %s", halted)
        return
    try:
        outcome = runs.start_run(services, as_of=None, trigger="Timer")
    except BusinessRuleViolation as exc:
        log.info("billing run timer: no run started: %s", exc)
        return
    log.info("billing run timer: %s", outcome.message)


def run_billing_step(ctx: PluginContext, services: Services) -> Outcome:
    user = ctx.initiating_user_id
    if not user or not permissions.is_administrator(services, user):
        return Outcome.failed("Only administrators (System Administrator or W365 Billing Manager) can start a "
                              "billing run.")
    return runs.start_run(services, as_of=ctx.param("AsOf"), trigger="Manual", started_by=user)


def _select(payload: Mapping[str, Any], services: Services) -> None:
    wait = charge.within_budget(services, 1)
    try:
        if wait is None:
            runs.select_page(services, payload)
            return
    except PlatformUnavailable as exc:         # throttled: the page is read again later, never lost
        wait = _wait(exc)
    later = int(payload.get("deferrals") or 0) + 1
    services.queue.send(runs.SELECT_WORK, {**payload, "deferrals": later}, delay=wait,
                        message_id=f"{runs.SELECT_WORK}:{payload['run_id']}:{payload.get('page')}:d{later}")


def _charge(payload: Mapping[str, Any], services: Services) -> None:
    charge.charge_message(services, payload)


def _check(payload: Mapping[str, Any], services: Services) -> None:
    run_id, try_number = str(payload["run_id"]), int(payload.get("try") or 1)
    try:
        dead_letters.show_dead_letters(services)     # first, so this check counts what it records
    except Exception as exc:  # noqa: BLE001 - an unreadable dead-letter queue (or a busy Dataverse) must not stop it
        log.warning("billing run check: dead letters not read this time (%s)", type(exc).__name__)
    try:
        runs.check_run(services, run_id, try_number)
    except PlatformUnavailable as exc:
        runs.schedule_check(services, run_id, try_number + 1, delay=_wait(exc))


def _wait(exc: PlatformUnavailable) -> dt.timedelta:
    return dt.timedelta(seconds=exc.retry_after) if exc.retry_after else charge.THROTTLED_DELAY


def register(registry: Registry) -> None:
    registry.blueprint(bp)
    registry.step("w365_RunBilling", "w365_configuration", run_billing_step)
    registry.step("Update", "w365_configuration", switch.configuration_updated)
    registry.work(runs.SELECT_WORK, _select)
    registry.work(charge.CHARGE_WORK, _charge)
    registry.work(runs.CHECK_WORK, _check)
