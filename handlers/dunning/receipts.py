"""Receipts of automatic charges (CONTRACT §6 "Receipts"): with `w365_sendreceipts`, each approved Autopay or Retry
charge emails the account's primary contact the invoice, the amount and the card (`Visa XXXX1111`, never more)."""
from __future__ import annotations

import logging
from typing import Any, Mapping

from core.configuration import configuration
from core.services import Services
from handlers.charging.ledger import money
from handlers.customer_pages import links
from core import odata
from core.money import CURRENCY_EXPAND, currency_of, format_money

log = logging.getLogger(__name__)

TRANSACTIONS = "w365_paymenttransactions"


def send_receipt(services: Services, transaction_id: str) -> str:
    """Once per transaction: the email's subject names the gateway transaction, and one already filed under the
    invoice with that subject means a redelivery."""
    row = services.dataverse.retrieve(TRANSACTIONS, transaction_id, select=(
        "w365_paymenttransactionid", "w365_amount", "w365_gatewaytransactionid", "_w365_invoiceid_value"),
        expand=f"w365_invoiceid($select=invoiceid,invoicenumber,name,w365_balance,_customerid_value;"
               f"$expand={CURRENCY_EXPAND}),"
               "w365_paymentprofileid($select=w365_name)")
    invoice = row.get("w365_invoiceid") or {}
    account_id = invoice.get("_customerid_value")
    if not invoice or not account_id:
        return "no invoice or account: no receipt"
    account = services.dataverse.retrieve("accounts", account_id, select=("accountid", "_primarycontactid_value"))
    contact_id = account.get("_primarycontactid_value")
    if not contact_id:
        return "the account has no primary contact: no receipt"
    number = invoice.get("invoicenumber") or invoice.get("name") or invoice["invoiceid"]
    subject = f"Receipt for invoice {number} (payment {row.get('w365_gatewaytransactionid') or transaction_id})"
    earlier = services.dataverse.query("emails", select=("activityid",), top=1, filter=(
        f"_regardingobjectid_value eq {invoice['invoiceid']} and {odata.eq('subject', subject)}"))
    if earlier:
        return "receipt already sent"
    queue_id = configuration(services).get("_w365_emailfromqueueid_value")
    if not queue_id:
        return "no queue to send emails from: no receipt"
    card = (row.get("w365_paymentprofileid") or {}).get("w365_name") or "your card on file"
    currency = currency_of(invoice)
    paid, balance = format_money(money(row.get("w365_amount")), currency), format_money(
        money(invoice.get("w365_balance")), currency)
    body = (f"<p>Thank you. We received your payment of {paid} for invoice {number}, charged to {card}.</p>"
            f"<p>Balance now: {balance}.</p>")
    email_id = links.create_email(services, queue_id=queue_id, contact_id=contact_id, subject=subject, body=body,
                                  regarding=("invoice", invoice["invoiceid"]))
    services.dataverse.execute("SendEmail", {"IssueSend": True}, bound_to=("emails", email_id))
    log.info("dunning: receipt %s sent for transaction %s", email_id, transaction_id)
    return "receipt sent"


def receipt_work(payload: Mapping[str, Any], services: Services) -> None:
    send_receipt(services, str(payload["transaction_id"]))
