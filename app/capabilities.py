"""Every capability, registered explicitly into one Registry: its Blueprints (for function_app.py), its Dataverse
steps (for the webhook and Service Bus entries) and its queued-work handlers. A new capability is one more line in
CAPABILITIES and an `entry.register(registry)` in its folder."""
from __future__ import annotations

import threading
from typing import Any, Mapping

from core.steps import Registry

_registry: Registry | None = None
_lock = threading.Lock()


def registry() -> Registry:
    global _registry
    if _registry is None:
        with _lock:
            if _registry is None:
                from app import platform
                from handlers.autopay import entry as autopay
                from handlers.charging import entry as charging
                from handlers.credit_hold import entry as credit_hold
                from handlers.dunning import entry as dunning
                from handlers.gateway_webhooks import entry as gateway_webhooks
                from handlers.orders import entry as orders
                from handlers.payment_profiles import entry as payment_profiles

                built = Registry()
                for capability in (platform, payment_profiles, credit_hold, charging, orders, gateway_webhooks,
                                   dunning, autopay):
                    capability.register(built)
                _registry = built
    return _registry


def run_work(kind: str, payload: Mapping[str, Any], services: Any) -> None:
    registry().run_work(kind, payload, services)
