"""The customer pages' templates and form reader (handlers/customer_pages/): escaping, the CSP nonce on every inline
element, unnamed card inputs, jinja2 loaded only when a page is rendered, the request's own form parser behind the
size, type and UTF-8 guards."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import azure.functions as func
import pytest

from handlers.customer_pages import html as pages
from handlers.customer_pages.http import MAX_FORM_BYTES, read_form
from tests.deployment.test_real_mode_imports import _index_in_fresh_process


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def _elements(body: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(body)
    return parser.elements


def _profile_page(**overrides):
    context = dict(title="Add a payment card", accept_js_url="https://jstest.authorize.net/v1/Accept.js",
                   scripts=("card_form.js",), page_data=pages.accept_js_data("key</script><b>", "login"),
                   contact={"fullname": "<b>Nancy</b>", "emailaddress1": "n@example.com", "telephone1": None},
                   account_name="Q&A \"Co\"", values={"firstName": "\"><script>x</script>"}, error="<i>bad</i>",
                   action="/api/profile-requests/abc")
    context.update(overrides)
    return pages.render("profile_request.html", **context)


def test_values_are_escaped_everywhere_and_none_is_empty():
    body = _profile_page().body
    assert "<b>Nancy</b>" not in body and "&lt;b&gt;Nancy&lt;/b&gt;" in body
    assert "Q&amp;A &#34;Co&#34;" in body and "&lt;i&gt;bad&lt;/i&gt;" in body
    assert 'value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in body
    assert "None" not in body                                    # a missing phone shows "-", never "None"
    data = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', body, re.S).group(1)
    assert "</script>" not in data and "\\u003c/script\\u003e" in data    # JSON cannot close its element


def test_every_inline_style_and_script_carries_the_responses_nonce_and_the_csp_allows_only_it():
    page = _profile_page()
    nonce = re.search(r"'nonce-([^']+)'", page.headers["Content-Security-Policy"]).group(1)
    inline = [attrs for tag, attrs in _elements(page.body) if tag in ("style", "script")
              and attrs.get("type") != "application/json"]
    assert len(inline) == 3                                      # page.css, Accept.js, card_form.js
    assert all(attrs.get("nonce") == nonce for attrs in inline)
    assert page.headers["Cache-Control"] == "no-store" and page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert _profile_page().headers["Content-Security-Policy"] != page.headers["Content-Security-Policy"]


def test_card_inputs_have_no_name_and_the_bill_to_fields_follow_the_table():
    elements = _elements(_profile_page().body)
    inputs = {attrs.get("id"): attrs for tag, attrs in elements if tag == "input"}
    for card in ("cardNumber", "expMonth", "expYear", "cardCode"):
        assert "name" not in inputs[card]
    assert inputs["zip"]["maxlength"] == "20" and "required" in inputs["zip"] and "required" not in inputs["state"]


def test_jinja2_is_imported_at_the_first_page_not_with_the_function_app():
    indexed = _index_in_fresh_process()
    assert not [m for m in indexed["modules"] if m == "jinja2" or m.startswith("jinja2.")]


def _request(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> func.HttpRequest:
    return func.HttpRequest("POST", "http://localhost/api/profile-requests/x", body=body,
                            headers={"Content-Type": content_type})


def test_the_form_is_read_by_the_requests_parser_behind_the_guards():
    form = read_form(_request(b"firstName=Zo%C3%AB+M&state=&dataValue=a%2Bb&city=One&city=Two"))
    assert form == {"firstName": "Zoë M", "state": "", "dataValue": "a+b", "city": "Two"}
    assert read_form(_request(b"firstName=x", "application/x-www-form-urlencoded; charset=utf-8")) == {"firstName": "x"}


@pytest.mark.parametrize("body, content_type", [
    (b"firstName=x", "multipart/form-data; boundary=x"),
    (b"firstName=x", "application/json"),
    (b"a=" + b"x" * MAX_FORM_BYTES, "application/x-www-form-urlencoded"),
    (b"firstName=\xff\xfe", "application/x-www-form-urlencoded"),
])
def test_a_body_that_is_not_a_small_utf8_urlencoded_form_is_refused(body, content_type):
    assert read_form(_request(body, content_type)) is None
