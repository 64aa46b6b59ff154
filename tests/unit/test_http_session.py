"""core.transport.http_session: proxy, NO_PROXY and CA bundle read once when the session is made, never per request;
a connection pool as large as the host's concurrency (host.json)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import responses

from core.transport import HOST_CONCURRENCY, http_session

ORG = "https://contoso.crm.dynamics.com"


def test_the_pool_holds_as_many_connections_as_the_host_runs_calls():
    host = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())["extensions"]
    assert HOST_CONCURRENCY == host["http"]["maxConcurrentRequests"] + host["serviceBus"]["maxConcurrentCalls"]
    adapter = http_session(ORG, environ={}).get_adapter(ORG + "/api/data/v9.2/")
    assert adapter._pool_maxsize == HOST_CONCURRENCY


def test_proxy_and_ca_bundle_come_from_the_environment_once():
    session = http_session(ORG, environ={"HTTPS_PROXY": "http://proxy.corp:3128",
                                         "REQUESTS_CA_BUNDLE": "/etc/ssl/corp.pem"})
    assert session.trust_env is False
    assert session.proxies == {"https": "http://proxy.corp:3128"}
    assert session.verify == "/etc/ssl/corp.pem"


@pytest.mark.parametrize("no_proxy", [".dynamics.com", "contoso.crm.dynamics.com", "*"])
def test_no_proxy_naming_the_host_means_no_proxy(no_proxy):
    session = http_session(ORG, environ={"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": no_proxy})
    assert session.proxies == {}


def test_no_proxy_for_another_host_keeps_the_proxy():
    session = http_session(ORG, environ={"https_proxy": "http://proxy.corp:3128", "no_proxy": "internal.corp"})
    assert session.proxies == {"https": "http://proxy.corp:3128"}


def test_a_request_looks_up_neither_the_environment_nor_netrc(monkeypatch):
    session = http_session(ORG, environ={})

    def looked_up(*args, **kwargs):
        raise AssertionError("looked up per request")
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", looked_up)
    monkeypatch.setattr(requests.sessions, "get_environ_proxies", looked_up)
    monkeypatch.setattr(requests.utils, "get_environ_proxies", looked_up)
    with responses.RequestsMock() as mock:
        mock.add(responses.GET, ORG + "/api/data/v9.2/WhoAmI", json={"UserId": "x"})
        assert session.get(ORG + "/api/data/v9.2/WhoAmI").json() == {"UserId": "x"}
    default = requests.Session()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock, \
            pytest.raises(AssertionError, match="per request"):
        mock.add(responses.GET, ORG + "/api/data/v9.2/WhoAmI", json={"UserId": "x"})
        default.get(ORG + "/api/data/v9.2/WhoAmI")            # what a default Session would do
