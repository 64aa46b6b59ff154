"""Stand-in security, actions, faults, persistence and the WSGI adapter, over real HTTP."""
import io
import json
import uuid
from decimal import Decimal

import pytest
import requests
import responses

from standins.dataverse import DataverseStandIn
from standins.dataverse.demo import seed_demo

API = "https://contoso.crm.dynamics.com/api/data/v9.2/"




def test_who_am_i_is_the_app_user_or_the_impersonated_one(dv, ids):
    assert requests.get(API + "WhoAmI").json()["UserId"] == dv.app_user_id
    r = requests.get(API + "WhoAmI", headers={"MSCRMCallerID": ids["salesperson"]})
    assert r.json()["UserId"] == ids["salesperson"]
    assert requests.get(API + "WhoAmI", headers={"MSCRMCallerID": str(uuid.uuid4())}).status_code == 404


def test_impersonated_salesperson_cannot_write_invoices_or_payments(dv, ids):
    as_sales = {"MSCRMCallerID": ids["salesperson"]}
    r = requests.patch(API + f"invoices({ids['invoice1']})", json={"w365_balance": 1}, headers=as_sales)
    assert r.status_code == 403 and r.json()["error"]["code"] == "0x80040220"
    assert str(dv.get("invoice", ids["invoice1"])["w365_balance"]) == "120.00"
    assert requests.post(API + "w365_paymenttransactions", json={"w365_refid": "s1"},
                         headers=as_sales).status_code == 403
    assert requests.get(API + f"invoices({ids['invoice1']})", headers=as_sales).status_code == 200
    assert requests.patch(API + f"salesorders({ids['order']})", json={"w365_orderstatus": 100000001},
                          headers=as_sales).status_code == 204
    # the app user (no header) may do it all
    assert requests.patch(API + f"invoices({ids['invoice1']})", json={"w365_balance": 1}).status_code == 204


def test_retrieve_principal_access(dv, ids):
    def rights(user, target):
        url = (API + f"systemusers({user})/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@tid)"
               f"?@tid={{'@odata.id':'{target}'}}")
        r = requests.get(url)
        assert r.status_code == 200, r.text
        return r.json()["AccessRights"]
    assert rights(ids["salesperson"], f"invoices({ids['invoice1']})") == "ReadAccess, AppendAccess, AppendToAccess"
    assert "WriteAccess" in rights(ids["salesperson"], f"salesorders({ids['order']})")
    assert "DeleteAccess" in rights(ids["admin"], f"accounts({ids['account']})")


def test_send_email_marks_it_sent_and_fills_the_outbox(dv, ids):
    r = requests.post(API + "emails", json={
        "subject": "Add a card", "description": "Use https://x/link",
        "regardingobjectid_account@odata.bind": f"/accounts({ids['account']})",
        "email_activity_parties": [
            {"partyid_queue@odata.bind": f"/queues({ids['queue']})", "participationtypemask": 1},
            {"partyid_contact@odata.bind": f"/contacts({ids['contact']})", "participationtypemask": 2}]})
    email_id = r.headers["OData-EntityId"].split("(")[1].rstrip(")")
    r = requests.post(API + f"emails({email_id})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": True})
    assert r.status_code == 200 and r.json()["Subject"] == "Add a card"
    assert (dv.get("email", email_id)["statecode"], dv.get("email", email_id)["statuscode"]) == (1, 3)
    [sent] = dv.sent_emails()
    assert sent["to"] == ["nancy@fabrikam.example"] and sent["from"] == ["billing@contoso.example"]
    assert sent["regarding"] == {"id": ids["account"], "table": "account"}
    again = requests.post(API + f"emails({email_id})/Microsoft.Dynamics.CRM.SendEmail", json={"IssueSend": True})
    assert again.status_code == 400 and len(dv.sent_emails()) == 1


def test_convert_sales_order_to_invoice_copies_totals_and_lines(dv, ids):
    r = requests.post(API + "ConvertSalesOrderToInvoice",
                      json={"SalesOrderId": ids["order"], "ColumnSet": {"AllColumns": True}})
    assert r.status_code == 200, r.text
    invoice = json.loads(r.text, parse_float=Decimal)
    assert invoice["totalamount"] == Decimal("237.60") and invoice["_salesorderid_value"] == ids["order"]
    assert invoice["_customerid_value"] == ids["account"] and invoice["statecode"] == 0
    lines = requests.get(API + f"invoices({invoice['invoiceid']})?$expand=invoice_details($select=quantity,"
                               "extendedamount;$orderby=extendedamount)").json()["invoice_details"]
    assert [line["extendedamount"] for line in lines] == [108.0, 129.6]
    r = requests.post(API + "ConvertSalesOrderToInvoice", headers={"MSCRMCallerID": ids["salesperson"]},
                      json={"SalesOrderId": ids["order"], "ColumnSet": {"AllColumns": True}})
    assert r.status_code == 403


def test_faults_http_with_retry_after_then_recovery(dv, ids):
    dv.fail_next(1, status=429, retry_after=7, match=lambda method, path: path.startswith("invoices"))
    assert requests.get(API + "accounts").status_code == 200                # not matched
    r = requests.get(API + "invoices")
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert r.json()["error"]["code"] == "0x80072322"
    assert requests.get(API + "invoices").status_code == 200
    dv.fail_next(2, kind="connection")
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            requests.get(API + "WhoAmI")
    assert requests.get(API + "WhoAmI").status_code == 200
    assert dv.request_count == 6 and dv.requests[1] == ("GET", "invoices")
    dv.reset_counters()
    assert dv.request_count == 0 and dv.requests == []


def test_persistence_survives_restart_with_exact_decimals(tmp_path):
    path = str(tmp_path / "dataverse.json")
    first = DataverseStandIn(storage_path=path)
    ids = seed_demo(first)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        first.register_with_responses(rsps)
        requests.patch(API + f"invoices({ids['invoice2']})", data=b'{"w365_balance": 0.10}')
    second = DataverseStandIn(storage_path=path)
    assert second.app_user_id == first.app_user_id
    invoice = second.get("invoice", ids["invoice2"])
    assert invoice["w365_balance"] == Decimal("0.10") and isinstance(invoice["totalamount"], Decimal)
    assert invoice == first.get("invoice", ids["invoice2"])
    assert second.role_names(ids["salesperson"]) == ["Salesperson"]
    assert [p.name for p in tmp_path.iterdir()] == ["dataverse.json"]        # temp file renamed away


def test_wsgi_adapter_serves_under_prefix(dv, ids):
    app = dv.wsgi_app("/dataverse")
    captured = {}

    def start_response(status, headers):
        captured.update(status=status, headers=dict(headers))
    body = b'{"w365_requestid": "wsgi"}'
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/dataverse/api/data/v9.2/w365_operations",
               "QUERY_STRING": "", "wsgi.url_scheme": "http", "HTTP_HOST": "127.0.0.1:7071",
               "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    app(environ, start_response)
    assert captured["status"] == "204 No Content"
    assert captured["headers"]["OData-EntityId"].startswith("http://127.0.0.1:7071/dataverse/api/data/v9.2/")
