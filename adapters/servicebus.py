"""The WorkQueue port on Azure Service Bus (W365_WORK_QUEUE): the real adapter of real mode."""
from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any, Callable, Mapping

from core.queue import WORK_KIND_KEY, encode_work


class ServiceBusQueue:
    """Azure Service Bus sender for W365_WORK_QUEUE. The queue should have duplicate detection on; sessions are used
    only when the queue is session-enabled (then every message needs a session id: we default to the kind)."""

    def __init__(self, connection_string: str | None, queue_name: str, *, fully_qualified_namespace: str | None = None,
                 managed_identity_client_id: str | None = None, sessions: bool = False,
                 client_factory: Callable[[str], Any] | None = None):
        """Either `connection_string` (SAS) or `fully_qualified_namespace` (the app's managed identity, Functions'
        `ServiceBusConnection__fullyQualifiedNamespace` form; `managed_identity_client_id` for a user-assigned one)."""
        if not connection_string and not fully_qualified_namespace:
            raise ValueError("a connection string or a fully qualified namespace is needed")
        self._connection_string = connection_string
        self.fully_qualified_namespace = fully_qualified_namespace
        self._managed_identity_client_id = managed_identity_client_id
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
                        credential = ManagedIdentityCredential(self._managed_identity_client_id)
                        return ServiceBusClient(connection, credential, retry_total=3)
                # One long-lived client per worker (it pools the AMQP connection), made on first use.
                self._client = factory(self._connection_string or self.fully_qualified_namespace)
        return self._client.get_queue_sender(self.queue_name)

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


class ManagedIdentityCredential:
    """azure-core's TokenCredential protocol over msal's managed identity client (msal is already a dependency;
    azure-identity would add a package for this one call). msal caches the token until shortly before it expires."""

    SCOPE_SUFFIX = "/.default"

    def __init__(self, client_id: str | None = None):
        self._client_id = client_id
        self._app: Any = None
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        import msal
        import requests
        from azure.core.credentials import AccessToken

        with self._lock:
            if self._app is None:
                identity = (msal.UserAssignedManagedIdentity(client_id=self._client_id) if self._client_id
                            else msal.SystemAssignedManagedIdentity())
                self._app = msal.ManagedIdentityClient(identity, http_client=requests.Session())
        resource = scopes[0].removesuffix(self.SCOPE_SUFFIX) if scopes else "https://servicebus.azure.net"
        result = self._app.acquire_token_for_client(resource=resource)
        if "access_token" not in result:
            raise RuntimeError(f"managed identity token for {resource}: {result.get('error', 'no token')}")
        return AccessToken(result["access_token"], int(time.time()) + int(result.get("expires_in", 300)))
