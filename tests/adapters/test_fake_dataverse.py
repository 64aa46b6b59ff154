"""tests/fakes.py's in-memory Dataverse reads `$filter` as the Dataverse stand-in does (the stand-in follows Dataverse):
the same rows, the same filters, the same answer. The unit tests lean on it, so it must not drift."""
from __future__ import annotations

import pytest
import requests

from core.errors import DuplicateRecord
from tests.fakes import InMemoryDataverse

API = "https://contoso.crm.dynamics.com/api/data/v9.2/"
COLUMNS = "invoiceid,invoicenumber,name,statecode,totalamount,_customerid_value,w365_lastchargestatus"


@pytest.mark.parametrize("expr", [
    "statecode eq 0", "statecode ne 0", "invoicenumber eq 'inv-1001'", "invoicenumber eq 'INV-1001' and statecode eq 0",
    "invoicenumber eq 'INV-1001' or invoicenumber eq 'INV-1002'", "startswith(name,'fabrikam')",
    "w365_lastchargestatus eq null", "w365_lastchargestatus ne null", "name eq 'O''Brien'",
    "(statecode eq 0) and (invoicenumber eq 'INV-1002' or statecode eq 1)", "totalamount gt 200",
])
def test_the_fake_answers_filters_like_the_stand_in(dv, ids, expr):
    everything = requests.get(API + "invoices", params={"$select": COLUMNS}).json()["value"]
    fake = InMemoryDataverse()
    for row in everything:
        fake.add("invoices", {k: v for k, v in row.items() if not k.startswith("@")})
    wanted = requests.get(API + "invoices", params={"$select": "invoiceid", "$filter": expr}).json()["value"]
    assert {r["invoiceid"] for r in fake.query("invoices", filter=expr)} == {r["invoiceid"] for r in wanted}


def test_the_customer_lookup_by_guid_matches_whatever_the_case(dv, ids):
    fake = InMemoryDataverse()
    fake.add("invoices", {"invoiceid": "i", "_customerid_value": ids["account"]})
    assert len(fake.query("invoices", filter=f"_customerid_value eq {ids['account'].upper()}")) == 1


def test_the_fake_refuses_a_create_with_an_existing_primary_id_as_the_stand_in_does(dv):
    task = {"activityid": "0b7c7f53-3f0e-5d55-8d43-1a5f7e2b9c10", "subject": "first"}
    assert requests.post(API + "tasks", json=task).status_code == 204
    assert requests.post(API + "tasks", json={**task, "subject": "second"}).status_code == 412
    fake = InMemoryDataverse()
    fake.create("tasks", task)
    with pytest.raises(DuplicateRecord):
        fake.create("tasks", {**task, "subject": "second"})
    assert [t["subject"] for t in fake.tables["tasks"].values()] == ["first"]
