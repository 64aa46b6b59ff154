"""The monthly Account Updater import (timer `W365_ACCOUNT_UPDATER_SCHEDULE`; CONTRACT §6 "Account Updater").

The gateway's report (getAUJobSummary, then getAUJobDetails) lists the cards whose banks sent a new number or expiry
(auUpdate) or closed the account (auDelete). For each line that matches a profile row (customer and payment profile
ids): an update re-reads the card from the gateway (the report masks the expiry; the profile read unmasks it), writes
the new last four and expiry, and counts as a usable card (waiting invoices are retried); a closed account makes the
profile Sync Failed and inactive, marked so that no later Sync reactivates it. Each change gets a note on the account
(masked numbers only). Importing the same report again changes nothing.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from core import dates, footprint, odata
from core.errors import GatewayNotFound
from core.ports import AccountUpdaterChange
from core.services import Services
from handlers.dunning import card_update
from handlers.dunning.recovery import card_became_usable

log = logging.getLogger(__name__)

PROFILES = "w365_paymentprofiles"
CLOSED_SUFFIX = " (account closed)"          # the marker Sync respects (handlers/payment_profiles/profiles.py)
SYNCED = footprint.choice("w365_paymentprofile", "w365_syncstatus", "Synced")
SYNC_FAILED = footprint.choice("w365_paymentprofile", "w365_syncstatus", "Sync Failed")


def closed_by_account_updater(row: dict) -> bool:
    return row.get("w365_syncstatus") == SYNC_FAILED and (row.get("w365_name") or "").endswith(CLOSED_SUFFIX)


@dataclass(frozen=True)
class ImportResult:
    updated: int = 0
    closed: int = 0
    unchanged: int = 0
    unmatched: int = 0

    @property
    def message(self) -> str:
        return (f"Account Updater: {self.updated} card(s) updated, {self.closed} closed, {self.unchanged} already "
                f"up to date, {self.unmatched} not in Dynamics")


def months_to_import(now: dt.datetime) -> list[str]:
    """The previous month and this one: the report of a month is complete after it ends, and an import is
    idempotent, so reading both never misses a late line."""
    first = now.date().replace(day=1)
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    return [previous.strftime("%Y-%m"), first.strftime("%Y-%m")]


def import_reports(services: Services, months: list[str] | None = None) -> ImportResult:
    total = ImportResult()
    for month in months or months_to_import(services.clock.now()):
        result = import_month(services, month)
        total = ImportResult(*(a + b for a, b in zip(
            (total.updated, total.closed, total.unchanged, total.unmatched),
            (result.updated, result.closed, result.unchanged, result.unmatched))))
    log.info("dunning: %s", total.message)
    return total


def import_month(services: Services, month: str) -> ImportResult:
    if not any(services.gateway.account_updater_summary(month).values()):
        return ImportResult()
    counts = {"updated": 0, "closed": 0, "unchanged": 0, "unmatched": 0}
    usable_accounts: set[str] = set()
    for change in services.gateway.account_updater_details(month):
        rows = services.dataverse.query(PROFILES, filter=(
            f"w365_customerprofileid eq {odata.literal(change.customer_profile_id)} and "
            f"w365_paymentprofileidgateway eq {odata.literal(change.payment_profile_id)}"))
        if not rows:
            counts["unmatched"] += 1
            continue
        for row in rows:
            outcome = _close(services, row, change) if change.kind == "delete" else _update(services, row, change)
            counts[outcome] += 1
            if outcome == "updated" and row.get("statecode") == 0:
                usable_accounts.add(row["_w365_accountid_value"])
    for account_id in usable_accounts:
        card_became_usable(services, account_id)     # a renewal counts as a usable card
    return ImportResult(**counts)


def _update(services: Services, row: dict, change: AccountUpdaterChange) -> str:
    if closed_by_account_updater(row):
        return "unchanged"
    try:
        card = services.gateway.get_payment_profile(change.customer_profile_id, change.payment_profile_id)
    except GatewayNotFound:
        return "unmatched"
    expiration = card.expiration if card.expiration and "X" not in card.expiration else \
        (row.get("w365_expiration") or "")
    if (row.get("w365_cardlast4"), row.get("w365_expiration")) == (card.card_number_masked, expiration):
        return "unchanged"
    name = " ".join(filter(None, (card.card_type, card.card_number_masked)))
    services.dataverse.update(PROFILES, row["w365_paymentprofileid"], {
        "w365_name": name, "w365_cardlast4": card.card_number_masked[:20], "w365_expiration": expiration[:20],
        "w365_lastsyncedon": dates.iso(services.clock.now())}, etag=row.get("@odata.etag"))
    before = row.get("w365_name") or "the card"
    card_update.note(services, row["_w365_accountid_value"], "Account Updater: card updated",
                     f"The card's bank reported {change.reason or change.reason_code} ({change.reason_code}): "
                     f"{before} (expiry {row.get('w365_expiration') or 'unknown'}) is now {name} "
                     f"(expiry {expiration or 'unknown'}).")
    return "updated"


def _close(services: Services, row: dict, change: AccountUpdaterChange) -> str:
    if closed_by_account_updater(row):
        return "unchanged"
    name = (row.get("w365_name") or "Card")[:100 - len(CLOSED_SUFFIX)] + CLOSED_SUFFIX
    services.dataverse.update(PROFILES, row["w365_paymentprofileid"], {
        "w365_name": name, "w365_syncstatus": SYNC_FAILED, "w365_isdefault": False,
        "statecode": 1, "statuscode": 2}, etag=row.get("@odata.etag"))
    card_update.note(services, row["_w365_accountid_value"], "Account Updater: card account closed",
                     f"The card's bank reported {change.reason or change.reason_code} ({change.reason_code}) for "
                     f"{row.get('w365_name') or 'a card'}: it is now inactive and Sync Failed, and no Sync brings it "
                     "back. Ask the customer for a new card.")
    return "closed"
