"""The ports a use case is handed, in one value. Built by app/composition.py (real or local adapters) or by a test."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.ports import Clock, Dataverse, PaymentGateway, SystemClock, WorkQueue
from core.settings import Settings


@dataclass
class Services:
    dataverse: Dataverse
    gateway: PaymentGateway
    queue: WorkQueue
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    # Provisioning providers by w365_provider type label ("Manual", "Webhook"); filled by handlers/credit_hold.
    providers: dict[str, Any] = field(default_factory=dict)
    # Accept.js URL for the customer pages: the real one in sandbox/production, the dev host's stand-in in local mode.
    accept_js_url: str = "https://jstest.authorize.net/v1/Accept.js"
    # The w365_operation row of the Custom API call being handled (core.operations), set by the platform per call.
    operation: Any = None
    # Background work's share of Dataverse service protection (core.throttle.RequestBudget); None: not governed.
    budget: Any = None

    def for_user(self, systemuser_id: str) -> "Services":
        """The same services, with Dataverse calls made as that person (MSCRMCallerID)."""
        return replace(self, dataverse=self.dataverse.as_user(systemuser_id))
