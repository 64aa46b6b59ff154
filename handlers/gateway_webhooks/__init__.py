"""Authorize.Net webhooks: POST /api/authorizenet/webhook (entry.py) verifies the signature and parses;
notifications.py de-duplicates and dispatches to transaction_events.py and profile_events.py, which re-fetch the
truth from the gateway and reuse the charging settlement and the payment-profile sync."""
