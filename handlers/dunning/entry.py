"""The dunning capability's registrations: the daily sweep and the monthly Account Updater import (timers whose
schedules are the app settings W365_DUNNING_SCHEDULE and W365_ACCOUNT_UPDATER_SCHEDULE), and the queued emails of
settlements (card update, receipt)."""
from __future__ import annotations

import logging
from typing import Any, Mapping

import azure.functions as func

from app.composition import get_services
from core.services import Services
from core.steps import Registry
from handlers.dunning import account_updater, card_update, daily, receipts, settlement

bp = func.Blueprint()
log = logging.getLogger(__name__)
# The Functions host resolves %NAME% from the app setting (defaults in core/settings.py DEFAULTS, UTC).
DAILY_SCHEDULE = "%W365_DUNNING_SCHEDULE%"
ACCOUNT_UPDATER_SCHEDULE = "%W365_ACCOUNT_UPDATER_SCHEDULE%"


@bp.function_name("dunning_daily")
@bp.timer_trigger(arg_name="timer", schedule=DAILY_SCHEDULE, run_on_startup=False, use_monitor=True)
def dunning_daily(timer: func.TimerRequest) -> None:
    log.info("dunning daily: %s", daily.run_daily(get_services()).message)


@bp.function_name("account_updater_import")
@bp.timer_trigger(arg_name="timer", schedule=ACCOUNT_UPDATER_SCHEDULE, run_on_startup=False, use_monitor=True)
def account_updater_import(timer: func.TimerRequest) -> None:
    log.info("account updater: %s", account_updater.import_reports(get_services()).message)


def _card_update(payload: Mapping[str, Any], services: Services) -> None:
    card_update.send_card_update(services, account_id=str(payload["account_id"]),
                                 failed_profile_id=payload.get("failed_profile_id") or None,
                                 why=f"Invoice {payload.get('invoice_number')}: the card was declined "
                                     f"({payload.get('why')}).",
                                 transaction_id=payload.get("transaction_id"))


def register(registry: Registry) -> None:
    registry.blueprint(bp)
    registry.work(settlement.CARD_UPDATE_WORK, _card_update)
    registry.work(settlement.RECEIPT_WORK, receipts.receipt_work)
