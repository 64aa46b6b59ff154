"""Charging (issue 5): w365_ChargeInvoice (invoices.py) and w365_RefundTransaction (refunds.py) on the exactly-once
core (attempts.py, reused by orders), and the reconciler (reconciler.py): a timer sweep here plus queued per-attempt
checks (`charging.reconcile`, `charging.record`).

The Blueprint is in triggers.py, so that the use cases here can be imported without azure.functions."""
