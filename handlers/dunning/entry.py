"""The dunning capability's registrations: the queued emails of settlements (card update, receipt)."""
from __future__ import annotations

from typing import Any, Mapping

import azure.functions as func

from core.services import Services
from core.steps import Registry
from handlers.dunning import card_update, receipts, settlement

bp = func.Blueprint()


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
