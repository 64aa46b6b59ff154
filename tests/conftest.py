"""The shared test world: the real Dataverse client and the real Authorize.Net client, talking HTTP (through
`responses`) to the Dataverse stand-in and the sandbox simulator, an in-process queue and a clock the test moves.

Use `world` for anything end to end: `world.send(...)` posts a Custom API message to POST /api/dataverse exactly as
Dataverse would (through the function itself), `world.event(...)` a table event, `world.standin` / `world.simulator`
expose the state to assert on.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

import azure.functions as func
import pytest
import responses


from core import footprint
from app.capabilities import run_work
from app.composition import set_services
from standins.queue import InProcessQueue
from core.services import Services
from core.settings import Settings
from standins import payloads as messages

DATAVERSE_URL = "https://contoso.crm.dynamics.com"
GATEWAY_URL = "https://apitest.authorize.net/xml/v1/request.api"
WEBHOOK_KEY = "test-webhook-key-7f3a"
SIGNATURE_KEY = "TESTSIGNATUREKEY00112233445566778899AABBCCDDEEFF"
PUBLIC_BASE_URL = "https://w365.example.test"
PROVIDER_SIGNING_KEY = "test-provider-signing-key-5e1d"
TEST_SETTINGS = {
    "W365_MODE": "test",
    "DATAVERSE_URL": DATAVERSE_URL, "DATAVERSE_TENANT_ID": "tenant", "DATAVERSE_CLIENT_ID": "client",
    "DATAVERSE_CLIENT_SECRET": "client-secret-value",
    "AUTHORIZENET_LOGIN_ID": "sim-login", "AUTHORIZENET_TRANSACTION_KEY": "simTransKey12345",
    "AUTHORIZENET_CLIENT_KEY": "sim-public-client-key", "AUTHORIZENET_SIGNATURE_KEY": SIGNATURE_KEY,
    "AUTHORIZENET_ENVIRONMENT": "sandbox", "W365_WEBHOOK_KEY": WEBHOOK_KEY, "W365_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    "W365_PROVIDER_SIGNING_KEY": PROVIDER_SIGNING_KEY,
}


class MovableClock:
    def __init__(self, start: dt.datetime | None = None):
        self._now = start or dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.timezone.utc)

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta


@dataclass
class Reply:
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return str(self.body.get("message", ""))


class InvocationContext(func.Context):
    """What the Functions worker passes as a trigger's `context`: here only the invocation id matters."""

    def __init__(self, function_name: str):
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name

    invocation_id = property(lambda self: self._invocation_id)
    function_name = property(lambda self: self._function_name)
    function_directory = property(lambda self: "")
    trace_context = property(lambda self: None)
    retry_context = property(lambda self: None)
    thread_local_storage = property(lambda self: None)


@dataclass
class World:
    standin: Any
    simulator: Any
    services: Services
    queue: InProcessQueue
    clock: MovableClock
    ids: dict[str, Any]
    rsps: responses.RequestsMock
    invocation: InvocationContext | None = None             # the last one world.post made

    # --- entry points, through the function exactly as deployed ------------------------------------------------
    def post(self, body: bytes, headers: Mapping[str, str] | None = None) -> Reply:
        from app.platform import dataverse_webhook

        request = func.HttpRequest("POST", "http://localhost:7071/api/dataverse", body=body,
                                   headers={"x-w365-webhook-key": WEBHOOK_KEY, "content-type": "application/json",
                                            **(headers or {})})
        self.invocation = InvocationContext("dataverse_webhook")
        response = dataverse_webhook.build().get_user_function()(request, context=self.invocation)
        text = response.get_body().decode()
        return Reply(response.status_code, json.loads(text) if text else {}, dict(response.headers))

    def send(self, message: str, table: str, record_id: str, *, user: str | None = None,
             request_id: str | None = None, **parameters: Any) -> Reply:
        body = messages.custom_api(message, table, record_id, parameters, request_id=request_id or str(uuid.uuid4()),
                                   user_id=user or self.ids["admin"])
        return self.post(messages.dumps(body))

    def event(self, message: str, table: str, record_id: str, attributes: Mapping[str, Any], *,
              pre_image: Mapping[str, Any] | None = None, user: str | None = None, depth: int = 1) -> Reply:
        body = messages.table_event(message, table, record_id, attributes, pre_image=pre_image,
                                    user_id=user or self.ids["admin"], depth=depth)
        return self.post(messages.dumps(body))

    # --- state ----------------------------------------------------------------------------------------------------
    def row(self, table: str, record_id: str) -> dict:
        return self.standin.get(table, record_id)

    def rows(self, table: str, **equal: Any) -> list[dict]:
        return [r for r in self.standin.rows(table) if all(r.get(k) == v for k, v in equal.items())]

    def operation(self, request_id: str) -> dict | None:
        found = self.rows("w365_operation", w365_requestid=request_id)
        return found[0] if found else None

    def choice(self, table: str, column: str, label: str) -> int:
        return footprint.choice(table, column, label)


def build_world(rsps: responses.RequestsMock, settings: Mapping[str, str] | None = None) -> World:
    from app.composition import provisioning_providers
    from dataverse.auth import StaticTokenProvider
    from dataverse.client import DataverseClient
    from standins.dataverse import DataverseStandIn
    from standins.dataverse.demo import seed_demo
    from gateway.client import AuthorizeNetGateway
    from standins.authorizenet import AuthorizeNetSimulator

    clock = MovableClock()
    standin = DataverseStandIn(clock=clock)
    ids = seed_demo(standin)
    ids.setdefault("admin_user", ids.get("admin"))     # seed_demo names the administrator "admin"
    simulator = AuthorizeNetSimulator(clock=clock, login_id=TEST_SETTINGS["AUTHORIZENET_LOGIN_ID"],
                                      transaction_key=TEST_SETTINGS["AUTHORIZENET_TRANSACTION_KEY"],
                                      public_client_key=TEST_SETTINGS["AUTHORIZENET_CLIENT_KEY"],
                                      signature_key=SIGNATURE_KEY)
    standin.register_with_responses(rsps, DATAVERSE_URL)
    simulator.register_with_responses(rsps, GATEWAY_URL)
    rsps.add_passthru("http://127.0.0.1")
    values = {**TEST_SETTINGS, **(settings or {})}
    services: Services
    queue = InProcessQueue(lambda kind, payload: run_work(kind, payload, services), clock=clock)
    services = Services(
        dataverse=DataverseClient(DATAVERSE_URL, StaticTokenProvider("test-token"), sleep=lambda seconds: None),
        gateway=AuthorizeNetGateway(values["AUTHORIZENET_LOGIN_ID"], values["AUTHORIZENET_TRANSACTION_KEY"],
                                    environment="sandbox"),
        queue=queue, settings=Settings(values), clock=clock, providers=provisioning_providers(Settings(values)))
    services.gateway.read_retry_delay = 0
    return World(standin, simulator, services, queue, clock, ids, rsps)


@pytest.fixture
def world():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        built = build_world(rsps)
        set_services(built.services)
        try:
            yield built
        finally:
            set_services(None)
