"""Secure links emailed to customers: create + email one, find it by its token, claim it for one submit.

Only the token's SHA-256 is stored (w365_tokenhash): a copy of Dataverse cannot be turned into working links. The
claim is a PATCH with If-Match on the link row, so of two submits racing with the same token only one gets through.

A claim is a lease, not a verdict: the link stays Sent with `w365_completedon` set to the moment of the claim, and
only the end of the work makes it Completed. A claim whose work never finished (a crash, an outage) stops blocking
the link after CLAIM_LEASE, and the next submit starts over (the order page re-checks the order's attempts, so money
that moved is never charged again). Each declined card counts in `w365_declinedcards`; at MAX_DECLINED_CARDS the link
is Locked, which closes the page as a card-testing oracle.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from core import footprint, odata
from core.errors import BusinessRuleViolation, ConcurrencyConflict, RecordNotFound
from core import dates
from core.configuration import settings_row
from core.ports import BatchOperation, BatchResult
from core.services import Services

log = logging.getLogger(__name__)

LINKS = "w365_securelinks"
TOKEN_BYTES = 32                                  # 256 bits
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32)
DEFAULT_EXPIRY_HOURS = 72
# Longer than the worst-case handler: the gateway's read timeout plus Dataverse's retries and back-off.
CLAIM_LEASE = dt.timedelta(minutes=2)
MAX_DECLINED_CARDS = 5
T = TypeVar("T")
EMAIL_CONTENT_ID, LINK_CONTENT_ID = "email", "link"


def status(label: str) -> int:
    return footprint.choice("w365_securelink", "w365_status", label)


def purpose(label: str) -> int:
    return footprint.choice("w365_securelink", "w365_purpose", label)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SentLink:
    link_id: str
    url: str
    email_id: str
    expires_on: dt.datetime


def send_secure_link(services: Services, *, purpose_label: str, route: str, account_id: str, contact_id: str,
                     subject: str, body_template: str, placeholder: str,
                     regarding: tuple[str, str], salesorder_id: str | None = None,
                     extra: dict[str, Any] | None = None) -> SentLink:
    """Create a w365_securelink and email its URL (`{public base}/api/{route}/{token}`) to the contact, from the
    configured queue, with the URL in place of `placeholder` in the template; then send it through SendEmail.

    `regarding` is (table, id) of the row the email is filed under (account, salesorder); `extra`, more columns of
    the link row (a Card Update's failed profile). Refusals (no placeholder,
    no queue configured, a contact without an email address) raise BusinessRuleViolation before anything is written.
    Three requests: the contact, one changeset (email and link), SendEmail. A caller that has read the contact and
    has writes of its own uses `prepare_link` and `send_prepared` around its own changeset instead."""
    contact = services.dataverse.retrieve("contacts", contact_id, select=("contactid", "emailaddress1"))
    prepared = prepare_link(services, config=settings_row(services), contact=contact, purpose_label=purpose_label,
                            route=route, account_id=account_id, subject=subject, body_template=body_template,
                            placeholder=placeholder, regarding=regarding, salesorder_id=salesorder_id, extra=extra)
    return send_prepared(services, prepared, services.dataverse.batch(prepared.ops))


@dataclass(frozen=True)
class PreparedLink:
    """A link and its email as the first two operations of a changeset (the email, then the link bound to it)."""
    ops: list[BatchOperation]
    url: str
    expires_on: dt.datetime
    purpose_label: str


def prepare_link(services: Services, *, config: dict[str, Any], contact: dict[str, Any], purpose_label: str,
                 route: str, account_id: str, subject: str, body_template: str, placeholder: str,
                 regarding: tuple[str, str], salesorder_id: str | None = None,
                 extra: dict[str, Any] | None = None) -> PreparedLink:
    """The refusals of `send_secure_link`, then its writes as changeset operations. `config` is the configuration
    row (settings), `contact` the contact row with its email address."""
    if placeholder not in (body_template or ""):
        raise BusinessRuleViolation(f"The email text must contain {placeholder}, where the customer's link goes.")
    queue_id = config.get("_w365_emailfromqueueid_value")
    if not queue_id:
        raise BusinessRuleViolation("No queue is set to send emails from: set 'Email from queue' in the W365 "
                                    "configuration first.")
    if not contact.get("emailaddress1"):
        raise BusinessRuleViolation("The contact has no email address; add one and try again.")
    contact_id = contact["contactid"]
    hours = config.get("w365_linkexpiryhours") or DEFAULT_EXPIRY_HOURS
    expires_on = services.clock.now() + dt.timedelta(hours=int(hours))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    url = f"{services.settings.public_base_url}/api/{route}/{token}"
    link: dict[str, Any] = {
        "w365_name": f"{purpose_label} {expires_on:%Y-%m-%d}",
        "w365_purpose": purpose(purpose_label),
        "w365_accountid@odata.bind": f"/accounts({account_id})",
        "w365_contactid@odata.bind": f"/contacts({contact_id})",
        "w365_tokenhash": hash_token(token),
        "w365_expireson": dates.iso(expires_on),
        "w365_status": status("Sent"),
        "w365_emailid@odata.bind": f"${EMAIL_CONTENT_ID}",
    }
    if salesorder_id:
        link["w365_salesorderid@odata.bind"] = f"/salesorders({salesorder_id})"
    link.update(extra or {})
    email = email_body(queue_id=queue_id, contact_id=contact_id, subject=subject or purpose_label,
                       body=body_template.replace(placeholder, f'<a href="{url}">{url}</a>'), regarding=regarding)
    return PreparedLink([BatchOperation.create("emails", email, content_id=EMAIL_CONTENT_ID),
                         BatchOperation.create(LINKS, link, content_id=LINK_CONTENT_ID)], url, expires_on,
                        purpose_label)


def send_prepared(services: Services, prepared: PreparedLink, results: list[BatchResult]) -> SentLink:
    """After the changeset that began with `prepared.ops` committed: send the email."""
    email_id, link_id = results[0].record_id or "", results[1].record_id or ""
    services.dataverse.execute("SendEmail", {"IssueSend": True}, bound_to=("emails", email_id))
    log.info("secure link %s (%s) sent as email %s", link_id, prepared.purpose_label, email_id)
    return SentLink(link_id, prepared.url, email_id, prepared.expires_on)


def create_email(services: Services, *, queue_id: str, contact_id: str, subject: str, body: str,
                 regarding: tuple[str, str]) -> str:
    """An outgoing email from the configured queue to one contact, filed under `regarding` (table, id); not sent
    yet (SendEmail does that)."""
    return services.dataverse.create("emails", email_body(queue_id=queue_id, contact_id=contact_id, subject=subject,
                                                          body=body, regarding=regarding))


def email_body(*, queue_id: str, contact_id: str, subject: str, body: str,
               regarding: tuple[str, str]) -> dict[str, Any]:
    regarding_table, regarding_id = regarding
    return {
        "subject": subject, "description": body, "directioncode": True,
        f"regardingobjectid_{regarding_table}@odata.bind":
            f"/{footprint.entity_set(regarding_table)}({regarding_id})",
        "email_activity_parties": [
            {"partyid_queue@odata.bind": f"/queues({queue_id})", "participationtypemask": 1},
            {"partyid_contact@odata.bind": f"/contacts({contact_id})", "participationtypemask": 2},
        ],
    }


# --- the customer's side ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LinkCheck:
    """`state` is one of usable, busy (a submit holds the claim), expired, used, cancelled, locked, unknown; `row`
    only when the link exists."""
    state: str
    row: dict[str, Any] | None = None

    @property
    def usable(self) -> bool:
        return self.state == "usable"


def check_link(services: Services, token: str, purpose_label: str | tuple[str, ...]) -> LinkCheck:
    """Find the link a token opens, and whether it may be used now. A link past its expiry is marked Expired.
    `purpose_label`: the purpose, or the purposes a page serves (the Profile Request page serves Card Update too)."""
    if not TOKEN_PATTERN.match(token or ""):
        return LinkCheck("unknown")
    labels = (purpose_label,) if isinstance(purpose_label, str) else purpose_label
    purposes = " or ".join(f"w365_purpose eq {purpose(label)}" for label in labels)
    rows = services.dataverse.query(LINKS, filter=f"w365_tokenhash eq {odata.literal(hash_token(token))} and " + (
        f"({purposes})" if len(labels) > 1 else purposes), top=1)
    if not rows:
        return LinkCheck("unknown")
    row = rows[0]
    current = row.get("w365_status")
    if current == status("Completed"):
        return LinkCheck("used", row)
    if current == status("Cancelled") or row.get("statecode") == 1:
        return LinkCheck("cancelled", row)
    if current == status("Expired"):
        return LinkCheck("expired", row)
    if current == status("Locked"):
        return LinkCheck("locked", row)
    expires_on = dates.parse(row.get("w365_expireson"))
    if expires_on is None or expires_on <= services.clock.now():
        try:
            services.dataverse.update(LINKS, row["w365_securelinkid"], {"w365_status": status("Expired")},
                                      etag=row.get("@odata.etag"))
        except ConcurrencyConflict:
            pass                                  # someone else changed it meanwhile; it is not usable either way
        return LinkCheck("expired", row)
    claimed_on = dates.parse(row.get("w365_completedon"))
    if claimed_on is not None and services.clock.now() < claimed_on + CLAIM_LEASE:
        return LinkCheck("busy", row)
    return LinkCheck("usable", row)


class LinkTaken(Exception):
    """Another submit claimed the link first (or it changed since it was read)."""


class LinkLocked(Exception):
    """The declined card just recorded was the link's last allowed one: the link is Locked."""


def claim(services: Services, link: dict[str, Any]) -> None:
    """Take the lease on a usable link (If-Match on the ETag check_link read): raises LinkTaken when another submit
    holds it or the link changed since it was read."""
    try:
        services.dataverse.update(LINKS, link["w365_securelinkid"],
                                  {"w365_completedon": dates.iso(services.clock.now())}, etag=link.get("@odata.etag"))
    except (ConcurrencyConflict, RecordNotFound):
        raise LinkTaken() from None


def complete_once(services: Services, link: dict[str, Any], work: Callable[[], T],
                  completion: Callable[[T], dict[str, Any]] | None = None,
                  declined_card: Callable[[BaseException], bool] | None = None) -> T:
    """Run `work` for a usable link so that it succeeds at most once.

    The link is claimed first (`claim`), so a second submit finds it busy and cannot start the same work; the end of
    the work makes it Completed, with the columns `completion(result)` gives (e.g. the profile). If `work` raises, the
    claim is released and the link stays usable; when `declined_card(exc)` says the failure was a declined card, it
    is counted, and the last allowed one locks the link (LinkLocked is raised from the failure).
    """
    link_id = link["w365_securelinkid"]
    claim(services, link)
    try:
        result = work()
    except BaseException as exc:
        if declined_card is not None and declined_card(exc):
            if _count_declined_card(services, link):
                raise LinkLocked() from exc
            raise
        try:
            services.dataverse.update(LINKS, link_id, {"w365_completedon": None})
        except Exception:  # noqa: BLE001 - the original failure matters more; the lease runs out on its own
            log.exception("secure link %s: could not release the claim", link_id)
        raise
    done = {"w365_status": status("Completed"), "w365_completedon": dates.iso(services.clock.now())}
    services.dataverse.update(LINKS, link_id, {**done, **((completion(result) or {}) if completion else {})})
    return result


def _count_declined_card(services: Services, link: dict[str, Any]) -> bool:
    """Release the claim and count the declined card, in one write; True when that locked the link."""
    link_id = link["w365_securelinkid"]
    declined = int(link.get("w365_declinedcards") or 0) + 1
    body: dict[str, Any] = {"w365_completedon": None, "w365_declinedcards": declined}
    locked = declined >= MAX_DECLINED_CARDS
    if locked:
        body["w365_status"] = status("Locked")
    services.dataverse.update(LINKS, link_id, body)
    if locked:
        log.warning("secure link %s locked after %d declined cards", link_id, declined)
        account_id = link.get("_w365_accountid_value")
        if account_id:
            services.dataverse.create("annotations", {
                "subject": "Customer link locked",
                "notetext": f"The {footprint.label('w365_securelink', 'w365_purpose', link.get('w365_purpose'))} "
                            f"link sent to this account was locked after {declined} declined cards. Send a new link "
                            "if the customer still needs one.",
                "objectid_account@odata.bind": f"/accounts({account_id})"})
    return locked
