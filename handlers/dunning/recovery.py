"""A usable card ends the wait (CONTRACT §6 "Recovery"): when a profile of an account becomes usable (a card update,
a Sync, Account Updater renewing the card), its Awaiting Card and Exhausted invoices become Retrying with
`w365_nextretryon` = now, so the next billing run collects them."""
from __future__ import annotations

import logging

from core.errors import ConcurrencyConflict
from core.services import Services
from handlers.charging import ledger
from handlers.dunning import states

log = logging.getLogger(__name__)

WAITING = (states.AWAITING_CARD, states.EXHAUSTED)


def card_became_usable(services: Services, account_id: str) -> int:
    """Returns how many invoices were made Retrying. One changeset per invoice, with its ETag: an invoice that changed
    meanwhile (a payment) is read again on the next call, never overwritten."""
    waiting = " or ".join(f"w365_dunningstatus eq {states.status_value(s)}" for s in WAITING)
    rows = services.dataverse.query(ledger.INVOICES, select=ledger.INVOICE_COLUMNS, filter=(
        f"_customerid_value eq {account_id} and statecode ne {ledger.CANCELED} and ({waiting})"))
    now, moved = services.clock.now(), 0
    for invoice in rows:
        before = states.Dunning.of(invoice)
        step = states.card_usable(before, now=now)
        if not step.changed(before):
            continue
        try:
            services.dataverse.batch(ledger.invoice_column_ops(invoice, step.state.columns()))
            moved += 1
        except ConcurrencyConflict:
            log.info("dunning: invoice %s changed meanwhile; left as it is", invoice["invoiceid"])
    if moved:
        log.info("dunning: %d invoice(s) of account %s are Retrying now (a usable card)", moved, account_id)
    return moved
