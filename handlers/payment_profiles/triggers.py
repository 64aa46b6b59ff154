"""GET/POST /api/profile-requests/{token}: the customer's page. Parses and maps; the work is in profile_request.py."""
from __future__ import annotations

from typing import Any, Mapping

import azure.functions as func

from core.composition import accept_js_auth, get_services
from core.services import Services
from handlers.customer_pages import html as pages
from handlers.customer_pages.http import serve_customer_page
from handlers.payment_profiles import steps  # noqa: F401 - registers the @step handlers
from handlers.payment_profiles.profile_request import RequestView, open_profile_request, submit_profile_request

bp = func.Blueprint()
TITLE = "Add a payment card"


@bp.route(route="profile-requests/{token}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def profile_request_page(req: func.HttpRequest) -> func.HttpResponse:
    services = get_services()
    token = req.route_params.get("token", "")
    return serve_customer_page(req, what="profile request page",
                               closed_text="We cannot save cards right now. Please contact us.",
                               show=lambda: _form_page(services, token, open_profile_request(services, token)),
                               submit=lambda form: _submit(services, token, form))


def _submit(services: Services, token: str, form: Mapping[str, str]) -> pages.Page:
    view = open_profile_request(services, token)
    if view.state != "usable":
        return pages.link_problem_page(view.state)
    card = pages.read_card_form(form)
    values = pages.form_values(card.bill_to)
    if card.problem:
        return _form_page(services, token, view, values, card.problem, card.status)
    result = submit_profile_request(services, token, card.opaque, card.bill_to)
    if result.state == "done":
        return pages.message_page("Thank you, your card is saved",
                                  "Your card was saved securely with our payment processor. You can close this page.",
                                  status=200, ok=True)
    if result.state == "refused":
        return _form_page(services, token, view, values, result.message, 422)
    return pages.link_problem_page(result.state)


def _form_page(services: Services, token: str, view: RequestView, values: Mapping[str, str] | None = None,
               error: str = "", status: int = 200) -> pages.Page:
    if view.state != "usable":
        return pages.link_problem_page(view.state)
    contact: dict[str, Any] = view.contact or {}
    if values is None:
        values = {"firstName": contact.get("firstname") or "", "lastName": contact.get("lastname") or "",
                  "company": view.account_name, "phoneNumber": contact.get("telephone1") or ""}
    client_key, login_id = accept_js_auth(services)
    details = (f'<section class="card" aria-labelledby="who"><h2 id="who">Your details</h2><dl>'
               f'<dt>Name</dt><dd>{pages.esc(contact.get("fullname"))}</dd>'
               f'<dt>Email</dt><dd>{pages.esc(contact.get("emailaddress1"))}</dd>'
               f'<dt>Phone</dt><dd>{pages.esc(contact.get("telephone1") or "-")}</dd>'
               f'<dt>Company</dt><dd>{pages.esc(view.account_name)}</dd></dl>'
               f'<p class="muted">If these are not right, please tell us when you reply.</p></section>')
    intro = (f'<p>{pages.esc(view.account_name)} asked us to keep a card on file for its invoices. Your card is '
             f'stored by Authorize.Net; we only keep its last four digits.</p>')
    form = pages.card_form(action=f"/api/profile-requests/{token}", intro=intro, values=values, error=error,
                           email=contact.get("emailaddress1") or "")
    return pages.layout(TITLE, f'<h1>{TITLE}</h1>{details}<section class="card">{form}</section>', status=status,
                        accept_js_url=services.accept_js_url, script=pages.card_form_script(client_key, login_id))
