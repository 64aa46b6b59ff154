"""Authorize.Net webhooks (issue 3, point 5): POST /api/authorizenet/webhook (triggers.py) verifies the signature and
parses; notifications.py de-duplicates and dispatches to transaction_events.py and profile_events.py, which re-fetch
the truth from the gateway and reuse the charging settlement and the payment-profile sync.

The Blueprint is in triggers.py."""
