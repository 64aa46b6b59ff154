"""Put the product's Dataverse footprint (core/footprint.py) and the product around it (installer/product.py: roles,
field security, commands, views, charts, dashboard, app; installer/labels.py: display names) into an environment,
idempotently, through the Web API; or ship it as a managed solution (installer/solution.py).

    python -m installer plan|install|uninstall [--dry-run] [--solution W365Payments] [--webhook-url URL]
    python -m installer export --managed | import <zip> | configure --webhook-url URL

Public entry points: `install`, `uninstall`, `plan` (installer.run); the pieces: `inventory.read` (what exists),
`plan.plan_install` (with installer/product_plan.py) / `uninstall.plan_uninstall` (what to do), `run.execute` (do it,
with progress and a report); `python -m installer.render` draws the dashboard's charts for docs/.
"""
from installer.run import DEFAULT_SOLUTION, RunResult, install, plan, uninstall

__all__ = ["DEFAULT_SOLUTION", "RunResult", "install", "plan", "uninstall"]
