"""Activating a paid order: a w365_subscription per order line, each through the credit-hold rules and providers
(handlers/credit_hold), then the order Activated. Orders paid with a future w365_activationdate wait as Scheduled
until the timer's `activate_due_orders` finds them.

Provider of a subscription: the product table has no provider column (CONTRACT §4), so every line goes to the
default provider: the first Active Manual provider (a person provisions it), else the first Active provider by name.
"""
from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core import footprint
from core.errors import ConcurrencyConflict
from core.ports import BatchOperation, BatchResult, Read, Record
from core.services import Services
from handlers.credit_hold.rules import (ACTIVE_PROVIDERS, NO_PROVIDER, PROVIDERS, SUBSCRIPTIONS, choose_provider,
                                        credit_hold_enabled, held_columns, queue_new_subscription)
from handlers.orders.records import ORDERS, Order, iso, lines_read, load_order, note_operation, status

log = logging.getLogger(__name__)


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


def activation_reads(order_id: str) -> list[Read]:
    """What activating the order needs to know (its subscriptions so far, its lines, the active providers), as reads
    that ride in a read $batch: `plan_subscriptions` takes their answers in this order."""
    return [Read.query(SUBSCRIPTIONS, select=("_w365_productid_value", "w365_quantity"),
                       filter=f"_w365_salesorderid_value eq {order_id}"),
            lines_read(order_id),
            Read.query(PROVIDERS, **ACTIVE_PROVIDERS)]


@dataclass(frozen=True)
class SubscriptionPlan:
    """The subscriptions the order still needs, as creates for one changeset; `to_queue` are the positions in `ops`
    of those handed to their provider once the changeset is written."""
    ops: tuple[BatchOperation, ...]
    to_queue: tuple[int, ...]
    activation: Activation


def plan_subscriptions(services: Services, order: Order, answers: list[Any]) -> SubscriptionPlan:
    """One subscription per order line, from the answers of `activation_reads`. Lines that already have their
    subscription (a retry) are not made twice."""
    subscriptions, lines, providers = answers
    existing = Counter((row.get("_w365_productid_value"), Decimal(row.get("w365_quantity") or 0).normalize())
                       for row in subscriptions)
    provider = choose_provider(providers) if lines else None
    ops: list[BatchOperation] = []
    to_queue: list[int] = []
    blocked = 0
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
            ops.append(BatchOperation.create(SUBSCRIPTIONS, body))
            failed.append("No active provider (add an active w365_provider)")
            continue
        body["w365_providerid@odata.bind"] = f"/w365_providers({provider['w365_providerid']})"
        if held is None:
            held = bool(order.account.get("creditonhold")) and credit_hold_enabled(services)
        if held:
            ops.append(BatchOperation.create(SUBSCRIPTIONS, {**body, **held_columns()}))
            blocked += 1
            continue
        to_queue.append(len(ops))
        ops.append(BatchOperation.create(SUBSCRIPTIONS, body))
    return SubscriptionPlan(tuple(ops), tuple(to_queue), Activation(len(ops), blocked, tuple(failed)))


def queue_planned(services: Services, plan: SubscriptionPlan, results: list[BatchResult]) -> tuple[str, ...]:
    """Hand the written subscriptions to their provider (`results`: the changeset's answers for `plan.ops`); why
    each one that could not be queued failed."""
    failed = []
    for index in plan.to_queue:
        outcome = queue_new_subscription(services, str(results[index].record_id))
        if outcome.data.get("failed"):
            failed.append(str(outcome.data["failed"]))
    return tuple(failed)


def activation_notes(order: Order, activation: Activation, *, reason: str) -> list[BatchOperation]:
    """The history notes of an activation, for the changeset that activates the order."""
    notes = [note_operation(order.id, "Order activated", f"{reason}: {activation.describe()}.")]
    if activation.failed:
        notes.append(unprovisioned_note(order, activation.failed))
    return notes


def unprovisioned_note(order: Order, failed: tuple[str, ...]) -> BatchOperation:
    return note_operation(
        order.id, "Subscriptions not provisioned",
        f"The order is paid and active, but {len(failed)} of its subscription(s) were created Failed: "
        f"{'; '.join(sorted(set(failed)))}. Each one's provisioning result says what is missing (for example an "
        "active w365_provider or a setting); once it is set up, they are provisioned again within minutes.")


def activate(services: Services, order: Order, *, reason: str) -> Activation:
    """Subscriptions, the order Activated and its notes in one changeset (all or none: a retry finds either nothing
    or everything), then the subscriptions queued for their providers."""
    plan = plan_subscriptions(services, order, services.dataverse.read(activation_reads(order.id)))
    ops = [*plan.ops, BatchOperation.update(ORDERS, order.id, {"w365_orderstatus": status("Activated")}),
           *activation_notes(order, plan.activation, reason=reason)]
    results = services.dataverse.batch(ops)
    queue_failed = queue_planned(services, plan, results)
    if queue_failed:
        services.dataverse.batch([unprovisioned_note(order, queue_failed)])
    activation = dataclasses.replace(plan.activation, failed=plan.activation.failed + queue_failed)
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
