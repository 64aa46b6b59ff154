"""Payment profiles (issue 4): the Custom API messages (steps.py), the customer's Profile Request page (routes.py),
use cases in profiles.py and profile_request.py."""
import azure.functions as func

bp = func.Blueprint()

from handlers.payment_profiles import routes, steps  # noqa: E402,F401 - registers the routes and @step handlers
