"""A provisioning endpoint for local mode (the dev host mounts it at standins.LOCAL_PROVIDER_PATH): checks the
X-W365-Signature of each POST with the local signing key, records what it got, and answers 200 (401 for a bad
signature). A repeated X-W365-Delivery is answered 200 again and not recorded twice, as a provider must do (the
service may post a subscription more than once: adapters/provider_webhook.py). GET lists what it received, newest
last."""
from __future__ import annotations

import hmac
import json
import threading
from collections import deque
from typing import Any, Callable, Iterable

from app.composition import provider_signing_key
from core.settings import Settings
from adapters.provider_webhook import SIGNATURE_HEADER, sign


RECENT = 50


class DemoProvider:
    def __init__(self, settings: Settings | None = None):
        self._settings = settings or Settings()
        self.received: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._deliveries: deque[str] = deque(maxlen=RECENT)
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        if method == "GET":
            with self._lock:
                return _json(start_response, 200, {"received": list(self.received)})
        if method != "POST":
            return _json(start_response, 405, {"message": "Use POST."})
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        given = environ.get("HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"), "")
        if not hmac.compare_digest(given.encode(), sign(provider_signing_key(self._settings), body).encode()):
            return _json(start_response, 401, {"message": "Bad or missing signature."})
        try:
            document = json.loads(body)
        except ValueError:
            return _json(start_response, 400, {"message": "The body is not JSON."})
        delivery = environ.get("HTTP_X_W365_DELIVERY", "")
        with self._lock:
            if delivery and delivery in self._deliveries:
                return _json(start_response, 200, {"message": f"Already provisioned (delivery {delivery})."})
            if delivery:
                self._deliveries.append(delivery)
            self.received.append(document)
        return _json(start_response, 200, {"message": f"Provisioned by the local demo provider "
                                                      f"({document.get('name') or document.get('subscriptionId')})."})


def _json(start_response: Callable, status: int, body: dict) -> list[bytes]:
    reasons = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 405: "Method Not Allowed"}
    start_response(f"{status} {reasons[status]}", [("Content-Type", "application/json")])
    return [json.dumps(body).encode()]
