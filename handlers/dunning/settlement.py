"""Dunning at settlement: the invoice's dunning columns (and the final action) ride in the same changeset that
records a charge's outcome (handlers/charging/attempts.commit), whichever path settles it: the billing run, the Charge
button, a customer page, the queued write, the reconciler or a gateway webhook. That changeset succeeds once per
attempt (the attempt row's ETag and the transition table refuse a second settlement), so the transitions and counts
are applied exactly once, keyed on the transaction. Emails (card update, receipt) are queued after the changeset went
through, with the transaction in their message id, so a redelivery is dropped by the queue's duplicate detection.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core import declines, footprint
from core.configuration import BACKGROUND_MAX_AGE, configuration
from core.ports import BatchOperation, ChargeOutcome, ChargeResult, Record
from core.services import Services
from handlers.charging import ledger
from handlers.dunning import states

log = logging.getLogger(__name__)

AUTOMATIC_SOURCES = ("Autopay", "Retry")
CARD_UPDATE_WORK = "dunning.card_update"
RECEIPT_WORK = "dunning.receipt"
CONFIG_COLUMNS = ("w365_retryschedule", "w365_dunningfinalaction", "w365_sendreceipts")
CREDIT_HOLD = footprint.choice("w365_configuration", "w365_dunningfinalaction", "Credit Hold")
TRANSACTIONS = "w365_paymenttransactions"


@dataclass
class DunningSettlement:
    ops: list[BatchOperation]
    queued: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)   # (kind, payload, message id)

    def send(self, services: Services) -> None:
        """After the changeset went through: the emails it asked for."""
        for kind, payload, message_id in self.queued:
            try:
                services.queue.send(kind, payload, message_id=message_id)
            except Exception:  # noqa: BLE001 - the money is recorded; the schedule-day sweep asks again
                log.exception("dunning: could not queue %s", message_id)


def is_automatic(source: str) -> bool:
    return source in AUTOMATIC_SOURCES


def with_dunning(services: Services, *, transaction_id: str, kind: str, source: str, profile_id: str,
                 amount: Decimal, invoice: Record | None, result: ChargeResult,
                 decline: declines.Decline | None, ops: list[BatchOperation]) -> DunningSettlement:
    """`ops` (the settlement changeset of one charge) with the dunning changes its outcome makes."""
    if kind != "Charge" or invoice is None or invoice.get("statecode") == ledger.CANCELED:
        return DunningSettlement(ops)
    state = states.Dunning.of(invoice)
    now = services.clock.now()
    automatic = is_automatic(source)
    number = invoice.get("invoicenumber") or invoice.get("name") or invoice["invoiceid"]
    account_id = invoice.get("_customerid_value")
    if result.outcome == ChargeOutcome.APPROVED:
        _, _, balance = ledger.totals(invoice)
        step = states.after_payment(state, balance_after=balance - amount, now=now)
        out = DunningSettlement(_merge_into_payment(ops, invoice, step.state) if step.changed(state) else ops)
        if automatic and _settings(services).get("w365_sendreceipts"):
            out.queued.append((RECEIPT_WORK, {"transaction_id": transaction_id},
                               f"{RECEIPT_WORK}:{transaction_id}"))
        return out
    if decline is None or not automatic:
        return DunningSettlement(ops)                # errors never count; a person's Charge does not move dunning
    config = _settings(services)
    schedule, problem = states.parse_schedule(config.get("w365_retryschedule"))
    step = states.after_decline(state, decline, automatic=True, now=now, schedule=schedule)
    if not step.changed(state):
        return DunningSettlement(ops)
    ops = _append_to_result(ops, f" Autopay: {step.why}.")
    ops = ops + ledger.invoice_column_ops(invoice, step.state.columns())
    if problem:
        ops.append(_invoice_note(invoice["invoiceid"], "Retry schedule not valid",
                                 f"The retry schedule {problem}; the default "
                                 f"{','.join(map(str, states.DEFAULT_SCHEDULE))} was used for invoice {number}."))
    out = DunningSettlement(ops)
    if states.FINAL_ACTION in step.actions and account_id:
        out.ops += final_action_ops(config, account_id, number, step.why)
    if states.SEND_CARD_UPDATE in step.actions and account_id:
        out.queued.append((CARD_UPDATE_WORK, {"account_id": account_id, "failed_profile_id": profile_id,
                                              "transaction_id": transaction_id, "invoice_number": number,
                                              "why": decline.why},
                           f"{CARD_UPDATE_WORK}:{transaction_id}"))
    return out


def _settings(services: Services) -> Record:
    """Automatic charges come by the thousand in a billing run: their settlements share a configuration read of
    the last minute (an approved autopay charge stays at 3 Dataverse requests)."""
    return configuration(services, columns=CONFIG_COLUMNS, max_age=BACKGROUND_MAX_AGE)


def final_action_ops(config: Record, account_id: str, number: str, why: str) -> list[BatchOperation]:
    """With the final action Credit Hold: the account goes on hold (the credit-hold rules then block its new
    subscriptions) with a note naming the invoice. A person lifts it, as any hold."""
    if config.get("w365_dunningfinalaction") != CREDIT_HOLD:
        return []
    return [BatchOperation.update("accounts", account_id, {"creditonhold": True}),
            BatchOperation.create("annotations", {
                "subject": f"Credit hold: invoice {number} could not be collected"[:500],
                "notetext": (f"Invoice {number}: {why}. The W365 dunning final action put this account on credit "
                             "hold. Lift the hold (Credit Hold = No) once the invoice is settled."),
                "objectid_account@odata.bind": f"/accounts({account_id})"})]


def _merge_into_payment(ops: list[BatchOperation], invoice: Record, state: states.Dunning) -> list[BatchOperation]:
    """Put the dunning columns in the payment's own invoice update (the one that writes the amount paid)."""
    path = f"{ledger.INVOICES}({invoice['invoiceid']})"
    merged = []
    done = False
    for op in ops:
        if not done and op.path == path and op.body and "w365_amountpaid" in op.body:
            op = dataclasses.replace(op, body={**op.body, **state.columns()})
            done = True
        merged.append(op)
    return merged


def _append_to_result(ops: list[BatchOperation], text: str) -> list[BatchOperation]:
    first = ops[0]
    if first.body is None or "w365_transactionresult" not in first.body:
        return ops
    body = {**first.body, "w365_transactionresult": (first.body["w365_transactionresult"] + text)[:2000]}
    return [dataclasses.replace(first, body=body)] + ops[1:]


def _invoice_note(invoice_id: str, subject: str, text: str) -> BatchOperation:
    return BatchOperation.create("annotations", {"subject": subject, "notetext": text,
                                                 "objectid_invoice@odata.bind": f"/invoices({invoice_id})"})
