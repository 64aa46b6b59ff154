"""A dry run against a new environment plans exactly CONTRACT's tables, columns, messages and steps (names read from
../shared/design/CONTRACT.md, relative to the repository root)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import responses

from dataverse.auth import StaticTokenProvider
from dataverse.client import DataverseClient
from standins.dataverse import DataverseStandIn, metadata
import installer

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO.parent / "shared" / "design" / "CONTRACT.md"
URL = "https://contoso.crm.dynamics.com"


def _section(text: str, number: int) -> str:
    return re.search(rf"^## {number}\..*?(?=^## |\Z)", text, re.S | re.M).group(0)


def contract() -> dict:
    text = CONTRACT.read_text(encoding="utf-8")
    messages = dict(re.findall(r"^\| `(w365_\w+)` \| (\w+) \|", _section(text, 3), re.M))
    events = re.search(r"Table events.*?(?=\n\n)", _section(text, 3), re.S).group(0)
    steps = {(m, t, f or "") for m, t, f in re.findall(r"`(\w+)` of `(\w+)`(?: filtered on `(\w+)`)?", events)}
    steps |= {(m, t, "") for m, t in messages.items()}
    bullets = re.findall(r"^- `(\w+)`(?: \(one row\))?: (.*?)(?=^- |\Z)", _section(text, 4), re.S | re.M)
    not_columns = {n for n, _ in bullets} | {n + "s" for n, _ in bullets}      # table and entity set names
    tables: dict[str, set[str]] = {}
    for name, body in bullets:
        tokens = ["w365_billto" + t if t.startswith("_") else t       # billing columns: `_lastname` after the first
                  for t in re.findall(r"`(\w+)`", body)]
        tables[name] = {t for t in tokens if t.startswith("w365_") and t not in not_columns}
    return {"messages": set(messages), "steps": steps,
            "our_tables": {t for t in tables if t.startswith("w365_")},
            "columns": {t: c for t, c in tables.items() if c}}


@pytest.fixture(scope="module")
def dry_run():
    if not CONTRACT.is_file():
        pytest.skip(f"{CONTRACT} is not there")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        standin = DataverseStandIn()
        metadata.attach(standin)
        standin.register_with_responses(rsps, URL)
        dv = DataverseClient(URL, StaticTokenProvider("t"), sleep=lambda s: None)
        lines: list[str] = []
        result = installer.install(dv, webhook_url="https://app.example/api/dataverse?code=k", webhook_key="k",
                                   dry_run=True, out=lines.append)
        assert standin.requests and all(method == "GET" for method, _ in standin.requests)
        return result.plan, "\n".join(lines)


def _names(plan, *components):
    return {a.name for a in plan.actions if a.component in components and a.change == "create"}


def test_contract_parser_reads_what_it_should():
    if not CONTRACT.is_file():
        pytest.skip(f"{CONTRACT} is not there")
    found = contract()
    assert len(found["messages"]) == 12 and ("Update", "account", "creditonhold") in found["steps"]
    assert "w365_billto_lastname" in found["columns"]["w365_paymentprofile"]
    assert found["columns"]["account"] == {"w365_gatewaycustomerprofileid"}


def test_dry_run_plans_exactly_the_contract_tables(dry_run):
    plan, _ = dry_run
    assert _names(plan, "table") == contract()["our_tables"]


def test_dry_run_plans_exactly_the_contract_columns(dry_run):
    plan, _ = dry_run
    planned: dict[str, set[str]] = {}
    for name in _names(plan, "column", "lookup"):
        table, column = name.split(".")
        planned.setdefault(table, set()).add(column)
    for table in _names(plan, "table"):
        planned.setdefault(table, set()).add("w365_name")       # the primary name comes with the table
    expected = contract()["columns"]
    # A table of ours the contract lists without a name column still gets one (every table has a primary name).
    assert {t: c - {"w365_name"} for t, c in planned.items()} == {t: c - {"w365_name"} for t, c in expected.items()}
    assert all("w365_name" in planned[t] for t in expected if "w365_name" in expected[t])


def test_dry_run_plans_exactly_the_contract_messages_and_steps(dry_run):
    plan, _ = dry_run
    assert _names(plan, "custom api") == contract()["messages"]
    planned = set()
    for action in plan.actions:
        if action.component == "step":
            message, table = re.fullmatch(r"W365: (\w+) of (\w+)", action.name).groups()
            filtering = re.search(r"filtering (\S+)", action.detail)
            columns = filtering.group(1).split(",") if filtering else [""]
            # The configuration step also watches the autopay switch: CONTRACT §4 sets w365_autopaysince when autopay
            # is first switched on. Every other step filters on exactly what §3 says.
            if (message, table) == ("Update", "w365_configuration"):
                assert columns[1:] == ["w365_autopayenabled"]
            planned.add((message, table, columns[0]))
    assert planned == contract()["steps"]


def test_dry_run_prints_every_planned_name_in_a_table(dry_run):
    plan, text = dry_run
    rows = [line.split() for line in text.splitlines() if re.match(r"\d+\s+(create|update)\s", line)]
    assert len(rows) == len(plan.changes)
    printed = " ".join(text.splitlines())
    for action in plan.actions:
        assert action.name in printed
