"""The WorkQueue port on Azure Service Bus (W365_WORK_QUEUE): the real adapter of real mode."""
from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Callable, Mapping

from core.queue import WORK_KIND_KEY, encode_work


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
