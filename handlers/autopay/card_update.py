"""A due invoice whose account has no usable card (CONTRACT §6 "Charge"): no gateway call, the invoice becomes
Awaiting Card and the card-update email goes to the account's primary contact through the Profile Request path.

This is the one place a run hands an invoice to dunning for want of a card; dunning (issue 14) builds on it (the
Card Update link, the failed card, re-sending on schedule days).
"""
from __future__ import annotations

import logging

from core import footprint
from core.configuration import configuration
from core.errors import BusinessRuleViolation
from core.ports import Record
from core.services import Services
from handlers.charging import ledger
from handlers.payment_profiles.profile_request import PLACEHOLDER, send_profile_request

log = logging.getLogger(__name__)

AWAITING_CARD = footprint.choice("invoice", "w365_dunningstatus", "Awaiting Card")
DEFAULT_SUBJECT = "Please update your payment card"
DEFAULT_BODY = ("We could not collect your invoice {Invoice} automatically because there is no card on file we can "
                f"charge. Please add a card here: {PLACEHOLDER}")


def on_no_usable_card(services: Services, invoice: Record, reason: str) -> str:
    """Sets the invoice Awaiting Card and emails the card-update request. Returns what happened, for the run's skip
    record. `invoice` is the row the charge read (with its ETag and `customerid_account` expanded with
    `_primarycontactid_value`)."""
    ops = ledger.invoice_column_ops(invoice, {"w365_dunningstatus": AWAITING_CARD})
    if ops:
        services.dataverse.batch(ops)
    number = invoice.get("invoicenumber") or invoice.get("name") or invoice["invoiceid"]
    account = invoice.get("customerid_account") or {}
    account_id = account.get("accountid") or invoice.get("_customerid_value")
    contact_id = account.get("_primarycontactid_value")
    done = f"No usable card ({reason.rstrip('.')}): invoice {number} is Awaiting Card"
    if not account_id:
        return done + "; its customer is not an account, so no card-update email was sent."
    if not contact_id:
        _note(services, account_id, f"Invoice {number}: no usable card and no primary contact",
              f"Autopay could not collect invoice {number}: {reason} The account has no primary contact, so no "
              "card-update email was sent; add a card or a primary contact.")
        return done + "; the account has no primary contact, so a note asks a person to add a card."
    settings = configuration(services, columns=("w365_cardupdatesubject", "w365_cardupdatebody"))
    subject = settings.get("w365_cardupdatesubject") or DEFAULT_SUBJECT
    body = (settings.get("w365_cardupdatebody") or DEFAULT_BODY).replace("{Invoice}", str(number))
    try:
        sent, _ = send_profile_request(services, account_id=account_id, contact_id=contact_id, subject=subject,
                                       body=body)
    except BusinessRuleViolation as exc:
        log.warning("autopay: the card-update email for invoice %s was not sent: %s", number, exc)
        return done + f"; the card-update email was not sent: {exc}"
    return f"{done}; card-update email sent. {sent}"


def _note(services: Services, account_id: str, subject: str, text: str) -> None:
    services.dataverse.create("annotations", {"subject": subject[:500], "notetext": text,
                                              "objectid_account@odata.bind": f"/accounts({account_id})"})
