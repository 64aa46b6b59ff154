"""Reading and writing orders as the order use cases need them: the order with its account and currency, its lines,
its status (w365_orderstatus), and history notes (annotations) on it."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from core import dates
from core import footprint
from core.errors import BusinessRuleViolation
from core.ports import BatchOperation, Read
from core.money import CURRENCY_EXPAND, Currency, currency_of, format_money as money_text
from core.services import Services
from handlers.charging.ledger import money

ORDERS = "salesorders"
NOTES = "annotations"
ORDER_COLUMNS = (
    "salesorderid", "name", "ordernumber", "totalamount", "totaltax", "totallineitemamount", "discountamount",
    "w365_orderstatus", "w365_paymentdeclined", "w365_activationdate", "w365_signaturename", "w365_approvedon",
    "statecode")
ORDER_EXPAND = "customerid_account($select=accountid,name,creditonhold,_primarycontactid_value)," + CURRENCY_EXPAND
LINE_COLUMNS = ("salesorderdetailid", "productdescription", "quantity", "priceperunit", "baseamount", "tax",
                "extendedamount")


def status(label: str) -> int:
    return footprint.choice("salesorder", "w365_orderstatus", label)


def status_label(value: int | None) -> str:
    return footprint.label("salesorder", "w365_orderstatus", value) if value is not None else "Draft"


@dataclass(frozen=True)
class Order:
    """A sales order of an account, as read for payment or approval. `row` is the Web API record (with its ETag)."""
    row: Mapping[str, Any]

    @property
    def id(self) -> str:
        return self.row["salesorderid"]

    @property
    def etag(self) -> str | None:
        return self.row.get("@odata.etag")

    @property
    def name(self) -> str:
        return self.row.get("name") or self.row.get("ordernumber") or "order"

    @property
    def account(self) -> Mapping[str, Any]:
        return self.row.get("customerid_account") or {}

    @property
    def account_id(self) -> str:
        return self.account["accountid"]

    @property
    def total(self) -> Decimal:
        return money(self.row.get("totalamount"))

    @property
    def status_label(self) -> str:
        return status_label(self.row.get("w365_orderstatus"))

    @property
    def currency(self) -> Currency:
        """The order's transactioncurrency (read with the order); an order always has one, USD if it was not read."""
        return currency_of(self.row) or Currency("", "USD")

    @property
    def activation_date(self) -> dt.datetime | None:
        return parse_datetime(self.row.get("w365_activationdate"))


def load_order(services: Services, order_id: str) -> Order:
    return order_from(services.dataverse.retrieve(ORDERS, order_id, select=ORDER_COLUMNS, expand=ORDER_EXPAND))


def order_from(row: Mapping[str, Any]) -> Order:
    """The order read with ORDER_COLUMNS and ORDER_EXPAND (alone or in a read $batch)."""
    if not row.get("customerid_account"):
        raise BusinessRuleViolation("The order's customer must be an account to take a payment for it.")
    return Order(row)


def order_lines(services: Services, order_id: str) -> list[dict[str, Any]]:
    read = lines_read(order_id)
    return services.dataverse.query(read.target, select=read.select, filter=read.filter, expand=read.expand,
                                    orderby=read.orderby)


def lines_read(order_id: str) -> Read:
    """The order's lines with their products, oldest first (alone or in a read $batch)."""
    return Read.query("salesorderdetails", select=LINE_COLUMNS, filter=f"_salesorderid_value eq {order_id}",
                      expand="productid($select=productid,name)", orderby="createdon asc")


def update_order(services: Services, order_id: str, values: Mapping[str, Any], *, etag: str | None = None) -> None:
    services.dataverse.update(ORDERS, order_id, values, etag=etag)


def add_note(services: Services, order_id: str, subject: str, text: str, *,
             attachment: tuple[str, str, str] | None = None) -> str:
    """A history note on the order. `attachment` is (file name, mime type, base64 body)."""
    return services.dataverse.create(NOTES, _note(order_id, subject, text, attachment))


def note_operation(order_id: str, subject: str, text: str) -> BatchOperation:
    """The same note as part of a changeset, so it is written exactly when the change it tells of is."""
    return BatchOperation.create(NOTES, _note(order_id, subject, text, None))


def _note(order_id: str, subject: str, text: str, attachment: tuple[str, str, str] | None) -> dict[str, Any]:
    note: dict[str, Any] = {"subject": subject[:500], "notetext": text,
                            "objectid_salesorder@odata.bind": f"/{ORDERS}({order_id})"}
    if attachment is not None:
        note.update(isdocument=True, filename=attachment[0], mimetype=attachment[1], documentbody=attachment[2])
    return note


def format_money(amount: Decimal, order: Order, *, code: bool = True) -> str:
    return money_text(money(amount), order.currency, code=code)


iso, parse_datetime = dates.iso, dates.parse            # the order's modules read them from here
