"""For the HTTP adapters (dataverse/, gateway/): what a transport failure says about whether the server saw the
request. requests/urllib3 are imported in the function, so nothing that imports core pulls them in."""
from __future__ import annotations


def never_sent(exc: Exception) -> bool:
    """True when the connection was never made (refused, unresolvable, no route, connect timeout), so the server
    cannot have seen the request: safe to resend even a charge. Anything else after sending may have been processed."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    # urllib3's NewConnectionError and NameResolutionError are ConnectTimeoutErrors.
    return isinstance(reason, ConnectTimeoutError)


# Threads that may call one host at once in a worker: HTTP invocations plus Service Bus messages (host.json
# extensions.http.maxConcurrentRequests + extensions.serviceBus.maxConcurrentCalls; a test keeps them equal). A pool
# smaller than this makes requests open and throw away a connection (a TLS handshake) whenever more threads are busy.
HOST_CONCURRENCY = 48


def http_session(base_url: str, *, pool_size: int = HOST_CONCURRENCY, environ=None):
    """A requests.Session for one host that reads its proxy and CA settings once, here.

    requests' default (`trust_env`) looks up the proxy variables and ~/.netrc on every request; this session does
    not: HTTPS_PROXY (unless NO_PROXY names the host) and REQUESTS_CA_BUNDLE are applied now, and the connection pool
    holds as many connections as the host runs threads."""
    import os

    import requests
    from requests.adapters import HTTPAdapter
    from requests.utils import should_bypass_proxies

    env = os.environ if environ is None else environ

    def setting(name: str) -> str:
        return env.get(name) or env.get(name.lower()) or ""

    session = requests.Session()
    session.trust_env = False
    scheme = base_url.split("://", 1)[0].lower()
    proxy = setting("HTTPS_PROXY") if scheme == "https" else setting("HTTP_PROXY")
    no_proxy = setting("NO_PROXY")
    if proxy and not (no_proxy and _bypassed(should_bypass_proxies, base_url, no_proxy)):
        session.proxies = {scheme: proxy}
    bundle = setting("REQUESTS_CA_BUNDLE") or setting("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _bypassed(should_bypass, url: str, no_proxy: str) -> bool:
    # requests' own NO_PROXY matching (host, domain suffix, CIDR); it reads only the argument when given one.
    return bool(should_bypass(url, no_proxy=no_proxy))
