"""The product's views and charts (installer/product.py) run by the stand-in, as the Web API runs them
(`GET <entityset>?fetchXml=...`), on known data: each returns what a billing team expects to see."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from urllib.parse import quote

import pytest

from core import footprint
from installer import product
from standins.dataverse import DataverseStandIn
from tests.conftest import MovableClock

URL = "https://contoso.crm.dynamics.com/api/data/v9.2/"
NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.timezone.utc)
PT = "w365_paymenttransaction"


def c(table: str, column: str, label: str) -> int:
    return footprint.choice(table, column, label)


@pytest.fixture(scope="module")
def data():
    standin = DataverseStandIn(clock=MovableClock(NOW))
    s = standin.seed
    held = s("account", {"name": "Held Co", "creditonhold": True})
    free = s("account", {"name": "Free Co", "creditonhold": False})

    def tx(name, kind, outcome, amount, created, reason=None, attention=False):
        return s(PT, {"w365_name": name, "w365_refid": name, "w365_type": c(PT, "w365_type", kind),
                      "w365_outcome": c(PT, "w365_outcome", outcome), "w365_amount": Decimal(amount),
                      "w365_reasoncode": reason, "w365_needsattention": attention, "createdon": created,
                      "w365_accountid@odata.bind": f"/accounts({free})"})
    tx("A1", "Charge", "Approved", "100.00", "2026-11-20T10:00:00Z")
    tx("A2", "Charge", "Approved", "50.00", "2026-11-20T16:00:00Z")
    tx("A3", "Charge", "Approved", "30.00", "2026-11-02T10:00:00Z")
    tx("A4", "Charge", "Approved", "999.00", "2026-09-01T10:00:00Z")          # older than 30 days
    tx("R1", "Refund", "Approved", "20.00", "2026-11-20T11:00:00Z")            # a refund is not collected
    tx("D1", "Charge", "Declined", "70.00", "2026-11-15T10:00:00Z", reason="2")
    tx("D2", "Charge", "Declined", "80.00", "2026-10-30T10:00:00Z", reason="65")  # last month
    tx("D3", "Charge", "Error", "90.00", "2026-11-16T10:00:00Z", reason="2")
    tx("U1", "Charge", "Unknown", "40.00", "2026-11-21T08:00:00Z")
    tx("H1", "Charge", "Held For Review", "60.00", "2026-11-19T08:00:00Z")
    tx("P1", "Charge", "Pending", "25.00", "2026-11-21T08:30:00Z")
    tx("F1", "Charge", "Approved", "10.00", "2026-11-21T07:00:00Z", attention=True)   # flagged for a person
    for name, status, retry, account in (("INV-1", "Retrying", "2026-11-25T00:00:00Z", held),
                                         ("INV-2", "Retrying", "2026-11-22T00:00:00Z", free),
                                         ("INV-3", "Awaiting Card", None, free), ("INV-4", "Exhausted", None, held),
                                         ("INV-5", "Recovered", None, free), ("INV-6", "None", None, free),
                                         ("INV-7", None, None, free)):
        s("invoice", {"name": name, "customerid_account@odata.bind": f"/accounts({account})",
                      "w365_dunningstatus": c("invoice", "w365_dunningstatus", status) if status else None,
                      "w365_nextretryon": retry, "w365_balance": Decimal("12.00")})
    for started, failed, recovered in (("2026-10-05T06:00:00Z", "100.00", "20.00"),
                                       ("2026-10-20T06:00:00Z", "50.00", "30.00"),
                                       ("2026-11-05T06:00:00Z", "40.00", "40.00")):
        s("w365_billingrun", {"w365_name": f"Run {started[:10]}", "w365_startedon": started,
                              "w365_amountfailed": Decimal(failed), "w365_amountrecovered": Decimal(recovered)})
    s("w365_operation", {"w365_name": "recent", "w365_requestid": "r1", "createdon": "2026-11-21T07:00:00Z"})
    s("w365_operation", {"w365_name": "old", "w365_requestid": "r2", "createdon": "2026-11-19T07:00:00Z"})
    pp = "w365_paymentprofile"
    for name, state, sync, default in (("Visa XXXX1111", 0, "Synced", True), ("Visa XXXX2222", 0, "Pending Sync", False),
                                       ("Amex XXXX0005", 1, "Sync Failed", False), ("MC XXXX4444", 0, "Synced", False)):
        s(pp, {"w365_name": name, "statecode": state, "statuscode": 1 if state == 0 else 2, "w365_isdefault": default,
               "w365_syncstatus": c(pp, "w365_syncstatus", sync), "w365_accountid@odata.bind": f"/accounts({free})"})
    return standin


def run(standin, table: str, fetch_xml: str) -> list[dict]:
    status, _, body = standin.handle("GET", f"{URL}{footprint.entity_set(table)}?fetchXml={quote(fetch_xml)}", {},
                                     None)
    assert status == 200, body
    return json.loads(body, parse_float=Decimal)["value"]


def view(standin, name: str) -> list[dict]:
    found = next(v for v in product.VIEWS if v.name == name)
    return run(standin, found.table, found.fetch_xml)


def chart(standin, name: str) -> list[dict]:
    found = next(ch for ch in product.CHARTS if ch.name == name)
    return run(standin, found.table, found.fetch_xml)


def test_views_return_what_needs_a_person(data):
    assert [r["w365_name"] for r in view(data, "Transactions Needing Attention")] == ["U1", "F1", "H1"]
    assert [r["w365_name"] for r in view(data, "Failed Payments This Month")] == ["D3", "D1"]
    assert [r["w365_name"] for r in view(data, "Active Payment Profiles")] == [
        "Visa XXXX1111", "MC XXXX4444", "Visa XXXX2222"]          # the default first, then by name
    # Both were changed at the same instant here, so only the set is certain (the view orders by modifiedon).
    assert sorted(r["w365_name"] for r in view(data, "Profiles Waiting for Sync or Failing It")) == [
        "Amex XXXX0005", "Visa XXXX2222"]
    dunning = view(data, "Invoices in Dunning by Status")
    assert [(r["name"], r["customer.creditonhold"]) for r in dunning] == [
        ("INV-2", False), ("INV-1", True), ("INV-3", False), ("INV-4", True)]   # by status, then next retry
    assert [r["w365_name"] for r in view(data, "Billing Runs")] == ["Run 2026-11-05", "Run 2026-10-20",
                                                                    "Run 2026-10-05"]
    assert [r["w365_name"] for r in view(data, "Button Results of the Last Day")] == ["recent"]


def test_charts_aggregate_by_day_reason_status_and_month(data):
    assert chart(data, "Collected per Day") == [
        {"year": 2026, "month": 11, "day": 2, "collected": Decimal("30.00"), "payments": 1},
        {"year": 2026, "month": 11, "day": 20, "collected": Decimal("150.00"), "payments": 2},
        {"year": 2026, "month": 11, "day": 21, "collected": Decimal("10.00"), "payments": 1}]
    assert chart(data, "Failures by Reason") == [{"reason": "2", "failures": 2}, {"reason": "65", "failures": 1}]
    status = {r["status"]: r["invoices"] for r in chart(data, "Dunning Funnel")}
    retrying, awaiting, exhausted, recovered = (c("invoice", "w365_dunningstatus", s) for s in (
        "Retrying", "Awaiting Card", "Exhausted", "Recovered"))
    assert status == {retrying: 2, awaiting: 1, exhausted: 1, recovered: 1}
    assert chart(data, "Recovery per Month") == [
        {"year": 2026, "month": 10, "failed": Decimal("150.00"), "recovered": Decimal("50.00")},
        {"year": 2026, "month": 11, "failed": Decimal("40.00"), "recovered": Decimal("40.00")}]
    open_ = {r["outcome"]: (r["attempts"], r["amount"]) for r in chart(data, "Open Attempts")}
    assert open_ == {c(PT, "w365_outcome", "Pending"): (1, Decimal("25.00")),
                     c(PT, "w365_outcome", "Unknown"): (1, Decimal("40.00")),
                     c(PT, "w365_outcome", "Held For Review"): (1, Decimal("60.00"))}


def test_the_demo_history_gives_every_dashboard_chart_something_to_draw():
    """docs/dashboard.png comes from this data (python -m installer.render): no chart may be empty."""
    from installer.render import chart_data

    found = chart_data()
    assert set(found) == {ch.name for ch in product.CHARTS}
    assert all(found[name] for name in found), [name for name in found if not found[name]]
    assert sum(r["invoices"] for r in found["Dunning Funnel"]) == 24
