"""Put the product's Dataverse footprint (core/footprint.py) into an environment, idempotently, through the Web API.

    python -m installer plan|install|uninstall [--dry-run] [--solution W365Payments] [--webhook-url URL]

Public entry points: `install`, `uninstall`, `plan` (installer.run); the pieces: `inventory.read` (what exists),
`plan.plan_install` / `uninstall.plan_uninstall` (what to do), `run.execute` (do it, with progress and a report).
"""
from installer.run import DEFAULT_SOLUTION, RunResult, install, plan, uninstall

__all__ = ["DEFAULT_SOLUTION", "RunResult", "install", "plan", "uninstall"]
