"""The orders Blueprint: the customer's approval page route and the order timer. Importing it registers the
order steps."""
import logging

import azure.functions as func

from core.composition import get_services
from core.errors import ConfigurationError, GatewayAuthError, GatewayUnavailable, PlatformUnavailable

bp = func.Blueprint()
log = logging.getLogger(__name__)

from handlers.orders import activation, page, payment, steps  # noqa: E402,F401 - steps registers the @step handlers
from handlers.customer_pages import html as pages  # noqa: E402
from handlers.customer_pages.http import page_response, read_form, unavailable_page  # noqa: E402


@bp.route(route="order-approvals/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def order_approval_page(req: func.HttpRequest) -> func.HttpResponse:
    services = get_services()
    token = req.route_params.get("token", "")
    try:
        if req.method.upper() == "GET":
            return page_response(page.show(services, token))
        form = read_form(req)
        if form is None:
            return page_response(pages.message_page("Something went wrong", "The form could not be read. Please "
                                                    "open the link again.", status=400))
        return page_response(page.submit(services, token, form))
    except (PlatformUnavailable, GatewayUnavailable) as exc:
        log.warning("order approval page: a platform is unavailable: %s", type(exc).__name__)
        return unavailable_page(int(getattr(exc, "retry_after", None) or 30))
    except (ConfigurationError, GatewayAuthError) as exc:
        log.error("order approval page: configuration problem: %s", type(exc).__name__)
        return page_response(pages.message_page("Sorry, this page is not available",
                                                "We cannot take approvals right now. Please contact us.", status=500))


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
