"""Bearer tokens for the Dataverse Web API. A token provider is a callable returning the access token."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

import requests

from core.errors import DataverseAuthError

AUTHORITY_HOST = "https://login.microsoftonline.com"


# OAuth 2.0 (RFC 6749 §5.2, §4.1.2.1) errors that say the authorization server is down or busy, not that the
# request is wrong: worth a retry, as a 503 to the caller.
TRANSIENT_OAUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error"})


class StaticTokenProvider:
    """A fixed token: local mode (the stand-in ignores it) and tests."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticTokenProvider(<token>)"


def _msal_app(client_id: str, authority: str, client_secret: str) -> Any:
    import msal  # imported on first token request: keeps the Functions cold start and imports free of it

    return msal.ConfidentialClientApplication(client_id, authority=authority, client_credential=client_secret)


class MsalTokenProvider:
    """Client credentials through ONE long-lived msal ConfidentialClientApplication, built at the first token request.

    msal (>= 1.23) answers from its in-memory cache until the token nears expiry, so calling this before every
    request is cheap. msal reports failures as a dict with `error`/`error_description` instead of raising.
    `app_factory(client_id, authority, client_secret)` replaces msal in tests.
    """

    def __init__(self, tenant_id: str, client_id: str, client_secret: str, resource_url: str, *,
                 app_factory: Callable[[str, str, str], Any] = _msal_app):
        self._client_id = client_id
        self._client_secret = client_secret
        self._authority = f"{AUTHORITY_HOST}/{tenant_id}"
        self._scopes = [f"{resource_url.rstrip('/')}/.default"]
        self._app_factory = app_factory
        self._app: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MsalTokenProvider({self._authority!r}, client_id={self._client_id!r}, scopes={self._scopes!r})"

    def __call__(self) -> str:
        try:
            result = self._application().acquire_token_for_client(scopes=self._scopes)
        except requests.RequestException as exc:
            # msal's own HTTP calls: the identity platform could not be reached. Say what, never the request body.
            raise DataverseAuthError(f"Could not reach {AUTHORITY_HOST} for a Dataverse token ({type(exc).__name__}).",
                                     is_transient=True) from None
        except ValueError as exc:
            # msal parses the answer as JSON: an outage's HTML error page does not parse.
            raise DataverseAuthError(f"{AUTHORITY_HOST} answered with something unreadable ({type(exc).__name__}).",
                                     is_transient=True) from None
        if result and result.get("access_token"):
            return result["access_token"]
        result = result or {}
        error = str(result.get("error") or "no_token")
        description = str(result.get("error_description") or "msal returned no access token")
        raise DataverseAuthError(self._scrub(f"Could not get a Dataverse token: {error}: {description}"), code=error,
                                 is_transient=error in TRANSIENT_OAUTH_ERRORS)

    def _application(self) -> Any:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    try:
                        self._app = self._app_factory(self._client_id, self._authority, self._client_secret)
                    except requests.RequestException as exc:     # msal fetches the authority's metadata here
                        raise DataverseAuthError(f"Could not reach {AUTHORITY_HOST} ({type(exc).__name__}).",
                                                 is_transient=True) from None
                    except ValueError as exc:                    # e.g. an unknown tenant
                        raise DataverseAuthError(self._scrub(f"msal could not start: {exc}")) from None
        return self._app

    def _scrub(self, message: str) -> str:
        return message.replace(self._client_secret, "***") if self._client_secret else message


class CredentialTokenProvider:
    """Bearer tokens from a token credential (azure-core's TokenCredential shape: `get_token(scope)` returning an
    object with `.token` and `.expires_on`, epoch seconds): the app's managed identity when
    DATAVERSE_USE_MANAGED_IDENTITY is true, so no client secret exists anywhere. The token is kept until five minutes
    before it expires, whatever the credential caches itself."""

    REFRESH_MARGIN = 300

    def __init__(self, credential: Any, resource_url: str, *, clock: Callable[[], float] = time.time):
        self._credential = credential
        self._scope = f"{resource_url.rstrip('/')}/.default"
        self._clock = clock
        self._token: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CredentialTokenProvider({type(self._credential).__name__}, scope={self._scope!r})"

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or self._token.expires_on - self.REFRESH_MARGIN <= self._clock():
                self._token = self._fetch()
            return self._token.token

    def _fetch(self) -> Any:
        try:
            token = self._credential.get_token(self._scope)
        except (requests.RequestException, OSError) as exc:
            raise DataverseAuthError(f"Could not reach the managed identity endpoint for a Dataverse token "
                                     f"({type(exc).__name__}).", is_transient=True) from None
        except Exception as exc:  # noqa: BLE001 - any credential's refusal; its text may carry request details
            raise DataverseAuthError(f"The managed identity gave no Dataverse token ({type(exc).__name__}).",
                                     is_transient=_is_transient_credential_error(exc)) from None
        if not getattr(token, "token", None):
            raise DataverseAuthError("The managed identity gave no Dataverse token.")
        return token


def _is_transient_credential_error(exc: Exception) -> bool:
    """azure-core's ServiceRequestError/ServiceResponseError: the endpoint did not answer (imported only here)."""
    try:
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    except ImportError:
        return False
    return isinstance(exc, (ServiceRequestError, ServiceResponseError))
