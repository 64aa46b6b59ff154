"""What the broker dead-letters of a billing run shows on the run (handlers/autopay/dead_letters.py): a charge that
never got to count its own tries (the worker crashed, timed out or lost the lock every time) and a selection page,
end to end through the in-process queue, whose broker dead-letters after MaxDeliveryCount (10) deliveries."""
from __future__ import annotations

import logging

import pytest

from app.capabilities import registry
from core import footprint
from handlers.autopay import charge as autopay_charge, dead_letters, runs
from standins.queue import DeadLetterInbox, InProcessQueue
from tests.functions.charging_world import transactions
from tests.functions.test_autopay_runs import billing, finish, run_billing, skips, the_run  # noqa: F401 - fixture

BROKER_GAVE_UP = "Dead-lettered: the broker gave up after 10 deliveries (reason: MaxDeliveryCountExceeded)"
OTHER_WORK = "test.dead_letters.other"


def _status(run):
    return footprint.label("w365_billingrun", "w365_status", run["w365_status"])


def _always_fails(payload, services):
    raise RuntimeError("this work never succeeds")


registry().work(OTHER_WORK, _always_fails)


def crash_charges_of(world, monkeypatch, invoice_key, *, after_charging=False):
    """Every delivery of this invoice's charge dies outside the handler's own counting (a host timeout, a worker
    that crashed or lost the lock): only the broker's MaxDeliveryCount stops it."""
    real = autopay_charge.charge_message
    doomed = world.ids[invoice_key]

    def dies(services, payload):
        if payload["invoice_id"] != doomed:
            return real(services, payload)
        if after_charging:
            real(services, payload)
        raise TimeoutError("the function host timed out")
    monkeypatch.setattr(autopay_charge, "charge_message", dies)


def test_a_charge_the_broker_dead_letters_shows_on_the_run_which_closes_with_errors_naming_it(billing, monkeypatch):
    world = billing
    crash_charges_of(world, monkeypatch, "invoice1")
    run_id = run_billing(world).body["runId"]
    finish(world, minutes=20)

    run = the_run(world, run_id)
    assert _status(run) == "Completed With Errors"
    assert (run["w365_invoicesdue"], run["w365_charged"], run["w365_skipped"]) == (2, 1, 1)
    [skip] = skips(world, run_id)
    assert skip["w365_regardingid"] == world.ids["invoice1"]
    assert skip["w365_message"].startswith(BROKER_GAVE_UP), skip["w365_message"]
    assert skip["w365_requestid"] == autopay_charge.skip_request_id(run_id, world.ids["invoice1"])
    [summary] = world.rows("w365_operation", w365_requestid=f"run:{run_id}")
    assert f"1 failed repeatedly (dead-lettered: invoice {world.ids['invoice1']})" in summary["w365_message"]
    assert "without progress" not in summary["w365_message"]     # closed by its check, not as stale
    assert world.queue.dead_letters == []                         # recorded, so completed
    assert transactions(world, "invoice1") == []                  # nothing charged for it; it stays due
    assert len(transactions(world, "invoice2")) == 1


def test_a_dead_letter_read_twice_or_recorded_by_the_counted_path_makes_one_record(billing, monkeypatch):
    world = billing
    crash_charges_of(world, monkeypatch, "invoice1")
    run_id = run_billing(world).body["runId"]
    world.queue.drain()                                  # selection, charges, dead letter; the check is a minute away
    [(letter, _)] = world.queue.dead_letters
    assert letter.kind == autopay_charge.CHARGE_WORK

    # The first sweep records it but loses the lock before completing: the letter stays in the dead-letter queue.
    monkeypatch.setattr(DeadLetterInbox, "complete", DeadLetterInbox.abandon)
    assert dead_letters.show_dead_letters(world.services).shown == 1
    monkeypatch.undo()
    assert len(world.queue.dead_letters) == 1
    assert dead_letters.show_dead_letters(world.services).shown == 1     # read again, and now completed
    assert world.queue.dead_letters == []
    # The counted path's own record for the invoice (its MAX_TRIES) has the same request id.
    autopay_charge.record_skip(world.services, run_id, "invoice", world.ids["invoice1"], "Dead-lettered: counted")
    [skip] = skips(world, run_id)
    assert skip["w365_message"].startswith(BROKER_GAVE_UP)


def test_other_dead_letters_stay_for_operators_and_are_logged_without_their_payload(billing, monkeypatch, caplog):
    world = billing
    crash_charges_of(world, monkeypatch, "invoice1")
    world.services.queue.send(OTHER_WORK, {"secret": "do-not-log-me"}, message_id="other:1")
    world.queue.drain()                                 # the other work's letter first
    run_id = run_billing(world).body["runId"]
    world.queue.drain()
    assert [m.kind for m, _ in world.queue.dead_letters] == [OTHER_WORK, autopay_charge.CHARGE_WORK]

    # One letter per receive: the sweep gets past the letter that is not ours because it holds it until the end.
    monkeypatch.setattr(dead_letters, "LETTERS_PER_CHECK", 1)
    with caplog.at_level(logging.INFO):
        swept = dead_letters.show_dead_letters(world.services)
    assert (swept.shown, swept.left) == (1, 1)
    [(other, _)] = world.queue.dead_letters
    assert other.kind == OTHER_WORK and other.delivery_count == 11        # abandoned once more, still dead-lettered
    logged = [r.getMessage() for r in caplog.records if r.name == dead_letters.__name__]
    assert any(OTHER_WORK in line and "other:1" in line and "MaxDeliveryCountExceeded" in line for line in logged)
    assert not any("do-not-log-me" in r.getMessage() for r in caplog.records)
    assert [s["w365_regardingid"] for s in skips(world, run_id)] == [world.ids["invoice1"]]


def test_a_charge_dead_lettered_after_the_runs_attempt_leaves_the_attempt_as_the_outcome(billing, monkeypatch):
    world = billing
    crash_charges_of(world, monkeypatch, "invoice1", after_charging=True)
    run_id = run_billing(world).body["runId"]
    finish(world, minutes=20)
    run = the_run(world, run_id)
    assert skips(world, run_id) == []                    # "charged nothing" would be false
    assert (run["w365_charged"], run["w365_skipped"]) == (2, 0) and _status(run) == "Completed"
    assert len(transactions(world, "invoice1")) == 1 and len(world.simulator.charges()) == 2
    assert world.queue.dead_letters == []


def test_a_selection_page_the_broker_dead_letters_ends_the_run_once_what_it_selected_is_settled(billing, monkeypatch):
    world = billing
    monkeypatch.setattr(runs, "PAGE_SIZE", 1)            # the demo's two invoices: two pages
    real = runs.select_page

    def second_page_dies(services, payload):
        if int(payload.get("page") or 1) > 1:
            raise TimeoutError("the function host timed out")
        return real(services, payload)
    monkeypatch.setattr(runs, "select_page", second_page_dies)
    run_id = run_billing(world).body["runId"]
    finish(world, minutes=20)

    run = the_run(world, run_id)
    assert _status(run) == "Completed With Errors"
    assert (run["w365_invoicesdue"], run["w365_charged"], run["w365_skipped"]) == (1, 1, 0)
    [record] = world.rows("w365_operation", w365_requestid=f"run:{run_id}:selection")
    assert record["w365_regardingid"] == run_id and record["w365_regardingtable"] == runs.RUN_TABLE
    [summary] = world.rows("w365_operation", w365_requestid=f"run:{run_id}")
    assert ("the broker gave up on the selection of page 2 after 10 deliveries (reason: MaxDeliveryCountExceeded); "
            "the pages before it selected 1 invoice,") in summary["w365_message"]
    assert "without progress" not in summary["w365_message"]
    assert len(world.simulator.charges()) == 1 and world.queue.dead_letters == []


@pytest.mark.parametrize("payload", [{"run_id": "x' or 1 eq 1", "invoice_id": "i"}, {}])
def test_a_charge_letter_without_proper_ids_is_not_acted_on(world, payload):
    queue = InProcessQueue(lambda kind, body: _always_fails(body, None), max_deliveries=1)
    world.services.queue = queue
    queue.send(autopay_charge.CHARGE_WORK, payload, message_id="odd:1")
    queue.drain()
    assert dead_letters.show_dead_letters(world.services).left == 1
    assert len(queue.dead_letters) == 1 and world.rows("w365_operation") == []
