"""The credit-hold capability's registrations: the three table events of CONTRACT §3, the queued provisioning, and
the timer that provisions again what waited for provisioning to be configured."""
from __future__ import annotations

import logging

import azure.functions as func

from app.composition import get_services
from core import telemetry
from core.steps import Registry
from handlers.credit_hold import rules, steps

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("provisioning_sweep")
@bp.timer_trigger(arg_name="timer", schedule=rules.REPROVISION_SCHEDULE, run_on_startup=False, use_monitor=True)
@telemetry.invocation
def provisioning_sweep(timer: func.TimerRequest, context: func.Context = None) -> None:
    again = rules.reprovision_waiting(get_services())
    if again:
        log.info("provisioning sweep: %d subscription(s) provisioned again", again)


def register(registry: Registry) -> None:
    registry.blueprint(bp)
    registry.step("Update", "account", steps.account_updated)
    registry.step("Create", "w365_subscription", steps.subscription_created)
    registry.step("Update", "w365_configuration", steps.configuration_updated)
    registry.work(rules.PROVISION_WORK, steps.provision_work)
