"""Shared set-up of the dunning tests: an automatic charge through the charging core (as a billing run makes it),
the card's trigger zip at the simulator, and the stand-in's mailbox."""
from __future__ import annotations

from core import footprint
from core.ports import BillTo
from handlers.charging import attempts, invoices, ledger
from handlers.dunning import states


def automatic_charge(world, invoice: str = "invoice1") -> attempts.PaymentAttempt:
    """What a billing run does for one due invoice: its whole balance, as the service, source Autopay the first time
    and Retry after."""
    row = world.services.dataverse.retrieve(ledger.INVOICES, world.ids[invoice], select=ledger.INVOICE_COLUMNS,
                                            expand=invoices.INVOICE_EXPAND)
    transactions = row.get("w365_paymenttransaction_invoiceid") or []
    _, _, balance = ledger.totals(row)
    number = row.get("invoicenumber")
    return attempts.collect_payment(
        world.services, account_id=row["_customerid_value"], profile=invoices.usable_profile(row), amount=balance,
        ref_key=f"invoice:{row['invoiceid']}", attempt_number=attempts.next_attempt_number(transactions),
        invoice_number=number, invoice=row, description=f"Invoice {number}",
        source="Retry" if transactions else "Autopay")


def set_card_zip(world, profile_id: str, zip_code: str) -> None:
    """Move the stored card's bill-to zip (the simulator's decline triggers follow it)."""
    row = world.row("w365_paymentprofile", profile_id)
    world.services.gateway.update_payment_profile(row["w365_customerprofileid"], row["w365_paymentprofileidgateway"],
                                                  BillTo(first_name="Nancy", last_name="Davolio", zip=zip_code),
                                                  default=True)


def dunning(world, invoice: str = "invoice1") -> states.Dunning:
    return states.Dunning.of(world.row("invoice", world.ids[invoice]))


def emails(world, subject_has: str = "") -> list[dict]:
    return [e for e in world.rows("email") if subject_has in (e.get("subject") or "")]


def card_update_links(world) -> list[dict]:
    purpose = footprint.choice("w365_securelink", "w365_purpose", "Card Update")
    return world.rows("w365_securelink", w365_purpose=purpose)


def configure(world, **columns) -> None:
    world.standin.update("w365_configuration", world.ids["configuration"], columns)
