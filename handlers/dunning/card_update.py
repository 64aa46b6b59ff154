"""The card-update email (CONTRACT §6 "Card-update email"): a Card Update secure link to the Profile Request page.

Who gets it: the account's primary contact, else the failed card's contact; with neither (or no email address), the
account gets a note and the attempt `w365_needsattention`. One open link per account: a new one cancels the others.
Subject and body come from the configuration; a body without `{Secure Link}` is never sent as is (the service falls
back to its own text and notes why), so a template can never send a customer an email without its link.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from core import footprint
from core.configuration import configuration
from core.errors import BusinessRuleViolation
from core.services import Services
from handlers.customer_pages import links

log = logging.getLogger(__name__)

PURPOSE = "Card Update"
ROUTE = "profile-requests"                   # the page is the Profile Request page (handlers/payment_profiles/page.py)
PLACEHOLDER = "{Secure Link}"
TEMPLATE_COLUMNS = ("w365_cardupdatesubject", "w365_cardupdatebody")
DEFAULT_SUBJECT = "Please update your payment card"
DEFAULT_BODY = ("<p>We could not collect a payment with the card we have on file for you. Please add a card here: "
                f"{PLACEHOLDER}</p><p>The link works for a limited time. Thank you.</p>")
TRANSACTIONS = "w365_paymenttransactions"


@dataclass(frozen=True)
class CardUpdateSent:
    sent: bool
    message: str


def template(services: Services) -> tuple[str, str, str]:
    """(subject, body, problem) from the configuration; the default text when the body lacks {Secure Link}."""
    config = configuration(services, columns=TEMPLATE_COLUMNS)
    subject = (config.get("w365_cardupdatesubject") or "").strip() or DEFAULT_SUBJECT
    body = config.get("w365_cardupdatebody") or ""
    if not body.strip():
        return subject, DEFAULT_BODY, ""
    if PLACEHOLDER not in body:
        return subject, DEFAULT_BODY, (f"the configured card-update body has no {PLACEHOLDER}, so the service's "
                                       "default text was sent instead; fix the configuration")
    return subject, body, ""


def send_card_update(services: Services, *, account_id: str, failed_profile_id: str | None, why: str,
                     transaction_id: str | None = None) -> CardUpdateSent:
    """Email a Card Update link (`why`: one sentence for the note when nobody can be emailed)."""
    account = services.dataverse.retrieve("accounts", account_id, select=("accountid", "name",
                                                                          "_primarycontactid_value"))
    contact_id = _recipient(services, account, failed_profile_id)
    if contact_id is None:
        text = (f"{why} Nobody could be asked for a new card: the account has no primary contact with an email "
                "address and the failed card has no contact. Ask the customer for a card and add it.")
        note(services, account_id, "A new card is needed", text)
        if transaction_id:
            services.dataverse.update(TRANSACTIONS, transaction_id, {"w365_needsattention": True})
        return CardUpdateSent(False, text)
    subject, body, problem = template(services)
    if problem:
        note(services, account_id, "Card-update email template", f"{why} Note: {problem}.")
    cancel_open_links(services, account_id)
    extra = {"w365_failedprofileid@odata.bind": f"/w365_paymentprofiles({failed_profile_id})"} \
        if failed_profile_id else {}
    try:
        sent = links.send_secure_link(services, purpose_label=PURPOSE, route=ROUTE, account_id=account_id,
                                      contact_id=contact_id, subject=subject, body_template=body,
                                      placeholder=PLACEHOLDER, regarding=("account", account_id), extra=extra)
    except BusinessRuleViolation as exc:            # no queue configured, ...: a person must fix it
        text = f"{why} The card-update email could not be sent: {exc}"
        note(services, account_id, "Card-update email not sent", text)
        if transaction_id:
            services.dataverse.update(TRANSACTIONS, transaction_id, {"w365_needsattention": True})
        return CardUpdateSent(False, text)
    log.info("dunning: card-update link %s sent for account %s", sent.link_id, account_id)
    return CardUpdateSent(True, f"card-update email sent (link valid until {sent.expires_on:%Y-%m-%d %H:%M} UTC)")


def cancel_open_links(services: Services, account_id: str) -> int:
    rows = services.dataverse.query(links.LINKS, select=("w365_securelinkid",), filter=(
        f"_w365_accountid_value eq {account_id} and w365_purpose eq {links.purpose(PURPOSE)} and "
        f"w365_status eq {links.status('Sent')}"))
    for row in rows:
        services.dataverse.update(links.LINKS, row["w365_securelinkid"], {"w365_status": links.status("Cancelled")})
    return len(rows)


def note(services: Services, account_id: str, subject: str, text: str) -> None:
    services.dataverse.create("annotations", {"subject": subject[:500], "notetext": text[:100000],
                                              "objectid_account@odata.bind": f"/accounts({account_id})"})


def _recipient(services: Services, account: dict, failed_profile_id: str | None) -> str | None:
    candidates = [account.get("_primarycontactid_value")]
    if failed_profile_id:
        profile = services.dataverse.retrieve("w365_paymentprofiles", failed_profile_id,
                                              select=("w365_paymentprofileid", "_w365_contactid_value"))
        candidates.append(profile.get("_w365_contactid_value"))
    for contact_id in filter(None, candidates):
        contact = services.dataverse.retrieve("contacts", contact_id, select=("contactid", "emailaddress1"))
        if contact.get("emailaddress1"):
            return contact_id
    return None


# --- the customer's side: the Profile Request page with a Card Update link ------------------------------------------

class SameCardAgain(BusinessRuleViolation):
    """The customer entered the card that failed (the gateway's duplicate answer: same number and expiry)."""


def save_new_card(services: Services, link: dict, opaque, bill_to):
    """The card a customer adds through a Card Update link: synced at once, the account's default, and the profile
    of the account's contracts that named the failed card (or none, or an unusable one); then the account's waiting
    invoices are retried. Re-entering the failed card is refused (SameCardAgain), so the link stays usable."""
    from handlers.dunning.recovery import card_became_usable
    from handlers.payment_profiles.profiles import add_card_from_nonce, set_default

    account_id = link["_w365_accountid_value"]
    failed_profile_id = link.get("_w365_failedprofileid_value")
    added = add_card_from_nonce(services, account_id=account_id, contact_id=link.get("_w365_contactid_value"),
                                opaque=opaque, bill_to=bill_to, source="Profile Request", synced=True,
                                set_default=True)
    if added.already_on_file:
        if added.profile_id == failed_profile_id:
            raise SameCardAgain("This is the card that could not be charged. Please enter a different card, or the "
                                "same card with its new expiry date.")
        set_default(services, added.profile_id)             # a card already on file: usable only when synced
    moved = point_contracts_at(services, account_id, failed_profile_id, added.profile_id)
    note(services, account_id, "Card updated by the customer",
         f"The customer added {added.name} through the card-update link; it is now the default card"
         + (f" and the card of {moved} billing contract(s)" if moved else "") + ".")
    card_became_usable(services, account_id)
    return added


def point_contracts_at(services: Services, account_id: str, failed_profile_id: str | None, profile_id: str) -> int:
    """The account's active contracts that named the failed card, no card, or an unusable one now use `profile_id`."""
    synced = footprint.choice("w365_paymentprofile", "w365_syncstatus", "Synced")
    contracts = services.dataverse.query("w365_billingcontracts", select=(
        "w365_billingcontractid", "_w365_paymentprofileid_value"),
        filter=f"_w365_accountid_value eq {account_id} and statecode eq 0",
        expand="w365_paymentprofileid($select=w365_paymentprofileid,statecode,w365_syncstatus)")
    moved = 0
    for contract in contracts:
        current = contract.get("w365_paymentprofileid")
        usable = bool(current) and current.get("statecode") == 0 and current.get("w365_syncstatus") == synced
        named = contract.get("_w365_paymentprofileid_value")
        if named == profile_id or (named and named != failed_profile_id and usable):
            continue
        services.dataverse.update("w365_billingcontracts", contract["w365_billingcontractid"],
                                  {"w365_paymentprofileid@odata.bind": f"/w365_paymentprofiles({profile_id})"})
        moved += 1
    return moved
