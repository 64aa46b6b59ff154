"""The installer end to end: the real DataverseClient, over `responses`, against the stand-in's metadata endpoints
(a new environment: native tables only)."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import responses

from core import footprint
from dataverse.auth import StaticTokenProvider
from dataverse.client import DataverseClient
from standins.dataverse import DataverseStandIn, metadata
import installer
from installer import desired

URL = "https://contoso.crm.dynamics.com"
WEBHOOK = "https://w365.example.test/api/dataverse?code=function-key"
KEY = "webhook-key-<&\">"
SOLUTION = "W365Payments"
# What the function app's settings hold; the installer may only take the public ones.
SETTINGS = {"AUTHORIZENET_CLIENT_KEY": "public-client-key", "AUTHORIZENET_LOGIN_ID": "login-id",
            "AUTHORIZENET_ENVIRONMENT": "production", "AUTHORIZENET_TRANSACTION_KEY": "secret-transaction-key",
            "AUTHORIZENET_SIGNATURE_KEY": "secret-signature-key"}


@dataclasses.dataclass
class Env:
    standin: DataverseStandIn
    catalog: metadata.Catalog
    dv: DataverseClient
    root: Path
    sent: list                                   # (method, path, headers) of every request

    def install(self, **kw):
        return installer.install(self.dv, webhook_url=WEBHOOK, webhook_key=KEY, root=self.root,
                                 settings=kw.pop("settings", SETTINGS), out=kw.pop("out", lambda line: None), **kw)


def _scripts(root: Path) -> None:
    for resource in footprint.WEB_RESOURCES:
        path = root / resource.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"// {resource.name}\nfunction noop() {{}}\n", encoding="utf-8")


@pytest.fixture
def env(tmp_path):
    _scripts(tmp_path)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        standin = DataverseStandIn()
        catalog = metadata.attach(standin)
        sent = []

        def callback(request):
            path = request.url.split("/api/data/v9.2/", 1)[1].split("?", 1)[0]
            sent.append((request.method, path, dict(request.headers)))
            return standin.handle(request.method, request.url, dict(request.headers), request.body)

        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(URL) + "/api/data/v9.2/.*"), callback=callback,
                              content_type=None)
        dv = DataverseClient(URL, StaticTokenProvider("test-token"), sleep=lambda seconds: None)
        yield Env(standin, catalog, dv, tmp_path, sent)


def end_state(env: Env) -> dict:
    """Everything the install leaves behind, without generated ids."""
    cat = env.catalog
    entities = {name: {a: (v["AttributeType"], v.get("MaxLength"),
                           tuple((o["Value"], o["Label"]["UserLocalizedLabel"]["Label"])
                                 for o in (v.get("OptionSet") or {}).get("Options", [])))
                       for a, v in e["_attributes"].items()}
                for name, e in cat.entities.items()}
    keys = {name: sorted(tuple(k["KeyAttributes"]) for k in e["_keys"].values()) for name, e in cat.entities.items()}
    relationships = sorted((r["SchemaName"], r["ReferencedEntity"], r["ReferencingEntity"], r["ReferencingAttribute"])
                           for r in cat.relationships.values())
    rows = {t: sorted(str({k: v for k, v in r.items() if k in ("name", "uniquename", "url", "authvalue", "stage",
                                                                 "mode", "filteringattributes", "attributes",
                                                                 "type", "isoptional", "executeprivilegename",
                                                                 "content", "primaryobjecttypecode")})
                      for r in cat.rows.rows[t].values())
            for t in cat.rows.rows}
    config = [{k: r[k] for k in footprint.CONFIGURATION_DEFAULTS} for r in env.standin.rows("w365_configuration")]
    return {"entities": entities, "keys": keys, "relationships": relationships, "rows": rows, "config": config,
            "variables": variables(env), "components": sorted(cat.components.get(SOLUTION, []))}


def variables(env: Env) -> dict:
    """schema name -> (display name, type, default value, [current values]) of the environment variables."""
    values = env.standin.rows("environmentvariablevalue")
    return {d["schemaname"]: (d["displayname"], d["type"], d["defaultvalue"],
                              [v["value"] for v in values
                               if v["environmentvariabledefinitionid"]["id"] == d["environmentvariabledefinitionid"]])
            for d in env.standin.rows("environmentvariabledefinition")}


def test_full_install_creates_the_footprint(env):
    result = env.install()
    assert result.ok and result.done
    cat = env.catalog
    for table in desired.tables_with_columns():
        attributes = cat.entities[table.logical_name]["_attributes"]
        for column in table.custom_columns():
            got = attributes[column.name]
            assert got["AttributeType"] == desired.ATTRIBUTE_TYPES[column.type], column.name
            if column.type in ("string", "memo"):
                assert got["MaxLength"] == column.max_length, column.name
            if column.type == "choice":
                assert [(o["Value"], o["Label"]["UserLocalizedLabel"]["Label"])
                        for o in got["OptionSet"]["Options"]] == list(column.choices)
            if column.type == "lookup":
                assert got["Targets"] == list(column.targets)
        assert sorted(tuple(k["KeyAttributes"]) for k in cat.entities[table.logical_name]["_keys"].values()) == \
            sorted(table.alternate_keys)
    assert cat.entities["w365_paymentprofile"]["HasNotes"] and cat.entities["w365_securelink"]["HasActivities"]
    apis = {r["uniquename"]: r for r in cat.rows.rows["customapi"].values()}
    assert set(apis) == {a.unique_name for a in footprint.CUSTOM_APIS}
    charge = apis["w365_ChargeInvoice"]
    assert (charge["bindingtype"], charge["boundentitylogicalname"], charge["allowedcustomprocessingsteptype"],
            charge["executeprivilegename"], charge["isfunction"]) == (1, "invoice", 2,
                                                                      "prvCreatew365_paymenttransaction", False)
    params = {(r["uniquename"], r["type"], r["isoptional"]) for r in cat.rows.rows["customapirequestparameter"].values()
              if r["customapiid"]["id"] == charge["customapiid"]}
    assert params == {("RequestId", 10, False), ("Amount", 2, True)}
    (endpoint,) = cat.rows.rows["serviceendpoint"].values()
    assert (endpoint["contract"], endpoint["authtype"], endpoint["url"]) == (8, 5, WEBHOOK)
    assert endpoint["authvalue"] == ('<settings><setting name="x-w365-webhook-key" '
                                     'value="webhook-key-&lt;&amp;&quot;&gt;" /></settings>')
    steps = {r["name"]: r for r in cat.rows.rows["sdkmessageprocessingstep"].values()}
    assert set(steps) == {desired.step_name(s) for s in footprint.WEBHOOK_STEPS}
    credit = steps["W365: Update of account"]
    assert (credit["stage"], credit["mode"], credit["filteringattributes"]) == (40, 1, "creditonhold")
    assert credit["eventhandler"]["id"] == endpoint["serviceendpointid"]
    images = [i for i in cat.rows.rows["sdkmessageprocessingstepimage"].values()
              if i["sdkmessageprocessingstepid"]["id"] == credit["sdkmessageprocessingstepid"]]
    assert [(i["entityalias"], i["imagetype"], i["attributes"]) for i in images] == [("PreImage", 0, "creditonhold")]
    assert {r["name"] for r in cat.rows.rows["webresource"].values()} == {w.name for w in footprint.WEB_RESOURCES}
    (config,) = env.standin.rows("w365_configuration")
    assert {k: config[k] for k in footprint.CONFIGURATION_DEFAULTS} == dict(footprint.CONFIGURATION_DEFAULTS)
    assert len(cat.published) == 1 and "<entity>w365_paymentprofile</entity>" in cat.published[0]


# What belongs to one environment: created outside the product's solution so that no export carries it.
CONFIGURATION = {"serviceendpoints", "sdkmessageprocessingsteps", "sdkmessageprocessingstepimages",
                 "environmentvariablevalues", "w365_configurations"}


def test_every_component_create_carries_the_solution_header_and_configuration_stays_out(env):
    env.install()
    creates = [(path, headers) for method, path, headers in env.sent if method == "POST"
               and "Microsoft.Dynamics.CRM." not in path and path not in ("AddAppComponents", "PublishXml")]
    containers = {"publishers", "solutions"}
    components = [(p, h) for p, h in creates if p not in containers | CONFIGURATION]
    assert len(components) > 150
    assert [p for p, h in components if h.get("MSCRM.SolutionUniqueName") != SOLUTION] == []
    assert [p for p, h in creates if p in CONFIGURATION and "MSCRM.SolutionUniqueName" in h] == []
    assert {kind for kind, _ in env.catalog.components["Default"]} == {
        "serviceendpoint", "sdkmessageprocessingstep", "sdkmessageprocessingstepimage", "environmentvariablevalue"}
    kinds = {kind for kind, _ in env.catalog.components[SOLUTION]}
    assert kinds == {"table", "column", "relationship", "key", "customapi", "customapirequestparameter",
                     "webresource", "environmentvariabledefinition", "role", "fieldsecurityprofile",
                     "fieldpermission", "savedquery", "savedqueryvisualization", "systemform", "sitemap",
                     "appmodule", "appaction"}


def test_second_run_changes_nothing_and_says_so(env):
    env.install()
    before = end_state(env)
    env.sent.clear()
    lines = []
    result = env.install(out=lines.append)
    assert result.ok and result.done == [] and result.plan.actions == []
    assert [m for m, _, _ in env.sent if m != "GET"] == []
    assert "Nothing to change" in "\n".join(lines)
    assert end_state(env) == before


def test_run_cut_by_503_reports_and_rerun_finishes_with_the_same_end_state(env, tmp_path_factory):
    clean_root = tmp_path_factory.mktemp("clean")
    _scripts(clean_root)
    env.standin.fail_next(5, 503, match=lambda method, path: method == "POST" and path == "customapis")  # 1 + 4 retries
    lines = []
    first = env.install(out=lines.append)
    assert not first.ok and first.failed.component == "custom api"
    report = first.report()
    assert "FAILED at step" in report and "PlatformUnavailable" in report and "HTTP 503" in report
    assert "create custom api w365_AddPaymentProfile" in report and "created table" in report
    assert "Run the same command again" in report
    assert env.catalog.published == []                 # stopped before publishing
    second = env.install()
    assert second.ok
    assert {a.name for a in second.done} >= {a.name for a in first.missing if a.component != "publish"}
    assert {(a.component, a.name) for a in second.done}.isdisjoint({(a.component, a.name) for a in first.done})
    assert env.install().done == []

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        clean = DataverseStandIn()
        clean_catalog = metadata.attach(clean)
        clean.register_with_responses(rsps, URL)
        dv = DataverseClient(URL, StaticTokenProvider("t"), sleep=lambda s: None)
        installer.install(dv, webhook_url=WEBHOOK, webhook_key=KEY, root=env.root, settings=SETTINGS,
                          out=lambda line: None)
        assert end_state(Env(clean, clean_catalog, dv, env.root, [])) == end_state(env)


def test_a_changed_footprint_adds_only_what_is_new(env, monkeypatch):
    env.install()
    provider = footprint.table("w365_provider")
    kind = provider.column("w365_type")
    grown = dataclasses.replace(provider, columns=tuple(
        dataclasses.replace(c, choices=c.choices + ((100000002, "Queue"),)) if c is kind else c
        for c in provider.columns) + (footprint.Column("w365_secretname", "string", max_length=80),))
    monkeypatch.setattr(footprint, "OUR_TABLES", tuple(grown if t is provider else t for t in footprint.OUR_TABLES))
    monkeypatch.setattr(footprint, "TABLES", tuple(grown if t is provider else t for t in footprint.TABLES))
    api = footprint.CUSTOM_APIS[0]
    monkeypatch.setattr(footprint, "CUSTOM_APIS", (dataclasses.replace(
        api, parameters=api.parameters + (footprint.Parameter("Note", "String", True),)),) + footprint.CUSTOM_APIS[1:])
    (env.root / footprint.WEB_RESOURCES[0].path).write_text("// changed\n", encoding="utf-8")

    result = env.install()
    assert [(a.change, a.component, a.name) for a in result.done] == [
        ("create", "choice option", "w365_provider.w365_type=100000002"),
        ("create", "column", "w365_provider.w365_secretname"),
        ("create", "parameter", "w365_AddPaymentProfile.Note"),
        ("update", "web resource", footprint.WEB_RESOURCES[0].name),
        ("create", "publish", "PublishXml")]
    attributes = env.catalog.entities["w365_provider"]["_attributes"]
    assert attributes["w365_secretname"]["MaxLength"] == 80
    assert attributes["w365_type"]["OptionSet"]["Options"][-1]["Value"] == 100000002
    assert env.install().done == []


def _dialog_reads(env: Env) -> dict:
    """What directentry.js reads: each variable's current value, else its default value."""
    names = [v.schema_name for v in footprint.ENVIRONMENT_VARIABLES]
    rows = env.dv.query("environmentvariabledefinitions", select=("schemaname", "defaultvalue"),
                        filter=" or ".join(f"schemaname eq '{n}'" for n in names),
                        expand="environmentvariabledefinition_environmentvariablevalue($select=value)")
    return {r["schemaname"]: ([v["value"] for v in r["environmentvariabledefinition_environmentvariablevalue"]]
                              or [r["defaultvalue"]])[0] for r in rows}


def test_install_creates_the_environment_variables_from_the_public_settings_only(env):
    assert env.install().ok
    assert variables(env) == {
        "w365_AcceptJsClientKey": ("Accept.js Client Key", 100000000, None, ["public-client-key"]),
        "w365_AuthorizeNetLoginId": ("Authorize.Net API Login ID", 100000000, None, ["login-id"]),
        "w365_AuthorizeNetEnvironment": ("Authorize.Net Environment", 100000000, "sandbox", ["production"])}
    assert _dialog_reads(env) == {"w365_AcceptJsClientKey": "public-client-key",
                                  "w365_AuthorizeNetLoginId": "login-id", "w365_AuthorizeNetEnvironment": "production"}
    posts = {path: h for m, path, h in env.sent if m == "POST" and path.startswith("environmentvariable")}
    assert posts["environmentvariabledefinitions"].get("MSCRM.SolutionUniqueName") == SOLUTION
    assert "MSCRM.SolutionUniqueName" not in posts["environmentvariablevalues"]     # values stay out of exports
    assert sorted(n for kind, n in env.catalog.components[SOLUTION] if kind.startswith("environmentvariable")) == \
        sorted(v.schema_name for v in footprint.ENVIRONMENT_VARIABLES)
    stored = str([env.standin.rows(t.logical_name) for t in footprint.TABLES]) + str(env.catalog.rows.rows)
    assert "secret-" not in stored                 # the transaction and signature keys went nowhere
    assert env.install().done == []


def test_without_the_settings_the_definitions_come_with_defaults_only(env):
    assert "no value (AUTHORIZENET_CLIENT_KEY is not set)" in " ".join(env.install(settings={}, dry_run=True)
                                                                       .plan.warnings)
    assert env.install(settings={}).ok
    assert _dialog_reads(env) == {"w365_AcceptJsClientKey": None, "w365_AuthorizeNetLoginId": None,
                                  "w365_AuthorizeNetEnvironment": "sandbox"}
    assert env.standin.rows("environmentvariablevalue") == []
    result = env.install(settings={"AUTHORIZENET_LOGIN_ID": "login-id"})      # a setting added later
    assert [(a.change, a.component, a.name) for a in result.done] == [
        ("create", "environment variable value", "w365_AuthorizeNetLoginId"), ("create", "publish", "PublishXml")]
    assert _dialog_reads(env)["w365_AuthorizeNetLoginId"] == "login-id"


def test_a_changed_setting_updates_the_value_and_an_absent_one_keeps_it(env):
    env.install()
    lines = []
    result = env.install(settings={**SETTINGS, "AUTHORIZENET_CLIENT_KEY": "rotated-client-key"}, out=lines.append)
    assert [(a.change, a.component, a.name) for a in result.done] == [
        ("update", "environment variable value", "w365_AcceptJsClientKey"), ("create", "publish", "PublishXml")]
    assert "value from AUTHORIZENET_CLIENT_KEY" in env.install(settings={**SETTINGS, "AUTHORIZENET_CLIENT_KEY": "x"},
                                                               dry_run=True).plan.table()
    assert variables(env)["w365_AcceptJsClientKey"][3] == ["rotated-client-key"]
    assert len(env.standin.rows("environmentvariablevalue")) == 3
    assert env.install(settings={}).done == []     # a value set earlier (or by an administrator) stays
    assert _dialog_reads(env)["w365_AcceptJsClientKey"] == "rotated-client-key"


def test_drift_that_cannot_be_changed_in_place_is_reported_not_touched(env):
    env.install()
    env.catalog.entities["w365_operation"]["_attributes"]["w365_message"]["AttributeType"] = "String"
    plan = installer.plan(env.dv, webhook_url=WEBHOOK, webhook_key=KEY, root=env.root)
    assert [(a.change, a.name) for a in plan.actions] == [("drift", "w365_operation.w365_message")]
    assert plan.changes == []


def test_rotated_webhook_key_and_new_url_update_the_endpoint(env):
    env.install()
    result = installer.install(env.dv, webhook_url=WEBHOOK + "2", webhook_key="new-key", root=env.root,
                               out=lambda line: None)
    assert [(a.change, a.component) for a in result.done] == [("update", "webhook endpoint"),
                                                             ("create", "publish")]
    (endpoint,) = env.catalog.rows.rows["serviceendpoint"].values()
    assert endpoint["url"] == WEBHOOK + "2" and 'value="new-key"' in endpoint["authvalue"]


def test_a_rotated_webhook_key_alone_is_set_although_dataverse_never_returns_authvalue(env):
    """serviceendpoint.authvalue is IsValidForRead False: the installer must notice a new key without reading it."""
    env.install()
    (endpoint,) = env.dv.query("serviceendpoints", select=("authvalue", "description"))
    assert endpoint["authvalue"] is None and KEY not in endpoint["description"]
    lines = []
    result = installer.install(env.dv, webhook_url=WEBHOOK, webhook_key="new-key", root=env.root,
                               settings=SETTINGS, out=lines.append)
    assert [(a.change, a.component, a.detail) for a in result.done] == [
        ("update", "webhook endpoint", "webhook key"), ("create", "publish", "our tables, web resources and the app")]
    (row,) = env.catalog.rows.rows["serviceendpoint"].values()
    assert 'value="new-key"' in row["authvalue"]
    assert not any("new-key" in line for line in lines)
    again = installer.install(env.dv, webhook_url=WEBHOOK, webhook_key="new-key", root=env.root, settings=SETTINGS,
                              out=lambda line: None)
    assert again.plan.actions == []


def test_dry_run_changes_nothing_and_missing_script_is_reported(env):
    (env.root / footprint.WEB_RESOURCES[1].path).unlink()
    lines = []
    result = env.install(dry_run=True, out=lines.append)
    assert [m for m, _, _ in env.sent if m != "GET"] == []
    text = "\n".join(lines)
    assert f"web resource file {footprint.WEB_RESOURCES[1].path} is missing" in text
    assert "w365_paymentprofile.w365_syncstatus" in text and "W365: Update of account" in text
    assert footprint.WEB_RESOURCES[1].name not in {a.name for a in result.plan.actions}


def test_uninstall_keeps_customer_data_unless_asked(env):
    env.install()
    account = env.standin.seed("account", {"name": "Fabrikam"})
    env.standin.seed("w365_paymentprofile", {"w365_name": "Visa XXXX1111",
                                             "w365_accountid@odata.bind": f"/accounts({account})"})
    refused = installer.uninstall(env.dv, confirm=lambda plan: False, out=lambda line: None)
    assert refused.done == [] and "W365: Update of account" in {r["name"] for r in
                                                                 env.catalog.rows.rows["sdkmessageprocessingstep"].values()}

    result = installer.uninstall(env.dv, out=lambda line: None)
    assert result.ok
    cat = env.catalog
    for kind in ("sdkmessageprocessingstep", "serviceendpoint", "customapi", "webresource",
                 "customapirequestparameter", "sdkmessageprocessingstepimage"):
        assert cat.rows.rows[kind] == {}, kind
    assert set(desired.DATA_TABLES) | {"w365_provider"} <= set(cat.entities)
    assert "w365_configuration" not in cat.entities
    assert "w365_gatewaycustomerprofileid" in cat.entities["account"]["_attributes"]
    assert len(env.standin.rows("w365_paymentprofile")) == 1
    assert any("w365_provider is kept" in w for w in result.plan.warnings)
    assert env.standin.rows("environmentvariabledefinition") == [] == env.standin.rows("environmentvariablevalue")

    everything = installer.uninstall(env.dv, include_data=True, out=lambda line: None)
    assert everything.ok
    assert not any(name.startswith("w365_") for name in cat.entities)
    assert not any(a.startswith("w365_") for e in cat.entities.values() for a in e["_attributes"])
    assert cat.rows.rows["solution"] == {}
    assert env.install().ok and end_state(env)["entities"]["w365_provider"]      # and it installs again


# --- the product around the footprint (installer/product.py) -------------------------------------------------------

def _role_privileges(env: Env, role: str) -> dict[str, str]:
    import uuid
    (row,) = env.dv.query("roles", select=("roleid",), filter=f"name eq '{role}'")
    answer = env.dv.execute("RetrieveRolePrivilegesRole", {"RoleId": uuid.UUID(row["roleid"])}, is_function=True)
    return {p["PrivilegeName"]: p["Depth"] for p in answer["RolePrivileges"]}


def test_full_install_ships_roles_field_security_auditing_and_the_app(env):
    from installer import product
    assert env.install().ok
    cat, rows = env.catalog, env.catalog.rows.rows
    for role in product.ROLES:                                  # the matrix, exactly, read back through the Web API
        assert _role_privileges(env, role) == product.role_privileges(role), role
    assert "prvCreatew365_paymenttransaction" not in _role_privileges(env, product.CLERK)
    for table, column in product.SECURED_COLUMNS:
        assert cat.entities[table]["_attributes"][column]["IsSecured"] is True, (table, column)
    assert cat.entities["w365_paymentprofile"]["_attributes"]["w365_cardtype"]["IsSecured"] is False
    profiles = {r["fieldsecurityprofileid"]: r["name"] for r in rows["fieldsecurityprofile"].values()}
    permissions = {(profiles[p["fieldsecurityprofileid"]["id"]], p["entityname"], p["attributelogicalname"]):
                   (p["canread"], p["cancreate"], p["canupdate"]) for p in rows["fieldpermission"].values()}
    assert permissions[("W365 Billing Readers", "invoice", "w365_balance")] == (4, 0, 0)
    assert permissions[("W365 Service", "invoice", "w365_balance")] == (4, 4, 4)
    assert len(permissions) == len(product.FIELD_PROFILES) * len(product.SECURED_COLUMNS)
    for name, entity in cat.entities.items():
        if name.startswith("w365_"):
            assert entity["IsAuditEnabled"]["Value"] is (name in product.AUDITED_TABLES), name
    assert all(s["asyncautodelete"] is True for s in rows["sdkmessageprocessingstep"].values())
    resources = {r["name"]: r for r in rows["webresource"].values()}
    assert "w365_/scripts/amount.js" in resources["w365_/scripts/invoice.js"]["dependencyxml"]

    views = {r["name"]: r for r in rows["savedquery"].values()}
    charts = {r["name"]: r for r in rows["savedqueryvisualization"].values()}
    assert {v.name: v.fetch_xml for v in product.VIEWS} == {n: r["fetchxml"] for n, r in views.items()}
    assert set(charts) == {c.name for c in product.CHARTS}
    (dashboard,) = rows["systemform"].values()
    assert all(f"{{{r['savedqueryvisualizationid']}}}" in dashboard["formxml"] for r in charts.values())
    (sitemap,) = rows["sitemap"].values()
    assert dashboard["formid"] in sitemap["sitemapxml"]
    (app,) = rows["appmodule"].values()
    assert app["name"] == "W365 Payments"
    assert f"<appmodule>{{{app['appmoduleid']}}}</appmodule>" in cat.published[-1]      # published with the rest
    components = {(c["componenttype"], c["objectid"]) for c in rows["appmodulecomponent"].values()}
    assert (62, sitemap["sitemapid"]) in components and (60, dashboard["formid"]) in components
    assert {(26, r["savedqueryid"]) for r in views.values()} <= components
    assert {(1, cat.entities[t]["MetadataId"]) for t in product.APP_TABLES} <= components
    commands = {r["uniquename"]: r for r in rows["appaction"].values()}
    assert set(commands) == {c.unique_name for c in product.COMMANDS}
    charge = commands["w365_invoice_charge"]
    assert (charge["contextvalue"], charge["location"], charge["onclickeventjavascriptfunctionname"]) == (
        "invoice", 0, "W365.Invoice.charge")
    assert charge["onclickeventjavascriptwebresourceid"]["id"] == resources["w365_/scripts/invoice.js"]["webresourceid"]
    assert charge["appmoduleid"]["id"] == app["appmoduleid"]


def test_an_environment_installed_before_the_product_gets_only_what_it_lacks(env):
    """An earlier install had no auditing, field security or script dependencies: a run adds exactly those."""
    assert env.install().ok
    cat = env.catalog
    cat.entities["w365_paymenttransaction"]["IsAuditEnabled"] = {"Value": False}
    cat.entities["invoice"]["_attributes"]["w365_balance"]["IsSecured"] = False
    for permission in [p for p in cat.rows.rows["fieldpermission"].values()
                       if p["attributelogicalname"] == "w365_balance"]:
        cat.rows.delete(cat.rows.table("fieldpermission"), permission["fieldpermissionid"])
    resource = next(r for r in cat.rows.rows["webresource"].values() if r["name"] == "w365_/scripts/invoice.js")
    cat.rows.update(cat.rows.table("webresource"), resource, {"dependencyxml": None})
    result = env.install()
    assert result.ok
    assert sorted((a.change, a.component, a.name) for a in result.done) == sorted([
        ("update", "table auditing", "w365_paymenttransaction"),
        ("update", "column security", "invoice.w365_balance"),
        ("update", "web resource", "w365_/scripts/invoice.js"),
        ("create", "field permission", "W365 Service: invoice.w365_balance"),
        ("create", "field permission", "W365 Billing Manager: invoice.w365_balance"),
        ("create", "field permission", "W365 Billing Readers: invoice.w365_balance"),
        ("create", "publish", "PublishXml")])
    assert cat.entities["w365_paymenttransaction"]["IsAuditEnabled"]["Value"] is True
    assert env.install().done == []


def test_configure_names_a_webhook_provider_whose_endpoint_the_service_will_refuse(env):
    assert env.install().ok
    webhook = footprint.choice("w365_provider", "w365_type", "Webhook")
    for name, url in (("Plain", "http://provider.example.com/hook"), ("Inside", "https://10.0.0.7/hook"),
                      ("Good", "https://provider.example.com/hook")):
        env.standin.seed("w365_provider", {"w365_name": name, "w365_type": webhook, "w365_endpointurl": url})
    lines = []
    assert env.install(scope="configuration", out=lines.append).done == []
    notes = [line for line in lines if line.startswith("note: the Webhook provider")]
    assert len(notes) == 2 and "Plain" in notes[0] + notes[1] and "Inside" in notes[0] + notes[1]
    assert "must use https" in " ".join(notes) and "private or reserved address (10.0.0.7)" in " ".join(notes)


def test_the_installed_roles_are_what_the_stand_in_enforces_afterwards(env):
    """Once installed, a role holds exactly the privileges AddPrivilegesRole gave it (a clerk cannot take a payment
    or change a setting; a manager can). Real Dataverse is not checked here: see the README."""
    from core.errors import AccessDenied
    from installer import product
    assert env.install().ok
    account = env.standin.seed("account", {"name": "Contoso"})
    (config,) = env.standin.rows("w365_configuration")
    clerk = env.dv.as_user(env.standin.add_user("Cleo Clerk", roles=(product.CLERK,)))
    manager = env.dv.as_user(env.standin.add_user("Max Manager", roles=(product.MANAGER,)))
    assert clerk.query("w365_paymenttransactions", select=("w365_name",)) == []
    with pytest.raises(AccessDenied) as refused:
        clerk.create("w365_paymenttransactions", {"w365_name": "x", "w365_refid": "x-1"})
    assert "prvCreatew365_paymenttransaction" in str(refused.value)
    with pytest.raises(AccessDenied):
        clerk.update("w365_configurations", config["w365_configurationid"], {"w365_linkexpiryhours": 1})
    clerk.create("w365_paymentprofiles", {"w365_name": "Visa XXXX1111",
                                          "w365_accountid@odata.bind": f"/accounts({account})"})
    manager.update("w365_configurations", config["w365_configurationid"], {"w365_linkexpiryhours": 48})
    manager.create("w365_paymenttransactions", {"w365_name": "y", "w365_refid": "y-1"})


def test_the_billing_manager_role_is_created_with_the_id_the_service_recognises(env):
    from core.permissions import BILLING_MANAGER_ROLE_ID
    from installer import product
    env.dv.delete("roles", BILLING_MANAGER_ROLE_ID)            # an environment the product was never installed in
    assert not env.dv.query("roles", select=("roleid",), filter=f"name eq '{product.MANAGER}'")
    assert env.install().ok
    made = env.dv.query("roles", select=("roleid",), filter=f"name eq '{product.MANAGER}'")
    assert [r["roleid"].lower() for r in made] == [BILLING_MANAGER_ROLE_ID]


def test_a_billing_manager_role_with_another_id_is_reported(env):
    from core.permissions import BILLING_MANAGER_ROLE_ID
    from installer import product
    env.dv.delete("roles", BILLING_MANAGER_ROLE_ID)
    env.standin.seed("role", {"name": product.MANAGER})         # made by hand, under the product's name
    actions = installer.plan(env.dv, webhook_url=WEBHOOK, webhook_key=KEY, root=env.root, settings=SETTINGS).actions
    drift = [a for a in actions if a.component == "security role" and a.change == "drift"]
    assert len(drift) == 1 and BILLING_MANAGER_ROLE_ID in drift[0].detail
