"""The stand-in runs FetchXML as the Web API does (`GET <entityset>?fetchXml=...`): first on Microsoft's published
example data set and results (tests/fixtures/dataverse/fetchxml_aggregate.json), then refusals."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from core import footprint
from standins.dataverse import DataverseStandIn

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "fixtures/dataverse/fetchxml_aggregate.json")
                     .read_text(encoding="utf-8"))
URL = "https://contoso.crm.dynamics.com/api/data/v9.2/"


def get(standin: DataverseStandIn, entity_set: str, fetch_xml: str) -> tuple[int, dict]:
    status, _, body = standin.handle("GET", f"{URL}{entity_set}?fetchXml={quote(fetch_xml)}", {}, None)
    return status, json.loads(body)


@pytest.fixture(scope="module")
def documented():
    """The stand-in with the documentation's accounts (account gains its two columns of the example)."""
    account = footprint.table("account")
    extended = dataclasses.replace(account, columns=account.columns + (
        footprint.Column("numberofemployees", "integer"), footprint.Column("address1_city", "string", max_length=80)))
    standin = DataverseStandIn(tuple(extended if t is account else t for t in footprint.TABLES))
    for row in FIXTURE["accounts"]:
        standin.seed("account", row)
    return standin


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=["aggregates", "groupby", "dategrouping"])
def test_the_documented_aggregates_give_the_documented_results(documented, case):
    status, body = get(documented, FIXTURE["web_api"]["entity_set"], case["fetch"])
    assert status == 200, body
    assert body["value"] == case["result"]
    assert body["@odata.context"].endswith("$metadata#accounts")


def test_a_plain_fetch_filters_orders_and_links(documented):
    fetch_xml = ("<fetch top='3'><entity name='account'><attribute name='name' /><attribute name='numberofemployees' />"
                 "<order attribute='numberofemployees' descending='true' /><filter type='and'>"
                 "<condition attribute='address1_city' operator='eq' value='redmond' /></filter>"
                 "<link-entity name='contact' from='contactid' to='primarycontactid' link-type='outer' alias='pc'>"
                 "<attribute name='fullname' /></link-entity></entity></fetch>")
    status, body = get(documented, "accounts", fetch_xml)
    assert status == 200, body
    assert [(r["name"], r["numberofemployees"], r["pc.fullname"]) for r in body["value"]] == [
        ("A. Datum Corporation (sample)", 6200, None), ("City Power & Light (sample)", 2900, None),
        ("Contoso Pharmaceuticals (sample)", 1500, None)]
    inner = fetch_xml.replace("link-type='outer'", "link-type='inner'")
    assert get(documented, "accounts", inner)[1]["value"] == []           # no account has a primary contact


@pytest.mark.parametrize("fetch_xml, words", [
    ("<fetch><entity name='account'><attribute name='nosuchcolumn' /></entity></fetch>", "nosuchcolumn"),
    ("<fetch><entity name='contact'><attribute name='fullname' /></entity></fetch>", "entity set"),
    ("<fetch aggregate='true'><entity name='account'><attribute name='createdon' groupby='true' alias='p' "
     "dategrouping='fiscal-period' /></entity></fetch>", "fiscal-period"),
    ("<fetch aggregate='true'><entity name='account'><attribute name='name' /></entity></fetch>", "alias"),
    ("<fetch><entity name='account'><filter><condition attribute='name' operator='begins-with' value='A' />"
     "</filter></entity></fetch>", "begins-with"),
    ("<fetch><entity name='account'", "not XML"),
])
def test_what_is_not_supported_is_a_400_never_a_different_result(documented, fetch_xml, words):
    status, body = get(documented, "accounts", fetch_xml)
    assert status == 400 and words in body["error"]["message"]
