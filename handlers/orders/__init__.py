"""Order payments (issue 7): the Custom API messages (steps.py), the customer's approval page and the timer that
finishes paid orders and activates scheduled ones. Use cases: payment.py, approval.py, activation.py.

The Blueprint is in triggers.py."""
