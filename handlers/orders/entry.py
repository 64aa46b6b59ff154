"""The orders capability's registrations: its Custom API messages (steps.py), the customer's approval page route
(page.py) and the order timer."""
from __future__ import annotations

import logging

import azure.functions as func

from app.composition import get_services
from core.steps import CLAIM, OUTCOME_ROW, Registry
from handlers.customer_pages.http import serve_customer_page
from handlers.orders import activation, page, payment, steps
from core import telemetry

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.route(route="order-approvals/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
@telemetry.invocation
def order_approval_page(req: func.HttpRequest, context: func.Context = None) -> func.HttpResponse:
    services = get_services()
    token = req.route_params.get("token", "")
    return serve_customer_page(req, what="order approval page",
                               closed_text="We cannot take approvals right now. Please contact us.",
                               show=lambda: page.show(services, token),
                               submit=lambda form: page.submit(services, token, form))


@bp.function_name("order_timer")
@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False, use_monitor=True)
@telemetry.invocation
def order_timer(timer: func.TimerRequest, context: func.Context = None) -> None:
    """Every 5 minutes: finish orders whose approved payment was not completed, then activate scheduled orders
    whose date has come."""
    services = get_services()
    completed = payment.complete_paid_orders(services)
    activated = activation.activate_due_orders(services)
    if completed or activated:
        log.info("order timer: %d paid order(s) completed, %d scheduled order(s) activated", len(completed),
                 len(activated))


def register(registry: Registry) -> None:
    registry.blueprint(bp)
    # Submit recognises a redelivery from the order's transactions it reads anyway (an approved charge is completed,
    # never charged again; the attempt's refId collides): no operation row claimed first.
    registry.step("w365_SubmitOrderPayment", "salesorder", steps.submit_order_payment, replay=OUTCOME_ROW)
    # Sending emails the customer: its RequestId is claimed first, so a redelivery never sends a second email.
    registry.step("w365_SendOrderForApproval", "salesorder", steps.send_order_for_approval, replay=CLAIM)
    # Converting again finds the order Draft and changes nothing: no claim, the outcome rides in its changeset.
    registry.step("w365_ConvertOrderToDraft", "salesorder", steps.convert_order_to_draft, replay=OUTCOME_ROW)
