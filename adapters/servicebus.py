"""The WorkQueue port on Azure Service Bus (W365_WORK_QUEUE): the real adapter of real mode. It sends our work, and
reads the queue's dead-letter sub-queue so that what the broker gave up on can be shown where people look."""
from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any, Callable, Mapping

from core import telemetry
from core.ports import DeadLetter
from core.queue import WORK_KIND_KEY, WORK_REQUEST_ID, decode_work_body, encode_work

log = logging.getLogger(__name__)
# How long a receive from the dead-letter sub-queue waits for a first message (an empty sub-queue costs this much);
# the first receive also opens the AMQP link within it, so not much less.
DEAD_LETTER_WAIT = 5.0


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

    def _servicebus(self) -> Any:
        """One long-lived client per worker (it pools the AMQP connection), made on first use."""
        with self._lock:
            if self._client is None:
                factory = self._client_factory
                if factory is None:
                    from azure.servicebus import ServiceBusClient  # on first use: keeps cold start small

                    def factory(connection: str) -> Any:
                        if self._connection_string:
                            return ServiceBusClient.from_connection_string(connection, retry_total=3)
                        credential = self._credential
                        if credential is None:
                            from adapters.identity import ManagedIdentityCredential
                            credential = ManagedIdentityCredential(self._managed_identity_client_id)
                        return ServiceBusClient(connection, credential, retry_total=3)
                self._client = factory(self._connection_string or self.fully_qualified_namespace)
        return self._client

    def _sender(self):
        return self._servicebus().get_queue_sender(self.queue_name)

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


    def dead_letter_inbox(self) -> "ServiceBusDeadLetterInbox":
        return ServiceBusDeadLetterInbox(self._servicebus(), self.queue_name)


class ServiceBusDeadLetterInbox:
    """A peek-lock receiver on `<queue>/$deadletterqueue` (the dead-letter sub-queue of a session queue has no
    sessions). The broker keeps a received letter locked for the queue's LockDuration (5 minutes, infra/main.bicep);
    closing the inbox abandons what is unsettled, so it stays dead-lettered for operators."""

    def __init__(self, client: Any, queue_name: str, *, max_wait: float = DEAD_LETTER_WAIT):
        self._client = client
        self._queue_name = queue_name
        self._max_wait = max_wait
        self._receiver: Any = None
        self._mine: dict[int, Any] = {}

    def __enter__(self) -> "ServiceBusDeadLetterInbox":
        from azure.servicebus import ServiceBusReceiveMode, ServiceBusSubQueue

        self._receiver = self._client.get_queue_receiver(
            self._queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER, receive_mode=ServiceBusReceiveMode.PEEK_LOCK)
        self._receiver.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            for message in list(self._mine.values()):
                self._settle(message, "abandon_message")
        finally:
            self._receiver.__exit__(*exc)

    def receive(self, max_count: int) -> list[DeadLetter]:
        messages = self._receiver.receive_messages(max_message_count=max_count, max_wait_time=self._max_wait)
        letters = []
        for message in messages:
            self._mine[id(message)] = message
            work = decode_work_body(_body(message))
            kind, payload = work if work is not None else (None, {})
            letters.append(DeadLetter(str(message.message_id or ""), kind, payload,
                                      str(message.dead_letter_reason or ""), int(message.delivery_count or 0),
                                      handle=message))
        return letters

    def complete(self, letter: DeadLetter) -> None:
        self._settle(letter.handle, "complete_message")

    def abandon(self, letter: DeadLetter) -> None:
        self._settle(letter.handle, "abandon_message")

    def _settle(self, message: Any, how: str) -> None:
        from azure.servicebus.exceptions import ServiceBusError

        if self._mine.pop(id(message), None) is None:
            return
        try:
            getattr(self._receiver, how)(message)
        except ServiceBusError as exc:
            # The lock was lost (or the link dropped): the letter is back in the sub-queue either way, and what we
            # recorded for it is recorded once however often it is read again.
            log.warning("work queue: dead letter %s not settled (%s)", message.message_id, type(exc).__name__)


def _body(message: Any) -> bytes:
    """A received message's body: bytes, or the AMQP data sections (an iterable of bytes); b"" for anything else."""
    body = message.body
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    try:
        return b"".join(body)
    except TypeError:                   # an AMQP value or sequence body: not ours
        return b""
