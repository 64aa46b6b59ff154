"""The Custom API messages of payment profiles: parse the PluginContext, check the caller's rights on the record,
call one use case, map the result to an Outcome."""
from __future__ import annotations

from core.context import PluginContext
from core.errors import BadRequest, GatewayRefused
from core.permissions import APPEND_TO, READ, WRITE, require_access
from core.services import Services
from core.steps import Outcome
from handlers.payment_profiles import profiles
from handlers.payment_profiles.profile_request import send_profile_request


def _target_id(ctx: PluginContext) -> str:
    return ctx.target.id


def add_payment_profile(ctx: PluginContext, services: Services) -> Outcome:
    account_id = _target_id(ctx)
    method = (ctx.param("Method") or "").strip()
    if method not in ("DirectEntry", "ProfileRequest"):
        raise BadRequest("Method must be DirectEntry or ProfileRequest.")
    require_access(services, ctx.initiating_user_id, "account", account_id, READ, APPEND_TO,
                   action="add a payment profile")
    contact_id = ctx.param("ContactId")
    if method == "ProfileRequest":
        message, sent = send_profile_request(services, account_id=account_id, contact_id=contact_id,
                                             subject=ctx.param("EmailSubject") or "", body=ctx.param("EmailBody") or "")
        return Outcome.succeeded(message, secureLinkId=sent.link_id, emailId=sent.email_id)
    opaque = profiles.opaque_from(ctx.param("OpaqueDataDescriptor"), ctx.param("OpaqueDataValue"))
    bill_to = profiles.bill_to_from_json(ctx.param("BillTo"))
    try:
        added = profiles.add_direct_entry(services, account_id=account_id, contact_id=contact_id, opaque=opaque,
                                          bill_to=bill_to, set_default=bool(ctx.param("SetAsDefault")))
    except GatewayRefused as exc:
        return Outcome.failed(profiles.refusal_text(exc) + " No payment profile was added.")
    if added.already_on_file:
        return Outcome.succeeded(f"This card is already on file as {added.name}.", paymentProfileId=added.profile_id)
    return Outcome.succeeded("The card was added as a payment profile (Pending Sync): use Sync to activate it.",
                             paymentProfileId=added.profile_id)


def _profile_step(ctx: PluginContext, services: Services, action: str) -> str:
    profile_id = _target_id(ctx)
    require_access(services, ctx.initiating_user_id, "w365_paymentprofile", profile_id, WRITE, action=action)
    return profile_id


def sync_payment_profile(ctx: PluginContext, services: Services) -> Outcome:
    ok, message = profiles.sync_profile(services, _profile_step(ctx, services, "sync it"))
    return Outcome.succeeded(message) if ok else Outcome.failed(message)


def sync_payment_profiles(ctx: PluginContext, services: Services) -> Outcome:
    account_id = _target_id(ctx)
    require_access(services, ctx.initiating_user_id, "account", account_id, READ, APPEND_TO,
                   action="sync its payment profiles")
    ok, message = profiles.sync_account(services, account_id)
    return Outcome.succeeded(message) if ok else Outcome.failed(message)


def set_default_payment_profile(ctx: PluginContext, services: Services) -> Outcome:
    profile_id = _profile_step(ctx, services, "make it the default")
    return Outcome.succeeded(profiles.set_default(services, profile_id, user_id=ctx.initiating_user_id))


def update_payment_profile(ctx: PluginContext, services: Services) -> Outcome:
    profile_id = _profile_step(ctx, services, "update it")
    ok, message = profiles.update_profile(
        services, profile_id, profiles.bill_to_from_json(ctx.param("BillTo")),
        profiles.opaque_from(ctx.param("OpaqueDataDescriptor"), ctx.param("OpaqueDataValue")))
    return Outcome.succeeded(message) if ok else Outcome.failed(message)


def deactivate_payment_profile(ctx: PluginContext, services: Services) -> Outcome:
    return Outcome.succeeded(profiles.deactivate(services, _profile_step(ctx, services, "deactivate it")))
