"""The credit-hold use cases against in-memory fakes of the ports (tests/fakes.py; no HTTP)."""
from __future__ import annotations

import datetime as dt

import pytest

from core import footprint
from core.errors import ConcurrencyConflict, ConfigurationError
from core.services import Services
from core.settings import Settings
from handlers.credit_hold import rules
from handlers.credit_hold.rules import ProvisioningResult
from tests.fakes import InMemoryDataverse

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.timezone.utc)
BLOCKED, PENDING, PROVISIONING, PROVISIONED, FAILED = (rules.status(s) for s in (
    "Blocked By Credit Hold", "Pending", "Provisioning", "Provisioned", "Failed"))
WEBHOOK = footprint.choice("w365_provider", "w365_type", "Webhook")


class FakeQueue:
    def __init__(self):
        self.sent: list[tuple[str, dict, str, dt.timedelta | None]] = []

    def send(self, kind, payload, *, message_id, session_id=None, delay=None):
        self.sent.append((kind, dict(payload), message_id, delay))


class Clock:
    def now(self):
        return NOW


class ScriptedProvider:
    def __init__(self, *results):
        self.results = list(results)
        self.calls = 0

    def provision(self, services, subscription, provider, attempt):
        self.calls += 1
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result


@pytest.fixture
def env():
    dv = InMemoryDataverse()
    dv.add("w365_configurations", "cfg", w365_enablecredithold=True, statecode=0)
    dv.add("accounts", "acc", creditonhold=False)
    dv.add("w365_providers", "prov", w365_providerid="prov", w365_name="Acme", w365_type=WEBHOOK)
    dv.add("systemusers", "admin", fullname="Alex Admin")
    provider = ScriptedProvider()
    services = Services(dataverse=dv, gateway=None, queue=FakeQueue(), settings=Settings({}), clock=Clock(),
                        providers={"Webhook": provider})
    return services, dv, provider


def subscription(dv, status=PENDING, sub_id="sub", createdon="2026-11-20T09:00:00Z"):
    return dv.add("w365_subscriptions", sub_id, w365_subscriptionid=sub_id, w365_name="PC",
                  w365_provisioningstatus=status, _w365_accountid_value="acc", _w365_providerid_value="prov",
                  createdon=createdon)


def sub_row(dv, sub_id="sub"):
    return dv.tables["w365_subscriptions"][sub_id]


def test_a_new_subscription_of_a_held_account_is_blocked_only_while_the_switch_is_on(env):
    services, dv, _ = env
    dv.tables["accounts"]["acc"]["creditonhold"] = True
    subscription(dv)
    assert rules.provision_new_subscription(services, "sub").data["blocked"] is True
    assert sub_row(dv)["w365_provisioningstatus"] == BLOCKED and services.queue.sent == []

    dv.tables["w365_configurations"]["cfg"]["w365_enablecredithold"] = False
    subscription(dv, sub_id="sub2")
    assert rules.provision_new_subscription(services, "sub2").data["blocked"] is False
    assert [m[1]["subscription_id"] for m in services.queue.sent] == ["sub2"]


def test_release_queues_only_subscriptions_blocked_at_lift_time_and_writes_a_note(env):
    services, dv, _ = env
    subscription(dv, BLOCKED, "old", createdon="2026-11-21T08:59:00Z")
    subscription(dv, BLOCKED, "new", createdon="2026-11-21T09:01:00Z")
    subscription(dv, PROVISIONED, "done", createdon="2026-11-21T08:00:00Z")
    outcome = rules.release_account(services, "acc", lifted_by="admin", lifted_at=NOW, event_id="op1")
    assert outcome.data["released"] == 1
    assert [(m[1]["subscription_id"], m[2]) for m in services.queue.sent] == [
        ("old", "credit_hold.provision:old:op1:1")]
    note, = dv.tables["annotations"].values()
    assert note["_objectid_value"] == "acc"
    assert "Alex Admin" in note["notetext"] and "1 blocked subscription" in note["notetext"]


def test_release_does_nothing_when_the_account_is_held_again_or_the_switch_is_off(env):
    services, dv, _ = env
    subscription(dv, BLOCKED)
    dv.tables["accounts"]["acc"]["creditonhold"] = True
    assert rules.release_account(services, "acc", lifted_by="admin", lifted_at=NOW, event_id="e").data[
        "released"] == 0
    dv.tables["w365_configurations"]["cfg"]["w365_enablecredithold"] = False
    assert "ignored" in rules.release_account(services, "acc", lifted_by="admin", lifted_at=NOW,
                                              event_id="e").message
    assert services.queue.sent == [] and "annotations" not in dv.tables


def test_a_concurrent_claim_loses_and_its_redelivery_skips(env):
    services, dv, provider = env
    subscription(dv, BLOCKED)

    def other_delivery_claims_first():
        sub_row(dv).update({"w365_provisioningstatus": PROVISIONING, "@odata.etag": 'W/"999"'})

    dv.before_update = other_delivery_claims_first
    with pytest.raises(ConcurrencyConflict):
        rules.provision(services, "sub")
    assert rules.provision(services, "sub") == "skipped"
    assert provider.calls == 0


def test_a_subscription_blocked_again_before_its_message_runs_stays_blocked(env):
    services, dv, provider = env
    subscription(dv, PENDING)
    dv.tables["accounts"]["acc"]["creditonhold"] = True
    assert rules.provision(services, "sub") == "held"
    assert sub_row(dv)["w365_provisioningstatus"] == BLOCKED and provider.calls == 0


def test_retries_use_the_back_off_then_fail(env):
    services, dv, provider = env
    provider.results = [ProvisioningResult.retry("HTTP 502.")] * rules.MAX_ATTEMPTS
    subscription(dv)
    assert rules.provision(services, "sub") == "retry"
    for attempt in range(2, rules.MAX_ATTEMPTS + 1):
        rules.provision(services, "sub", attempt=attempt)
    assert [m[3] for m in services.queue.sent] == list(rules.RETRY_DELAYS)
    assert [m[1]["attempt"] for m in services.queue.sent] == [2, 3, 4, 5]
    assert sub_row(dv)["w365_provisioningstatus"] == FAILED
    assert sub_row(dv)["w365_provisioningresult"].startswith(f"Gave up after {rules.MAX_ATTEMPTS} attempts")


def test_a_retry_of_a_subscription_no_longer_provisioning_is_skipped(env):
    services, dv, provider = env
    subscription(dv, PROVISIONED)
    assert rules.provision(services, "sub", attempt=3) == "skipped"
    assert provider.calls == 0


def test_unknown_provider_type_and_missing_settings_fail_the_subscription(env):
    services, dv, provider = env
    services.providers = {}
    subscription(dv)
    assert rules.provision(services, "sub") == ProvisioningResult.FAILED
    assert "No provider of type 'Webhook'" in sub_row(dv)["w365_provisioningresult"]

    services.providers = {"Webhook": provider}
    provider.results = [ConfigurationError("The app setting W365_PROVIDER_SIGNING_KEY is not set.",
                                           setting="W365_PROVIDER_SIGNING_KEY")]
    subscription(dv, sub_id="sub2")
    rules.provision(services, "sub2")
    assert sub_row(dv, "sub2")["w365_provisioningstatus"] == FAILED
    assert "W365_PROVIDER_SIGNING_KEY" in sub_row(dv, "sub2")["w365_provisioningresult"]


def test_a_deleted_subscription_is_dropped(env):
    services, _, _ = env
    assert rules.provision(services, "missing") == "gone"


def test_switch_off_releases_blocked_subscriptions_of_every_account(env):
    services, dv, _ = env
    dv.add("accounts", "acc2", creditonhold=True)
    subscription(dv, BLOCKED, "a")
    dv.add("w365_subscriptions", "b", w365_subscriptionid="b", w365_provisioningstatus=BLOCKED,
           _w365_accountid_value="acc2")
    assert rules.credit_hold_switched(services, changed_by="admin", event_id="e").data["released"] == 0   # still on
    dv.tables["w365_configurations"]["cfg"]["w365_enablecredithold"] = False
    assert rules.credit_hold_switched(services, changed_by="admin", event_id="e").data["released"] == 2
    assert sorted(n["_objectid_value"] for n in dv.tables["annotations"].values()) == ["acc", "acc2"]
