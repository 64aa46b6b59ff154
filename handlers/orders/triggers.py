"""The orders Blueprint: the customer's approval page route and the order timer. Importing it registers the
order steps."""
import logging

import azure.functions as func

from core.composition import get_services

bp = func.Blueprint()
log = logging.getLogger(__name__)

from handlers.orders import activation, page, payment, steps  # noqa: E402,F401 - steps registers the @step handlers
from handlers.customer_pages.http import serve_customer_page  # noqa: E402


@bp.route(route="order-approvals/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def order_approval_page(req: func.HttpRequest) -> func.HttpResponse:
    services = get_services()
    token = req.route_params.get("token", "")
    return serve_customer_page(req, what="order approval page",
                               closed_text="We cannot take approvals right now. Please contact us.",
                               show=lambda: page.show(services, token),
                               submit=lambda form: page.submit(services, token, form))


@bp.function_name("order_timer")
@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False, use_monitor=True)
def order_timer(timer: func.TimerRequest) -> None:
    """Every 5 minutes: finish orders whose approved payment was not completed, then activate scheduled orders
    whose date has come."""
    services = get_services()
    completed = payment.complete_paid_orders(services)
    activated = activation.activate_due_orders(services)
    if completed or activated:
        log.info("order timer: %d paid order(s) completed, %d scheduled order(s) activated", len(completed),
                 len(activated))
