"""Charging: w365_ChargeInvoice (invoices.py) and w365_RefundTransaction (refunds.py) on the exactly-once core
(attempts.py, also used by orders), the ledger arithmetic (ledger.py) and the reconciler (reconciler.py). entry.py
registers them and holds the reconciler timer."""
