"""The credit-hold Blueprint. No HTTP routes or timers of its own: table events reach it through handlers/platform.py
and provisioning runs as queued work; importing this module registers them."""
import azure.functions as func

from handlers.credit_hold import steps  # noqa: F401 - registers the @step and @work_handler entries

bp = func.Blueprint()
