"""Activating a paid order: a w365_subscription per order line, each through the credit-hold rules and providers
(handlers/credit_hold), then the order Activated. Orders paid with a future w365_activationdate wait as Scheduled
until the timer's `activate_due_orders` finds them.

Provider of a subscription: the product table has no provider column (CONTRACT §4), so every line goes to the
default provider: the first Active Manual provider (a person provisions it), else the first Active provider by name.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core import footprint
from core.errors import ConcurrencyConflict
from core.services import Services
from handlers.credit_hold.rules import SUBSCRIPTIONS, credit_hold_enabled, held_columns, queue_new_subscription
from handlers.orders.records import (ORDERS, Order, add_note, iso, load_order, order_lines, status, update_order)

log = logging.getLogger(__name__)


NO_PROVIDER = ("No active provider exists to provision it: add an active w365_provider (Manual or Webhook), set "
               "it on the subscription and provision the subscription again.")


@dataclass(frozen=True)
class Activation:
    subscriptions: int           # created by this activation
    blocked: int                 # of those, blocked by a credit hold on the account
    failed: tuple[str, ...] = () # of those, why each one that could not be provisioned was created Failed

    def describe(self) -> str:
        text = f"{self.subscriptions} subscription(s) created"
        if self.blocked:
            text += f", {self.blocked} blocked by the account's credit hold until it is lifted"
        if self.failed:
            text += f", {len(self.failed)} could not be provisioned ({'; '.join(sorted(set(self.failed)))})"
        return text


def default_provider(services: Services) -> dict[str, Any] | None:
    """None when no provider is active: the order is still completed, its subscriptions are created Failed."""
    providers = services.dataverse.query("w365_providers", select=("w365_providerid", "w365_name", "w365_type"),
                                         filter="statecode eq 0", orderby="w365_name asc")
    if not providers:
        return None
    manual = footprint.choice("w365_provider", "w365_type", "Manual")
    return next((p for p in providers if p.get("w365_type") == manual), providers[0])


def create_subscriptions(services: Services, order: Order) -> Activation:
    """One subscription per order line, each handed to the credit-hold rules at once (our own Create events are
    skipped by the loop guard). Lines that already have their subscription (a retry) are not made twice."""
    existing = Counter(
        (row.get("_w365_productid_value"), Decimal(row.get("w365_quantity") or 0).normalize())
        for row in services.dataverse.query(SUBSCRIPTIONS, select=("_w365_productid_value", "w365_quantity"),
                                            filter=f"_w365_salesorderid_value eq {order.id}"))
    lines = order_lines(services, order.id)
    provider = default_provider(services) if lines else None
    created = blocked = 0
    failed: list[str] = []
    held: bool | None = None               # the hold, read once for all the lines (the switch fresh: it gates work)
    for line in lines:
        product = line.get("productid") or {}
        key = (product.get("productid"), Decimal(line.get("quantity") or 0).normalize())
        if existing[key] > 0:
            existing[key] -= 1
            continue
        body: dict[str, Any] = {
            "w365_name": f"{product.get('name') or line.get('productdescription') or 'Line'} - {order.name}"[:100],
            "w365_accountid@odata.bind": f"/accounts({order.account_id})",
            "w365_salesorderid@odata.bind": f"/{ORDERS}({order.id})",
            "w365_quantity": Decimal(line.get("quantity") or 0),
            "w365_provisioningstatus": footprint.choice("w365_subscription", "w365_provisioningstatus", "Pending"),
        }
        if product.get("productid"):
            body["w365_productid@odata.bind"] = f"/products({product['productid']})"
        if provider is None:
            # Payment never waits on provisioning configuration: the subscription is recorded Failed, saying why.
            body["w365_provisioningstatus"] = footprint.choice("w365_subscription", "w365_provisioningstatus",
                                                               "Failed")
            body["w365_provisioningresult"] = NO_PROVIDER
            services.dataverse.create(SUBSCRIPTIONS, body)
            created += 1
            failed.append("No active provider (add an active w365_provider)")
            continue
        body["w365_providerid@odata.bind"] = f"/w365_providers({provider['w365_providerid']})"
        if held is None:
            held = bool(order.account.get("creditonhold")) and credit_hold_enabled(services)
        if held:
            services.dataverse.create(SUBSCRIPTIONS, {**body, **held_columns()})
            created += 1
            blocked += 1
            continue
        subscription_id = services.dataverse.create(SUBSCRIPTIONS, body)
        created += 1
        outcome = queue_new_subscription(services, subscription_id)
        if outcome.data.get("failed"):
            failed.append(str(outcome.data["failed"]))
    return Activation(created, blocked, tuple(failed))


def activate(services: Services, order: Order, *, reason: str) -> Activation:
    """Subscriptions, then Activated (so a failure half-way is retried and finds the subscriptions made so far)."""
    activation = create_subscriptions(services, order)
    update_order(services, order.id, {"w365_orderstatus": status("Activated")})
    add_note(services, order.id, "Order activated", f"{reason}: {activation.describe()}.")
    if activation.failed:
        add_note(services, order.id, "Subscriptions not provisioned",
                 f"The order is paid and active, but {len(activation.failed)} of its subscription(s) were created "
                 f"Failed: {'; '.join(sorted(set(activation.failed)))}. Each one's provisioning result says what is "
                 "missing (for example an active w365_provider or a setting); once it is set up, provision them again.")
    log.info("order %s activated: %s", order.id, activation.describe())
    return activation


def activate_due_orders(services: Services) -> list[str]:
    """The timer's use case: activate every Scheduled order whose activation date has come. Returns their ids.
    One order's failure is logged and does not stop the others (the next run tries it again)."""
    now = services.clock.now()
    due = services.dataverse.query(ORDERS, select=("salesorderid",),
                                   filter=f"w365_orderstatus eq {status('Scheduled')} and "
                                          f"w365_activationdate le {iso(now)}")
    done = []
    for row in due:
        order_id = row["salesorderid"]
        try:
            order = load_order(services, order_id)
            if order.row.get("w365_orderstatus") != status("Scheduled"):
                continue                      # changed since the query
            activate(services, order, reason=f"Activation date {iso(order.activation_date or now)} reached")
            done.append(order_id)
        except ConcurrencyConflict:
            log.info("order %s changed while being activated; the next run looks again", order_id)
        except Exception:  # noqa: BLE001 - one bad order must not block the others; logged with its id
            log.exception("order %s: scheduled activation failed; the next run tries again", order_id)
    return done
