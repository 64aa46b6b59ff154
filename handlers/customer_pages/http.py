"""Functions glue of the customer pages: a Page as an HttpResponse, and the posted form as a dict."""
from __future__ import annotations

from urllib.parse import parse_qsl

import azure.functions as func

from handlers.customer_pages.html import Page

MAX_FORM_BYTES = 64 * 1024        # a signature PNG on the approval page is the biggest thing posted


def page_response(page: Page) -> func.HttpResponse:
    return func.HttpResponse(page.body, status_code=page.status, mimetype="text/html", charset="utf-8",
                             headers=dict(page.headers))


def read_form(req: func.HttpRequest) -> dict[str, str] | None:
    """The urlencoded form, or None when the body is not one (wrong type, too big, not UTF-8)."""
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    body = req.get_body() or b""
    if content_type != "application/x-www-form-urlencoded" or len(body) > MAX_FORM_BYTES:
        return None
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return None


def unavailable_page(retry_after: int = 30) -> func.HttpResponse:
    from handlers.customer_pages.html import message_page

    response = page_response(message_page("Please try again in a moment",
                                           "We could not save your details just now. Nothing was charged; please try "
                                           "again in a few minutes.", status=503))
    response.headers["Retry-After"] = str(retry_after)
    return response
