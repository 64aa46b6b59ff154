"""The customer's Profile Request page (GET shows, POST submits): reads the link, renders, calls profile_request.py."""
from __future__ import annotations

from typing import Any, Mapping

from app.composition import accept_js_auth
from core.services import Services
from handlers.customer_pages import html as pages
from handlers.payment_profiles.profile_request import RequestView, open_profile_request, submit_profile_request

TITLE = "Add a payment card"


def show(services: Services, token: str) -> pages.Page:
    return _form_page(services, token, open_profile_request(services, token))


def submit(services: Services, token: str, form: Mapping[str, str]) -> pages.Page:
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
    return pages.render("profile_request.html", title=TITLE, status=status, accept_js_url=services.accept_js_url,
                        scripts=("card_form.js",), page_data=pages.accept_js_data(client_key, login_id),
                        contact=contact, account_name=view.account_name, card_update=view.card_update,
                        values=values, error=error,
                        action=f"/api/profile-requests/{token}")
