"""The bill-to field table is core/bill_to.py; every other list of those fields is derived from it or checked here."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from core import bill_to, footprint
from core.ports import BillTo

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "webresources" / "w365_" / "scripts"


def test_the_table_covers_the_bill_to_port_and_the_footprint_columns():
    assert [f.attribute for f in bill_to.FIELDS] == [f.name for f in dataclasses.fields(BillTo)]
    columns = {c.name: c.max_length for c in footprint.table("w365_paymentprofile").columns}
    assert {f.column: f.limit for f in bill_to.FIELDS}.items() <= columns.items()


def test_the_direct_entry_dialog_lists_the_same_fields_in_the_same_order_and_requires_the_same():
    source = (SCRIPTS / "directentry.js").read_text(encoding="utf-8")
    listed = re.search(r"var BILL_TO = \[([^\]]*)\]", source).group(1)
    assert re.findall(r'"(\w+)"', listed) == [f.name for f in bill_to.FIELDS]
    required = re.search(r"var REQUIRED = \{(.*?)\};", source, re.S).group(1)
    assert set(re.findall(r"(\w+):", required)) - {"contact"} == {f.name for f in bill_to.FIELDS if f.required}


def test_the_payment_profile_form_script_maps_each_column_to_its_name():
    source = (SCRIPTS / "paymentprofile.js").read_text(encoding="utf-8")
    pairs = re.findall(r'(\w+): value\("(w365_billto_\w+)"\)', source)
    assert pairs == [(f.name, f.column) for f in bill_to.FIELDS]


def test_the_direct_entry_page_asks_for_each_field_with_the_tables_limit_and_requirement():
    page = (ROOT / "webresources" / "w365_" / "pages" / "directentry.html").read_text(encoding="utf-8")
    inputs = {m.group(1): m.group(0) for m in re.finditer(r'<input id="(\w+)"[^>]*>', page)}
    for field in bill_to.FIELDS:
        tag = inputs[field.name]
        assert f'name="{field.name}"' in tag and f'maxlength="{field.limit}"' in tag, tag
        assert (" required" in tag) is field.required, tag
    labels = dict(re.findall(r'<label for="(\w+)">([^<]+)', page))
    assert {f.name: labels[f.name].strip() for f in bill_to.FIELDS} == {f.name: f.label for f in bill_to.FIELDS}
