"""The stand-in answers keyset pages (`$orderby=<primary id>&$top=N`, `<id> gt <last>` after the first page) through
its ordered ids instead of filtering, sorting and slicing the whole table: the answers must be the ones the full
scan gives, whatever the filter, and stay so as rows come and go."""
import dataclasses
import json
import random
import uuid
from decimal import Decimal
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings, strategies as st

from core import footprint
from standins.dataverse import DataverseStandIn
from standins.dataverse.query import conjuncts, parse_filter
from standins.dataverse.store import ODataError

API = "https://contoso.crm.dynamics.com/api/data/v9.2/"


def get(standin, table_set, **options):
    status, _, body = standin.handle("GET", API + table_set + "?" + urlencode(options, quote_via=quote), {}, None)
    assert status == 200, body
    return [row["invoiceid"] for row in json.loads(body)["value"]]


def keyset_page(standin, filter_text, top):
    options = {"$select": "invoiceid", "$orderby": "invoiceid", "$top": str(top)}
    return get(standin, "invoices", **options, **({"$filter": filter_text} if filter_text else {}))


def scanned(standin, filter_text):
    """The whole sorted answer, which the stand-in can only give by scanning ($count asks for every match)."""
    options = {"$select": "invoiceid", "$orderby": "invoiceid", "$count": "true"}
    return get(standin, "invoices", **options, **({"$filter": filter_text} if filter_text else {}))


@pytest.fixture(scope="module")
def world():
    standin = DataverseStandIn()
    account = standin.seed("account", {"name": "Contoso"})
    chance = random.Random(5)
    for n in range(300):
        standin.seed("invoice", {
            "invoiceid": str(uuid.UUID(int=chance.getrandbits(128))), "name": f"Invoice {n}",
            "totalamount": Decimal(chance.randint(1, 400)), "customerid_account@odata.bind": f"/accounts({account})",
            "duedate": None if n % 7 == 0 else f"2026-11-{1 + n % 28:02d}T00:00:00Z"})
    return standin


def _ids(standin):
    return sorted(standin.store.rows["invoice"])


FILTERS = st.sampled_from([
    None, "totalamount gt 200", "statecode eq 0 and totalamount le 100", "duedate ne null and duedate lt 2026-11-15",
    "totalamount gt 300 or duedate eq null", "not (totalamount gt 50)", "contains(name,'1')",
])


@settings(max_examples=150, deadline=None)
@given(rest=FILTERS, bound=st.integers(0, 299), op=st.sampled_from(["gt", "ge", None]), upper=st.booleans(),
       inside_or=st.booleans(), top=st.integers(1, 400))
def test_a_keyset_page_is_the_first_n_of_the_full_scan(world, rest, bound, op, upper, inside_or, top):
    key = _ids(world)[bound]
    key = key.upper() if upper else key                    # a GUID literal in any case names the same row
    clauses = [f"({rest})"] if rest else []
    if op:
        clauses.append(f"(invoiceid {op} {key} or totalamount eq -1)" if inside_or else f"invoiceid {op} {key}")
    filter_text = " and ".join(clauses) or None
    assert keyset_page(world, filter_text, top) == scanned(world, filter_text)[:top]


def test_paging_by_key_reads_every_match_once_in_order(world):
    due = "duedate ne null and totalamount gt 120"
    pages, after = [], None
    while True:
        page = keyset_page(world, due + (f" and invoiceid gt {after}" if after else ""), 25)
        pages += page
        if len(page) < 25:
            break
        after = page[-1]
    assert pages == scanned(world, due) and len(pages) > 100


def test_the_key_order_follows_rows_coming_and_going():
    standin = DataverseStandIn()
    account = standin.seed("account", {"name": "Contoso"})
    made = [standin.seed("invoice", {"name": f"I{n}", "customerid_account@odata.bind": f"/accounts({account})"})
            for n in range(20)]
    assert keyset_page(standin, None, 100) == scanned(standin, None) == sorted(made)
    late = standin.seed("invoice", {"name": "late", "customerid_account@odata.bind": f"/accounts({account})"})
    assert late in keyset_page(standin, None, 100)
    status, _, _ = standin.handle("DELETE", API + f"invoices({made[3]})", {}, None)
    assert status == 204
    assert keyset_page(standin, None, 100) == scanned(standin, None) == sorted(set(made + [late]) - {made[3]})
    # A changeset that fails half-way takes its insert back with it.
    boundary, changeset = "batch_x", "changeset_y"
    body = (f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
            f"POST {API}invoices HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
            f'{{"name": "rolled back", "customerid_account@odata.bind": "/accounts({account})"}}\r\n'
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\n"
            f"PATCH {API}invoices(00000000-0000-0000-0000-000000000009) HTTP/1.1\r\nContent-Type: application/json\r\n"
            f"If-Match: *\r\n\r\n{{\"name\": \"missing\"}}\r\n--{changeset}--\r\n--{boundary}--\r\n")
    status, _, _ = standin.handle("POST", API + "$batch", {"Content-Type": f"multipart/mixed; boundary={boundary}"},
                                  body.encode())
    assert status == 400
    assert keyset_page(standin, None, 100) == scanned(standin, None) == sorted(set(made + [late]) - {made[3]})


def test_only_the_comparisons_every_match_meets_narrow_the_rows():
    table = footprint.INVOICE
    key = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert conjuncts(parse_filter(table, f"statecode eq 0 and (invoiceid gt {key.upper()} and totalamount gt 5)")) == (
        ("statecode", "eq", 0), ("invoiceid", "gt", key), ("totalamount", "gt", Decimal(5)))
    assert conjuncts(parse_filter(table, f"statecode eq 0 or invoiceid gt {key}")) == ()
    assert conjuncts(parse_filter(table, f"not (invoiceid gt {key})")) == ()
    assert conjuncts(parse_filter(table, "invoiceid ne null and statecode eq 0")) == (("statecode", "eq", 0),)


def test_a_parse_is_reused_only_for_the_same_table():
    grown = dataclasses.replace(footprint.INVOICE, columns=footprint.INVOICE.columns + (
        footprint.Column("w365_extra", "integer"),))
    assert parse_filter(grown, "w365_extra eq 1")({"w365_extra": 1})
    with pytest.raises(ODataError):                      # the footprint's invoice has no such column
        parse_filter(footprint.INVOICE, "w365_extra eq 1")
