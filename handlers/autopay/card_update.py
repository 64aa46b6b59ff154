"""A due invoice whose account has no usable card (CONTRACT §6 "Charge"): no gateway call, the invoice becomes
Awaiting Card (dunning's `no_usable_card` transition, which starts the schedule the email is re-sent on) and the
card-update email goes out (dunning's Card Update link to the primary contact, handlers/dunning/card_update.py).

This is the one place a billing run hands an invoice to dunning for want of a card.
"""
from __future__ import annotations

from core.configuration import BACKGROUND_MAX_AGE, configuration
from core.ports import Record
from core.services import Services
from handlers.charging import ledger
from handlers.dunning import card_update, states
from handlers.dunning.settlement import CONFIG_COLUMNS, final_action_ops


def on_no_usable_card(services: Services, invoice: Record, reason: str) -> str:
    """Returns what happened, for the run's skip record. `invoice` is the row the charge read (with its ETag)."""
    number = invoice.get("invoicenumber") or invoice.get("name") or invoice["invoiceid"]
    before = states.Dunning.of(invoice)
    config = configuration(services, columns=CONFIG_COLUMNS, max_age=BACKGROUND_MAX_AGE)
    schedule, _ = states.parse_schedule(config.get("w365_retryschedule"))
    step = states.no_usable_card(before, now=services.clock.now(), schedule=schedule)
    if step.changed(before):
        ops = ledger.invoice_column_ops(invoice, step.state.columns())
        if ops and states.FINAL_ACTION in step.actions and invoice.get("_customerid_value"):
            ops += final_action_ops(config, invoice["_customerid_value"], number, step.why)
        if ops:
            services.dataverse.batch(ops)
    done = f"No usable card ({reason.rstrip('.')}): invoice {number} is {step.state.status}"
    account_id = invoice.get("_customerid_value")
    if states.SEND_CARD_UPDATE not in step.actions or not account_id:
        return done + "."
    contract = invoice.get("w365_billingcontractid") or {}
    failed = (contract.get("w365_paymentprofileid") or {}).get("w365_paymentprofileid")
    sent = card_update.send_card_update(services, account_id=account_id, failed_profile_id=failed,
                                        why=f"Invoice {number}: autopay found no usable card ({reason.rstrip('.')}).")
    return f"{done}; {sent.message}"
