"""CONTRACT §1: real mode needs Service Bus and every secret it uses; a secret that is blank, too short to be a key,
an unresolved Key Vault reference or a stand-in's built-in key counts as missing; nothing is ever queued in memory
outside local mode and tests."""
import json

import azure.functions as func
import pytest

import standins
from app.composition import build_services, set_services, webhook_key
from core.errors import ConfigurationError
from core.settings import STAND_IN_KEY_DIGESTS, Settings

REAL = {
    "DATAVERSE_URL": "https://contoso.crm.dynamics.com", "DATAVERSE_TENANT_ID": "tenant", "DATAVERSE_CLIENT_ID": "c",
    "DATAVERSE_CLIENT_SECRET": "a-client-secret-of-forty-characters-0123",
    "AUTHORIZENET_LOGIN_ID": "login", "AUTHORIZENET_TRANSACTION_KEY": "0123456789abcdef",
    "AUTHORIZENET_CLIENT_KEY": "a-public-client-key-0123456789", "AUTHORIZENET_SIGNATURE_KEY": "AB" * 64,
    "W365_WEBHOOK_KEY": "a-long-random-webhook-key-0123", "W365_PUBLIC_BASE_URL": "https://pay.example.test",
    "W365_PROVIDER_SIGNING_KEY": "a-long-random-provider-key-012",
    "ServiceBusConnection": "Endpoint=sb://w365.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=x",
    "W365_WORK_QUEUE": "w365-work",
}


def test_a_complete_real_configuration_misses_nothing():
    assert Settings(REAL).missing() == []


@pytest.mark.parametrize("value, why", [
    ("", "not set"), ("   ", "blank"), ("short-key", "shorter than 16"),
    ("@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/webhook/)", "Key Vault"),
    (standins.LOCAL_WEBHOOK_KEY, "built-in key"),
])
def test_an_unusable_secret_counts_as_missing_and_its_value_is_never_told(value, why):
    settings = Settings({**REAL, "W365_WEBHOOK_KEY": value})
    assert settings.missing() == ["W365_WEBHOOK_KEY"]
    with pytest.raises(ConfigurationError) as raised:
        webhook_key(settings)
    assert raised.value.setting == "W365_WEBHOOK_KEY" and why in str(raised.value)
    assert not value.strip() or value not in str(raised.value)


def test_every_built_in_key_of_the_stand_ins_is_refused_in_real_mode_and_used_in_local_mode():
    built_in = [getattr(standins, n) for n in dir(standins) if n.startswith("LOCAL_") and n.endswith("_KEY")]
    assert len(built_in) == len(STAND_IN_KEY_DIGESTS) == 4
    for name, value in [(name, key) for key in built_in for name in
                        ("W365_WEBHOOK_KEY", "AUTHORIZENET_SIGNATURE_KEY", "AUTHORIZENET_TRANSACTION_KEY",
                         "W365_PROVIDER_SIGNING_KEY", "DATAVERSE_CLIENT_SECRET")]:
        assert Settings({**REAL, name: value}).get(name) is None, name
        assert Settings({"W365_MODE": "local", name: value}).get(name) == value
    assert webhook_key(Settings({"W365_MODE": "local"})) == standins.LOCAL_WEBHOOK_KEY


def test_a_short_key_vault_reference_is_missing_even_for_a_setting_that_is_not_secret():
    settings = Settings({**REAL, "W365_WORK_QUEUE": "@Microsoft.KeyVault(VaultName=kv;SecretName=q)"})
    assert settings.missing() == ["W365_WORK_QUEUE"]


@pytest.mark.parametrize("drop, named", [
    (("ServiceBusConnection",), ["ServiceBusConnection"]), (("W365_WORK_QUEUE",), ["W365_WORK_QUEUE"]),
    (("ServiceBusConnection", "W365_WORK_QUEUE"), ["ServiceBusConnection", "W365_WORK_QUEUE"]),
])
def test_real_mode_requires_service_bus_and_health_names_it(drop, named):
    from app.platform import health
    values = {k: v for k, v in REAL.items() if k not in drop}
    assert Settings(values).missing() == named
    set_services(build_services(Settings(values)))
    try:
        response = health.build().get_user_function()(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    finally:
        set_services(None)
    body = json.loads(response.get_body())
    assert response.status_code == 200 and body["status"] == "degraded" and body["missingSettings"] == named


def test_the_identity_form_of_the_service_bus_connection_is_enough():
    values = {k: v for k, v in REAL.items() if k != "ServiceBusConnection"}
    values["ServiceBusConnection__fullyQualifiedNamespace"] = "w365.servicebus.windows.net"
    assert Settings(values).missing() == []


def test_real_mode_without_service_bus_never_queues_in_memory():
    values = {k: v for k, v in REAL.items() if k != "ServiceBusConnection"}
    services = build_services(Settings(values))
    with pytest.raises(ConfigurationError) as raised:
        services.queue.send("charging.record", {"transaction_id": "t1"}, message_id="charging.record:t1")
    assert raised.value.setting == "ServiceBusConnection"
    values = {k: v for k, v in REAL.items() if k != "W365_WORK_QUEUE"}
    with pytest.raises(ConfigurationError) as raised:
        build_services(Settings(values)).queue.send("x", {}, message_id="x")
    assert raised.value.setting == "W365_WORK_QUEUE"


def test_local_mode_queues_in_process():
    from standins.queue import InProcessQueue
    services = build_services(Settings({"W365_MODE": "local"}))
    services.queue.pending()                         # resolves the lazy queue
    assert isinstance(services.queue._resolve(), InProcessQueue)


def test_real_mode_queues_on_service_bus_by_connection_string_or_identity():
    from adapters.servicebus import ServiceBusQueue
    queue = build_services(Settings(REAL)).queue._resolve()
    assert isinstance(queue, ServiceBusQueue) and queue.queue_name == "w365-work"
    values = {k: v for k, v in REAL.items() if k != "ServiceBusConnection"}
    values["ServiceBusConnection__fullyQualifiedNamespace"] = "w365.servicebus.windows.net"
    queue = build_services(Settings(values)).queue._resolve()
    assert isinstance(queue, ServiceBusQueue) and queue.fully_qualified_namespace == "w365.servicebus.windows.net"
