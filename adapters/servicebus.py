"""The WorkQueue port on Azure Service Bus (W365_WORK_QUEUE): the real adapter of real mode."""
from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Callable, Mapping

from core import telemetry
from core.queue import WORK_KIND_KEY, WORK_REQUEST_ID, encode_work


class ServiceBusQueue:
    """Azure Service Bus sender for W365_WORK_QUEUE. The queue should have duplicate detection on; sessions are used
    only when the queue is session-enabled (then every message needs a session id: we default to the kind)."""

    def __init__(self, connection_string: str | None, queue_name: str, *, fully_qualified_namespace: str | None = None,
                 managed_identity_client_id: str | None = None, credential: Any = None, sessions: bool = False,
                 client_factory: Callable[[str], Any] | None = None):
        """Either `connection_string` (SAS) or `fully_qualified_namespace` (the app's managed identity, Functions'
        `ServiceBusConnection__fullyQualifiedNamespace` form; `managed_identity_client_id` for a user-assigned one).
        `credential` (a TokenCredential: `get_token(scope)` -> `.token`, `.expires_on`) replaces the managed identity."""
        if not connection_string and not fully_qualified_namespace:
            raise ValueError("a connection string or a fully qualified namespace is needed")
        self._connection_string = connection_string
        self.fully_qualified_namespace = fully_qualified_namespace
        self._managed_identity_client_id = managed_identity_client_id
        self._credential = credential
        self.queue_name = queue_name
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
                        if self._connection_string:
                            return ServiceBusClient.from_connection_string(connection, retry_total=3)
                        credential = self._credential
                        if credential is None:
                            from adapters.identity import ManagedIdentityCredential
                            credential = ManagedIdentityCredential(self._managed_identity_client_id)
                        return ServiceBusClient(connection, credential, retry_total=3)
                # One long-lived client per worker (it pools the AMQP connection), made on first use.
                self._client = factory(self._connection_string or self.fully_qualified_namespace)
        return self._client.get_queue_sender(self.queue_name)

    def send(self, kind: str, payload: Mapping[str, Any], *, message_id: str, session_id: str | None = None,
             delay: dt.timedelta | None = None) -> None:
        from azure.servicebus import ServiceBusMessage

        # The queued work keeps the CorrelationId and RequestId of the click that caused it (core/telemetry.py).
        dimensions = telemetry.current()
        properties = {WORK_KIND_KEY: kind}
        if dimensions.get("RequestId"):
            properties[WORK_REQUEST_ID] = dimensions["RequestId"]
        message = ServiceBusMessage(
            encode_work(kind, payload), message_id=message_id, content_type="application/json",
            session_id=(session_id or kind) if self._sessions else None,
            correlation_id=dimensions.get("CorrelationId"), application_properties=properties,
        )
        if delay:
            message.scheduled_enqueue_time_utc = dt.datetime.now(dt.timezone.utc) + delay
        with self._sender() as sender:
            sender.send_messages(message)

