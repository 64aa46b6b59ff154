"""The Custom API messages of payment profiles: parse the PluginContext, check the caller's rights on the record,
call one use case, map the result to an Outcome."""
from __future__ import annotations

from core.context import PluginContext
from core.errors import BadRequest, GatewayRefused
from core.permissions import AccessCheck
from core.services import Services
from core.steps import Outcome
from handlers.payment_profiles import profiles
from handlers.payment_profiles.profile_request import send_profile_request


ADDED = "The card was added as a payment profile (Pending Sync): use Sync to activate it."


def _target_id(ctx: PluginContext) -> str:
    return ctx.target.id


def _access(ctx: PluginContext, action: str) -> AccessCheck:
    """The person's rights on the Target this message needs (core/permissions.py RIGHTS), checked in the read."""
    return AccessCheck(ctx.message_name, ctx.initiating_user_id, {"Target": _target_id(ctx)}, action=action)


def add_payment_profile(ctx: PluginContext, services: Services) -> Outcome:
    account_id = _target_id(ctx)
    method = (ctx.param("Method") or "").strip()
    if method not in ("DirectEntry", "ProfileRequest"):
        raise BadRequest("Method must be DirectEntry or ProfileRequest.")
    access = _access(ctx, "add a payment profile to this account")
    contact_id = ctx.param("ContactId")
    if method == "ProfileRequest":
        message, sent = send_profile_request(services, account_id=account_id, contact_id=contact_id,
                                             subject=ctx.param("EmailSubject") or "", body=ctx.param("EmailBody") or "",
                                             access=access)
        return Outcome.succeeded(message, secureLinkId=sent.link_id, emailId=sent.email_id)
    opaque = profiles.opaque_from(ctx.param("OpaqueDataDescriptor"), ctx.param("OpaqueDataValue"))
    bill_to = profiles.bill_to_from_json(ctx.param("BillTo"))
    try:
        added = profiles.add_direct_entry(services, account_id=account_id, contact_id=contact_id, opaque=opaque,
                                          bill_to=bill_to, set_default=bool(ctx.param("SetAsDefault")), access=access,
                                          outcome=ADDED)
    except GatewayRefused as exc:                 # auth and outage errors pass through to the platform
        return Outcome.failed(profiles.refusal_text(exc) + " No payment profile was added.")
    if added.already_on_file:
        return Outcome.succeeded(f"This card is already on file as {added.name}.", paymentProfileId=added.profile_id)
    return Outcome.succeeded(ADDED, paymentProfileId=added.profile_id)


def sync_payment_profile(ctx: PluginContext, services: Services) -> Outcome:
    ok, message = profiles.sync_profile(services, _target_id(ctx), access=_access(ctx, "sync it"))
    return Outcome.succeeded(message) if ok else Outcome.failed(message)


def sync_payment_profiles(ctx: PluginContext, services: Services) -> Outcome:
    ok, message = profiles.sync_account(services, _target_id(ctx), access=_access(ctx, "sync its payment profiles"))
    return Outcome.succeeded(message) if ok else Outcome.failed(message)


def set_default_payment_profile(ctx: PluginContext, services: Services) -> Outcome:
    return Outcome.succeeded(profiles.set_default(services, _target_id(ctx), user_id=ctx.initiating_user_id,
                                                  access=_access(ctx, "make it the default")))


def update_payment_profile(ctx: PluginContext, services: Services) -> Outcome:
    ok, message = profiles.update_profile(
        services, _target_id(ctx), profiles.bill_to_from_json(ctx.param("BillTo")),
        profiles.opaque_from(ctx.param("OpaqueDataDescriptor"), ctx.param("OpaqueDataValue")),
        access=_access(ctx, "update it"))
    return Outcome.succeeded(message) if ok else Outcome.failed(message)


def deactivate_payment_profile(ctx: PluginContext, services: Services) -> Outcome:
    return Outcome.succeeded(profiles.deactivate(services, _target_id(ctx), access=_access(ctx, "deactivate it")))
