"""Entries of the credit-hold capability: the three table events of CONTRACT §3 and the queued provisioning work.
They read the event and call one use case of handlers/credit_hold/rules.py."""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from core.context import EntityImage, PluginContext
from core.services import Services
from core.steps import Outcome
from handlers.credit_hold import rules


def account_updated(ctx: PluginContext, services: Services) -> Outcome:
    target = ctx.target if isinstance(ctx.target, EntityImage) else None
    before = ctx.pre_image()
    # Without Target (the message was too large, Dataverse dropped it) the use case decides from the account as it is.
    if target is not None:
        if target.get("creditonhold") is not False:
            return Outcome.succeeded("The hold was not lifted; subscriptions already provisioned are not touched.")
        if before is not None and before.get("creditonhold") is not True:
            return Outcome.succeeded("The account was not on credit hold; nothing to release.")
    modified = target.get("modifiedon") if target is not None else None
    lifted_at = modified if isinstance(modified, dt.datetime) else services.clock.now()
    return rules.release_account(services, ctx.primary_entity_id, lifted_by=ctx.initiating_user_id,
                                 lifted_at=lifted_at, event_id=_event_id(ctx))


def subscription_created(ctx: PluginContext, services: Services) -> Outcome:
    return rules.provision_new_subscription(services, ctx.primary_entity_id)


def configuration_updated(ctx: PluginContext, services: Services) -> Outcome:
    target = ctx.target if isinstance(ctx.target, EntityImage) else None
    if target is not None and "w365_enablecredithold" not in target.attributes:
        return Outcome.succeeded("")               # another switch of the configuration changed (autopay)
    return rules.credit_hold_switched(services, changed_by=ctx.initiating_user_id, event_id=_event_id(ctx))


def provision_work(payload: Mapping[str, Any], services: Services) -> None:
    rules.provision(services, str(payload["subscription_id"]), attempt=int(payload.get("attempt") or 1),
                    origin=str(payload.get("origin") or ""))


def _event_id(ctx: PluginContext) -> str:
    # The same for a redelivery of the event (its messages are then dropped as duplicates), new for another change.
    return ctx.operation_id or ctx.correlation_id or ctx.primary_entity_id
