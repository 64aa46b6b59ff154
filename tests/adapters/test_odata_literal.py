"""core/odata.py: the one way a value becomes an OData literal, checked against the stand-in's $filter parser."""
from __future__ import annotations

import pathlib
import re
import uuid
from decimal import Decimal

import pytest
import requests

from core import odata

API = "https://contoso.crm.dynamics.com/api/data/v9.2/"


@pytest.mark.parametrize("value, text", [
    ("INV-1001", "'INV-1001'"), ("O'Brien", "'O''Brien'"), ("''", "''''''"), ("", "''"),
    (True, "true"), (False, "false"), (None, "null"), (7, "7"), (Decimal("10.50"), "10.50"),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
])
def test_literals(value, text):
    assert odata.literal(value) == text


def test_a_float_or_other_object_is_refused():
    for value in (1.5, object(), ["a"]):
        with pytest.raises(TypeError):
            odata.literal(value)


def test_a_value_with_quotes_matches_itself_and_cannot_add_a_clause(dv):
    dv.seed("w365_paymenttransaction", {"w365_name": "a", "w365_refid": "O'Brien-1"})
    dv.seed("w365_paymenttransaction", {"w365_name": "b", "w365_refid": "other"})

    def names(value):
        answer = requests.get(API + "w365_paymenttransactions",
                              params={"$select": "w365_name", "$filter": odata.eq("w365_refid", value)})
        assert answer.status_code == 200, answer.text
        return [row["w365_name"] for row in answer.json()["value"]]

    assert names("O'Brien-1") == ["a"]
    assert names("x' or w365_refid ne 'x") == []          # an attempt to widen the filter stays one odd literal


def test_no_module_quotes_a_filter_value_by_hand():
    """Every text literal in a $filter goes through core/odata.py: a hand-made `'{value}'` is how a quote in a value
    (a webhook's, a customer's) would end the literal early."""
    root = pathlib.Path(__file__).resolve().parents[2]
    by_hand = re.compile(r"""(eq|ne|,)\s?'\{|"'", "''"|chr\(39\)""")
    offenders = [f"{path.relative_to(root)}:{number}"
                 for folder in ("app", "core", "handlers", "dataverse", "gateway", "adapters", "installer")
                 for path in sorted((root / folder).rglob("*.py")) if path != root / "core" / "odata.py"
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if by_hand.search(line)]
    assert offenders == []
