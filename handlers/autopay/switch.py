"""The configuration's autopay switch (CONTRACT §4): the first time it is switched on, `w365_autopaysince` is set,
so invoices that fell due before autopay existed are never collected automatically."""
from __future__ import annotations

from core import dates
from core.configuration import configuration
from core.context import EntityImage, PluginContext
from core.services import Services
from core.steps import Outcome
from handlers.autopay.charge import AUTOPAY_COLUMNS

CONFIGURATIONS = "w365_configurations"


def configuration_updated(ctx: PluginContext, services: Services) -> Outcome:
    target = ctx.target if isinstance(ctx.target, EntityImage) else None
    if target is not None and "w365_autopayenabled" not in target.attributes:
        return Outcome.succeeded("The autopay switch did not change.")
    return autopay_switched(services)


def autopay_switched(services: Services) -> Outcome:
    row = configuration(services, columns=AUTOPAY_COLUMNS)
    if not row.get("w365_autopayenabled"):
        return Outcome.succeeded("Autopay is off: billing runs charge nothing and dunning is frozen.")
    since = row.get("w365_autopaysince")
    if since:
        return Outcome.succeeded(f"Autopay is on again; invoices due since {since[:10]} are collected.")
    now = services.clock.now()
    services.dataverse.update(CONFIGURATIONS, row["w365_configurationid"], {"w365_autopaysince": dates.iso(now)})
    return Outcome.succeeded(f"Autopay is on: invoices due from {now:%Y-%m-%d} on are collected by billing runs.")
