"""`python -m installer ...`: settings from the environment and local.settings.json, the dry-run table, the
uninstall confirmation, a missing setting named."""
from __future__ import annotations

import json

import pytest
import responses

from dataverse.auth import StaticTokenProvider
from dataverse.client import DataverseClient
from standins.dataverse import DataverseStandIn, metadata
from installer import __main__ as cli

URL = "https://contoso.crm.dynamics.com"


@pytest.fixture
def standin(monkeypatch):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        s = DataverseStandIn()
        metadata.attach(s)
        s.register_with_responses(rsps, URL)
        client = DataverseClient(URL, StaticTokenProvider("t"), sleep=lambda seconds: None)
        monkeypatch.setattr(cli, "build_client", lambda settings: client)
        monkeypatch.setenv("W365_WEBHOOK_KEY", "cli-webhook-key-0123")
        yield s


def test_settings_come_from_local_settings_json_and_the_environment_wins(tmp_path):
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {
        "DATAVERSE_URL": "https://file.crm.dynamics.com", "W365_WEBHOOK_KEY": "from-file-webhook-key", "W365_MODE": ""}}))
    settings = cli.load_settings(tmp_path, {"W365_WEBHOOK_KEY": "from-env-webhook-key"})
    assert settings.get("DATAVERSE_URL") == "https://file.crm.dynamics.com"
    assert settings.get("W365_WEBHOOK_KEY") == "from-env-webhook-key"


def test_plan_prints_the_table_and_writes_nothing(standin, capsys):
    assert cli.main(["plan", "--webhook-url", "https://app.example/api/dataverse?code=secret-code"]) == 0
    out = capsys.readouterr().out
    assert "create  table" in out and "W365: w365_ChargeInvoice of invoice" in out
    assert "secret-code" not in out                     # the function key is not printed
    assert {m for m, _ in standin.requests} == {"GET"}


def test_install_then_uninstall_asks_first(standin, capsys, monkeypatch):
    assert cli.main(["install", "--webhook-url", "https://app.example/api/dataverse?code=k"]) == 0
    assert "Done:" in capsys.readouterr().out
    assert cli.main(["install", "--webhook-url", "https://app.example/api/dataverse?code=k"]) == 0
    assert "Nothing to change" in capsys.readouterr().out
    catalog = metadata.catalog(standin)
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    assert cli.main(["uninstall"]) == 0
    assert "Nothing removed." in capsys.readouterr().out and catalog.rows.rows["customapi"]
    assert cli.main(["uninstall", "--yes"]) == 0
    assert catalog.rows.rows["customapi"] == {} and "w365_paymentprofile" in catalog.entities


def test_a_missing_setting_is_named(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "load_settings", lambda: cli.Settings({"W365_MODE": "real"}))
    assert cli.main(["plan"]) == 2
    assert "DATAVERSE_URL" in capsys.readouterr().err


def test_install_takes_the_public_authorize_net_settings_into_environment_variables(standin, monkeypatch, capsys):
    for name, value in {"AUTHORIZENET_CLIENT_KEY": "public-client-key-0123", "AUTHORIZENET_LOGIN_ID": "login-id",
                        "AUTHORIZENET_ENVIRONMENT": " Production ", "AUTHORIZENET_TRANSACTION_KEY": "secret-tx",
                        "AUTHORIZENET_SIGNATURE_KEY": "secret-sig"}.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["install"]) == 0
    values = {v["schemaname"]: v["value"] for v in standin.rows("environmentvariablevalue")}
    assert values == {"w365_AcceptJsClientKey": "public-client-key-0123", "w365_AuthorizeNetLoginId": "login-id",
                      "w365_AuthorizeNetEnvironment": "production"}
    assert "secret-" not in capsys.readouterr().out + str(standin.rows("environmentvariabledefinition"))

    monkeypatch.setenv("AUTHORIZENET_ENVIRONMENT", "live")
    assert cli.main(["install"]) == 2
    assert "AUTHORIZENET_ENVIRONMENT" in capsys.readouterr().err


def test_export_writes_the_managed_zip_and_import_reports_a_refused_job(standin, capsys, tmp_path, monkeypatch):
    assert cli.main(["install", "--webhook-url", "https://app.example/api/dataverse?code=k"]) == 0
    assert cli.main(["export", "--managed", "--out", str(tmp_path)]) == 0
    (written,) = tmp_path.iterdir()
    assert written.name == "W365Payments_1_0_0_1_managed.zip"
    assert "Version 1.0.0.0 -> 1.0.0.1" in capsys.readouterr().out
    monkeypatch.setattr(cli.solutions, "pause", lambda seconds: None)                 # no real waiting
    assert cli.main(["import", str(written)]) == 1           # a managed copy onto its own unmanaged source
    assert "Import FAILED" in capsys.readouterr().out
    assert cli.main(["uninstall", "--yes"]) == 0
    catalog = metadata.catalog(standin)
    assert catalog.rows.rows["appaction"] == {} and catalog.rows.rows["savedquery"] == {}
    assert not [r for r in standin.rows("role") if r["name"] == "W365 Billing Clerk"]
