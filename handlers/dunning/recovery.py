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


def _waiting_filter() -> str:
    waiting = " or ".join(f"w365_dunningstatus eq {states.status_value(s)}" for s in WAITING)
    return f"statecode ne {ledger.CANCELED} and ({waiting})"


def waiting_invoices_expand() -> str:
    """The account's waiting invoices as an $expand of the account, so a caller that reads the account anyway (Sync)
    needs no query of its own: its answer goes to `card_became_usable(..., waiting=...)`."""
    return f"{WAITING_INVOICES}($select={','.join(ledger.INVOICE_COLUMNS)};$filter={_waiting_filter()})"


WAITING_INVOICES = "invoice_customer_accounts"


def card_became_usable(services: Services, account_id: str, *, waiting: list[dict] | None = None) -> int:
    """Returns how many invoices were made Retrying. One changeset per invoice, with its ETag: an invoice that changed
    meanwhile (a payment) is read again on the next call, never overwritten. `waiting`: the account's waiting
    invoices when the caller read them (`waiting_invoices_expand`)."""
    rows = waiting if waiting is not None else services.dataverse.query(
        ledger.INVOICES, select=ledger.INVOICE_COLUMNS,
        filter=f"_customerid_value eq {account_id} and {_waiting_filter()}")
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
