"""The payment-profile capability's registrations: its Custom API messages (steps.py) and the customer's Profile
Request page route (page.py)."""
from __future__ import annotations

import azure.functions as func

from app.composition import get_services
from core.steps import CLAIM, OUTCOME_ROW, Registry
from handlers.customer_pages.http import serve_customer_page
from handlers.payment_profiles import page, steps
from core import telemetry

bp = func.Blueprint()


@bp.route(route="profile-requests/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@telemetry.invocation
def profile_request_page(req: func.HttpRequest, context: func.Context = None) -> func.HttpResponse:
    services = get_services()
    token = req.route_params.get("token", "")
    return serve_customer_page(req, what="profile request page",
                               closed_text="We cannot save cards right now. Please contact us.",
                               show=lambda: page.show(services, token),
                               submit=lambda form: page.submit(services, token, form))


def register(registry: Registry) -> None:
    registry.blueprint(bp)
    # A Profile Request sends an email: claimed first, so a redelivery never sends a second one.
    registry.step("w365_AddPaymentProfile", "account", steps.add_payment_profile, replay=CLAIM)
    # Running these again is harmless (the same state; a used nonce is refused), so no operation row is claimed
    # first: a redelivery's outcome row meets the alternate key and the first outcome stands (core/operations.py).
    for message, table, handler in (
            ("w365_SyncPaymentProfile", "w365_paymentprofile", steps.sync_payment_profile),
            ("w365_SyncPaymentProfiles", "account", steps.sync_payment_profiles),
            ("w365_SetDefaultPaymentProfile", "w365_paymentprofile", steps.set_default_payment_profile),
            ("w365_UpdatePaymentProfile", "w365_paymentprofile", steps.update_payment_profile),
            ("w365_DeactivatePaymentProfile", "w365_paymentprofile", steps.deactivate_payment_profile)):
        registry.step(message, table, handler, replay=OUTCOME_ROW)
