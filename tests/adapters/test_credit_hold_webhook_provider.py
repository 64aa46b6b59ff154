"""The Webhook provider against a real HTTP server on 127.0.0.1: signature, result mapping, timeout, refusal."""
from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import pytest

from credit_hold_provider_server import ProviderServer, refused_url
from handlers.credit_hold.rules import ProvisioningResult
from adapters.provider_webhook import WebhookProvider

KEY = "adapter-test-signing-key"
SUB = {"w365_subscriptionid": "5b0c6a1e-7d7e-4f00-9d55-1c2b3a4d5e6f", "w365_name": "Cloud PC x3",
       "_w365_accountid_value": "6d81597f-0f9f-e711-8122-000d3aa2331c", "_w365_salesorderid_value": None,
       "_w365_productid_value": None, "w365_quantity": Decimal("3.00000")}


@pytest.fixture
def server():
    with ProviderServer() as s:
        yield s


def call(url, timeout=2.0, attempt=1):
    provider = WebhookProvider(lambda: KEY, timeout=timeout, allow_private_addresses=True)   # 127.0.0.1 servers
    return provider.provision(None, SUB, {"w365_providerid": "p1", "w365_name": "Acme", "w365_endpointurl": url},
                              attempt)


def test_success_posts_the_signed_subscription(server):
    result = call(server.url)
    assert result == ProvisioningResult.provisioned("ok")
    (headers, body), = server.received
    expected = "sha256=" + hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-w365-signature"], expected)
    assert headers["content-type"] == "application/json"
    assert headers["x-w365-delivery"] == SUB["w365_subscriptionid"]
    document = json.loads(body, parse_float=Decimal)
    assert document["subscriptionId"] == SUB["w365_subscriptionid"]
    assert document["quantity"] == Decimal("3.00000") and document["attempt"] == 1


def test_a_4xx_fails_with_the_providers_message(server):
    server.script.append((422, '{"message": "Unknown SKU W365-ENT"}', 0))
    result = call(server.url)
    assert result.state == ProvisioningResult.FAILED
    assert "HTTP 422" in result.message and "Unknown SKU W365-ENT" in result.message


def test_a_5xx_is_retried_and_then_succeeds(server):
    server.script.append((503, "busy", 0))
    assert call(server.url).state == ProvisioningResult.RETRY
    assert call(server.url, attempt=2).state == ProvisioningResult.PROVISIONED
    assert [json.loads(b)["attempt"] for _, b in server.received] == [1, 2]


def test_429_means_later_not_never(server):
    server.script.append((429, "slow down", 0))
    assert call(server.url).state == ProvisioningResult.RETRY


def test_a_timeout_is_retried(server):
    server.script.append((200, "{}", 1.0))
    result = call(server.url, timeout=0.2)
    assert result.state == ProvisioningResult.RETRY and "in time" in result.message


def test_a_refused_connection_is_retried():
    result = call(refused_url())
    assert result.state == ProvisioningResult.RETRY and "could not be reached" in result.message


def test_an_endpoint_that_is_not_http_fails_without_a_request():
    assert call("file:///etc/passwd").state == ProvisioningResult.FAILED
    assert call("").state == ProvisioningResult.FAILED


def test_the_signing_key_is_not_in_what_is_sent(server):
    call(server.url)
    headers, body = server.received[0]
    assert KEY.encode() not in body and all(KEY not in v for v in headers.values())


@pytest.mark.parametrize("url, resolved, refused", [
    ("https://provider.example.com/hook", ["93.184.215.14"], None),
    ("https://provider.example.com/hook", ["93.184.215.14", "10.0.0.5"], "private or reserved address (10.0.0.5)"),
    ("https://internal.example.com/hook", ["192.168.1.20"], "private or reserved address"),
    ("https://metadata.example.com/", ["169.254.169.254"], "private or reserved address"),
    ("https://v6.example.com/", ["fe80::1%eth0"], "private or reserved address"),
    ("https://mapped.example.com/", ["::ffff:127.0.0.1"], "private or reserved address"),
    ("https://cgnat.example.com/", ["100.64.0.9"], "private or reserved address"),
    ("https://gone.example.com/", OSError("no such host"), "cannot be resolved"),
    ("http://provider.example.com/hook", ["93.184.215.14"], "must use https"),
    ("https://8.8.8.8/hook", [], None),
    ("https://127.0.0.1/hook", [], "private or reserved address"),
])
def test_endpoint_refusal_in_real_mode(url, resolved, refused):
    from adapters.provider_webhook import endpoint_refusal

    def resolve(host):
        if isinstance(resolved, Exception):
            raise resolved
        return resolved
    got = endpoint_refusal(url, resolve=resolve)
    assert (got is None) if refused is None else (refused in got)


def test_a_private_endpoint_is_refused_before_any_request(server):
    provider = WebhookProvider(lambda: KEY, timeout=2.0)             # real mode: private addresses refused
    result = provider.provision(None, SUB, {"w365_providerid": "p1", "w365_name": "Acme",
                                            "w365_endpointurl": server.url}, 1)
    assert result.state == ProvisioningResult.FAILED and "Nothing was sent" in result.message
    assert server.received == []
