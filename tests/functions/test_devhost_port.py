"""The dev host on another port: the app's links, its calls to the stand-ins and the demo provider follow it."""
import io
import json

import pytest

from standins.demo_provider import DemoProvider, RECENT
from tests.devhost_process import DevHostProcess, free_port


@pytest.fixture
def host(tmp_path):
    running = DevHostProcess(tmp_path / "local").start()
    yield running
    running.stop()


def _rows(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def test_serve_on_another_port_makes_the_links_and_the_demo_provider_follow_it(host):
    assert host.port != 7071
    providers = _rows(host.devhost("show", "w365_provider", "--select", "w365_name,w365_endpointurl"))
    webhook = [p for p in providers if p.get("w365_endpointurl")]
    assert [p["w365_endpointurl"] for p in webhook] == [f"{host.base}/_local/provider"]
    ids = dict(line.split()[:2] for line in host.devhost("demo").stdout.splitlines())
    sent = host.devhost("send", "w365_AddPaymentProfile", "account", ids["account"], f"ContactId={ids['contact']}",
                        "Method=ProfileRequest", "EmailSubject=Card", "EmailBody=Add it: {Secure Link}")
    assert "w365_operation: Succeeded" in sent.stdout, sent.stdout + sent.stderr
    emails = _rows(host.devhost("show", "email", "--select", "description"))
    assert f"{host.base}/api/profile-requests/" in emails[-1]["description"]


def test_a_saved_local_directory_from_another_port_is_pointed_at_the_new_one(tmp_path):
    first = DevHostProcess(tmp_path / "local").start()
    first.stop()
    port = free_port()
    while port == first.port:
        port = free_port()
    second = DevHostProcess(tmp_path / "local", port).start()
    try:
        assert second.port != first.port
        providers = _rows(second.devhost("show", "w365_provider", "--select", "w365_endpointurl"))
        assert [p["w365_endpointurl"] for p in providers if p.get("w365_endpointurl")] == [
            f"{second.base}/_local/provider"]
    finally:
        second.stop()


def test_the_demo_provider_keeps_only_the_recent_documents():
    from adapters.provider_webhook import sign
    from app.composition import provider_signing_key
    from core.settings import Settings

    settings = Settings({"W365_MODE": "local"})
    endpoint = DemoProvider(settings)
    for number in range(RECENT + 20):
        body = json.dumps({"subscriptionId": str(number), "padding": "x" * 1000}).encode()
        endpoint({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
                  "HTTP_X_W365_SIGNATURE": sign(provider_signing_key(settings), body)}, lambda s, h: None)
    assert [d["subscriptionId"] for d in endpoint.received] == [str(n) for n in range(20, RECENT + 20)]
