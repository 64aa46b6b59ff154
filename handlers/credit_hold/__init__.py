"""Credit hold and provisioning (issue 6). No HTTP routes of its own: table events reach it through
handlers/platform.py, provisioning runs as queued work. Use cases: rules.py; providers: manual_provider.py (Dataverse
task), webhook_provider.py (signed HTTP POST, an adapter), demo_provider.py (local-mode endpoint).

The Blueprint is in triggers.py."""
