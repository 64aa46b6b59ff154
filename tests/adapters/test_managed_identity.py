"""Identity without secrets (CONTRACT §1): with DATAVERSE_USE_MANAGED_IDENTITY the Dataverse client signs in with a
token credential instead of the client secret, the Service Bus sender with the identity form of its connection, and
health counts either form as configured. The credential itself speaks App Service's managed identity protocol
(the wire example below is from learn.microsoft.com, "How to use managed identities for App Service and Azure
Functions", REST endpoint reference)."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import requests
import responses

from adapters.identity import ManagedIdentityCredential
from adapters.servicebus import ServiceBusQueue
from app.composition import build_services
from core.errors import DataverseAuthError
from core.settings import Settings
from dataverse.auth import CredentialTokenProvider
from dataverse.client import DataverseClient

DATAVERSE = "https://contoso.crm.dynamics.com"
IDENTITY_ENDPOINT = "http://127.0.0.1:41741/MSI/token/"
IDENTITY_HEADER = "853b9a84-5bfa-4b22-a3f3-0b9a43d9ad8a"
# App Service's answer, as documented (its expires_on is a string of epoch seconds).
APP_SERVICE_ANSWER = {"access_token": "eyJ0eXAi.dataverse.token", "expires_on": "1586984735",
                      "resource": DATAVERSE, "token_type": "Bearer", "client_id": "5E29463D-71DA-4FE0-8E69-999B57DB23B0"}

REAL_WITH_IDENTITY = {
    "DATAVERSE_URL": DATAVERSE, "DATAVERSE_TENANT_ID": "tenant", "DATAVERSE_USE_MANAGED_IDENTITY": "true",
    "AUTHORIZENET_LOGIN_ID": "login", "AUTHORIZENET_TRANSACTION_KEY": "0123456789abcdef",
    "AUTHORIZENET_CLIENT_KEY": "a-public-client-key-0123456789", "AUTHORIZENET_SIGNATURE_KEY": "AB" * 64,
    "W365_WEBHOOK_KEY": "a-long-random-webhook-key-0123", "W365_PUBLIC_BASE_URL": "https://pay.example.test",
    "ServiceBusConnection__fullyQualifiedNamespace": "w365.servicebus.windows.net", "W365_WORK_QUEUE": "w365-work",
}


class FakeCredential:
    """azure-identity's ManagedIdentityCredential shape: get_token(scope) -> (.token, .expires_on)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.scopes = []

    def get_token(self, *scopes, **kwargs):
        self.scopes.append(scopes)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def token(value: str, expires_on: float):
    return SimpleNamespace(token=value, expires_on=int(expires_on))


# --- the Dataverse token provider over a credential ------------------------------------------------------------------

def test_the_token_is_asked_for_the_dataverse_scope_kept_and_renewed_before_it_expires():
    now = [1_000_000.0]
    credential = FakeCredential(token("t1", now[0] + 3600), token("t2", now[0] + 7200))
    provider = CredentialTokenProvider(credential, DATAVERSE + "/", clock=lambda: now[0])
    assert provider() == "t1" and provider() == "t1"
    assert credential.scopes == [(DATAVERSE + "/.default",)]
    now[0] += 3600 - 299                                      # within five minutes of expiry: a fresh one
    assert provider() == "t2"
    assert len(credential.scopes) == 2


@pytest.mark.parametrize("failure, transient", [
    (requests.ConnectionError("identity endpoint down"), True),
    (RuntimeError("managed identity token for https://contoso.crm.dynamics.com: invalid_resource"), False),
])
def test_a_credential_failure_is_a_dataverse_auth_error(failure, transient):
    provider = CredentialTokenProvider(FakeCredential(failure), DATAVERSE)
    with pytest.raises(DataverseAuthError) as raised:
        provider()
    assert raised.value.is_transient is transient


def test_the_client_sends_the_credentials_token_as_its_bearer():
    credential = FakeCredential(token("mi-token", time.time() + 3600))
    client = DataverseClient(DATAVERSE, CredentialTokenProvider(credential, DATAVERSE), sleep=lambda s: None)
    with responses.RequestsMock() as rsps:
        rsps.get(f"{DATAVERSE}/api/data/v9.2/WhoAmI()", json={"UserId": "u1"})
        assert client.execute("WhoAmI", is_function=True) == {"UserId": "u1"}
        assert rsps.calls[0].request.headers["Authorization"] == "Bearer mi-token"


# --- the managed identity credential on App Service's protocol -------------------------------------------------------

@pytest.fixture
def app_service_identity(monkeypatch):
    monkeypatch.setenv("IDENTITY_ENDPOINT", IDENTITY_ENDPOINT)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    for other in ("IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT"):
        monkeypatch.delenv(other, raising=False)
    with responses.RequestsMock() as rsps:
        yield rsps


def test_the_credential_asks_app_services_identity_endpoint_for_the_resource(app_service_identity):
    expires_on = int(time.time()) + 3600
    app_service_identity.get(IDENTITY_ENDPOINT, json={**APP_SERVICE_ANSWER, "expires_on": str(expires_on)})
    answer = ManagedIdentityCredential().get_token(DATAVERSE + "/.default")
    assert answer.token == APP_SERVICE_ANSWER["access_token"]
    assert abs(answer.expires_on - expires_on) <= 2
    [call] = app_service_identity.calls
    assert call.request.headers["X-IDENTITY-HEADER"] == IDENTITY_HEADER
    assert "api-version=2019-08-01" in call.request.url
    assert "resource=https%3A%2F%2Fcontoso.crm.dynamics.com" in call.request.url and "default" not in call.request.url


def test_real_mode_with_the_managed_identity_needs_no_client_secret(app_service_identity):
    """Through the composition root, as the function app wires it: the Dataverse call carries the identity's token
    and no app registration is consulted."""
    app_service_identity.get(IDENTITY_ENDPOINT, json={**APP_SERVICE_ANSWER, "expires_on": str(int(time.time()) + 3600)})
    app_service_identity.get(f"{DATAVERSE}/api/data/v9.2/WhoAmI()", json={"UserId": "app-user"})
    settings = Settings(REAL_WITH_IDENTITY)
    assert settings.missing() == []
    services = build_services(settings)
    assert services.dataverse.execute("WhoAmI", is_function=True)["UserId"] == "app-user"
    dataverse_call = app_service_identity.calls[-1].request
    assert dataverse_call.headers["Authorization"] == "Bearer " + APP_SERVICE_ANSWER["access_token"]


def test_without_the_managed_identity_the_app_registration_is_needed_again():
    settings = Settings({k: v for k, v in REAL_WITH_IDENTITY.items() if k != "DATAVERSE_USE_MANAGED_IDENTITY"})
    assert settings.missing() == ["DATAVERSE_CLIENT_ID", "DATAVERSE_CLIENT_SECRET"]
    assert Settings({**REAL_WITH_IDENTITY, "DATAVERSE_USE_MANAGED_IDENTITY": "false"}).missing() == [
        "DATAVERSE_CLIENT_ID", "DATAVERSE_CLIENT_SECRET"]


# --- the Service Bus sender with a credential ------------------------------------------------------------------------

def test_the_service_bus_sender_connects_to_the_namespace_with_the_given_credential(monkeypatch):
    import azure.servicebus

    made = []

    class RecordingClient:
        def __init__(self, fully_qualified_namespace, credential, **kwargs):
            made.append((fully_qualified_namespace, credential))

        def get_queue_sender(self, queue_name):
            return ("sender", queue_name)

    monkeypatch.setattr(azure.servicebus, "ServiceBusClient", RecordingClient)
    credential = FakeCredential()
    queue = ServiceBusQueue(None, "w365-work", fully_qualified_namespace="w365.servicebus.windows.net",
                            credential=credential)
    assert queue._sender() == ("sender", "w365-work")
    assert made == [("w365.servicebus.windows.net", credential)]
    # without one, the app's managed identity
    ServiceBusQueue(None, "w365-work", fully_qualified_namespace="w365.servicebus.windows.net")._sender()
    assert isinstance(made[-1][1], ManagedIdentityCredential)
