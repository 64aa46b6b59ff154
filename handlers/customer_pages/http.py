"""Functions glue of the customer pages: a Page as an HttpResponse, and the posted form as a dict."""
from __future__ import annotations

import logging
from typing import Callable
from urllib.parse import parse_qsl

import azure.functions as func

from core.errors import (ConfigurationError, DataverseAuthError, DataverseError, GatewayAuthError, GatewayUnavailable,
                         PlatformUnavailable)
from core.text import find_invalid_text
from handlers.customer_pages.html import Page, message_page

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 64 * 1024        # a signature PNG on the approval page is the biggest thing posted


def serve_customer_page(req: func.HttpRequest, *, what: str, closed_text: str, show: Callable[[], Page],
                        submit: Callable[[dict[str, str]], Page]) -> func.HttpResponse:
    """GET shows, POST submits the form; the failures every customer page answers alike: an unreadable form (400),
    Dataverse or the gateway busy (503 with Retry-After, nothing done), a configuration problem (500, nothing said
    about it to the customer)."""
    try:
        if req.method.upper() == "GET":
            return page_response(show())
        form = read_form(req)
        if form is None:
            return page_response(message_page("Something went wrong", "The form could not be read. Please open the "
                                              "link again.", status=400))
        return page_response(submit(form))
    except (PlatformUnavailable, GatewayUnavailable) as exc:
        log.warning("%s: a platform is unavailable: %s", what, type(exc).__name__)
        return unavailable_page(int(getattr(exc, "retry_after", None) or 30))
    except DataverseError as exc:
        if exc.is_transient:               # e.g. the identity platform unreachable or down
            log.warning("%s: Dataverse or its sign-in is unavailable: %s", what, type(exc).__name__)
            return unavailable_page(int(exc.retry_after or 30))
        if isinstance(exc, DataverseAuthError):
            log.error("%s: configuration problem: %s", what, type(exc).__name__)
            return page_response(message_page("Sorry, this page is not available", closed_text, status=500))
        log.exception("%s: Dataverse refused a request (HTTP %s, code %s)", what, exc.status, exc.code)
        return failed_page()
    except (ConfigurationError, GatewayAuthError) as exc:
        log.error("%s: configuration problem: %s", what, type(exc).__name__)
        return page_response(message_page("Sorry, this page is not available", closed_text, status=500))
    except Exception:  # noqa: BLE001 - our own page, never the host's bare 500; the details go to the log only
        log.exception("%s failed", what)
        return failed_page()


def failed_page() -> func.HttpResponse:
    return page_response(message_page("Sorry, something went wrong", "We could not complete this just now. Please "
                                      "open the link again later, or contact the person who sent it to you.",
                                      status=500))


def page_response(page: Page) -> func.HttpResponse:
    return func.HttpResponse(page.body, status_code=page.status, mimetype="text/html", charset="utf-8",
                             headers=dict(page.headers))


def read_form(req: func.HttpRequest) -> dict[str, str] | None:
    """The urlencoded form, or None when the body is not one (wrong type, too big, not UTF-8). The guards run first;
    the parsing is the request's own (`HttpRequest.form`, werkzeug's form parser). A repeated field keeps its last
    value."""
    content_type = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    body = req.get_body() or b""
    if content_type != "application/x-www-form-urlencoded" or len(body) > MAX_FORM_BYTES:
        return None
    try:
        text = body.decode("utf-8")     # the parser would replace bad bytes; a form that is not UTF-8 is refused
        # Percent-escapes too: werkzeug keeps an undecodable one (a lone surrogate's %ED%A0%80) as literal text.
        parse_qsl(text, keep_blank_values=True, errors="strict")
        form = {key: values[-1] for key, values in req.form.lists()}
    except (UnicodeDecodeError, ValueError):
        return None
    # Text that cannot be stored (a lone surrogate) is refused here, before any use case writes anything.
    return None if find_invalid_text(form) else form


def unavailable_page(retry_after: int = 30) -> func.HttpResponse:
    response = page_response(message_page("Please try again in a moment",
                                           "We could not save your details just now. Nothing was charged; please try "
                                           "again in a few minutes.", status=503))
    response.headers["Retry-After"] = str(retry_after)
    return response
