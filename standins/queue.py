"""The in-process work queue of local mode and tests, with Service Bus semantics: at-least-once delivery,
redelivery when the handler raises, dead-letter after `max_deliveries` (MaxDeliveryCount, 10 as infra/main.bicep
sets it), a dead-letter sub-queue read in peek-lock, delayed messages, and duplicate detection on `message_id` within
a window (Service Bus `requiresDuplicateDetection`). Never used in real mode."""
from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from core.ports import Clock, DeadLetter, SystemClock
from core.queue import encode_work

log = logging.getLogger(__name__)
MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"       # the DeadLetterReason Service Bus gives


@dataclass(order=True)
class _Message:
    due: dt.datetime
    sequence: int
    kind: str = field(compare=False)
    payload: Mapping[str, Any] = field(compare=False)
    message_id: str = field(compare=False)
    session_id: str | None = field(compare=False, default=None)
    delivery_count: int = field(compare=False, default=0)


class InProcessQueue:
    """The queue of local mode and tests; `deliver(kind, payload)` runs one message (app/capabilities.py). `drain()` delivers what is due; the dev host pumps it."""

    def __init__(self, deliver: Callable[[str, Mapping[str, Any]], None], *, clock: Clock | None = None,
                 max_deliveries: int = 10,
                 duplicate_window: dt.timedelta = dt.timedelta(minutes=10)):
        self._deliver = deliver
        self._clock = clock or SystemClock()
        self.max_deliveries = max_deliveries
        self._duplicate_window = duplicate_window
        self._heap: list[_Message] = []
        self._seen: dict[str, dt.datetime] = {}
        self._sweep_at = 10_000
        self._sequence = itertools.count()
        self._lock = threading.RLock()
        self._drain_lock = threading.Lock()
        # The dead-letter sub-queue: (message, the handler's last error). The error is for local debugging only: the
        # broker keeps no such thing, so the inbox does not hand it out.
        self.dead_letters: list[tuple[_Message, str]] = []
        self._held: set[int] = set()                        # sequences of dead letters an inbox has locked
        self.delivered: list[tuple[str, str]] = []          # (kind, message_id) of each completed delivery

    def send(self, kind: str, payload: Mapping[str, Any], *, message_id: str, session_id: str | None = None,
             delay: dt.timedelta | None = None) -> None:
        now = self._clock.now()
        with self._lock:
            if len(self._seen) > self._sweep_at:   # keep only the duplicate-detection window, as the broker does
                self._seen = {k: t for k, t in self._seen.items() if now - t < self._duplicate_window}
                self._sweep_at = max(10_000, 2 * len(self._seen))    # amortized: not a full pass per message
            seen_at = self._seen.get(message_id)
            if seen_at is not None and now - seen_at < self._duplicate_window:
                log.info("queue: dropped duplicate message %s", message_id)
                return
            self._seen[message_id] = now
            # Round-trip through JSON so a handler sees exactly what Service Bus would give it.
            body = json.loads(encode_work(kind, payload))
            heapq.heappush(self._heap, _Message(now + (delay or dt.timedelta()), next(self._sequence), kind,
                                                body["payload"], message_id, session_id))

    def dead_letter_inbox(self) -> "DeadLetterInbox":
        return DeadLetterInbox(self)

    def pending(self) -> list[tuple[str, Mapping[str, Any]]]:
        with self._lock:
            return [(m.kind, m.payload) for m in sorted(self._heap)]

    def drain(self, *, include_delayed: bool = False, limit: int = 100_000) -> int:
        """Deliver every due message, including those sent while draining. Returns how many were delivered.
        `include_delayed` also delivers messages scheduled for later (tests that skip the back-off)."""
        delivered = 0
        with self._drain_lock:
            while delivered < limit:
                with self._lock:
                    if not self._heap:
                        break
                    message = self._heap[0]
                    if not include_delayed and message.due > self._clock.now():
                        break
                    heapq.heappop(self._heap)
                delivered += 1
                self._deliver_one(message)
        return delivered

    def run_workers(self, workers: int, *, sleep: Callable[[float], None], poll: float = 0.5,
                    until: Callable[[], bool] | None = None) -> int:
        """Deliver with `workers` threads at once, as one Functions instance with that maxConcurrentCalls does, until
        nothing is queued or in flight (or `until()` says stop). `sleep` and `poll` are in the clock's seconds (the
        benchmark compresses time). Returns how many messages were delivered."""
        state = {"in_flight": 0, "delivered": 0}

        def worker() -> None:
            while True:
                with self._lock:
                    if until is not None and until():
                        return
                    now = self._clock.now()
                    if self._heap and self._heap[0].due <= now:
                        message = heapq.heappop(self._heap)
                        state["in_flight"] += 1
                    elif not self._heap and state["in_flight"] == 0:
                        return
                    else:
                        message = None
                        wait = (self._heap[0].due - now).total_seconds() if self._heap else poll
                if message is None:
                    sleep(min(max(wait, 0.0), poll))
                    continue
                try:
                    self._deliver_one(message)
                finally:
                    with self._lock:
                        state["in_flight"] -= 1
                        state["delivered"] += 1

        threads = [threading.Thread(target=worker, name=f"queue-worker-{n}", daemon=True) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return state["delivered"]

    def _deliver_one(self, message: _Message) -> None:
        message.delivery_count += 1
        try:
            self._deliver(message.kind, message.payload)
        except Exception as exc:  # noqa: BLE001 - any failure means "redeliver", as on Service Bus
            self._redeliver_or_dead_letter(message, exc)
        else:
            self.delivered.append((message.kind, message.message_id))

    def _redeliver_or_dead_letter(self, message: _Message, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if message.delivery_count >= self.max_deliveries:
            log.error("queue: dead-lettered %s after %d deliveries: %s", message.message_id,
                      message.delivery_count, type(exc).__name__)
            self.dead_letters.append((message, reason))
            return
        log.warning("queue: redelivering %s (delivery %d): %s", message.message_id, message.delivery_count,
                    type(exc).__name__)
        with self._lock:
            message.sequence = next(self._sequence)
            heapq.heappush(self._heap, message)


class DeadLetterInbox:
    """A peek-lock receiver on the in-process dead-letter sub-queue, as Service Bus's: a received letter is held
    (no other inbox gets it) until it is completed (gone) or abandoned (dead-lettered still, its delivery count one
    more); closing the inbox abandons what it still holds."""

    def __init__(self, queue: InProcessQueue):
        self._queue = queue
        self._mine: dict[int, _Message] = {}

    def __enter__(self) -> "DeadLetterInbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        for message in list(self._mine.values()):
            self._settle(message.sequence, complete=False)

    def receive(self, max_count: int) -> list[DeadLetter]:
        queue = self._queue
        with queue._lock:
            free = [m for m, _ in queue.dead_letters if m.sequence not in queue._held][:max_count]
            for message in free:
                queue._held.add(message.sequence)
                self._mine[message.sequence] = message
        return [DeadLetter(m.message_id, m.kind, json.loads(json.dumps(m.payload)), MAX_DELIVERY_COUNT_EXCEEDED,
                           m.delivery_count, handle=m.sequence) for m in free]

    def complete(self, letter: DeadLetter) -> None:
        self._settle(letter.handle, complete=True)

    def abandon(self, letter: DeadLetter) -> None:
        self._settle(letter.handle, complete=False)

    def _settle(self, sequence: int, *, complete: bool) -> None:
        queue = self._queue
        with queue._lock:
            message = self._mine.pop(sequence, None)
            if message is None:          # Service Bus: the lock is not ours (settled already, or lost)
                log.warning("queue: dead letter %s is not held by this inbox; not settled", sequence)
                return
            queue._held.discard(sequence)
            if complete:
                queue.dead_letters[:] = [(m, r) for m, r in queue.dead_letters if m.sequence != sequence]
            else:
                message.delivery_count += 1
