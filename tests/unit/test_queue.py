"""The in-process queue keeps Service Bus's promises: at-least-once, redelivery, dead-letter, duplicate detection,
scheduled delivery; and its messages look like the Service Bus ones (JSON round trip)."""
import datetime as dt
from decimal import Decimal

import pytest

from app.capabilities import registry
from core.queue import decode_work, encode_work
from standins.queue import InProcessQueue

seen: list = []
failures = {"left": 0}


def _record(payload, services):
    seen.append((payload, services))


def _flaky(payload, services):
    if failures["left"] > 0:
        failures["left"] -= 1
        raise RuntimeError("not yet")
    seen.append(payload)


class Clock:
    def __init__(self):
        self.value = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

    def now(self):
        return self.value



registry().work("test.record", _record)
registry().work("test.flaky", _flaky)

@pytest.fixture
def queue():
    seen.clear()
    clock = Clock()
    q = InProcessQueue(lambda kind, payload: registry().run_work(kind, payload, "services"), clock=clock,
                       max_deliveries=3)
    q.clock = clock
    return q


def test_a_message_is_delivered_with_its_payload_as_json_would_carry_it(queue):
    queue.send("test.record", {"amount": Decimal("10.50"), "id": "a"}, message_id="m1")
    assert queue.drain() == 1
    assert seen == [({"amount": "10.50", "id": "a"}, "services")]


def test_a_duplicate_message_id_is_dropped_like_service_bus_duplicate_detection(queue):
    queue.send("test.record", {"n": 1}, message_id="same")
    queue.send("test.record", {"n": 2}, message_id="same")
    queue.drain()
    assert [p for p, _ in seen] == [{"n": 1}]


def test_a_failing_handler_is_redelivered_then_succeeds(queue):
    failures["left"] = 2
    queue.send("test.flaky", {"n": 1}, message_id="f1")
    queue.drain()
    assert seen == [{"n": 1}] and not queue.dead_letters


def test_a_message_failing_every_time_is_dead_lettered_after_max_deliveries(queue):
    failures["left"] = 99
    queue.send("test.flaky", {"n": 1}, message_id="f2")
    queue.drain()
    assert seen == []
    assert len(queue.dead_letters) == 1 and queue.dead_letters[0][0].delivery_count == 3
    assert "not yet" in queue.dead_letters[0][1]


def test_a_delayed_message_waits_for_its_time(queue):
    queue.send("test.record", {"n": 1}, message_id="d1", delay=dt.timedelta(minutes=5))
    assert queue.drain() == 0
    queue.clock.value += dt.timedelta(minutes=5)
    assert queue.drain() == 1


def test_an_unknown_kind_is_not_lost_silently(queue):
    queue.send("test.nobody", {}, message_id="u1")
    queue.drain()
    assert queue.dead_letters and "no handler" in queue.dead_letters[0][1]


def test_work_messages_are_told_apart_from_dataverse_contexts():
    import json
    assert decode_work(json.loads(encode_work("k", {"a": 1}))) == ("k", {"a": 1})
    assert decode_work({"MessageName": "Update"}) is None


def _dead_lettered(queue, *ids):
    failures["left"] = 99
    for message_id in ids:
        queue.send("test.flaky", {"id": message_id}, message_id=message_id)
    queue.drain()
    assert [m.message_id for m, _ in queue.dead_letters] == list(ids)


def test_the_dead_letter_queue_is_read_in_peek_lock_as_service_bus_does(queue):
    _dead_lettered(queue, "a", "b")
    with queue.dead_letter_inbox() as first, queue.dead_letter_inbox() as second:
        [a] = first.receive(1)
        [b] = second.receive(5)                        # what one inbox holds, no other gets
        assert second.receive(5) == []
        assert (a.message_id, a.kind, a.payload) == ("a", "test.flaky", {"id": "a"})
        assert (a.reason, a.delivery_count) == ("MaxDeliveryCountExceeded", 3)
        assert "not yet" not in repr(a)                # the handler's error is not something the broker keeps
        first.complete(a)
        second.abandon(b)
        assert [m.message_id for m, _ in queue.dead_letters] == ["b"]
        [again] = first.receive(5)                     # abandoned: dead-lettered still, one delivery more
        assert (again.message_id, again.delivery_count) == ("b", 4)
    with queue.dead_letter_inbox() as third:           # closing the inbox gave back what it held
        assert [letter.message_id for letter in third.receive(5)] == ["b"]
    assert len(queue.dead_letters) == 1


def test_settling_a_letter_the_inbox_does_not_hold_changes_nothing(queue):
    _dead_lettered(queue, "a")
    with queue.dead_letter_inbox() as inbox:
        [a] = inbox.receive(1)
        inbox.abandon(a)
        inbox.complete(a)                              # the lock is gone: the broker refuses, nothing is removed
    assert len(queue.dead_letters) == 1


def test_the_broker_dead_letters_after_ten_deliveries_by_default():
    deliveries = []

    def fails(kind, payload):
        deliveries.append(kind)
        raise RuntimeError("down")
    q = InProcessQueue(fails, clock=Clock())
    q.send("k", {}, message_id="m")
    q.drain()
    assert len(deliveries) == 10 and len(q.dead_letters) == 1      # MaxDeliveryCount in infra/main.bicep
