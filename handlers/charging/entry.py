"""The charging capability's registrations: w365_ChargeInvoice and w365_RefundTransaction, the queued writes and
reconciliation checks, and the reconciler timer."""
from __future__ import annotations

import logging

import azure.functions as func

from app.composition import get_services
from core.steps import Registry
from handlers.charging import attempts, invoices, reconciler, refunds
from core import telemetry

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("charging_reconciler")
@bp.timer_trigger(arg_name="timer", schedule=reconciler.SWEEP_SCHEDULE, run_on_startup=False, use_monitor=True)
@telemetry.invocation
def charging_reconciler(timer: func.TimerRequest, context: func.Context = None) -> None:
    """Settle open attempts whose back-off step has come."""
    settled = reconciler.reconcile_due(get_services())
    if settled:
        log.info("charging reconciler: settled %d attempt(s)", settled)


def register(registry: Registry) -> None:
    registry.blueprint(bp)
    # Charge recognises a redelivered RequestId from the attempt rows it reads anyway (no operation read first).
    registry.step("w365_ChargeInvoice", "invoice", invoices.charge_invoice_step, replay_safe=True)
    # Refund likewise, from the earlier refunds of the charge it reads anyway.
    registry.step("w365_RefundTransaction", "w365_paymenttransaction", refunds.refund_transaction_step,
                  replay_safe=True)
    registry.work(attempts.RECORD_WORK, attempts.record_queued_result)
    registry.work(reconciler.RECONCILE_WORK, reconciler.reconcile_queued)
