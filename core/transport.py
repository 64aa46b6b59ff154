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
