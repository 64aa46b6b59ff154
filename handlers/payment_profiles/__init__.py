"""Payment profiles (issue 4): the Custom API messages (steps.py), the customer's Profile Request page (triggers.py),
use cases in profiles.py and profile_request.py.

The Blueprint (the customer's page route) is in triggers.py."""
