"""Credit hold rules end to end: table events through POST /api/dataverse into the Dataverse stand-in, provisioning
through the in-process queue. The Webhook provider is replaced by a recording fake here (its HTTP is tested in
test_credit_hold_webhook.py); the Manual provider is the real one."""
from __future__ import annotations

import datetime as dt

import pytest

from app.capabilities import run_work
from standins import payloads as messages
from handlers.credit_hold.rules import ProvisioningResult, provision_new_subscription


class RecordingProvider:
    def __init__(self, *results: ProvisioningResult):
        self.results = list(results)
        self.calls: list[tuple[str, int]] = []

    def provision(self, services, subscription, provider, attempt):
        self.calls.append((subscription["w365_subscriptionid"], attempt))
        return self.results.pop(0) if self.results else ProvisioningResult.provisioned("done")


@pytest.fixture
def hooked(world):
    world.services.providers = {**world.services.providers, "Webhook": RecordingProvider()}
    return world


def provider(world):
    return world.services.providers["Webhook"]


def set_switch(world, on: bool):
    world.standin.update("w365_configuration", world.ids["configuration"], {"w365_enablecredithold": on})


def set_hold(world, on: bool):
    world.standin.update("account", world.ids["account"], {"creditonhold": on})


def status(world, label):
    return world.choice("w365_subscription", "w365_provisioningstatus", label)


def create_subscription(world, *, provider_key="provider_webhook", name="Cloud PC", fire=True, **extra):
    sub_id = world.standin.seed("w365_subscription", {
        "w365_name": name, "w365_accountid@odata.bind": f"/accounts({world.ids['account']})",
        "w365_providerid@odata.bind": f"/w365_providers({world.ids[provider_key]})", "w365_quantity": 3,
        "w365_provisioningstatus": status(world, "Pending"), **extra})
    if fire:
        reply = world.event("Create", "w365_subscription", sub_id, {"w365_name": name})
        assert reply.status == 200, reply.body
    return sub_id


def lift(world, **kw):
    set_hold(world, False)
    return world.event("Update", "account", world.ids["account"], {"creditonhold": False, **kw},
                       pre_image={"creditonhold": True})


def sub_status(world, sub_id):
    return world.row("w365_subscription", sub_id)["w365_provisioningstatus"]


def test_switch_off_ignores_the_hold(hooked):
    set_switch(hooked, False)
    set_hold(hooked, True)
    sub = create_subscription(hooked)
    hooked.queue.drain()
    assert sub_status(hooked, sub) == status(hooked, "Provisioned")
    assert provider(hooked).calls == [(sub, 1)]


def test_held_account_blocks_then_lift_releases_with_a_note(hooked):
    set_switch(hooked, True)
    set_hold(hooked, True)
    sub = create_subscription(hooked)
    hooked.queue.drain()
    assert sub_status(hooked, sub) == status(hooked, "Blocked By Credit Hold")
    assert provider(hooked).calls == []

    reply = lift(hooked)
    assert reply.body["status"] == "succeeded" and reply.body["released"] == 1
    hooked.queue.drain()
    assert sub_status(hooked, sub) == status(hooked, "Provisioned")
    assert provider(hooked).calls == [(sub, 1)]
    notes = [n for n in hooked.rows("annotation") if (n.get("objectid") or {}).get("id") == hooked.ids["account"]]
    assert len(notes) == 1
    assert "Alex Admin" in notes[0]["notetext"] and "1 blocked subscription" in notes[0]["notetext"]


def test_putting_an_account_on_hold_touches_nothing_provisioned(hooked):
    set_switch(hooked, True)
    sub = create_subscription(hooked)
    hooked.queue.drain()
    assert sub_status(hooked, sub) == status(hooked, "Provisioned")
    set_hold(hooked, True)
    reply = hooked.event("Update", "account", hooked.ids["account"], {"creditonhold": True},
                         pre_image={"creditonhold": False})
    assert reply.body["status"] == "succeeded"
    assert hooked.queue.pending() == []
    assert sub_status(hooked, sub) == status(hooked, "Provisioned")


def test_turning_the_switch_on_changes_nothing_already_provisioned(hooked):
    set_hold(hooked, True)
    sub = create_subscription(hooked)              # switch off (the demo default): provisioned despite the hold
    hooked.queue.drain()
    set_switch(hooked, True)
    reply = hooked.event("Update", "w365_configuration", hooked.ids["configuration"], {"w365_enablecredithold": True},
                         pre_image={"w365_enablecredithold": False})
    assert reply.body["status"] == "succeeded" and reply.body["released"] == 0
    assert hooked.queue.pending() == []
    assert sub_status(hooked, sub) == status(hooked, "Provisioned")
    assert provider(hooked).calls == [(sub, 1)]


def test_turning_the_switch_off_releases_every_blocked_subscription(hooked):
    set_switch(hooked, True)
    set_hold(hooked, True)
    subs = [create_subscription(hooked, name=f"PC {i}") for i in range(3)]
    assert {sub_status(hooked, s) for s in subs} == {status(hooked, "Blocked By Credit Hold")}
    set_switch(hooked, False)
    reply = hooked.event("Update", "w365_configuration", hooked.ids["configuration"],
                         {"w365_enablecredithold": False}, pre_image={"w365_enablecredithold": True})
    assert reply.body["released"] == 3
    hooked.queue.drain()
    assert {sub_status(hooked, s) for s in subs} == {status(hooked, "Provisioned")}
    assert sorted(c[0] for c in provider(hooked).calls) == sorted(subs)
    assert hooked.row("account", hooked.ids["account"])["creditonhold"] is True     # the account itself is untouched
    assert any("switched off by Alex Admin" in (n["notetext"] or "") for n in hooked.rows("annotation"))


def test_redelivered_lift_event_and_messages_provision_once(hooked):
    set_switch(hooked, True)
    set_hold(hooked, True)
    subs = [create_subscription(hooked, name=f"PC {i}") for i in range(2)]
    set_hold(hooked, False)
    event = messages.table_event("Update", "account", hooked.ids["account"], {"creditonhold": False},
                                 pre_image={"creditonhold": True}, user_id=hooked.ids["admin"])
    raw = messages.dumps(event)
    assert hooked.post(raw).body["released"] == 2
    assert hooked.post(raw).body["released"] == 2        # Dataverse retried the async step: same operation id
    assert len(hooked.queue.pending()) == 2               # the broker dropped the duplicate messages
    payloads = [p for _, p in hooked.queue.pending()]
    hooked.queue.drain()
    for payload in payloads:                             # redelivered after the duplicate window
        run_work("credit_hold.provision", payload, hooked.services)
    assert sorted(provider(hooked).calls) == sorted((s, 1) for s in subs)


def test_hold_set_again_before_release_runs_keeps_everything_blocked(hooked):
    set_switch(hooked, True)
    set_hold(hooked, True)
    first = create_subscription(hooked, name="first")
    assert lift(hooked).body["released"] == 1            # queued, not yet processed
    set_hold(hooked, True)
    hooked.event("Update", "account", hooked.ids["account"], {"creditonhold": True}, pre_image={"creditonhold": False})
    second = create_subscription(hooked, name="created meanwhile")
    hooked.queue.drain()
    assert sub_status(hooked, first) == status(hooked, "Blocked By Credit Hold")
    assert sub_status(hooked, second) == status(hooked, "Blocked By Credit Hold")
    assert provider(hooked).calls == []
    assert lift(hooked).body["released"] == 2            # the next lift releases both
    hooked.queue.drain()
    assert sorted(c[0] for c in provider(hooked).calls) == sorted([first, second])


def test_a_late_lift_event_does_not_release_subscriptions_created_after_the_lift(hooked):
    set_switch(hooked, True)
    lifted_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(minutes=10)
    blocked = status(hooked, "Blocked By Credit Hold")
    before = create_subscription(hooked, name="before", fire=False, w365_provisioningstatus=blocked,
                                 createdon=(lifted_at - dt.timedelta(minutes=5)).isoformat())
    after = create_subscription(hooked, name="after", fire=False, w365_provisioningstatus=blocked,
                                createdon=(lifted_at + dt.timedelta(minutes=5)).isoformat())
    assert lift(hooked, modifiedon=lifted_at).body["released"] == 1
    hooked.queue.drain()
    assert sub_status(hooked, before) == status(hooked, "Provisioned")
    assert sub_status(hooked, after) == blocked


def test_own_writes_are_ignored_and_the_orders_helper_provisions_directly(hooked):
    set_switch(hooked, True)
    sub = create_subscription(hooked, fire=False)
    reply = hooked.event("Create", "w365_subscription", sub, {"w365_name": "x"}, user=hooked.ids["app_user"])
    assert reply.body["status"] == "ignored"
    assert hooked.queue.pending() == []
    outcome = provision_new_subscription(hooked.services, sub)
    assert outcome.ok and outcome.data["blocked"] is False
    assert provision_new_subscription(hooked.services, sub).ok      # twice: still one message
    hooked.queue.drain()
    assert provider(hooked).calls == [(sub, 1)]
    assert sub_status(hooked, sub) == status(hooked, "Provisioned")


def test_manual_provider_files_a_task_for_the_owner_and_stays_provisioning(world):
    sub = create_subscription(world, provider_key="provider_manual",
                              **{"ownerid@odata.bind": f"/systemusers({world.ids['salesperson']})"})
    world.queue.drain()
    row = world.row("w365_subscription", sub)
    assert row["w365_provisioningstatus"] == status(world, "Provisioning")
    tasks = world.rows("task")
    assert len(tasks) == 1
    assert tasks[0]["ownerid"]["id"] == world.ids["salesperson"]
    assert tasks[0]["regardingobjectid"]["id"] == world.ids["account"]
    assert sub in tasks[0]["description"]
    assert tasks[0]["activityid"] in row["w365_provisioningresult"]


def test_transient_failures_retry_on_a_back_off_then_fail(hooked):
    hooked.services.providers["Webhook"] = RecordingProvider(*[ProvisioningResult.retry("HTTP 503.")] * 5)
    sub = create_subscription(hooked)
    hooked.queue.drain()
    assert provider(hooked).calls == [(sub, 1)]
    assert "Attempt 1 failed: HTTP 503. Retrying in 1 minute" in hooked.row("w365_subscription", sub)[
        "w365_provisioningresult"]
    hooked.clock.advance(dt.timedelta(minutes=1))
    hooked.queue.drain()
    assert [a for _, a in provider(hooked).calls] == [1, 2]
    hooked.queue.drain(include_delayed=True)
    assert [a for _, a in provider(hooked).calls] == [1, 2, 3, 4, 5]
    row = hooked.row("w365_subscription", sub)
    assert row["w365_provisioningstatus"] == status(hooked, "Failed")
    assert row["w365_provisioningresult"].startswith("Gave up after 5 attempts")


def test_a_refusal_fails_with_the_providers_message(hooked):
    hooked.services.providers["Webhook"] = RecordingProvider(ProvisioningResult.failed("Unknown SKU W365-ENT"))
    sub = create_subscription(hooked)
    hooked.queue.drain()
    row = hooked.row("w365_subscription", sub)
    assert row["w365_provisioningstatus"] == status(hooked, "Failed")
    assert row["w365_provisioningresult"] == "Unknown SKU W365-ENT"


def test_lifting_a_hold_on_500_blocked_subscriptions_provisions_each_exactly_once(hooked):
    set_switch(hooked, True)
    set_hold(hooked, True)
    blocked = status(hooked, "Blocked By Credit Hold")
    subs = [create_subscription(hooked, name=f"PC {i}", fire=False, w365_provisioningstatus=blocked)
            for i in range(500)]
    assert lift(hooked).body["released"] == 500
    payloads = [p for _, p in hooked.queue.pending()]
    assert hooked.queue.drain() == 500
    for payload in payloads[:50]:                       # some redelivered
        run_work("credit_hold.provision", payload, hooked.services)
    assert sorted(provider(hooked).calls) == sorted((s, 1) for s in subs)
    assert {r["w365_provisioningstatus"] for r in hooked.rows("w365_subscription")} == {status(hooked, "Provisioned")}


class StopsAfterTheCall:
    """The Manual provider, but the first delivery stops right after the provider's call, before its outcome is
    written (the worker died): the queue redelivers the message."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def provision(self, services, subscription, provider, attempt):
        self.calls += 1
        result = self.inner.provision(services, subscription, provider, attempt)
        if self.calls == 1:
            raise RuntimeError("the worker stopped after the provider's call")
        return result


def test_manual_provider_redelivered_after_filing_its_task_files_no_second_one(world):
    manual = StopsAfterTheCall(world.services.providers["Manual"])
    world.services.providers = {**world.services.providers, "Manual": manual}
    sub = create_subscription(world, provider_key="provider_manual")
    world.queue.drain()
    assert manual.calls == 2 and world.queue.dead_letters == []
    task, = world.rows("task")                  # the stand-in refused the second create: the same primary id
    row = world.row("w365_subscription", sub)
    assert row["w365_provisioningstatus"] == status(world, "Provisioning")
    assert task["activityid"] in row["w365_provisioningresult"]


def test_manual_provider_two_deliveries_side_by_side_file_one_task(world):
    inner = world.services.providers["Manual"]
    sub = create_subscription(world, provider_key="provider_manual", fire=False,
                              w365_provisioningstatus=status(world, "Blocked By Credit Hold"))
    payload = {"subscription_id": sub, "attempt": 1, "origin": "lift"}
    calls = []

    class SecondDeliveryMeanwhile:           # the second delivery reads, calls and records inside the first's call
        def provision(self, services, subscription, provider, attempt):
            calls.append(attempt)
            if len(calls) == 1:
                run_work("credit_hold.provision", payload, world.services)
            return inner.provision(services, subscription, provider, attempt)

    world.services.providers = {**world.services.providers, "Manual": SecondDeliveryMeanwhile()}
    run_work("credit_hold.provision", payload, world.services)
    assert calls == [1, 1]
    task, = world.rows("task")
    row = world.row("w365_subscription", sub)
    assert row["w365_provisioningstatus"] == status(world, "Provisioning")
    assert task["activityid"] in row["w365_provisioningresult"]


def dataverse_requests(world):
    return [r for r in world.standin.requests if not r[1].startswith("WhoAmI")]


def test_a_lift_costs_the_same_requests_for_one_or_many_subscriptions_and_each_message_two_plus_its_task(world):
    set_switch(world, True)
    costs = []
    for count in (1, 4):
        set_hold(world, True)
        subs = [create_subscription(world, provider_key="provider_manual", name=f"PC {count}.{i}")
                for i in range(count)]
        world.standin.reset_counters()
        assert lift(world).body["released"] == count
        costs.append(len(dataverse_requests(world)))
        world.standin.reset_counters()
        assert world.queue.drain() == count
        per_message = [f"{m} {p.split('(')[0]}" for m, p in dataverse_requests(world)]
        assert per_message == ["POST $batch", "POST tasks", "PATCH w365_subscriptions"] * count
        assert {sub_status(world, s) for s in subs} == {status(world, "Provisioning")}
    assert costs[0] == costs[1]            # the switch, the hold and the user read once per lift, not per subscription
