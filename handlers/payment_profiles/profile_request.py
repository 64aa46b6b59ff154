"""Profile Request: email the customer a secure link; the page behind it saves their card (source Profile Request).
Ports only; the HTML is page.py, the HTTP side entry.py."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import configuration
from core.errors import BusinessRuleViolation, GatewayRefused, InvalidNonce
from core.permissions import AccessCheck
from core.ports import BillTo, OpaqueData
from core.services import Services
from handlers.customer_pages import links
from handlers.dunning import card_update
from handlers.payment_profiles.profiles import add_card_from_nonce, check_contact, contact_read, refusal_text

PURPOSE = "Profile Request"
ROUTE = "profile-requests"
PLACEHOLDER = "{Secure Link}"
# The page also serves the Card Update links of dunning (CONTRACT §6 "Card-update email").
PAGE_PURPOSES = (PURPOSE, card_update.PURPOSE)


def send_profile_request(services: Services, *, account_id: str, contact_id: str | None, subject: str,
                         body: str, access: AccessCheck | None = None) -> tuple[str, links.SentLink]:
    if PLACEHOLDER not in (body or ""):
        raise BusinessRuleViolation(f"The email text must contain {PLACEHOLDER}, where the customer's link goes.")
    # One read (the contact, the person's rights, the configuration unless the worker has it), one changeset, SendEmail.
    if not contact_id:
        raise BusinessRuleViolation("Choose a contact of this account first (add one if the account has none).")
    checks = access.reads() if access else []
    contacts, *rest = services.dataverse.read([contact_read(contact_id), *checks,
                                               *configuration.settings_reads(services)])
    if access:
        access.verify(rest[:len(checks)])
    contact = check_contact(contacts[0] if contacts else None, account_id)
    prepared = links.prepare_link(services, config=configuration.settings_row(services, prefetched=rest[len(checks):]),
                                  contact=contact, purpose_label=PURPOSE, route=ROUTE, account_id=account_id,
                                  subject=subject, body_template=body, placeholder=PLACEHOLDER,
                                  regarding=("account", account_id))
    sent = links.send_prepared(services, prepared, services.dataverse.batch(prepared.ops))
    who = contact.get("fullname") or contact.get("emailaddress1")
    return (f"Profile request emailed to {who} ({contact.get('emailaddress1')}); the link works until "
            f"{sent.expires_on:%Y-%m-%d %H:%M} UTC."), sent


@dataclass(frozen=True)
class RequestView:
    """What the customer's page shows: the link's state and, when usable, the contact and account."""
    state: str
    contact: dict[str, Any] | None = None
    account_name: str = ""
    card_update: bool = False        # a Card Update link of dunning: the card on file could not be charged


def open_profile_request(services: Services, token: str) -> RequestView:
    check = links.check_link(services, token, PAGE_PURPOSES)
    if not check.usable:
        return RequestView(check.state)
    link = check.row or {}
    contact = services.dataverse.retrieve("contacts", link["_w365_contactid_value"], select=(
        "contactid", "fullname", "firstname", "lastname", "emailaddress1", "telephone1"))
    account = services.dataverse.retrieve("accounts", link["_w365_accountid_value"], select=("accountid", "name"))
    return RequestView("usable", contact, account.get("name") or "",
                       card_update=link.get("w365_purpose") == links.purpose(card_update.PURPOSE))


@dataclass(frozen=True)
class Submitted:
    """`state`: done, refused (the card; the link stays usable) or a link state (used, expired, ...)."""
    state: str
    message: str = ""
    card_name: str = ""


def submit_profile_request(services: Services, token: str, opaque: OpaqueData, bill_to: BillTo) -> Submitted:
    check = links.check_link(services, token, PAGE_PURPOSES)
    if not check.usable:
        return Submitted(check.state)
    link = check.row or {}

    def save_card():
        if link.get("w365_purpose") == links.purpose(card_update.PURPOSE):
            return card_update.save_new_card(services, link, opaque, bill_to)
        return add_card_from_nonce(services, account_id=link["_w365_accountid_value"],
                                   contact_id=link.get("_w365_contactid_value"), opaque=opaque, bill_to=bill_to,
                                   source=PURPOSE, synced=False, set_default=False)

    try:
        added = links.complete_once(services, link, save_card, completion=lambda card: {
            "w365_paymentprofileid@odata.bind": f"/w365_paymentprofiles({card.profile_id})"},
            declined_card=lambda exc: isinstance(exc, GatewayRefused) and not isinstance(exc, InvalidNonce))
    except links.LinkTaken:
        return Submitted("busy")
    except links.LinkLocked:
        return Submitted("locked")
    except BusinessRuleViolation as exc:          # the failed card again, or a card on file not usable
        return Submitted("refused", str(exc))
    except GatewayRefused as exc:                  # auth and outage errors pass: the page says "try later"
        return Submitted("refused", refusal_text(exc))
    return Submitted("done", card_name=added.name)
