"""The real client end to end against the Dataverse stand-in over HTTP (responses routes to the stand-in)."""
from decimal import Decimal

import pytest
import responses

from core.errors import AccessDenied, ConcurrencyConflict, DuplicateRecord, RecordNotFound
from core.ports import BatchOperation
from dataverse.auth import StaticTokenProvider
from dataverse.client import DataverseClient
from standins.dataverse import DataverseStandIn

ORG = "https://contoso.crm.dynamics.com"


@pytest.fixture
def standin():
    return DataverseStandIn()


@pytest.fixture
def rsps(standin):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        standin.register_with_responses(mock, ORG)
        yield mock


@pytest.fixture
def client(rsps):
    return DataverseClient(ORG, StaticTokenProvider("local"), sleep=lambda s: None)


def test_create_retrieve_update_with_etag_and_a_stale_etag_is_a_conflict(client):
    account_id = client.create("accounts", {"name": "Fourth Coffee", "creditonhold": False})
    first = client.retrieve("accounts", account_id, select=["name", "creditonhold"])
    assert first["name"] == "Fourth Coffee" and first["creditonhold"] is False

    client.update("accounts", account_id, {"creditonhold": True}, etag=first["@odata.etag"])
    second = client.retrieve("accounts", account_id, select=["creditonhold"])
    assert second["creditonhold"] is True and second["@odata.etag"] != first["@odata.etag"]

    with pytest.raises(ConcurrencyConflict) as caught:
        client.update("accounts", account_id, {"creditonhold": False}, etag=first["@odata.etag"])
    assert caught.value.status == 412
    assert client.retrieve("accounts", account_id, select=["creditonhold"])["creditonhold"] is True


def test_money_round_trips_exactly(client):
    new_id = client.create("w365_paymenttransactions", {"w365_refid": "r-money",
                                                        "w365_amount": Decimal("0.10") + Decimal("0.20")})
    amount = client.retrieve("w365_paymenttransactions", new_id, select=["w365_amount"])["w365_amount"]
    assert isinstance(amount, Decimal) and amount == Decimal("0.30")


def test_alternate_key_breach_is_a_duplicate_and_missing_rows_are_not_found(client):
    client.create("w365_paymenttransactions", {"w365_refid": "r-dup", "w365_amount": Decimal("1.00")})
    with pytest.raises(DuplicateRecord):
        client.create("w365_paymenttransactions", {"w365_refid": "r-dup", "w365_amount": Decimal("1.00")})
    with pytest.raises(RecordNotFound):
        client.retrieve("accounts", "00000000-0000-0000-0000-00000000dead")


def test_a_create_reusing_a_primary_id_is_a_duplicate_alone_or_in_a_changeset(client, standin):
    task_id = "6f0f3c2e-1d7b-5a4e-9b1a-3c5d7e9f0a12"
    assert client.create("tasks", {"activityid": task_id, "subject": "first"}) == task_id
    with pytest.raises(DuplicateRecord) as caught:
        client.create("tasks", {"activityid": task_id, "subject": "second"})
    assert caught.value.status == 412 and caught.value.code == "0x80040237"
    with pytest.raises(DuplicateRecord):
        client.batch([BatchOperation.create("accounts", {"name": "Rolled Back Ltd"}),
                      BatchOperation.create("tasks", {"activityid": task_id, "subject": "third"})])
    assert [a for a in standin.rows("account") if a["name"] == "Rolled Back Ltd"] == []
    assert [t["subject"] for t in standin.rows("task")] == ["first"]


def test_batch_commits_together_with_content_id_references(client):
    account_id = client.create("accounts", {"name": "Batch Ltd"})
    etag = client.retrieve("accounts", account_id, select=["name"])["@odata.etag"]

    results = client.batch([
        BatchOperation.create("w365_paymenttransactions", {"w365_refid": "r-batch", "w365_amount": Decimal("10.50"),
                                                           "w365_accountid@odata.bind": f"/accounts({account_id})"},
                               content_id="1"),
        BatchOperation.update("accounts", account_id, {"creditonhold": True}, etag=etag),
    ])

    assert [r.status for r in results] == [204, 204]
    rows = client.query("w365_paymenttransactions", select=["w365_amount", "_w365_accountid_value"],
                        filter="w365_refid eq 'r-batch'")
    assert [(r["w365_amount"], r["_w365_accountid_value"]) for r in rows] == [(Decimal("10.50"), account_id)]
    assert results[0].record_id == rows[0]["w365_paymenttransactionid"]
    assert client.retrieve("accounts", account_id, select=["creditonhold"])["creditonhold"] is True


def test_batch_with_a_stale_etag_rolls_back_every_operation(client):
    account_id = client.create("accounts", {"name": "Rollback Inc", "creditonhold": False})
    stale = client.retrieve("accounts", account_id, select=["name"])["@odata.etag"]
    client.update("accounts", account_id, {"name": "Rollback Inc."})

    with pytest.raises(ConcurrencyConflict):
        client.batch([
            BatchOperation.create("w365_paymenttransactions", {"w365_refid": "r-rollback",
                                                               "w365_amount": Decimal("5.00")}),
            BatchOperation.update("accounts", account_id, {"creditonhold": True}, etag=stale),
        ])

    assert client.query("w365_paymenttransactions", filter="w365_refid eq 'r-rollback'") == []
    assert client.retrieve("accounts", account_id, select=["creditonhold"])["creditonhold"] is False


def test_query_follows_the_stand_ins_pages(client, rsps):
    for n in range(5):
        client.create("accounts", {"name": f"Paged {n}"})
    client.page_size = 2
    before = len(rsps.calls)

    rows = client.query("accounts", select=["name"], filter="startswith(name,'Paged')", orderby="name asc")

    assert [r["name"] for r in rows] == [f"Paged {n}" for n in range(5)]
    assert len(rsps.calls) - before == 3


def test_as_user_acts_with_that_persons_privileges(client, standin):
    reader = standin.add_user("Rita Reader", roles=("Read Only",))
    account_id = client.create("accounts", {"name": "Guarded"})

    as_reader = client.as_user(reader)
    assert as_reader.retrieve("accounts", account_id, select=["name"])["name"] == "Guarded"
    with pytest.raises(AccessDenied):
        as_reader.update("accounts", account_id, {"creditonhold": True})
