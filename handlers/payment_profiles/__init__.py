"""Payment profiles: the Custom API messages (steps.py), the customer's Profile Request page (page.py), use cases in
profiles.py and profile_request.py. entry.py registers them."""
