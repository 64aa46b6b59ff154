"""The app's managed identity as a token credential, for the adapters that sign in without a secret (Service Bus in
its `ServiceBusConnection__fullyQualifiedNamespace` form, Dataverse with DATAVERSE_USE_MANAGED_IDENTITY)."""
from __future__ import annotations

import threading
import time
from typing import Any, NamedTuple


class AccessToken(NamedTuple):
    """azure-core's AccessToken shape, without importing azure-core (~100 ms) on the Dataverse path of a first
    request; the Service Bus SDK reads only these two fields."""
    token: str
    expires_on: int


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
