"""The Webhook provider end to end: events into the stand-in, the queue, and a real HTTP endpoint on 127.0.0.1 (a
scripted server, or the local-mode demo provider served by wsgiref)."""
from __future__ import annotations

import hashlib
import hmac
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from tests.conftest import PROVIDER_SIGNING_KEY
from app.composition import provisioning_providers
from standins import LOCAL_PROVIDER_PATH
from core.settings import LOCAL_DEFAULT_BASE_URL, Settings
from credit_hold_provider_server import ProviderServer, refused_url
from standins.dataverse import demo
from standins.demo_provider import DemoProvider
from adapters.provider_webhook import WebhookProvider


def status(world, label):
    return world.choice("w365_subscription", "w365_provisioningstatus", label)


def point_webhook_provider_at(world, url):
    # The test servers listen on 127.0.0.1, which real mode refuses (test_real_mode_refuses_... below): allowed here.
    world.services.providers["Webhook"].allow_private_addresses = True
    world.standin.update("w365_provider", world.ids["provider_webhook"], {"w365_endpointurl": url})


def create_subscription(world, name="Cloud PC"):
    sub = world.standin.seed("w365_subscription", {
        "w365_name": name, "w365_accountid@odata.bind": f"/accounts({world.ids['account']})",
        "w365_providerid@odata.bind": f"/w365_providers({world.ids['provider_webhook']})"})
    assert world.event("Create", "w365_subscription", sub, {"w365_name": name}).status == 200
    return sub


@pytest.fixture
def server():
    with ProviderServer() as s:
        yield s


def test_5xx_then_success_through_the_queue_back_off(world, server):
    point_webhook_provider_at(world, server.url)
    server.script.append((500, "oops", 0))
    sub = create_subscription(world)
    world.queue.drain()
    assert world.row("w365_subscription", sub)["w365_provisioningstatus"] == status(world, "Provisioning")
    world.queue.drain(include_delayed=True)
    row = world.row("w365_subscription", sub)
    assert row["w365_provisioningstatus"] == status(world, "Provisioned")
    assert len(server.received) == 2
    for headers, body in server.received:
        expected = "sha256=" + hmac.new(PROVIDER_SIGNING_KEY.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-w365-signature"], expected)


def test_4xx_fails_with_the_providers_message(world, server):
    point_webhook_provider_at(world, server.url)
    server.script.append((400, '{"error": {"message": "Tenant is suspended"}}', 0))
    sub = create_subscription(world)
    world.queue.drain(include_delayed=True)
    row = world.row("w365_subscription", sub)
    assert row["w365_provisioningstatus"] == status(world, "Failed")
    assert "Tenant is suspended" in row["w365_provisioningresult"]
    assert len(server.received) == 1


def test_timeouts_are_retried_then_fail(world, server):
    world.services.providers["Webhook"] = WebhookProvider(lambda: PROVIDER_SIGNING_KEY, timeout=0.1)
    point_webhook_provider_at(world, server.url)
    server.script.extend([(200, "{}", 0.4)] * 5)
    sub = create_subscription(world)
    world.queue.drain(include_delayed=True)
    row = world.row("w365_subscription", sub)
    assert row["w365_provisioningstatus"] == status(world, "Failed")
    assert row["w365_provisioningresult"].startswith("Gave up after 5 attempts: The provider did not answer")


def test_a_refused_connection_is_retried_then_fails(world):
    point_webhook_provider_at(world, refused_url())
    sub = create_subscription(world)
    world.queue.drain(include_delayed=True)
    row = world.row("w365_subscription", sub)
    assert row["w365_provisioningstatus"] == status(world, "Failed")
    assert "could not be reached" in row["w365_provisioningresult"]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def test_local_mode_demo_hold_create_lift_provisioned_by_the_demo_provider(world):
    assert demo.WEBHOOK_PROVIDER_URL == LOCAL_DEFAULT_BASE_URL + LOCAL_PROVIDER_PATH
    local = Settings({"W365_MODE": "local"})
    world.services.providers = provisioning_providers(local)       # the local default signing key on both sides
    endpoint = DemoProvider(local)
    httpd = make_server("127.0.0.1", 0, endpoint, handler_class=_Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        point_webhook_provider_at(world, f"http://127.0.0.1:{httpd.server_port}{LOCAL_PROVIDER_PATH}")
        account = world.ids["account"]
        world.standin.update("w365_configuration", world.ids["configuration"], {"w365_enablecredithold": True})
        world.standin.update("account", account, {"creditonhold": True})        # the admin puts it on hold
        world.event("Update", "account", account, {"creditonhold": True}, pre_image={"creditonhold": False})
        sub = create_subscription(world)
        world.queue.drain()
        assert world.row("w365_subscription", sub)["w365_provisioningstatus"] == status(
            world, "Blocked By Credit Hold")
        world.standin.update("account", account, {"creditonhold": False})       # ... and lifts it
        assert world.event("Update", "account", account, {"creditonhold": False},
                           pre_image={"creditonhold": True}).body["released"] == 1
        world.queue.drain()
        row = world.row("w365_subscription", sub)
        assert row["w365_provisioningstatus"] == status(world, "Provisioned")
        assert "local demo provider" in row["w365_provisioningresult"]
        assert [d["subscriptionId"] for d in endpoint.received] == [sub]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_two_deliveries_side_by_side_post_the_same_delivery_id_and_the_demo_provider_provisions_once(world):
    from app.capabilities import run_work

    local = Settings({"W365_MODE": "local"})
    world.services.providers = provisioning_providers(local)
    webhook = world.services.providers["Webhook"]
    endpoint = DemoProvider(local)
    httpd = make_server("127.0.0.1", 0, endpoint, handler_class=_Quiet)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        point_webhook_provider_at(world, f"http://127.0.0.1:{httpd.server_port}{LOCAL_PROVIDER_PATH}")
        sub = create_subscription(world)
        payload, = [p for _, p in world.queue.pending()]
        answers = []

        class SecondDeliveryMeanwhile:       # both deliveries read Pending before either writes its outcome
            def provision(self, services, subscription, provider, attempt):
                if not answers:
                    answers.append("first")
                    run_work("credit_hold.provision", payload, world.services)
                return webhook.provision(services, subscription, provider, attempt)

        world.services.providers = {**world.services.providers, "Webhook": SecondDeliveryMeanwhile()}
        run_work("credit_hold.provision", payload, world.services)
        assert [d["subscriptionId"] for d in endpoint.received] == [sub]      # the repeat was dropped, answered 200
        row = world.row("w365_subscription", sub)
        assert row["w365_provisioningstatus"] == status(world, "Provisioned")
        assert "local demo provider" in row["w365_provisioningresult"]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_demo_provider_refuses_a_bad_signature():
    import io

    endpoint = DemoProvider(Settings({"W365_MODE": "local"}))
    seen = []
    body = b'{"subscriptionId": "x"}'
    answer = endpoint({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
                       "HTTP_X_W365_SIGNATURE": "sha256=00"}, lambda s, h: seen.append(s))
    assert seen == ["401 Unauthorized"] and b"signature" in b"".join(answer)
    assert list(endpoint.received) == []


@pytest.mark.parametrize("url", ["http://provider.example.com/hook", "https://127.0.0.1:8443/hook",
                                 "https://10.1.2.3/hook", "https://169.254.169.254/latest/meta-data",
                                 "https://[::1]/hook", "https://user:pw@provider.example.com/hook"])
def test_real_mode_refuses_a_non_https_or_private_endpoint_without_a_request(world, url):
    """The service signs what it posts: never to plain http, its own network or the cloud's metadata address."""
    assert world.services.providers["Webhook"].allow_private_addresses is False      # real mode's wiring
    world.services.providers["Webhook"]._resolve = lambda host: ["93.184.215.14"]     # a public answer, no DNS
    world.standin.update("w365_provider", world.ids["provider_webhook"], {"w365_endpointurl": url})
    sub = create_subscription(world)
    world.queue.drain(include_delayed=True)
    row = world.row("w365_subscription", sub)
    assert row["w365_provisioningstatus"] == status(world, "Failed")
    assert "Nothing was sent" in row["w365_provisioningresult"]
