"""Payment profile use cases: add a card (Direct Entry, Profile Request, Order), sync, set default, update,
deactivate. Ports only (core.*): Dataverse rows as Web API dicts, the gateway through core.ports.PaymentGateway.

Rules (CONTRACT §4): a profile is usable for billing only when Active and Synced; a new one starts Inactive + Pending
Sync (an order's card is synced at once); at most one Active default per account, changed in one $batch changeset and
kept in step with the gateway's defaultPaymentProfile.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from core import footprint, odata
from core.errors import (AccessDenied, BadRequest, BusinessRuleViolation, ConcurrencyConflict, ConflictInProgress,
                         GatewayError, GatewayNotFound, GatewayRefused, InvalidNonce, RecordNotFound)
from core.operations import batch_with_outcome
from core.permissions import AccessCheck
from core.ports import BatchOperation, BillTo, ChargeResult, GatewayPaymentProfile, OpaqueData, Read
from core.text import require_valid_text
from core.services import Services
from handlers.charging.attempts import SavedCard
from handlers.dunning.account_updater import closed_by_account_updater
from handlers.dunning.recovery import WAITING_INVOICES, card_became_usable, waiting_invoices_expand
from core.bill_to import FIELDS as BILL_TO_FIELDS

log = logging.getLogger(__name__)

PROFILES = "w365_paymentprofiles"
ACTIVE, INACTIVE = (0, 1), (1, 2)                  # (statecode, statuscode)


def sync_status(label: str) -> int:
    return footprint.choice("w365_paymentprofile", "w365_syncstatus", label)


def source_value(label: str) -> int:
    return footprint.choice("w365_paymentprofile", "w365_source", label)


# --- parsing helpers the entry points share --------------------------------------------------------------------------

def bill_to_from_json(text: str | None) -> BillTo:
    """The BillTo parameter (JSON with CONTRACT's names). Malformed JSON is a BadRequest (HTTP 400)."""
    if not text:
        return BillTo()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequest("BillTo is not valid JSON.") from None
    if not isinstance(data, dict):
        raise BadRequest("BillTo must be a JSON object.")
    require_valid_text(data, "BillTo")
    return BillTo(**{f.attribute: str(data.get(f.name) or "").strip()[:f.limit] for f in BILL_TO_FIELDS})


def opaque_from(descriptor: str | None, value: str | None) -> OpaqueData | None:
    if not descriptor and not value:
        return None
    if not descriptor or not value:
        raise BadRequest("OpaqueDataDescriptor and OpaqueDataValue go together.")
    return OpaqueData(descriptor, value)


def bill_to_columns(bill_to: BillTo) -> dict[str, str]:
    return {f.column: getattr(bill_to, f.attribute)[:f.limit] for f in BILL_TO_FIELDS}


def bill_to_of(row: dict[str, Any]) -> BillTo:
    return BillTo(**{f.attribute: row.get(f.column) or "" for f in BILL_TO_FIELDS})


def display_name(card_type: str, masked: str) -> str:
    return f"{card_type or 'Card'} {masked}".strip()[:100]


# --- contacts, accounts, customer profiles ---------------------------------------------------------------------------

CONTACT_COLUMNS = ("contactid", "fullname", "firstname", "lastname", "emailaddress1", "telephone1",
                   "_parentcustomerid_value")
ACCOUNT_COLUMNS = ("accountid", "name", "emailaddress1", "w365_gatewaycustomerprofileid")
# The account's cards, read with the account (duplicates, defaults, Sync all).
ACCOUNT_CARDS = "w365_paymentprofile_accountid"
# A profile read with its account's default cards (Set Default, Sync and Update keep one default per account).
WITH_ACCOUNT_DEFAULTS = (f"w365_accountid($select=accountid;$expand={ACCOUNT_CARDS}($select=w365_paymentprofileid,"
                         "w365_name,w365_isdefault,statecode,w365_customerprofileid,w365_paymentprofileidgateway,"
                         + ",".join(f.column for f in BILL_TO_FIELDS) + ";$filter=w365_isdefault eq true),"
                         + waiting_invoices_expand() + ")")


def require_contact(services: Services, account_id: str, contact_id: str | None, *,
                    access: AccessCheck | None = None) -> dict[str, Any]:
    """The contact the profile is for; it must exist and belong to the account (checked before any gateway call).
    `access`: the person's rights, checked in the same read."""
    if not contact_id:
        raise BusinessRuleViolation("Choose a contact of this account first (add one if the account has none).")
    contacts, *granted = services.dataverse.read([contact_read(contact_id)] + (access.reads() if access else []))
    if access:
        access.verify(granted)
    return check_contact(contacts[0] if contacts else None, account_id)


def contact_read(contact_id: str) -> Read:
    """The contact as a query (an empty answer, not a 404 failing the whole read $batch, when it does not exist)."""
    return Read.query("contacts", select=CONTACT_COLUMNS, filter=odata.eq("contactid", uuid.UUID(contact_id)))


def check_contact(contact: dict[str, Any] | None, account_id: str) -> dict[str, Any]:
    if contact is None:
        raise BusinessRuleViolation("The contact was not found: add a contact to this account first.")
    if str(contact.get("_parentcustomerid_value") or "").lower() != account_id.lower():
        raise BusinessRuleViolation("The contact does not belong to this account: choose one of its contacts.")
    return contact


def merchant_customer_id(account_id: str) -> str:
    """Deterministic (so a resend finds the first as a duplicate, E00039) and within the gateway's 20 characters."""
    return account_id.replace("-", "").lower()[:20]


def ensure_customer_profile(services: Services, account: dict[str, Any]) -> str:
    """The account's gateway customer profile, created once and kept in account.w365_gatewaycustomerprofileid."""
    existing = account.get("w365_gatewaycustomerprofileid")
    if existing:
        return str(existing)
    account_id = account["accountid"]
    profile_id = services.gateway.create_customer_profile(
        merchant_customer_id(account_id), description=(account.get("name") or "")[:255],
        email=account.get("emailaddress1") or "")
    services.dataverse.update("accounts", account_id, {"w365_gatewaycustomerprofileid": profile_id})
    return profile_id


# --- adding a card ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AddedCard:
    profile_id: str                 # the w365_paymentprofile row
    name: str                       # "Visa XXXX1111", or "New card" until synced
    customer_profile_id: str
    payment_profile_id: str
    already_on_file: bool = False


def add_card_from_nonce(services: Services, *, account_id: str, contact_id: str | None, opaque: OpaqueData,
                        bill_to: BillTo, source: str, synced: bool = False, set_default: bool = False,
                        access: AccessCheck | None = None, outcome: str | None = None) -> AddedCard:
    """Make a payment profile for the account from an Accept.js nonce and write its row.

    `source`: "Direct Entry", "Profile Request" or "Order". `synced=False` writes the row Inactive + Pending Sync
    (Sync makes it usable); `synced=True` reads the card back from the gateway and writes it Active + Synced at once.
    `set_default` sets the gateway's default flag; the row becomes the account's default when Active (now if synced,
    at sync otherwise). A card the gateway refuses raises GatewayError (InvalidNonce for a stale nonce) and leaves no
    row. `access`: the person's rights on the account, checked in the same read. `outcome`: the button's message
    for a new card, recorded in the same changeset as the row (core/operations.py).

    Round trips: one read (the account with its cards, the contact, the access check), one gateway call (the
    account's first card creates its customer profile and payment profile together), one changeset (the row, and
    the account's customer profile id when it is new)."""
    reads = [Read.retrieve("accounts", account_id, select=ACCOUNT_COLUMNS, expand=ACCOUNT_CARDS)]
    if contact_id:
        reads.append(contact_read(contact_id))
    try:
        answers = services.dataverse.read(reads + (access.reads() if access else []))
    except RecordNotFound:
        raise BusinessRuleViolation("The account was not found.") from None
    account, contacts = answers[0], answers[1] if contact_id else []
    if access:
        access.verify(answers[len(reads):])
    if contact_id:
        check_contact(contacts[0] if contacts else None, account_id)
    if synced and not set_default and not _has_active_default(services, account_id,
                                                             account.get(ACCOUNT_CARDS) or []):
        set_default = True               # the first usable profile of an account without a default (CONTRACT §4)
    customer_profile_id = str(account.get("w365_gatewaycustomerprofileid") or "")
    new_customer = not customer_profile_id
    if new_customer:
        customer_profile_id, payment_profile_id = services.gateway.create_customer_with_card(
            merchant_customer_id(account_id), opaque, bill_to, description=(account.get("name") or "")[:255],
            email=account.get("emailaddress1") or "", default=set_default)
    else:
        payment_profile_id = services.gateway.create_payment_profile(customer_profile_id, opaque, bill_to,
                                                                     default=set_default)
    cards = account.get("w365_paymentprofile_accountid") or []
    # The gateway answers a duplicate card with the existing profile's id (E00039): keep one row for it.
    existing = [r for r in cards if r.get("w365_paymentprofileidgateway") == payment_profile_id]
    if existing:
        return _card_already_on_file(services, existing[0], bill_to, must_be_usable=synced)
    body: dict[str, Any] = {
        "w365_name": "New card (pending sync)",
        "w365_accountid@odata.bind": f"/accounts({account_id})",
        "w365_customerprofileid": customer_profile_id,
        "w365_paymentprofileidgateway": payment_profile_id,
        **bill_to_columns(bill_to),
        "w365_source": source_value(source),
        "w365_isdefault": bool(set_default),
        "w365_syncstatus": sync_status("Pending Sync"),
        "statecode": INACTIVE[0], "statuscode": INACTIVE[1],
    }
    if contact_id:
        body["w365_contactid@odata.bind"] = f"/contacts({contact_id})"
    ops = []
    if new_customer:
        ops.append(BatchOperation.update("accounts", account_id,
                                         {"w365_gatewaycustomerprofileid": customer_profile_id}))
    try:
        if synced:
            card = services.gateway.get_payment_profile(customer_profile_id, payment_profile_id)
            body.update(_synced_columns(services, card, active=True))
            body["w365_isdefault"] = bool(set_default)
            if set_default:
                ops += _clear_other_defaults(services, account_id, keep=None,
                                             rows=[r for r in cards if r.get("w365_isdefault")])
        ops.append(BatchOperation.create(PROFILES, body, content_id="profile"))
        results = batch_with_outcome(services, ops, outcome) if outcome else services.dataverse.batch(ops)
        row_id = results[-1].record_id or ""
    except BaseException:
        # Leave nothing half-made: the gateway's card without a row would be charged by no one and seen by no one.
        # (A new customer profile stays: the next try finds it as a duplicate and adds the card to it.)
        _forget_gateway_profile(services, customer_profile_id, payment_profile_id)
        raise
    log.info("payment profile %s added (%s, %s)", row_id, source, "synced" if synced else "pending sync")
    return AddedCard(row_id, body["w365_name"], customer_profile_id, payment_profile_id)


def card_saved_with_charge(services: Services, *, account_id: str, contact_id: str | None, cards: list[dict[str, Any]],
                           customer_profile_id: str, result: ChargeResult, source: str) -> SavedCard | None:
    """The row of a new card the gateway saved with its approved charge (handlers/charging/attempts.
    collect_new_card_payment writes it with the outcome). `cards`: the account's rows, read before the charge;
    `customer_profile_id`: the account's, "" when it had none.

    The charge made a new customer profile with the card (an account without one): its ids are in the answer. A
    customer that exists (the account's, or one the gateway found by merchantCustomerId, E00039): the card is saved
    into it from the transaction, one more gateway call. Then one read of the card (type, masked number, unmasked
    expiry) and the row is Active + Synced at once; it is the account's default when the account has no Active
    default (a new customer profile's only card is the gateway's default already; otherwise the gateway is told).
    None when the card could not be saved: the charge is recorded all the same, and the message says so."""
    customer = result.customer_profile_id or customer_profile_id
    payment = result.payment_profile_id
    new_customer = bool(customer) and customer != customer_profile_id
    make_default = not _has_active_default(services, account_id, [r for r in cards if r.get("w365_isdefault")])
    try:
        if not payment:
            if not customer:
                log.warning("charge %s: the gateway saved no card (%s)", result.trans_id, result.profile_error)
                return None
            payment = services.gateway.create_profile_from_transaction(result.trans_id, customer,
                                                                       default=make_default)
    except GatewayError as exc:
        log.warning("charge %s: the card could not be saved (%s)", result.trans_id, type(exc).__name__)
        return None
    existing = [r for r in cards if r.get("w365_paymentprofileidgateway") == payment]
    if existing:
        return SavedCard((), f"/{PROFILES}({existing[0]['w365_paymentprofileid']})")
    body: dict[str, Any] = {
        "w365_accountid@odata.bind": f"/accounts({account_id})", "w365_customerprofileid": customer,
        "w365_paymentprofileidgateway": payment, "w365_source": source_value(source),
    }
    if contact_id:
        body["w365_contactid@odata.bind"] = f"/contacts({contact_id})"
    try:
        card = services.gateway.get_payment_profile(customer, payment)
    except GatewayError as exc:
        # Saved at the gateway, but unread: the row waits for a Sync, named from the charge's answer.
        log.warning("payment profile %s: reading it after the charge failed (%s)", payment, type(exc).__name__)
        body.update(w365_name=display_name(result.account_type, result.account_number),
                    w365_syncstatus=sync_status("Pending Sync"), w365_isdefault=False,
                    statecode=INACTIVE[0], statuscode=INACTIVE[1])
        card, make_default = None, False
    else:
        if make_default and not card.is_default:
            make_default = _made_gateway_default(services, card)
        body.update(_synced_columns(services, card, active=True), w365_isdefault=make_default)
    ops = [BatchOperation.update("accounts", account_id, {"w365_gatewaycustomerprofileid": customer})] \
        if new_customer else []
    if make_default:
        ops += _clear_other_defaults(services, account_id, keep=None,
                                     rows=[r for r in cards if r.get("w365_isdefault")])
    ops.append(BatchOperation.create(PROFILES, body, content_id="card"))
    name = body["w365_name"]
    note = (f"{name} is saved on the account" + (" as its default card." if make_default else ".")) if card else (
        f"{name} is saved on the account; Sync it to use it again.")
    return SavedCard(tuple(ops), "$card", note)


def _card_already_on_file(services: Services, row: dict[str, Any], bill_to: BillTo, *,
                          must_be_usable: bool) -> AddedCard:
    """The customer entered a card the account has (E00039). The billing address they just entered becomes the
    card's, here and at the gateway; the profile's state is not bypassed: when the caller needs a card it can charge
    now (`must_be_usable`), a deactivated or not yet synced profile is refused."""
    customer_profile_id = row["w365_customerprofileid"]
    payment_profile_id = row["w365_paymentprofileidgateway"]
    services.gateway.update_payment_profile(customer_profile_id, payment_profile_id, bill_to,
                                            default=bool(row.get("w365_isdefault")))
    services.dataverse.update(PROFILES, row["w365_paymentprofileid"], bill_to_columns(bill_to))
    name = row.get("w365_name") or "This card"
    if must_be_usable and not _usable(row):
        why = "deactivated" if row.get("statecode") != ACTIVE[0] else "not synced yet"
        raise BusinessRuleViolation(f"This card is already on file ({name}) but it is {why}, so it cannot be charged "
                                    "this way. Please use another card, or ask for the card on file to be "
                                    f"{'reactivated' if why == 'deactivated' else 'synced'}.")
    return AddedCard(row["w365_paymentprofileid"], name, customer_profile_id, payment_profile_id,
                     already_on_file=True)


def add_direct_entry(services: Services, *, account_id: str, contact_id: str | None, opaque: OpaqueData | None,
                     bill_to: BillTo, set_default: bool, access: AccessCheck | None = None,
                     outcome: str | None = None) -> AddedCard:
    if not contact_id:
        raise BusinessRuleViolation("Choose a contact of this account first (add one if the account has none).")
    if opaque is None:
        raise BusinessRuleViolation("No card was entered: the Direct Entry dialog sends the card through Accept.js.")
    return add_card_from_nonce(services, account_id=account_id, contact_id=contact_id, opaque=opaque,
                               bill_to=bill_to, source="Direct Entry", synced=False, set_default=set_default,
                               access=access, outcome=outcome)


def refusal_text(exc: GatewayRefused) -> str:
    """What to tell a person about a card the gateway refused (its own text; never the nonce)."""
    if isinstance(exc, InvalidNonce):
        return "The card details expired before they reached the payment gateway. Please enter the card again."
    return f"The payment gateway refused the card: {exc.text}"


def _forget_gateway_profile(services: Services, customer_profile_id: str, payment_profile_id: str) -> None:
    try:
        services.gateway.delete_payment_profile(customer_profile_id, payment_profile_id)
    except Exception:  # noqa: BLE001 - the original failure is the one to report; Sync all would import it later
        log.exception("could not delete gateway payment profile %s after a failed write", payment_profile_id)


# --- sync ------------------------------------------------------------------------------------------------------------

def _synced_columns(services: Services, card: GatewayPaymentProfile, *, active: bool) -> dict[str, Any]:
    columns: dict[str, Any] = {
        "w365_name": display_name(card.card_type, card.card_number_masked),
        "w365_cardtype": card.card_type[:30],
        "w365_cardlast4": card.card_number_masked[:20],
        "w365_expiration": card.expiration[:20],
        **bill_to_columns(card.bill_to),
        "w365_syncstatus": sync_status("Synced"),
        "w365_lastsyncedon": services.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if active:
        columns.update(statecode=ACTIVE[0], statuscode=ACTIVE[1])
    return columns


def _rows(services: Services, filter_: str) -> list[dict[str, Any]]:
    return services.dataverse.query(PROFILES, filter=filter_)


def _profile(services: Services, profile_id: str, access: AccessCheck | None = None,
             expand: str | None = WITH_ACCOUNT_DEFAULTS) -> dict[str, Any]:
    """The profile (with its account's default cards), and the person's rights on it checked in the same request."""
    try:
        row, *granted = services.dataverse.read([Read.retrieve(PROFILES, profile_id, expand=expand)]
                                                + (access.reads() if access else []))
    except RecordNotFound:
        raise BusinessRuleViolation("The payment profile was not found.") from None
    if access:
        access.verify(granted)
    return row


def _account_defaults(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in (row.get("w365_accountid") or {}).get(ACCOUNT_CARDS) or [] if r.get("w365_isdefault")]


def _clear_other_defaults(services: Services, account_id: str, keep: str | None,
                          rows: list[dict[str, Any]] | None = None) -> list[BatchOperation]:
    """`rows`: the account's default rows when the caller has read them already."""
    if rows is None:
        rows = _rows(services, f"_w365_accountid_value eq {account_id} and w365_isdefault eq true")
    ops = []
    for row in rows:
        if row["w365_paymentprofileid"] != keep:
            ops.append(BatchOperation.update(PROFILES, row["w365_paymentprofileid"], {"w365_isdefault": False},
                                             etag=row.get("@odata.etag")))
    return ops


def _default_rows(services: Services, account_id: str) -> list[dict[str, Any]]:
    return _rows(services, f"_w365_accountid_value eq {account_id} and w365_isdefault eq true")


def _has_active_default(services: Services, account_id: str, rows: list[dict[str, Any]] | None = None,
                        besides: str | None = None) -> bool:
    rows = _default_rows(services, account_id) if rows is None else rows
    return any(r.get("w365_isdefault") and r.get("statecode") == ACTIVE[0] and r["w365_paymentprofileid"] != besides
               for r in rows)


def _usable(row: dict[str, Any]) -> bool:
    return row.get("statecode") == ACTIVE[0] and row.get("w365_syncstatus") == sync_status("Synced")


def _made_gateway_default(services: Services, card: GatewayPaymentProfile) -> bool:
    """The gateway's default follows the row's, so a later Sync (which follows the gateway) keeps it."""
    try:
        services.gateway.update_payment_profile(card.customer_profile_id, card.payment_profile_id, card.bill_to,
                                                default=True)
    except GatewayError as exc:
        log.warning("payment profile %s: could not make it the gateway's default (%s); it stays a plain card",
                    card.payment_profile_id, type(exc).__name__)
        return False
    return True


def _commit(services: Services, ops: list[BatchOperation]) -> None:
    try:
        services.dataverse.batch(ops)
    except ConcurrencyConflict:
        raise ConflictInProgress("Someone changed this account's payment profiles at the same time; "
                                 "nothing was changed. Please try again.") from None


def _was_deactivated(row: dict[str, Any]) -> bool:
    """Inactive after having been synced: a person deactivated it, and a refresh must not bring it back."""
    return row.get("statecode") == INACTIVE[0] and row.get("w365_syncstatus") == sync_status("Synced")


def _mark_sync_failed(services: Services, row: dict[str, Any], why: str) -> None:
    services.dataverse.update(PROFILES, row["w365_paymentprofileid"],
                              {"w365_syncstatus": sync_status("Sync Failed"), "w365_isdefault": False})
    log.warning("payment profile %s: sync failed: %s", row["w365_paymentprofileid"], why)


def _refresh(services: Services, row: dict[str, Any], card: GatewayPaymentProfile, *, activate: bool) -> None:
    """Write the gateway's view of the card into the row; its default flag too, atomically with the others'."""
    account_id = row["_w365_accountid_value"]
    body = _synced_columns(services, card, active=activate)
    will_be_active = activate or row.get("statecode") == ACTIVE[0]
    body["w365_isdefault"] = bool(card.is_default and will_be_active)
    defaults = None
    if will_be_active and not body["w365_isdefault"] and not _usable(row):
        # It becomes usable now: the first one of an account without an Active default is its default (CONTRACT §4).
        defaults = _account_defaults(row) if "w365_accountid" in row else _default_rows(services, account_id)
        if not _has_active_default(services, account_id, defaults, besides=row["w365_paymentprofileid"]):
            body["w365_isdefault"] = _made_gateway_default(services, card)
    ops = [BatchOperation.update(PROFILES, row["w365_paymentprofileid"], body, etag=row.get("@odata.etag"))]
    if body["w365_isdefault"]:
        if defaults is None and "w365_accountid" in row:
            defaults = _account_defaults(row)
        ops = _clear_other_defaults(services, account_id, keep=row["w365_paymentprofileid"], rows=defaults) + ops
    _commit(services, ops)
    if will_be_active:                               # CONTRACT §6 "Recovery": waiting invoices are retried
        account = row.get("w365_accountid") or {}
        card_became_usable(services, account_id, waiting=account.get(WAITING_INVOICES)
                           if WAITING_INVOICES in account else None)


def sync_profile(services: Services, profile_id: str, *, reactivate: bool = True,
                 access: AccessCheck | None = None) -> tuple[bool, str]:
    """Read the card from the gateway into the row: Active + Synced; not found there: Sync Failed.
    `reactivate=False` (a gateway webhook, not a person) leaves a profile a person deactivated inactive.
    Returns (succeeded, message)."""
    row = _profile(services, profile_id, access)
    if closed_by_account_updater(row):
        return False, ("The card's bank closed this card's account (Account Updater), so it stays inactive; add a "
                       "new card instead.")
    customer_profile_id = row.get("w365_customerprofileid")
    payment_profile_id = row.get("w365_paymentprofileidgateway")
    if not customer_profile_id or not payment_profile_id:
        _mark_sync_failed(services, row, "no gateway ids")
        return False, "This payment profile has no Authorize.Net ids, so it cannot be synced; marked Sync Failed."
    try:
        card = services.gateway.get_payment_profile(customer_profile_id, payment_profile_id)
    except GatewayNotFound:
        _mark_sync_failed(services, row, "not found at the gateway")
        return False, (f"Authorize.Net has no payment profile {payment_profile_id} for customer profile "
                       f"{customer_profile_id}; it was deleted there. Marked Sync Failed: add the card again.")
    activate = reactivate or not _was_deactivated(row)
    _refresh(services, row, card, activate=activate)
    name = display_name(card.card_type, card.card_number_masked)
    if not activate:
        return True, f"{name} is synced (still inactive: it was deactivated in Dynamics)."
    return True, f"{name} is synced and active" + (" (the default card)." if card.is_default else ".")


def sync_account(services: Services, account_id: str, *, import_only: bool = False,
                 access: AccessCheck | None = None) -> tuple[bool, str]:
    """Import the gateway's payment profiles Dataverse lacks; refresh the rest; mark those gone Sync Failed.
    One changeset, so the default flags never pass through a state with two defaults. `import_only` (a gateway
    webhook, not a person) only adds what is missing: a row waiting for its Sync stays as it is. The account is read
    with its cards (and the person's rights on it) in one request."""
    try:
        account, *granted = services.dataverse.read(
            [Read.retrieve("accounts", account_id, select=("accountid", "w365_gatewaycustomerprofileid"),
                           expand=f"{ACCOUNT_CARDS},{waiting_invoices_expand()}")] + (access.reads() if access else []))
    except RecordNotFound:
        raise BusinessRuleViolation("The account was not found.") from None
    if access:
        access.verify(granted)
    customer_profile_id = account.get("w365_gatewaycustomerprofileid")
    ops: list[BatchOperation] = []
    if not customer_profile_id:
        # Not known here, but the gateway may have one: a new card's charge whose answer was lost (or not written)
        # saved the card with a customer profile named by the account's merchantCustomerId.
        customer_profile_id = services.gateway.find_customer_profile(merchant_customer_id(account_id))
        if not customer_profile_id:
            return True, "This account has no Authorize.Net customer profile yet; there is nothing to sync."
        ops.append(BatchOperation.update("accounts", account_id,
                                         {"w365_gatewaycustomerprofileid": customer_profile_id}))
    try:
        cards = services.gateway.get_customer_profile(str(customer_profile_id))
    except GatewayNotFound:
        return False, f"Authorize.Net has no customer profile {customer_profile_id} for this account."
    rows = account.get(ACCOUNT_CARDS) or []
    by_gateway_id = {r.get("w365_paymentprofileidgateway"): r for r in rows}
    closed = {gateway_id for gateway_id, r in by_gateway_id.items() if closed_by_account_updater(r)}
    imported = refreshed = 0
    untouched = list(rows)                  # rows this sync leaves as they are: their default still counts
    newly_usable: list[tuple[dict[str, Any], GatewayPaymentProfile]] = []
    will_have_default = False
    for card in cards:
        if card.payment_profile_id in closed:
            by_gateway_id.pop(card.payment_profile_id)
            continue                     # Account Updater closed it: no Sync brings it back
        row = by_gateway_id.pop(card.payment_profile_id, None)
        if row is None:
            body = {**_synced_columns(services, card, active=True), "w365_isdefault": card.is_default,
                    "w365_accountid@odata.bind": f"/accounts({account_id})",
                    "w365_customerprofileid": str(customer_profile_id),
                    "w365_paymentprofileidgateway": card.payment_profile_id}
            ops.append(BatchOperation.create(PROFILES, body, content_id=str(len(ops) + 1)))
            imported += 1
            newly_usable.append((body, card))
            will_have_default = will_have_default or body["w365_isdefault"]
            continue
        if import_only:
            continue
        untouched.remove(row)
        activate = not _was_deactivated(row)
        body = _synced_columns(services, card, active=activate)
        body["w365_isdefault"] = bool(card.is_default and (activate or row.get("statecode") == ACTIVE[0]))
        ops.append(BatchOperation.update(PROFILES, row["w365_paymentprofileid"], body, etag=row.get("@odata.etag")))
        refreshed += 1
        will_have_default = will_have_default or body["w365_isdefault"]
        if activate and not _usable(row):
            newly_usable.append((body, card))
    gone = [] if import_only else [r for r in by_gateway_id.values() if r.get("w365_paymentprofileidgateway")
                                   and r.get("w365_paymentprofileidgateway") not in closed]
    untouched = [r for r in untouched if r not in gone]
    if newly_usable and not will_have_default and not _has_active_default(services, account_id, untouched):
        # The first profile to become usable on an account without an Active default is its default (CONTRACT §4).
        for body, card in newly_usable:
            if _made_gateway_default(services, card):
                body["w365_isdefault"] = True
                ops = _clear_other_defaults(services, account_id, keep=None,
                                            rows=[r for r in untouched if r.get("w365_isdefault")]) + ops
                break
    for row in gone:
        ops.append(BatchOperation.update(PROFILES, row["w365_paymentprofileid"],
                                         {"w365_syncstatus": sync_status("Sync Failed"), "w365_isdefault": False},
                                         etag=row.get("@odata.etag")))
    _commit(services, ops)
    if imported or refreshed:
        card_became_usable(services, account_id, waiting=account.get(WAITING_INVOICES))
    message = f"Synced with Authorize.Net: {imported} imported, {refreshed} refreshed"
    if gone:
        message += (f", {len(gone)} no longer at Authorize.Net (marked Sync Failed: "
                    + ", ".join(r.get("w365_name") or r["w365_paymentprofileid"] for r in gone) + ")")
    return True, message + "."


# --- default, update, deactivate -------------------------------------------------------------------------------------

def _require_usable(row: dict[str, Any], action: str) -> None:
    if row.get("statecode") != ACTIVE[0]:
        raise BusinessRuleViolation(f"Cannot {action}: the payment profile is inactive.")
    if row.get("w365_syncstatus") != sync_status("Synced"):
        raise BusinessRuleViolation(f"Cannot {action}: the payment profile is not synced; sync it first.")


def set_default(services: Services, profile_id: str, *, user_id: str | None = None,
                access: AccessCheck | None = None) -> str:
    """Make the profile the account's default, here and at the gateway. `user_id`: the person who asked; the changeset
    that also clears the other profiles' flag is made as them, so Dataverse applies their rights to every row it
    touches (`access` checks the profile itself, in the read, before the gateway is changed).

    One read (the profile with the account's defaults), one gateway call (the update resends every billing field of
    the synced row and the masked card with expiry "XXXX", so nothing is erased and no read is needed), one
    changeset."""
    row = _profile(services, profile_id, access)
    name = row.get("w365_name") or "The payment profile"
    if row.get("w365_isdefault"):
        _require_usable(row, "make it the default")
        return f"{name} is already the default."
    ops = default_ops(services, row)
    others = _account_defaults(row)
    try:
        _commit(services.for_user(user_id) if user_id else services, ops)
    except AccessDenied:
        previous = [r for r in others if r["w365_paymentprofileid"] != profile_id]
        if previous:
            _restore_gateway_default(services, previous[0])
        raise BusinessRuleViolation("You do not have permission to change the account's current default payment "
                                    "profile, so this one cannot replace it. Nothing was changed.") from None
    return f"{name} is now the default payment profile."


def default_read(profile_id: str) -> Read:
    """The profile with its account's default cards, as `default_ops` needs it (a query: no error when it is gone)."""
    return Read.query(PROFILES, filter=f"w365_paymentprofileid eq {profile_id}", expand=WITH_ACCOUNT_DEFAULTS)


def has_account_default(row: dict[str, Any]) -> bool:
    """The account of the profile read by `default_read` has a default card (this one or another)."""
    return bool(row.get("w365_isdefault")) or any(r.get("statecode") == 0 for r in _account_defaults(row))


def default_ops(services: Services, row: dict[str, Any]) -> list[BatchOperation]:
    """Make the profile (read with its account's defaults) the gateway's default now and return the changeset that
    says so in Dataverse (its flag set, the other defaults' cleared), for the caller to write with its own work."""
    _require_usable(row, "make it the default")
    try:
        # Gateway first: if it refuses, Dataverse is unchanged. The gateway clears its other default itself.
        _keep_card_update(services, row, default=True)
    except GatewayNotFound:
        _mark_sync_failed(services, row, "not found at the gateway")
        raise BusinessRuleViolation("Authorize.Net no longer has this card; marked Sync Failed.") from None
    except GatewayRefused as exc:
        raise BusinessRuleViolation(f"Authorize.Net refused the change: {exc.text}") from None
    profile_id = row["w365_paymentprofileid"]
    ops = _clear_other_defaults(services, row["_w365_accountid_value"], keep=profile_id, rows=_account_defaults(row))
    ops.append(BatchOperation.update(PROFILES, profile_id, {"w365_isdefault": True}, etag=row.get("@odata.etag")))
    return ops


def _restore_gateway_default(services: Services, row: dict[str, Any]) -> None:
    """Undo set_default's gateway change when Dataverse refused the person the rest: the old default is again the
    gateway's default."""
    try:
        _keep_card_update(services, row, default=True)
    except GatewayError:
        log.exception("payment profile %s: could not make it the gateway's default again; Sync all restores it",
                      row["w365_paymentprofileid"])


def _keep_card_update(services: Services, row: dict[str, Any], *, default: bool,
                      bill_to: BillTo | None = None) -> None:
    """updateCustomerPaymentProfile erases what it is not sent: every billing field goes (the row's, synced, unless
    new ones are given) with the masked card and expiry "XXXX" (the gateway keeps its own; ours may be stale). A row
    without its masked number has the gateway read it first."""
    masked = str(row.get("w365_cardlast4") or "")
    services.gateway.update_payment_profile(row["w365_customerprofileid"], row["w365_paymentprofileidgateway"],
                                            bill_to or bill_to_of(row), default=default,
                                            card_number_masked=masked if masked.startswith("XXXX") else None)


def update_profile(services: Services, profile_id: str, bill_to: BillTo, opaque: OpaqueData | None, *,
                   access: AccessCheck | None = None) -> tuple[bool, str]:
    """New bill-to and, optionally, a new card (nonce). The billing address alone is one gateway call (every field
    sent, the card kept masked) and the row takes what was sent; a new card is read back for its last four digits."""
    row = _profile(services, profile_id, access)
    customer_profile_id = row.get("w365_customerprofileid")
    payment_profile_id = row.get("w365_paymentprofileidgateway")
    if not customer_profile_id or not payment_profile_id:
        raise BusinessRuleViolation("This payment profile has no Authorize.Net ids; add the card again.")
    try:
        if opaque is None:
            _keep_card_update(services, row, default=bool(row.get("w365_isdefault")), bill_to=bill_to)
            card = GatewayPaymentProfile(customer_profile_id, payment_profile_id, row.get("w365_cardtype") or "",
                                         row.get("w365_cardlast4") or "", row.get("w365_expiration") or "", bill_to,
                                         bool(row.get("w365_isdefault")))
        else:
            services.gateway.update_payment_profile(customer_profile_id, payment_profile_id, bill_to,
                                                    default=bool(row.get("w365_isdefault")), opaque=opaque)
            card = services.gateway.get_payment_profile(customer_profile_id, payment_profile_id)
    except GatewayNotFound:
        _mark_sync_failed(services, row, "not found at the gateway")
        return False, "Authorize.Net no longer has this card; marked Sync Failed. Add the card again."
    except GatewayRefused as exc:
        return False, refusal_text(exc) + " Nothing was changed."
    _refresh(services, row, card, activate=not _was_deactivated(row))
    what = "card and billing address" if opaque else "billing address"
    return True, f"Updated the {what} of {display_name(card.card_type, card.card_number_masked)}."


CONTRACTS_USING = ("w365_billingcontract_paymentprofileid($select=w365_billingcontractid,w365_name;"
                   "$filter=statecode eq 0)")


def deactivate(services: Services, profile_id: str, *, access: AccessCheck | None = None) -> str:
    """Inactive, and no longer the default. Billing contracts that use it keep pointing at it (their history stays
    right) but cannot be charged with it: the message names them so someone picks another card. The card stays at
    the gateway (it has no soft deactivation; deleting is a separate, deliberate act)."""
    row = _profile(services, profile_id, access, expand=CONTRACTS_USING)
    name = row.get("w365_name") or "The payment profile"
    if row.get("statecode") == INACTIVE[0] and not row.get("w365_isdefault"):
        return f"{name} is already inactive."
    try:
        services.dataverse.update(PROFILES, profile_id, {"statecode": INACTIVE[0], "statuscode": INACTIVE[1],
                                                         "w365_isdefault": False}, etag=row.get("@odata.etag"))
    except ConcurrencyConflict:
        raise ConflictInProgress("The payment profile changed meanwhile; nothing was changed. Try again.") from None
    message = f"{name} is deactivated" + (" and is no longer the default" if row.get("w365_isdefault") else "") + "."
    contracts = row.get("w365_billingcontract_paymentprofileid") or []
    if contracts:
        names = ", ".join(c.get("w365_name") or c["w365_billingcontractid"] for c in contracts)
        message += (f" Warning: {len(contracts)} billing contract(s) still use it ({names}); their invoices cannot "
                    f"be charged until you choose another payment profile for them.")
    return message
