"""The approval page's signature rules and order summary, without I/O."""
from __future__ import annotations

import base64
from decimal import Decimal

import pytest

from handlers.orders.approval import MAX_SIGNATURE_BYTES, PNG_MAGIC, SignatureRefused, parse_signature
from handlers.orders.page import MAX_SIGNATURE_URL, order_summary
from handlers.orders.records import Order

PNG = PNG_MAGIC + b"\x00\x00\x00\rIHDR" + b"\x00" * 64


def url(raw: bytes, prefix: str = "data:image/png;base64,") -> str:
    return prefix + base64.b64encode(raw).decode()


def test_a_png_data_url_and_a_name_make_a_signature():
    signature = parse_signature("  Nancy   Davolio ", url(PNG))
    assert signature.name == "Nancy Davolio" and base64.b64decode(signature.png_base64) == PNG
    assert "png_base64" not in repr(signature)


def test_the_largest_accepted_signature_fits_the_page_limit_and_one_byte_more_does_not():
    biggest = PNG + b"\x00" * (MAX_SIGNATURE_BYTES - len(PNG))
    assert len(url(biggest)) == MAX_SIGNATURE_URL
    parse_signature("Nancy Davolio", url(biggest))
    with pytest.raises(SignatureRefused, match="too large"):
        parse_signature("Nancy Davolio", url(biggest + b"\x00" * 3))


@pytest.mark.parametrize("name,image,problem", [
    ("N", url(PNG), "full name"),
    ("x" * 201, url(PNG), "too long"),
    ("Nancy Davolio", "", "sign"),
    ("Nancy Davolio", url(PNG, "data:image/svg+xml;base64,"), "PNG"),
    ("Nancy Davolio", url(b"<svg onload=alert(1)>"), "PNG"),
    ("Nancy Davolio", "data:image/png;base64,not base64!", "read"),
])
def test_refusals(name, image, problem):
    with pytest.raises(SignatureRefused, match=problem):
        parse_signature(name, image)


def test_the_summary_shows_amounts_in_the_order_currency_and_escapes_names():
    order = Order({"salesorderid": "o", "name": "Q&A <b>", "totalamount": Decimal("108.00"),
                   "totallineitemamount": Decimal("100.00"), "totaltax": Decimal("8.00"),
                   "discountamount": Decimal("0"), "customerid_account": {"accountid": "a"},
                   "transactioncurrencyid": {"isocurrencycode": "EUR", "currencysymbol": "€"}})
    html = order_summary(order, [{"productid": {"name": "<i>Seat</i>"}, "quantity": Decimal("2.00000"),
                                  "priceperunit": Decimal("50"), "baseamount": Decimal("100"),
                                  "tax": Decimal("8")}])
    assert "Q&amp;A &lt;b&gt;" in html and "&lt;i&gt;Seat&lt;/i&gt;" in html
    assert ">2<" in html and "€50.00" in html and "€108.00 EUR" in html and "Discount" not in html
