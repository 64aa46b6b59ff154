"""Queued work: a registry of handlers by kind, an in-process queue (local mode, tests) and the Service Bus adapter.

Both queues have the same semantics: at-least-once delivery (a handler must be idempotent), redelivery when the
handler raises, dead-letter after `max_deliveries`, delayed messages for back-off, and duplicate detection on the
deterministic `message_id` within a history window (Service Bus `requiresDuplicateDetection`).
"""
from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from core.ports import Clock, SystemClock, WorkHandler

log = logging.getLogger(__name__)

_handlers: dict[str, WorkHandler] = {}
# The body of every message we put on W365_WORK_QUEUE carries this key; Dataverse's own messages do not.
WORK_KIND_KEY = "w365_work_kind"


def work_handler(kind: str) -> Callable[[WorkHandler], WorkHandler]:
    def register(handler: WorkHandler) -> WorkHandler:
        if kind in _handlers and _handlers[kind] is not handler:
            raise ValueError(f"two handlers for queued work {kind!r}")
        _handlers[kind] = handler
        return handler
    return register


def run_work(kind: str, payload: Mapping[str, Any], services: Any) -> None:
    handler = _handlers.get(kind)
    if handler is None:
        raise LookupError(f"no handler for queued work {kind!r}")
    handler(payload, services)


def encode_work(kind: str, payload: Mapping[str, Any]) -> bytes:
    return json.dumps({WORK_KIND_KEY: kind, "payload": payload}, default=str, separators=(",", ":")).encode()


def decode_work(body: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    kind = body.get(WORK_KIND_KEY)
    if not isinstance(kind, str):
        return None
    payload = body.get("payload")
    return kind, payload if isinstance(payload, Mapping) else {}


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
    """The queue when ServiceBusConnection is unset. `drain()` delivers what is due; the dev host pumps it."""

    def __init__(self, services: Callable[[], Any], *, clock: Clock | None = None, max_deliveries: int = 5,
                 duplicate_window: dt.timedelta = dt.timedelta(minutes=10)):
        self._services = services
        self._clock = clock or SystemClock()
        self.max_deliveries = max_deliveries
        self._duplicate_window = duplicate_window
        self._heap: list[_Message] = []
        self._seen: dict[str, dt.datetime] = {}
        self._sequence = itertools.count()
        self._lock = threading.RLock()
        self._drain_lock = threading.Lock()
        self.dead_letters: list[tuple[_Message, str]] = []
        self.delivered: list[tuple[str, str]] = []          # (kind, message_id) of each completed delivery

    def send(self, kind: str, payload: Mapping[str, Any], *, message_id: str, session_id: str | None = None,
             delay: dt.timedelta | None = None) -> None:
        now = self._clock.now()
        with self._lock:
            if len(self._seen) > 10_000:        # keep only the duplicate-detection window, as the broker does
                self._seen = {k: t for k, t in self._seen.items() if now - t < self._duplicate_window}
            seen_at = self._seen.get(message_id)
            if seen_at is not None and now - seen_at < self._duplicate_window:
                log.info("queue: dropped duplicate message %s", message_id)
                return
            self._seen[message_id] = now
            # Round-trip through JSON so a handler sees exactly what Service Bus would give it.
            body = json.loads(encode_work(kind, payload))
            heapq.heappush(self._heap, _Message(now + (delay or dt.timedelta()), next(self._sequence), kind,
                                                body["payload"], message_id, session_id))

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
                message.delivery_count += 1
                delivered += 1
                try:
                    run_work(message.kind, message.payload, self._services())
                except Exception as exc:  # noqa: BLE001 - any failure means "redeliver", as on Service Bus
                    self._redeliver_or_dead_letter(message, exc)
                else:
                    self.delivered.append((message.kind, message.message_id))
        return delivered

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


class ServiceBusQueue:
    """Azure Service Bus sender for W365_WORK_QUEUE. The queue should have duplicate detection on; sessions are used
    only when the queue is session-enabled (then every message needs a session id: we default to the kind)."""

    def __init__(self, connection_string: str, queue_name: str, *, sessions: bool = False,
                 client_factory: Callable[[str], Any] | None = None):
        self._connection_string = connection_string
        self._queue_name = queue_name
        self._sessions = sessions
        self._client_factory = client_factory
        self._client = None
        self._lock = threading.Lock()

    def _sender(self):
        with self._lock:
            if self._client is None:
                factory = self._client_factory
                if factory is None:
                    from azure.servicebus import ServiceBusClient  # on first send: keeps cold start small

                    def factory(connection: str) -> Any:
                        return ServiceBusClient.from_connection_string(connection, retry_total=3)
                # One long-lived client per worker (it pools the AMQP connection), made on first use.
                self._client = factory(self._connection_string)
        return self._client.get_queue_sender(self._queue_name)

    def send(self, kind: str, payload: Mapping[str, Any], *, message_id: str, session_id: str | None = None,
             delay: dt.timedelta | None = None) -> None:
        from azure.servicebus import ServiceBusMessage

        message = ServiceBusMessage(
            encode_work(kind, payload), message_id=message_id, content_type="application/json",
            session_id=(session_id or kind) if self._sessions else None,
            application_properties={WORK_KIND_KEY: kind},
        )
        if delay:
            message.scheduled_enqueue_time_utc = dt.datetime.now(dt.timezone.utc) + delay
        with self._sender() as sender:
            sender.send_messages(message)
