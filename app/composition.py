"""The one place that wires real or local adapters into Services. Lazy: nothing is imported, read or connected until
the first call that needs it, so a missing setting is an error naming it at that call and never at import (a failing
import leaves the Functions host with no functions at all: azure-functions-python-worker#1338)."""
from __future__ import annotations

import threading
from typing import Any, Callable

from core.services import Services
from core.settings import SERVICE_BUS, WORK_QUEUE, Settings

_services: Services | None = None
_lock = threading.Lock()


class Lazy:
    """Builds the adapter on first use; until then holds only the recipe."""

    def __init__(self, factory: Callable[[], Any]):
        self._factory = factory
        self._target: Any = None
        self._lock = threading.Lock()

    def _resolve(self) -> Any:
        if self._target is None:
            with self._lock:
                if self._target is None:
                    self._target = self._factory()
        return self._target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._resolve(), name)


def get_services() -> Services:
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                _services = build_services(Settings())
    return _services


def set_services(services: Services | None) -> None:
    """Tests and the dev host put their own wiring in place; None rebuilds from settings at the next call."""
    global _services
    _services = services


def webhook_key(settings: Settings) -> str:
    if settings.is_local:
        from standins import LOCAL_WEBHOOK_KEY
        return settings.get("W365_WEBHOOK_KEY", LOCAL_WEBHOOK_KEY)
    return settings.require("W365_WEBHOOK_KEY")


def signature_key(settings: Settings) -> str:
    if settings.is_local:
        from standins import LOCAL_SIGNATURE_KEY
        return settings.get("AUTHORIZENET_SIGNATURE_KEY", LOCAL_SIGNATURE_KEY)
    return settings.require("AUTHORIZENET_SIGNATURE_KEY")


def accept_js_auth(services: Services) -> tuple[str, str]:
    """(clientKey, apiLoginID) for Accept.js authData on the customer pages: the settings in real mode, the
    simulator's in local mode. Both are public values; the transaction key never reaches a page."""
    if services.settings.is_local:
        from standins import LOCAL_GATEWAY_LOGIN
        return services.gateway.public_client_key(), LOCAL_GATEWAY_LOGIN
    return services.settings.require("AUTHORIZENET_CLIENT_KEY"), services.settings.require("AUTHORIZENET_LOGIN_ID")


def provider_signing_key(settings: Settings) -> str:
    """Key of the X-W365-Signature (HMAC-SHA256) on provisioning webhooks: app setting W365_PROVIDER_SIGNING_KEY."""
    if settings.is_local:
        from standins import LOCAL_PROVIDER_SIGNING_KEY
        return settings.get("W365_PROVIDER_SIGNING_KEY", LOCAL_PROVIDER_SIGNING_KEY)
    return settings.require("W365_PROVIDER_SIGNING_KEY")


def provisioning_providers(settings: Settings) -> dict[str, Any]:
    """Provisioning providers by w365_provider type label. A new type is one more entry here."""
    from adapters.provider_webhook import WebhookProvider
    from handlers.credit_hold.manual_provider import ManualProvider

    # Real mode posts only to public https addresses; local mode's demo provider listens on 127.0.0.1.
    return {"Manual": ManualProvider(), "Webhook": WebhookProvider(lambda: provider_signing_key(settings),
                                                                   allow_private_addresses=settings.is_local)}


def run_request_share(settings: Settings) -> float:
    """W365_BILLING_RUN_SHARE: the share of Dataverse's service-protection ceiling billing runs may use (0.85)."""
    from core.errors import ConfigurationError
    from core.throttle import DEFAULT_SHARE

    text = settings.get("W365_BILLING_RUN_SHARE")
    if text is None:
        return DEFAULT_SHARE
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0.05 <= share <= 1:
        raise ConfigurationError("W365_BILLING_RUN_SHARE must be a number from 0.05 to 1 (e.g. 0.85).",
                                 setting="W365_BILLING_RUN_SHARE")
    return share


def build_services(settings: Settings) -> Services:
    """The real adapters, each made at its first use. Their HTTP sessions read proxy and CA settings once
    (core.transport.http_session)."""
    from core.transport import http_session
    services: Services
    # The share is read when a run first asks the budget (a wrong W365_BILLING_RUN_SHARE fails the run, not a button).
    from core.throttle import RequestBudget
    budget = RequestBudget(share=lambda: run_request_share(settings))

    def dataverse() -> Any:
        from dataverse.client import DataverseClient
        from dataverse.auth import MsalTokenProvider, StaticTokenProvider

        if settings.is_local:
            from standins import LOCAL_DATAVERSE_PATH
            return DataverseClient(settings.public_base_url + LOCAL_DATAVERSE_PATH, StaticTokenProvider("local"),
                                   observer=budget.observe)
        url = settings.require("DATAVERSE_URL").rstrip("/")
        tokens: Any
        if settings.dataverse_uses_managed_identity:
            from adapters.identity import ManagedIdentityCredential
            from dataverse.auth import CredentialTokenProvider
            tokens = CredentialTokenProvider(ManagedIdentityCredential(), url)
        else:
            tokens = MsalTokenProvider(settings.require("DATAVERSE_TENANT_ID"),
                                       settings.require("DATAVERSE_CLIENT_ID"),
                                       settings.require("DATAVERSE_CLIENT_SECRET"), url)
        # Dataverse gives a webhook 60 s: a few short retries, then a 503 with Retry-After and Dataverse retries.
        return DataverseClient(url, tokens, max_retries=3, max_backoff=10, observer=budget.observe,
                               session=http_session(url))

    def gateway() -> Any:
        from gateway.client import AuthorizeNetGateway

        if settings.is_local:
            from standins import LOCAL_GATEWAY_KEY, LOCAL_GATEWAY_LOGIN, LOCAL_GATEWAY_PATH
            return AuthorizeNetGateway(LOCAL_GATEWAY_LOGIN, LOCAL_GATEWAY_KEY, environment="sandbox",
                                       endpoint=settings.public_base_url + LOCAL_GATEWAY_PATH + "/xml/v1/request.api")
        from gateway.client import ENDPOINTS
        return AuthorizeNetGateway(settings.require("AUTHORIZENET_LOGIN_ID"),
                                   settings.require("AUTHORIZENET_TRANSACTION_KEY"),
                                   environment=settings.gateway_environment,
                                   session=http_session(ENDPOINTS.get(settings.gateway_environment, "https://")))

    def queue() -> Any:
        if settings.is_local:
            from app.capabilities import run_work
            from standins.queue import InProcessQueue
            return InProcessQueue(lambda kind, payload: run_work(kind, payload, services))
        # Real mode: Service Bus or a ConfigurationError at the first send, never an in-memory queue that a
        # restart would empty (CONTRACT §1).
        from adapters.servicebus import ServiceBusQueue
        namespace = settings.service_bus_namespace
        connection = None if namespace else settings.require(SERVICE_BUS)
        return ServiceBusQueue(connection, settings.require(WORK_QUEUE), fully_qualified_namespace=namespace,
                               managed_identity_client_id=settings.get(SERVICE_BUS + "__clientId"))

    if settings.is_local:
        from standins import LOCAL_GATEWAY_PATH
        accept_js = settings.public_base_url + LOCAL_GATEWAY_PATH + "/Accept.js"
    elif settings.get("AUTHORIZENET_ENVIRONMENT", "sandbox").lower() == "production":
        accept_js = "https://js.authorize.net/v1/Accept.js"
    else:
        accept_js = "https://jstest.authorize.net/v1/Accept.js"
    services = Services(dataverse=Lazy(dataverse), gateway=Lazy(gateway), queue=Lazy(queue), settings=settings,
                        accept_js_url=accept_js, providers=provisioning_providers(settings), budget=budget)
    return services

