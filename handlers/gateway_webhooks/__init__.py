"""Authorize.Net webhooks (issue 3, point 5): POST /api/authorizenet/webhook (route.py) verifies the signature and
parses; notifications.py de-duplicates and dispatches to transaction_events.py and profile_events.py, which re-fetch
the truth from the gateway and reuse the charging settlement and the payment-profile sync."""
import azure.functions as func

bp = func.Blueprint()

from handlers.gateway_webhooks import profile_events, route  # noqa: E402,F401 - registers the route and queued work
