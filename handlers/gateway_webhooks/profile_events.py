"""Payment profile events: keep Dataverse's w365_paymentprofile rows in step with the gateway, through the payment
profiles capability's own sync (handlers/payment_profiles/profiles.py), never a second one.

- created / updated, row known: refresh it from the gateway (`sync_profile`, without reactivating a profile a person
  deactivated). A Pending Sync row is left alone: a new profile becomes usable only when a person Syncs it.
- created / updated, no row: if the customer profile is an account's, import it as Sync all does (`sync_account`),
  after IMPORT_DELAY: a card added from Dynamics fires this webhook before Dynamics has written its own row, and an
  import in between would make a second row for the same card.
- deleted: confirm with the gateway, then Sync Failed + Inactive (`sync_profile` then `deactivate`), with a message
  naming the billing contracts that still use it.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any, Mapping

from core import footprint, odata
from core.errors import GatewayNotFound
from core.ports import Record
from core.services import Services
from core.steps import Outcome
from handlers.payment_profiles import profiles

if TYPE_CHECKING:
    from handlers.gateway_webhooks.notifications import Notification

log = logging.getLogger(__name__)

IMPORT_WORK = "gateway_webhooks.import_profile"
IMPORT_DELAY = dt.timedelta(minutes=2)
PENDING_SYNC = footprint.choice("w365_paymentprofile", "w365_syncstatus", "Pending Sync")


def created(services: Services, note: "Notification") -> Outcome:
    return _refresh_or_import(services, note)


def updated(services: Services, note: "Notification") -> Outcome:
    return _refresh_or_import(services, note)


def deleted(services: Services, note: "Notification") -> Outcome:
    rows = _rows(services, note.entity_id)
    if not rows:
        return Outcome.succeeded(f"No payment profile in Dynamics has Authorize.Net id {note.entity_id}; "
                                 "nothing to do.")
    messages = []
    for row in rows:
        still_there, message = profiles.sync_profile(services, row["w365_paymentprofileid"], reactivate=False)
        if still_there:                        # the gateway has it after all: the refresh is the truth
            messages.append(f"Authorize.Net still has this card. {message}")
            continue
        messages.append("Deleted at Authorize.Net: marked Sync Failed. "
                        + profiles.deactivate(services, row["w365_paymentprofileid"]))
    return _about(rows[0], " ".join(messages))


def _refresh_or_import(services: Services, note: "Notification") -> Outcome:
    rows = _rows(services, note.entity_id)
    if rows:
        waiting = [r for r in rows if r.get("w365_syncstatus") == PENDING_SYNC]
        messages = [profiles.sync_profile(services, r["w365_paymentprofileid"], reactivate=False)[1]
                    for r in rows if r not in waiting]
        if waiting:
            messages.append("A payment profile waiting for its Sync is left as it is.")
        return _about(rows[0], " ".join(messages))
    if not note.customer_profile_id:
        return Outcome.succeeded(f"Payment profile {note.entity_id}: no customer profile in the notification and no "
                                 "row in Dynamics; nothing imported.")
    try:
        services.gateway.get_payment_profile(note.customer_profile_id, note.entity_id)
    except GatewayNotFound:
        return Outcome.succeeded(f"Authorize.Net no longer has payment profile {note.entity_id}; nothing imported.")
    account_id = _account_of(services, note.customer_profile_id)
    if not account_id:
        return Outcome.succeeded(f"Customer profile {note.customer_profile_id} belongs to no account in Dynamics; "
                                 f"payment profile {note.entity_id} not imported.")
    services.queue.send(IMPORT_WORK, {"account_id": account_id, "payment_profile_id": note.entity_id},
                        message_id=f"{IMPORT_WORK}:{note.entity_id}", delay=IMPORT_DELAY)
    return Outcome.succeeded(f"Payment profile {note.entity_id} is imported into the account in "
                             f"{int(IMPORT_DELAY.total_seconds() // 60)} minutes (Sync all).",
                             regarding_table="account", regarding_id=account_id)


def import_profiles(payload: Mapping[str, Any], services: Services) -> None:
    """Sync all of the account: imports the new card unless Dynamics wrote its row meanwhile (then refreshes it)."""
    ok, message = profiles.sync_account(services, str(payload["account_id"]), import_only=True)
    log.info("gateway webhook: imported payment profile %s: %s", payload.get("payment_profile_id"), message)


def _rows(services: Services, payment_profile_id: str) -> list[Record]:
    return services.dataverse.query(profiles.PROFILES, select=("w365_paymentprofileid", "_w365_accountid_value",
                                                               "w365_syncstatus"),
                                    filter=odata.eq("w365_paymentprofileidgateway", payment_profile_id))


def _account_of(services: Services, customer_profile_id: str) -> str:
    rows = services.dataverse.query("accounts", select=("accountid",), top=1,
                                    filter=odata.eq("w365_gatewaycustomerprofileid", customer_profile_id))
    return rows[0]["accountid"] if rows else ""


def _about(row: Record, message: str) -> Outcome:
    return Outcome.succeeded(message, regarding_table="w365_paymentprofile", regarding_id=row["w365_paymentprofileid"])
