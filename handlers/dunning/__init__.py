"""Dunning and card lifecycle (CONTRACT §6): decline transitions, card-update links, receipts, expiry notices,
Account Updater, recovery numbers."""
