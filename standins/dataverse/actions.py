"""The Dataverse messages the service calls besides CRUD: WhoAmI, SendEmail, ConvertSalesOrderToInvoice,
RetrievePrincipalAccess. Each takes the request Context (standins.dataverse.http) and returns (status, headers, body)."""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from core import footprint
from standins.dataverse.security import access_rights
from standins.dataverse.store import GUID, ODataError, bad_request, dumps, not_found

if TYPE_CHECKING:
    from standins.dataverse.http import Context

JSON = "application/json; odata.metadata=minimal"
LINE_COLUMNS = ("productid", "productdescription", "quantity", "priceperunit", "baseamount", "tax", "extendedamount")
ORDER_COLUMNS = ("name", "customerid", "pricelevelid", "transactioncurrencyid", "totalamount", "totaltax",
                 "totallineitemamount", "discountamount", "description")


def _ok(ctx: "Context", kind: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": JSON}, dumps({"@odata.context": f"{ctx.root}$metadata#{kind}", **body}).encode()


def who_am_i(ctx: "Context"):
    standin = ctx.standin
    return _ok(ctx, "Microsoft.Dynamics.CRM.WhoAmIResponse", {
        "BusinessUnitId": standin.business_unit_id, "UserId": ctx.caller, "OrganizationId": standin.organization_id})


def _address(ctx: "Context", party: dict[str, Any]) -> str | None:
    if party.get("addressused"):
        return party["addressused"]
    ref = party.get("partyid")
    if not ref:
        return None
    row = ctx.store.find(ctx.store.table(ref["table"]), ref["id"]) or {}
    return row.get({"contact": "emailaddress1", "account": "emailaddress1", "queue": "emailaddress",
                     "systemuser": "internalemailaddress"}[ref["table"]])


def send_email(ctx: "Context", email: dict[str, Any], body: dict[str, Any]):
    """Marks the email Completed/Sent and, with IssueSend, puts it in the outbox tests and the dev host read."""
    table = ctx.store.table("email")
    ctx.standin.require(ctx.caller, "write", table)
    if not isinstance(body.get("IssueSend"), bool):
        raise bad_request("SendEmail needs the boolean parameter IssueSend.")
    if email["statecode"] != 0:
        raise bad_request("This email is not a draft and cannot be sent again.", "0x8004360e")
    parties = [p for p in ctx.store.rows.get("activityparty", {}).values()
               if (p.get("activityid") or {}).get("id") == email["activityid"]]
    to = [_address(ctx, p) for p in parties if p.get("participationtypemask") == 2]
    senders = [_address(ctx, p) for p in parties if p.get("participationtypemask") == 1]
    if not to:
        raise bad_request("The email must have at least one recipient before it can be sent.", "0x80040203")
    if None in to:
        raise bad_request("A recipient of the email has no email address.", "0x8004360d")
    ctx.store.update(table, email, {"statecode": 1, "statuscode": 3})
    if body["IssueSend"]:
        regarding = email.get("regardingobjectid")
        ctx.store.send({"id": email["activityid"], "subject": email.get("subject"),
                                 "description": email.get("description"), "to": to, "from": senders,
                                 "regarding": dict(regarding) if regarding else None, "sent_by": ctx.caller})
    return _ok(ctx, "Microsoft.Dynamics.CRM.SendEmailResponse", {"Subject": email.get("subject")})


def convert_sales_order_to_invoice(ctx: "Context", body: dict[str, Any]):
    """A new Active invoice with the order's customer, price list, currency, totals and lines, linked to the order."""
    order_id = body.get("SalesOrderId")
    if not isinstance(order_id, str) or not GUID.match(order_id):
        raise bad_request("ConvertSalesOrderToInvoice needs SalesOrderId (a GUID).")
    if not isinstance(body.get("ColumnSet"), dict):
        raise bad_request("ConvertSalesOrderToInvoice needs ColumnSet.")
    store = ctx.store
    order_table, invoice_table = store.table("salesorder"), store.table("invoice")
    detail_table = store.table("invoicedetail")
    order = store.find(order_table, order_id)
    if order is None:
        raise not_found("salesorder", order_id)
    ctx.standin.require(ctx.caller, "read", order_table)
    ctx.standin.require(ctx.caller, "create", invoice_table)
    values = {c: order.get(c) for c in ORDER_COLUMNS if order.get(c) is not None}
    values["salesorderid"] = {"id": order["salesorderid"], "table": "salesorder"}
    invoice = store.insert(invoice_table, values)
    for line in [r for r in store.rows["salesorderdetail"].values()
                 if (r.get("salesorderid") or {}).get("id") == order["salesorderid"]]:
        detail = {c: line.get(c) for c in LINE_COLUMNS if line.get(c) is not None}
        detail["invoiceid"] = {"id": invoice["invoiceid"], "table": "invoice"}
        store.insert(detail_table, detail)
    columns = body["ColumnSet"].get("Columns")
    select = None if body["ColumnSet"].get("AllColumns") or not columns else \
        [invoice_table.column(c) for c in columns if invoice_table.column(c) is not None]
    return 200, {"Content-Type": JSON}, dumps({"@odata.context": f"{ctx.root}$metadata#invoices/$entity",
                                               **ctx.shape(invoice_table, invoice, select, [])}).encode()


def retrieve_principal_access(ctx: "Context", user: dict[str, Any], segment: str):
    """`RetrievePrincipalAccess(Target=@tid)?@tid={'@odata.id':'accounts(<id>)'}` -> {"AccessRights": "..."}."""
    m = re.fullmatch(r"Microsoft\.Dynamics\.CRM\.RetrievePrincipalAccess\(Target=(@\w+)\)", segment)
    if not m or m.group(1) not in ctx.query:
        raise bad_request("RetrievePrincipalAccess needs Target=@alias and the alias in the query string.")
    try:
        target = json.loads(ctx.query[m.group(1)].replace("'", '"'))["@odata.id"]
    except (ValueError, KeyError, TypeError):
        raise bad_request("The Target parameter must be {'@odata.id':'<entityset>(<id>)'}.") from None
    ref = re.search(r"(\w+)\(([^)]+)\)$", target)
    if not ref:
        raise bad_request(f"'{target}' is not an entity reference.")
    try:
        table = footprint.table_by_entity_set(ref.group(1))
    except KeyError:
        raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{ref.group(1)}'.") from None
    if ctx.store.find(table, ref.group(2)) is None:
        raise not_found(table.logical_name, ref.group(2))
    rights = access_rights(ctx.standin.role_names(user["systemuserid"]), table.logical_name)
    return _ok(ctx, "Microsoft.Dynamics.CRM.RetrievePrincipalAccessResponse", {"AccessRights": rights})
