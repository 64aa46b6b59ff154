"""Stand-in reads over real HTTP (requests + responses): $filter, $select, $expand, $orderby, paging, errors."""
import json
from decimal import Decimal

import pytest
import requests
from hypothesis import given, settings, strategies as st

from core import footprint
from standins.dataverse.query import parse_filter
from standins.dataverse.store import ODataError

API = "https://contoso.crm.dynamics.com/api/data/v9.2/"




def get(path, **headers):
    return requests.get(API + path, headers=headers)


def test_retrieve_with_select_shapes_record_like_web_api(dv, ids):
    r = get(f"invoices({ids['invoice1']})?$select=totalamount,w365_balance,_customerid_value,statecode")
    assert r.status_code == 200
    assert '"totalamount":120.00' in r.text          # Decimal written digit for digit, never via float
    body = json.loads(r.text, parse_float=Decimal)
    assert body["@odata.context"] == f"{API}$metadata#invoices(totalamount,w365_balance,_customerid_value,statecode)/$entity"
    assert body["@odata.etag"].startswith('W/"')
    assert body["_customerid_value"] == ids["account"] and body["invoiceid"] == ids["invoice1"]
    assert set(body) == {"@odata.context", "@odata.etag", "totalamount", "w365_balance", "_customerid_value",
                         "statecode", "invoiceid"}
    assert body["w365_balance"] == Decimal("120.00")


@pytest.mark.parametrize("expr, expected", [
    ("totalamount gt 200", {"INV-1002"}),
    ("totalamount ge 120 and totalamount lt 250.00", {"INV-1001"}),
    ("invoicenumber eq 'inv-1001'", {"INV-1001"}),                 # Dataverse compares text case-insensitively
    ("not (invoicenumber eq 'INV-1001')", {"INV-1002"}),
    ("(statecode eq 0) and (contains(name,'1002') or endswith(invoicenumber,'01'))", {"INV-1001", "INV-1002"}),
    ("startswith(name,'Fabrikam') and w365_lastchargestatus eq null", {"INV-1001", "INV-1002"}),
    ("w365_lastchargestatus ne null", set()),
    ("duedate lt 2030-01-01T00:00:00Z", set()),                    # null never compares
    ("createdon gt 2000-01-01T00:00:00Z", {"INV-1001", "INV-1002"}),
    ("name eq 'O''Brien'", set()),
])
def test_filter_semantics(dv, ids, expr, expected):
    r = requests.get(API + "invoices", params={"$select": "invoicenumber", "$filter": expr})
    assert r.status_code == 200, r.text
    assert {v["invoicenumber"] for v in r.json()["value"]} == expected


def test_filter_on_lookup_value_and_guid_literal(dv, ids):
    r = requests.get(API + "contacts", params={"$filter": f"_parentcustomerid_value eq {ids['account'].upper()}"})
    assert [c["contactid"] for c in r.json()["value"]] == [ids["contact"]]
    other = "00000000-0000-0000-0000-000000000001"
    assert requests.get(API + "contacts", params={"$filter": f"_parentcustomerid_value eq {other}"}).json()["value"] == []


@pytest.mark.parametrize("expr", [
    "totalamount gt", "totalamount eq 'abc'", "statecode eq 0 and", "(statecode eq 0", "statecode eq 0)",
    "nosuchcolumn eq 1", "customerid eq null", "statecode in (0,1)", "name eq 'unterminated",
    "contains(totalamount,'1')", "customerid_account/name eq 'x'", "substringof('a',name)", "statecode eq 0; drop",
    "(" * 500 + "statecode eq 0" + ")" * 500, "not " * 200 + "statecode eq 0", "totalamount gt null", "",
    "statecode eq 1 statecode eq 2", "name", "$filter",
])
def test_hostile_or_unsupported_filters_are_400(dv, ids, expr):
    r = requests.get(API + "invoices", params={"$filter": expr})
    assert r.status_code == 400, expr
    error = r.json()["error"]
    assert error["code"].startswith("0x") and error["message"]


def test_unknown_entity_set_and_property(dv, ids):
    r = get("nosuchthings")
    assert r.status_code == 404 and "Resource not found for the segment 'nosuchthings'" in r.json()["error"]["message"]
    r = get(f"accounts({ids['account']})?$select=name,nosuch")
    assert r.status_code == 400
    assert r.json()["error"]["message"] == ("Could not find a property named 'nosuch' on type "
                                            "'Microsoft.Dynamics.CRM.account'.")
    assert get("accounts?$skip=1").status_code == 400
    assert get("accounts(00000000-0000-0000-0000-000000000009)").status_code == 404


def test_expand_single_valued_nested_and_collection(dv, ids):
    r = get(f"salesorders({ids['order']})?$select=name&$expand=customerid_account($select=name;"
            f"$expand=primarycontactid($select=fullname,emailaddress1)),order_details($select=quantity,priceperunit;"
            f"$filter=priceperunit gt 50;$orderby=quantity desc)")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["customerid_account"]["name"] == "Fabrikam"
    assert body["customerid_account"]["primarycontactid"]["emailaddress1"] == "nancy@fabrikam.example"
    assert [line["priceperunit"] for line in body["order_details"]] == [100.0]
    r = get(f"accounts({ids['account']})?$select=name&$expand=w365_billingcontract_accountid($select=w365_name)")
    assert [c["w365_name"] for c in r.json()["w365_billingcontract_accountid"]] == ["Fabrikam billing"]
    r = get(f"systemusers({ids['salesperson']})?$select=fullname&$expand=systemuserroles_association($select=name)")
    assert [x["name"] for x in r.json()["systemuserroles_association"]] == ["Salesperson"]
    assert get(f"accounts({ids['account']})?$expand=nosuchnav").status_code == 400


def test_orderby_count_and_paging_with_working_next_link(dv, ids):
    for i in range(5):
        dv.seed("w365_operation", {"w365_requestid": f"req-{i}", "w365_name": f"op {i}"})
    dv.reset_counters()
    url, seen, pages = API + "w365_operations?$select=w365_requestid&$orderby=w365_requestid desc&$count=true", [], 0
    while url:
        r = requests.get(url, headers={"Prefer": "odata.maxpagesize=2"})
        assert r.status_code == 200 and r.headers["Preference-Applied"] == "odata.maxpagesize=2"
        body = r.json()
        assert body["@odata.count"] == 5
        seen += [v["w365_requestid"] for v in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert seen == ["req-4", "req-3", "req-2", "req-1", "req-0"] and pages == 3
    assert dv.request_count == 3 and all(p == "w365_operations" for _, p in dv.requests)
    r = get("w365_operations?$top=2&$orderby=w365_requestid")
    assert [v["w365_requestid"] for v in r.json()["value"]] == ["req-0", "req-1"] and "@odata.nextLink" not in r.json()


def test_annotations_when_preferred(dv, ids):
    r = get(f"invoices({ids['invoice1']})?$select=statecode,_customerid_value",
            Prefer='odata.include-annotations="*"')
    body = r.json()
    assert body["statecode@OData.Community.Display.V1.FormattedValue"] == "Active"
    assert body["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert body["_customerid_value@OData.Community.Display.V1.FormattedValue"] == "Fabrikam"


_WORDS = st.sampled_from(["statecode", "name", "totalamount", "_customerid_value", "eq", "ne", "gt", "and", "or",
                          "not", "(", ")", ",", "null", "true", "0", "1.5", "'a''b'", "'", "contains",
                          "2026-01-01T00:00:00Z", "00000000-0000-0000-0000-000000000001", "/", "$", "-"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(_WORDS, max_size=12).map(" ".join)))
def test_filter_parser_never_crashes(text):
    """Any input either compiles to a predicate that evaluates on a row, or is a 400 ODataError."""
    table = footprint.table("invoice")
    try:
        predicate = parse_filter(table, text)
    except ODataError as e:
        assert e.status == 400
        return
    predicate({"statecode": 0, "name": "A", "totalamount": None, "customerid": None})


def test_an_impossible_date_in_filter_is_400_not_a_null_test():
    # 2024-13-45 must not silently become `eq null` (Dataverse refuses the literal).
    with pytest.raises(ODataError) as caught:
        parse_filter(footprint.table("invoice"), "createdon eq 2024-13-45")
    assert caught.value.status == 400
