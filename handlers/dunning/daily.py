"""The daily dunning sweep (timer `W365_DUNNING_SCHEDULE`): Awaiting Card invoices on their schedule day get the
card-update email again, or become Exhausted (with the final action) when no day is left; and the expiry notices
(CONTRACT §6 "Expiry notices"). Turning autopay off, globally or on the contract, freezes both.
"""
from __future__ import annotations

import calendar
import datetime as dt
import logging
from dataclasses import dataclass

from core import dates, footprint
from core.configuration import configuration
from core.errors import ConcurrencyConflict
from core.services import Services
from handlers.charging import ledger
from handlers.dunning import card_update, settlement, states

log = logging.getLogger(__name__)

PROFILES = "w365_paymentprofiles"
SYNCED = footprint.choice("w365_paymentprofile", "w365_syncstatus", "Synced")
DAILY_COLUMNS = settlement.CONFIG_COLUMNS + ("w365_autopayenabled", "w365_expirynoticedays")
DEFAULT_NOTICE_DAYS = 30


@dataclass(frozen=True)
class DailyResult:
    resent: int = 0
    exhausted: int = 0
    notices: int = 0

    @property
    def message(self) -> str:
        return (f"{self.resent} card-update email(s) sent again, {self.exhausted} invoice(s) Exhausted, "
                f"{self.notices} expiry notice(s) sent")


def run_daily(services: Services) -> DailyResult:
    config = configuration(services, columns=DAILY_COLUMNS)
    if not config.get("w365_autopayenabled"):
        return DailyResult()                     # autopay off freezes dunning: no email, no final action
    resent, exhausted = advance_awaiting_card(services, config)
    return DailyResult(resent, exhausted, send_expiry_notices(services, config))


def advance_awaiting_card(services: Services, config: dict) -> tuple[int, int]:
    now = services.clock.now()
    end_of_today = dt.datetime(now.year, now.month, now.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    schedule, _ = states.parse_schedule(config.get("w365_retryschedule"))
    rows = services.dataverse.query(ledger.INVOICES, select=ledger.INVOICE_COLUMNS, filter=(
        f"w365_dunningstatus eq {states.status_value(states.AWAITING_CARD)} and statecode ne {ledger.CANCELED} "
        f"and w365_nextretryon lt {dates.iso(end_of_today)}"),
        expand="w365_billingcontractid($select=w365_autopay),"
               "w365_paymenttransaction_invoiceid($select=createdon,_w365_paymentprofileid_value)")
    resent = exhausted = 0
    for invoice in rows:
        if not (invoice.get("w365_billingcontractid") or {}).get("w365_autopay"):
            continue                             # autopay off on the contract: frozen
        before = states.Dunning.of(invoice)
        step = states.schedule_day(before, now=now, schedule=schedule)
        if not step.changed(before):
            continue
        number = invoice.get("invoicenumber") or invoice.get("name") or invoice["invoiceid"]
        account_id = invoice.get("_customerid_value")
        ops = ledger.invoice_column_ops(invoice, step.state.columns())
        if states.FINAL_ACTION in step.actions and account_id:
            ops += settlement.final_action_ops(config, account_id, number, step.why)
        try:
            services.dataverse.batch(ops)        # the invoice's ETag: a payment meanwhile wins, nothing is sent
        except ConcurrencyConflict:
            continue
        if states.SEND_CARD_UPDATE in step.actions and account_id:
            card_update.send_card_update(services, account_id=account_id, failed_profile_id=_last_card(invoice),
                                         why=f"Invoice {number} still waits for a new card.")
            resent += 1
        if step.state.status == states.EXHAUSTED:
            exhausted += 1
    return resent, exhausted


def _last_card(invoice: dict) -> str | None:
    attempts = sorted(invoice.get("w365_paymenttransaction_invoiceid") or [], key=lambda t: t.get("createdon") or "")
    return attempts[-1].get("_w365_paymentprofileid_value") if attempts else None


# --- expiry notices ---------------------------------------------------------------------------------------------------

def expires_on(expiration: str | None) -> dt.date | None:
    """The last day of a `YYYY-MM` expiry (a card is good through the end of its month); None when masked."""
    text = (expiration or "").strip()
    if len(text) != 7 or text[4] != "-" or not (text[:4].isdigit() and text[5:].isdigit()):
        return None
    year, month = int(text[:4]), int(text[5:])
    if not 1 <= month <= 12:
        return None
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def notice_due(profile: dict, today: dt.date, days: int) -> bool:
    """Within `days` of its expiry, and no notice sent since this expiry's window opened (one per expiry: a renewed
    card has a later window, so it can get its own notice)."""
    last_day = expires_on(profile.get("w365_expiration"))
    if last_day is None or days <= 0:
        return False
    window_opens = last_day - dt.timedelta(days=days)
    if today < window_opens:
        return False
    sent = dates.parse(profile.get("w365_expirynoticeon"))
    return sent is None or sent.date() < window_opens


def send_expiry_notices(services: Services, config: dict) -> int:
    days = config.get("w365_expirynoticedays")
    days = DEFAULT_NOTICE_DAYS if days is None else int(days)
    if days <= 0:
        return 0
    today = services.clock.now().date()
    sent = 0
    for profile in _profiles_autopay_uses(services):
        if not notice_due(profile, today, days):
            continue
        try:                                     # claim first (If-Match): two sweeps never both send
            services.dataverse.update(PROFILES, profile["w365_paymentprofileid"],
                                      {"w365_expirynoticeon": dates.iso(services.clock.now())},
                                      etag=profile.get("@odata.etag"))
        except ConcurrencyConflict:
            continue
        last_day = expires_on(profile["w365_expiration"])
        result = card_update.send_card_update(
            services, account_id=profile["_w365_accountid_value"], failed_profile_id=profile["w365_paymentprofileid"],
            why=f"The card {profile.get('w365_name') or ''} expires on {last_day:%Y-%m-%d}.")
        sent += int(result.sent)
    return sent


def _profiles_autopay_uses(services: Services) -> list[dict]:
    """Active, synced profiles named by an active autopay contract, or the default of an account whose autopay
    contract names none (or an unusable one)."""
    contracts = services.dataverse.query("w365_billingcontracts", select=(
        "w365_billingcontractid", "_w365_accountid_value", "_w365_paymentprofileid_value"),
        filter="w365_autopay eq true and statecode eq 0",
        expand="w365_paymentprofileid($select=w365_paymentprofileid,statecode,w365_syncstatus)")
    named, default_of = set(), set()
    for contract in contracts:
        profile = contract.get("w365_paymentprofileid")
        if profile and profile.get("statecode") == 0 and profile.get("w365_syncstatus") == SYNCED:
            named.add(profile["w365_paymentprofileid"])
        elif contract.get("_w365_accountid_value"):
            default_of.add(contract["_w365_accountid_value"])
    rows = services.dataverse.query(PROFILES, select=(
        "w365_paymentprofileid", "w365_name", "w365_expiration", "w365_expirynoticeon", "_w365_accountid_value",
        "w365_isdefault"), filter=f"statecode eq 0 and w365_syncstatus eq {SYNCED}")
    return [p for p in rows if p["w365_paymentprofileid"] in named
            or (p.get("w365_isdefault") and p.get("_w365_accountid_value") in default_of)]
