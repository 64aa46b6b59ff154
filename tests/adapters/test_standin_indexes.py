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


# --- later pages of a paged read continue from the first page's matches ----------------------------------------------

def _pages(standin, filter_text, page_size):
    """Every page of a paged read (Prefer: odata.maxpagesize), as the Web API client follows @odata.nextLink."""
    url = API + "invoices?" + urlencode({"$select": "invoiceid,totalamount", "$filter": filter_text}, quote_via=quote)
    headers = {"Prefer": f"odata.maxpagesize={page_size}"}
    while url:
        status, _, body = standin.handle("GET", url, headers, None)
        assert status == 200, body
        answer = json.loads(body)
        yield answer["value"]
        url = answer.get("@odata.nextLink")


def _counting_filters(monkeypatch):
    """Counts the rows the stand-in tests against a $filter."""
    from standins.dataverse import http
    tested = [0]

    def counting(table, text):
        predicate = parse_filter(table, text)

        def test(row):
            tested[0] += 1
            return predicate(row)
        return test
    monkeypatch.setattr(http, "parse_filter", counting)
    monkeypatch.setattr(http.Context, "filtered", lambda self, table, rows, options: [
        r for r in rows if counting(table, options["$filter"])(r)] if "$filter" in options else rows)
    return tested


def test_later_pages_test_only_their_own_rows_not_the_whole_table_again(world, monkeypatch):
    tested = _counting_filters(monkeypatch)
    pages = _pages(world, "totalamount gt 0", 40)
    first = next(pages)
    assert len(first) == 40 and tested[0] == 300            # the first page filters the table once
    second = next(pages)
    assert len(second) == 40 and tested[0] == 340           # a later page re-checks its 40 rows only
    rest = [row for page in pages for row in page]
    ids = [r["invoiceid"] for r in first + second + rest]
    assert len(ids) == len(set(ids)) == 300 and tested[0] == 300 + 260   # each later row once


def test_a_later_page_shows_rows_as_they_are_now_and_drops_what_no_longer_matches(world):
    standin = DataverseStandIn()
    account = standin.seed("account", {"name": "Contoso"})
    ids = [standin.seed("invoice", {"name": f"Invoice {n}", "totalamount": Decimal(10 + n),
                                    "customerid_account@odata.bind": f"/accounts({account})"}) for n in range(10)]
    pages = _pages(standin, "totalamount ge 10", 4)
    first = [r["invoiceid"] for r in next(pages)]
    later = [r for r in ids if r not in first]
    standin.update("invoice", later[0], {"totalamount": Decimal(5)})     # no longer matches
    standin.store.delete(standin.store.table("invoice"), later[1])       # gone
    standin.update("invoice", later[2], {"totalamount": Decimal(99)})    # still matches, changed
    rest = {r["invoiceid"]: Decimal(str(r["totalamount"])) for page in pages for r in page}
    assert later[0] not in rest and later[1] not in rest
    assert rest[later[2]] == Decimal(99)
    assert set(rest) | set(first) == set(ids) - {later[0], later[1]}
