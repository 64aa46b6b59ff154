"""Ports, errors, settings and the plumbing shared by every capability. No adapter is imported from here."""
