"""A live local-mode app for browser tests: the lead's dev host (function_app + Dataverse stand-in + Authorize.Net
simulator with its Accept.js stand-in) on a free 127.0.0.1 port, and a headless Chromium page.

Fixtures (the orders helper reuses them for /api/order-approvals/{token}):
- `live_app`: LiveApp(base_url, host, standin, simulator, services, ids); `live_app.send(message, table, id, **params)`
  posts a Custom API message to POST /api/dataverse as Dataverse would; `host.received` lists every /api request.
- `browser_page`: a fresh Playwright page; `page.console_messages` and `page.failed_responses` (URLs answered 404)
  are collected.
"""
from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(config, items):
    if os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium); browser tests skipped")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@dataclass
class LiveApp:
    base_url: str
    host: Any
    standin: Any
    simulator: Any
    services: Any
    ids: dict[str, str]
    server: Any = field(repr=False, default=None)

    def send(self, message: str, table: str, record_id: str, **parameters: Any) -> dict:
        from standins import LOCAL_WEBHOOK_KEY
        from standins import payloads as messages

        body = messages.custom_api(message, table, record_id, parameters, request_id=str(uuid.uuid4()),
                                   user_id=self.ids["admin"])
        response = requests.post(f"{self.base_url}/api/dataverse", data=messages.dumps(body), timeout=60,
                                 headers={"Content-Type": "application/json", "x-w365-webhook-key": LOCAL_WEBHOOK_KEY})
        assert response.status_code == 200, response.text
        return response.json()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def _live_app_session():
    from app.composition import build_services, set_services
    from standins import LOCAL_DATAVERSE_PATH, LOCAL_GATEWAY_KEY, LOCAL_GATEWAY_LOGIN, LOCAL_GATEWAY_PATH
    from core.settings import Settings
    from standins.dataverse import DataverseStandIn
    from standins.dataverse.demo import seed_demo
    from standins.devhost.host import FunctionsDevHost, serve
    from standins.authorizenet import AuthorizeNetSimulator
    import function_app

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    standin = DataverseStandIn()
    ids = seed_demo(standin)
    simulator = AuthorizeNetSimulator(login_id=LOCAL_GATEWAY_LOGIN, transaction_key=LOCAL_GATEWAY_KEY)
    services = build_services(Settings({"W365_MODE": "local", "W365_PUBLIC_BASE_URL": base_url}))
    set_services(services)
    # get_functions() may run once per app object: one host for the whole session.
    host = FunctionsDevHost(function_app.app, mounts={LOCAL_DATAVERSE_PATH: standin.wsgi_app(),
                                                      LOCAL_GATEWAY_PATH: simulator.wsgi_app()},
                            record_requests=True)
    server = serve(host, "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    if hasattr(services.queue, "drain"):
        host.every(0.2, services.queue.drain, "live-app-queue")
    app = LiveApp(base_url, host, standin, simulator, services, ids, server)
    try:
        yield app
    finally:
        host.stop()
        server.shutdown()
        server.server_close()
        set_services(None)


@pytest.fixture
def live_app(_live_app_session):
    from app.composition import set_services

    # Other tests (the `world` fixture) reset the process-wide services; put the live app's back for this test.
    set_services(_live_app_session.services)
    yield _live_app_session


@pytest.fixture(scope="session")
def _chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(_chromium):
    context = _chromium.new_context(viewport={"width": 800, "height": 900})
    page = context.new_page()
    page.console_messages = []
    page.failed_responses = []
    page.on("console", lambda message: page.console_messages.append(f"{message.type}: {message.text}"))
    page.on("response", lambda response: response.status == 404 and page.failed_responses.append(response.url))
    page.set_default_timeout(15000)
    try:
        yield page
    finally:
        context.close()
