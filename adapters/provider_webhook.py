"""The Webhook provider (an adapter: it speaks HTTP): POST the subscription as JSON to the provider's w365_endpointurl,
signed with HMAC-SHA256 over the exact body bytes:

    X-W365-Signature: sha256=<hex of HMAC-SHA256(key, body)>
    X-W365-Delivery: <subscription id>      the same on every delivery and attempt: the provider's idempotency key
    X-W365-Attempt: <n>

A provider must treat a repeated X-W365-Delivery as the same request and answer it as it answered the first: the
service takes no claim before the call (handlers/credit_hold/rules.py), so a redelivered message, or two deliveries
side by side, may post the same subscription again, as a retry after a timeout always could.
The key is the app setting W365_PROVIDER_SIGNING_KEY (local mode: a default, app.composition). 2xx = Provisioned;
4xx = Failed with the provider's message (408 and 429 excepted: they mean "later"); 5xx, timeout, refused = retried.

The service posts signed data there, so in real mode the endpoint must be `https` to a public address: a URL that is
not https, carries credentials, names a private, loopback, link-local, shared or reserved address, or a host that
resolves to one, fails at once without a request (SSRF: a provider row must not make the service call into its own
network or the cloud's metadata endpoint). Local mode allows its demo provider on 127.0.0.1
(`allow_private_addresses`). The check resolves the name just before the call; a DNS answer that changes between the
check and the connection is not caught here (no redirects are followed, though).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import requests

from core import jsonutil
from core.ports import Record
from core.services import Services
from handlers.credit_hold.rules import RESULT_MAX, ProvisioningResult

SIGNATURE_HEADER = "X-W365-Signature"
DEFAULT_TIMEOUT = (5.0, 15.0)             # (connect, read) seconds
_TRANSIENT_4XX = frozenset({408, 429})


def sign(key: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def subscription_document(subscription: Record, provider: Record, attempt: int) -> dict[str, Any]:
    return {
        "subscriptionId": subscription["w365_subscriptionid"],
        "name": subscription.get("w365_name"),
        "accountId": subscription.get("_w365_accountid_value"),
        "salesOrderId": subscription.get("_w365_salesorderid_value"),
        "productId": subscription.get("_w365_productid_value"),
        "quantity": subscription.get("w365_quantity"),
        "providerId": provider.get("w365_providerid"),
        "attempt": attempt,
    }


Resolver = Callable[[str], Iterable[str]]


def _resolve(host: str) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)]


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def endpoint_refusal(url: str, *, allow_private: bool = False, resolve: Resolver | None = _resolve) -> str | None:
    """Why the service must not post to `url` (a sentence for the provider's result), or None when it may.
    resolve=None checks the URL as written only (a host name passes; the installer's check, without DNS)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port                                   # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "is not a valid http(s) URL"
    if allow_private:
        return None
    if parts.scheme != "https":
        return "must use https"
    if parts.username or parts.password:
        return "must not carry a user name or password"
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if resolve is None:
            return None
        try:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(host)]
        except (OSError, UnicodeError, ValueError):
            return f"names a host ({host}) that cannot be resolved"
    if not addresses:
        return f"names a host ({host}) that cannot be resolved"
    for address in addresses:
        if not _public(address):
            return f"points at a private or reserved address ({address}); it must be a public https address"
    return None


class WebhookProvider:
    def __init__(self, signing_key: Callable[[], str], *, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 session: requests.Session | None = None, allow_private_addresses: bool = False,
                 resolve: Resolver = _resolve):
        self._signing_key = signing_key          # a callable: the setting is read at the first send, not at wiring
        self._timeout = timeout
        self._session = session or requests.Session()
        self.allow_private_addresses = allow_private_addresses       # local mode's demo provider on 127.0.0.1
        self._resolve = resolve

    def provision(self, services: Services, subscription: Record, provider: Record,
                  attempt: int) -> ProvisioningResult:
        url = (provider.get("w365_endpointurl") or "").strip()
        if not url:
            return ProvisioningResult.failed(f"The provider {provider.get('w365_name')} has no valid endpoint URL.")
        refusal = endpoint_refusal(url, allow_private=self.allow_private_addresses, resolve=self._resolve)
        if refusal:
            return ProvisioningResult.failed(f"The endpoint URL of the provider {provider.get('w365_name')} "
                                             f"{refusal}. Nothing was sent."[:RESULT_MAX])
        body = jsonutil.dumps(subscription_document(subscription, provider, attempt),
                              separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._signing_key(), body),
                   "X-W365-Delivery": subscription["w365_subscriptionid"], "X-W365-Attempt": str(attempt)}
        try:
            response = self._session.post(url, data=body, headers=headers, timeout=self._timeout,
                                          allow_redirects=False)
        except requests.Timeout:
            return ProvisioningResult.retry("The provider did not answer in time.")
        except requests.ConnectionError:
            return ProvisioningResult.retry("The provider could not be reached.")
        except requests.RequestException as exc:
            return ProvisioningResult.retry(f"The request to the provider failed ({type(exc).__name__}).")
        code = response.status_code
        said = _provider_message(response)
        if 200 <= code < 300:
            return ProvisioningResult.provisioned(said or f"Provisioned by the provider (HTTP {code}).")
        if 400 <= code < 500 and code not in _TRANSIENT_4XX:
            return ProvisioningResult.failed(f"The provider refused (HTTP {code}): {said or 'no message'}"[:RESULT_MAX])
        if code < 400:
            return ProvisioningResult.failed(f"The provider answered HTTP {code}; check its endpoint URL.")
        return ProvisioningResult.retry(f"The provider answered HTTP {code}.")


def _provider_message(response: requests.Response) -> str:
    """The provider's own words: `message` or `error` of a JSON body, else the text, trimmed."""
    text = response.text.strip()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        found = parsed.get("message") or parsed.get("error")
        if isinstance(found, dict):
            found = found.get("message")
        if isinstance(found, str):
            text = found.strip()
    return text[:RESULT_MAX - 100]
