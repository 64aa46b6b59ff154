"""The credit-hold use cases against in-memory fakes of the ports (tests/fakes.py; no HTTP)."""
from __future__ import annotations

import datetime as dt

import pytest

from core import footprint
from core.errors import ConfigurationError, PlatformUnavailable
from core.services import Services
from core.settings import Settings
from handlers.credit_hold import rules
from handlers.credit_hold.manual_provider import ManualProvider
from handlers.credit_hold.rules import ProvisioningResult
from tests.fakes import InMemoryDataverse

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.timezone.utc)
BLOCKED, PENDING, PROVISIONING, PROVISIONED, FAILED = (rules.status(s) for s in (
    "Blocked By Credit Hold", "Pending", "Provisioning", "Provisioned", "Failed"))
WEBHOOK = footprint.choice("w365_provider", "w365_type", "Webhook")
MANUAL = footprint.choice("w365_provider", "w365_type", "Manual")
ADMIN = "5d0c1e7a-0000-4000-8000-00000000ad01"


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
    dv.add("systemusers", ADMIN, fullname="Alex Admin")
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
    outcome = rules.release_account(services, "acc", lifted_by=ADMIN, lifted_at=NOW, event_id="op1")
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
    assert rules.release_account(services, "acc", lifted_by=ADMIN, lifted_at=NOW, event_id="e").data[
        "released"] == 0
    dv.tables["w365_configurations"]["cfg"]["w365_enablecredithold"] = False
    assert "ignored" in rules.release_account(services, "acc", lifted_by=ADMIN, lifted_at=NOW,
                                              event_id="e").message
    assert services.queue.sent == [] and "annotations" not in dv.tables


def test_a_lift_event_of_an_account_deleted_since_releases_nothing(env):
    services, dv, _ = env
    subscription(dv, BLOCKED)
    outcome = rules.release_account(services, "deleted", lifted_by=ADMIN, lifted_at=NOW, event_id="e")
    assert outcome.ok and outcome.data["released"] == 0
    assert services.queue.sent == [] and "annotations" not in dv.tables


def manual_env(env):
    services, dv, _ = env
    dv.tables["w365_providers"]["prov"]["w365_type"] = MANUAL
    services.providers = {"Manual": ManualProvider()}
    return services, dv


class Interleaved:
    """Wraps a provider: the first call runs `other` (a whole second delivery) before or after itself, so both
    deliveries have read the subscription before either has written its outcome."""

    def __init__(self, inner, other, *, other_first: bool):
        self.inner, self.other, self.other_first = inner, other, other_first
        self.calls = 0
        self.keys: list[str] = []

    def provision(self, services, subscription, provider, attempt):
        self.calls += 1
        self.keys.append(rules.delivery_key(subscription))
        if self.calls == 1 and self.other_first:
            self.other()
        result = self.inner.provision(services, subscription, provider, attempt)
        if self.calls == 1 and not self.other_first:
            self.other()
        return result


def test_two_sequential_deliveries_call_the_provider_once_in_two_requests_each(env):
    services, dv, provider = env
    provider.results = [ProvisioningResult.provisioned("done")]
    subscription(dv, BLOCKED)
    assert rules.provision(services, "sub", origin="lift") == ProvisioningResult.PROVISIONED
    assert [w[0] for w in dv.log] == ["update"]            # the outcome in one write (no claim before the call)
    assert rules.provision(services, "sub", origin="lift") == "skipped"
    assert provider.calls == 1 and len(dv.log) == 1
    assert sub_row(dv)["w365_provisioningstatus"] == PROVISIONED


@pytest.mark.parametrize("other_first", [True, False])
def test_two_deliveries_that_both_read_before_either_records_file_one_task(env, other_first):
    services, dv = manual_env(env)
    subscription(dv, BLOCKED)
    wrapper = Interleaved(ManualProvider(), lambda: rules.provision(services, "sub", origin="lift"),
                          other_first=other_first)
    services.providers = {"Manual": wrapper}
    rules.provision(services, "sub", origin="lift")
    assert wrapper.calls == 2 and wrapper.keys[0] == wrapper.keys[1]     # the same version read, the same key
    task, = dv.tables["tasks"].values()
    assert sub_row(dv)["w365_provisioningstatus"] == PROVISIONING
    assert task["activityid"] in sub_row(dv)["w365_provisioningresult"]
    assert rules.provision(services, "sub", origin="lift") == "skipped"
    assert len(dv.tables["tasks"]) == 1


def test_two_release_messages_of_one_subscription_side_by_side_file_one_task(env):
    services, dv = manual_env(env)
    subscription(dv, BLOCKED)
    wrapper = Interleaved(ManualProvider(), lambda: rules.provision(services, "sub", origin="second lift"),
                          other_first=True)
    services.providers = {"Manual": wrapper}
    rules.provision(services, "sub", origin="first lift")
    assert wrapper.calls == 2 and len(dv.tables["tasks"]) == 1


def test_a_redelivery_after_the_providers_call_but_before_the_record_files_no_second_task(env):
    services, dv = manual_env(env)
    subscription(dv, PENDING)
    dv.fail["update"] = PlatformUnavailable("Dataverse is down", status=503, is_transient=True)
    with pytest.raises(PlatformUnavailable):                # the delivery stops after the task was filed
        rules.provision(services, "sub", origin="new")
    assert sub_row(dv)["w365_provisioningstatus"] == PENDING and len(dv.tables["tasks"]) == 1
    del dv.fail["update"]
    assert rules.provision(services, "sub", origin="new") == ProvisioningResult.IN_PROGRESS    # redelivered
    task, = dv.tables["tasks"].values()
    assert sub_row(dv)["w365_provisioningstatus"] == PROVISIONING
    assert task["activityid"] in sub_row(dv)["w365_provisioningresult"]


def test_a_subscription_provisioned_again_later_gets_a_new_task(env):
    services, dv = manual_env(env)
    subscription(dv, PENDING)
    rules.provision(services, "sub")
    dv.update("w365_subscriptions", "sub", {"w365_provisioningstatus": BLOCKED})     # a person blocks it again
    rules.provision(services, "sub", origin="lift")
    assert len(dv.tables["tasks"]) == 2


def test_an_outcome_recorded_first_by_another_delivery_or_a_person_stands(env):
    services, dv, provider = env
    subscription(dv, PENDING)

    def someone_finishes_it():
        dv.update("w365_subscriptions", "sub", {"w365_provisioningstatus": PROVISIONED,
                                                "w365_provisioningresult": "Done by hand."})

    provider.results = [ProvisioningResult.retry("HTTP 503.")]
    services.providers = {"Webhook": Interleaved(provider, someone_finishes_it, other_first=False)}
    assert rules.provision(services, "sub") == "duplicate"       # not an error: the message completes
    assert sub_row(dv)["w365_provisioningstatus"] == PROVISIONED
    assert sub_row(dv)["w365_provisioningresult"] == "Done by hand."
    assert rules.provision(services, "sub", attempt=2) == "skipped"   # the retry queued meanwhile finds it done


def test_an_outcome_is_not_lost_when_the_row_changed_but_nobody_finished_it(env):
    services, dv, provider = env
    subscription(dv, PENDING)

    def a_hold_is_written_meanwhile():
        dv.update("w365_subscriptions", "sub", {"w365_provisioningstatus": BLOCKED})

    provider.results = [ProvisioningResult.provisioned("Provisioned by Acme.")]
    services.providers = {"Webhook": Interleaved(provider, a_hold_is_written_meanwhile, other_first=False)}
    assert rules.provision(services, "sub") == ProvisioningResult.PROVISIONED
    assert sub_row(dv)["w365_provisioningstatus"] == PROVISIONED     # the provider was called: that is the truth


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
    assert [w[0] for w in dv.log] == ["update"]            # Provisioning and the retry's message in one write
    assert sub_row(dv)["w365_provisioningstatus"] == PROVISIONING
    assert sub_row(dv)["w365_provisioningresult"] == "Attempt 1 failed: HTTP 502. Retrying in 1 minute."
    assert rules.provision(services, "sub") == "skipped"    # a redelivery of attempt 1 leaves it to the retry
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
    assert rules.credit_hold_switched(services, changed_by=ADMIN, event_id="e").data["released"] == 0   # still on
    dv.tables["w365_configurations"]["cfg"]["w365_enablecredithold"] = False
    assert rules.credit_hold_switched(services, changed_by=ADMIN, event_id="e").data["released"] == 2
    assert sorted(n["_objectid_value"] for n in dv.tables["annotations"].values()) == ["acc", "acc2"]


def test_the_sweep_queues_what_waited_for_a_provider_and_the_message_blocks_a_held_account(env):
    services, dv, provider = env
    dv.tables["accounts"]["acc"]["creditonhold"] = True
    subscription(dv, FAILED)
    sub_row(dv)["w365_provisioningresult"] = rules.NO_PROVIDER
    assert rules.reprovision_waiting(services) == 1
    assert [w[0] for w in dv.log] == ["update"]               # set Pending; the hold is the message's to read
    (_, payload, _, _), = services.queue.sent
    assert rules.provision(services, payload["subscription_id"], origin=payload["origin"]) == "held"
    assert sub_row(dv)["w365_provisioningstatus"] == BLOCKED and provider.calls == 0
