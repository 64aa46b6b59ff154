"""Order payments: the Custom API messages (steps.py), the customer's approval page (page.py) and the timer that
finishes paid orders and activates scheduled ones. Use cases: payment.py, approval.py, activation.py, records.py.
entry.py registers them."""
