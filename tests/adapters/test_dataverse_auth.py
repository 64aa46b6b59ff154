"""dataverse/auth.py: one msal app per provider, built lazily; msal's error dicts become DataverseAuthError."""
import pytest
import requests

from core.errors import DataverseAuthError
from dataverse.auth import MsalTokenProvider, StaticTokenProvider

SECRET = "s3cr3t~VALUE.that.must.not.leak"


class FakeMsalApp:
    """Stands in for msal.ConfidentialClientApplication: answers with scripted dicts, records the scopes asked."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.scopes = []

    def acquire_token_for_client(self, scopes):
        self.scopes.append(scopes)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def provider_with(app):
    built = []

    def factory(client_id, authority, client_secret):
        built.append((client_id, authority, client_secret))
        return app

    provider = MsalTokenProvider("tenant-1", "client-1", SECRET, "https://contoso.crm.dynamics.com/",
                                 app_factory=factory)
    return provider, built


def test_one_app_built_lazily_and_reused_for_every_token():
    app = FakeMsalApp([{"access_token": "t1", "token_type": "Bearer"}, {"access_token": "t2"}])
    provider, built = provider_with(app)
    assert built == []                                   # nothing at construction

    assert provider() == "t1"
    assert provider() == "t2"
    assert built == [("client-1", "https://login.microsoftonline.com/tenant-1", SECRET)]
    assert app.scopes == [["https://contoso.crm.dynamics.com/.default"]] * 2


def test_msal_error_dict_becomes_auth_error_without_the_secret():
    app = FakeMsalApp([{"error": "invalid_client",
                        "error_description": f"AADSTS7000215: Invalid client secret provided: '{SECRET}'."}])
    provider, _ = provider_with(app)
    with pytest.raises(DataverseAuthError) as caught:
        provider()
    assert caught.value.code == "invalid_client"
    assert "AADSTS7000215" in str(caught.value)
    assert SECRET not in str(caught.value) and SECRET not in repr(provider)


def test_unreachable_identity_platform_is_a_transient_auth_error():
    provider, _ = provider_with(FakeMsalApp([requests.ConnectionError("no route")]))
    with pytest.raises(DataverseAuthError) as caught:
        provider()
    assert caught.value.is_transient


def test_a_failed_app_start_is_retried_at_the_next_call():
    calls = []

    def factory(*args):
        calls.append(args)
        if len(calls) == 1:
            raise ValueError("Unable to get authority configuration")
        return FakeMsalApp([{"access_token": "t"}])

    provider = MsalTokenProvider("t", "c", SECRET, "https://contoso.crm.dynamics.com", app_factory=factory)
    with pytest.raises(DataverseAuthError):
        provider()
    assert provider() == "t"


def test_static_provider_returns_its_token_and_hides_it():
    provider = StaticTokenProvider("local-token")
    assert provider() == "local-token"
    assert "local-token" not in repr(provider)


@pytest.mark.parametrize("answer", [
    {"error": "temporarily_unavailable", "error_description": "AADSTS90033: A transient error has occurred."},
    {"error": "server_error", "error_description": "AADSTS90100"},
    ValueError("Expecting value: line 1 column 1 (char 0)"),     # msal reading an HTML 5xx page as JSON
])
def test_an_identity_platform_outage_answered_or_unreadable_is_transient(answer):
    provider, _ = provider_with(FakeMsalApp([answer]))
    with pytest.raises(DataverseAuthError) as caught:
        provider()
    assert caught.value.is_transient


def test_a_wrong_secret_is_not_transient():
    provider, _ = provider_with(FakeMsalApp([{"error": "invalid_client", "error_description": "AADSTS7000215"}]))
    with pytest.raises(DataverseAuthError) as caught:
        provider()
    assert not caught.value.is_transient
