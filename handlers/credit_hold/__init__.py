"""Credit hold and provisioning: the table events (steps.py) and their use cases (rules.py), and the Manual provider
(manual_provider.py; the Webhook provider is an adapter: adapters/provider_webhook.py). entry.py registers them."""
