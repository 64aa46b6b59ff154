"""The credit-hold capability's registrations: the three table events of CONTRACT §3 and the queued provisioning.
No HTTP routes or timers of its own."""
from __future__ import annotations

from core.steps import Registry
from handlers.credit_hold import rules, steps


def register(registry: Registry) -> None:
    registry.step("Update", "account", steps.account_updated)
    registry.step("Create", "w365_subscription", steps.subscription_created)
    registry.step("Update", "w365_configuration", steps.configuration_updated)
    registry.work(rules.PROVISION_WORK, steps.provision_work)
