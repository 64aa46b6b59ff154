"""The ISV path against two stand-in environments: install into a development environment, export the managed zip
(version raised each time, nothing environment-specific inside), import it into a customer's environment
(ImportSolutionAsync, the system job polled to its end), configure it there. Request and response shapes are the
ones of tests/fixtures/dataverse/solution_endpoints.json (Microsoft Learn)."""
from __future__ import annotations

import base64
import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import responses

from core import footprint
from dataverse.auth import StaticTokenProvider
from dataverse.client import DataverseClient
from standins.dataverse import DataverseStandIn, metadata
import installer
from installer import product, solution as solutions

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "fixtures/dataverse/solution_endpoints.json")
                     .read_text(encoding="utf-8"))
DEV, CUSTOMER = "https://dev.crm.dynamics.com", "https://customer.crm.dynamics.com"
WEBHOOK = "https://w365.example.test/api/dataverse?code=function-key-123"
KEY = "webhook-key-0123456789"
SETTINGS = {"AUTHORIZENET_CLIENT_KEY": "public-client-key", "AUTHORIZENET_LOGIN_ID": "login-id"}
quiet = lambda line: None            # noqa: E731


class Environment:
    def __init__(self, rsps, url: str):
        self.standin = DataverseStandIn()
        self.catalog = metadata.attach(self.standin)
        self.sent: list[tuple[str, str, object]] = []

        def callback(request):
            path = request.url.split("/api/data/v9.2/", 1)[1].split("?", 1)[0]
            self.sent.append((request.method, path, json.loads(request.body) if request.body else None))
            return self.standin.handle(request.method, request.url, dict(request.headers), request.body)
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(url) + "/api/data/v9.2/.*"), callback=callback,
                              content_type=None)
        self.dv = DataverseClient(url, StaticTokenProvider("t"), sleep=lambda s: None)

    def solution(self) -> dict:
        return next(s for s in self.catalog.rows.rows["solution"].values() if s["uniquename"] == "W365Payments")


@pytest.fixture
def world(tmp_path):
    root = tmp_path / "repo"
    for resource in footprint.WEB_RESOURCES:
        path = root / resource.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"// {resource.name}\n", encoding="utf-8")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        dev, customer = Environment(rsps, DEV), Environment(rsps, CUSTOMER)
        assert installer.install(dev.dv, webhook_url=WEBHOOK, webhook_key=KEY, root=root, settings=SETTINGS,
                                 out=quiet).ok
        yield dev, customer, tmp_path / "dist", root


def test_next_version_counts_exports():
    assert solutions.next_version("1.0.0.0") == "1.0.0.1"
    assert solutions.next_version("2.3") == "2.3.0.1"
    assert solutions.next_version(None) == "1.0.0.1"


def test_export_writes_a_versioned_managed_zip_without_environment_values_or_secrets(world):
    dev, _, dist, _ = world
    first = solutions.export(dev.dv, solution="W365Payments", out_dir=dist, secrets=(KEY,), out=quiet)
    second = solutions.export(dev.dv, solution="W365Payments", out_dir=dist, secrets=(KEY,), out=quiet)
    assert (first.name, second.name) == ("W365Payments_1_0_0_1_managed.zip", "W365Payments_1_0_0_2_managed.zip")
    assert dev.solution()["version"] == "1.0.0.2"
    method, path, body = next(s for s in dev.sent if s[1] == "ExportSolution")
    wanted = FIXTURE["export_solution"]["request"]
    assert (method, path, body) == (wanted["method"], wanted["path"], wanted["body"])

    archive = zipfile.ZipFile(second)
    names = archive.namelist()
    assert set(FIXTURE["export_solution"]["zip_root_files"]) <= set(names)
    manifest = ET.fromstring(archive.read("solution.xml")).find("SolutionManifest")
    assert (manifest.findtext("UniqueName"), manifest.findtext("Version"), manifest.findtext("Managed")) == (
        "W365Payments", "1.0.0.2", "1")
    roots = {(r.get("type"), r.get("schemaName")) for r in manifest.iter("RootComponent")}
    assert ("20", product.CLERK) in roots and ("80", product.APP_UNIQUE_NAME) in roots
    assert ("1", "w365_paymenttransaction") in roots
    assert [n for n in names if n.startswith("environmentvariabledefinitions/")] and \
        not [n for n in names if n.endswith("environmentvariablevalues.json")]
    everything = b"".join(archive.read(n) for n in names)
    for secret in (KEY.encode(), b"function-key-123", b"public-client-key", b"<AuthValue>"):
        assert secret not in everything
    assert solutions.package_problems(second.read_bytes(), secrets=(KEY,)) == []


def test_an_export_that_would_carry_a_value_or_a_key_is_refused_and_not_written(world):
    dev, _, dist, _ = world
    value = next(iter(dev.standin.rows("environmentvariablevalue")))
    dev.catalog.component("W365Payments", "environmentvariablevalue", value["schemaname"])   # someone added it
    endpoint = next(iter(dev.catalog.rows.rows["serviceendpoint"].values()))
    dev.catalog.component("W365Payments", "serviceendpoint", endpoint["name"], ("serviceendpoint",
                                                                                endpoint["serviceendpointid"]))
    with pytest.raises(solutions.SolutionError) as refused:
        solutions.export(dev.dv, solution="W365Payments", out_dir=dist, secrets=(KEY,), out=quiet)
    assert "environmentvariablevalues.json" in str(refused.value) and "key" in str(refused.value)
    assert not dist.exists() or list(dist.iterdir()) == []


def test_import_follows_the_job_then_configure_sets_up_only_this_environment(world):
    dev, customer, dist, root = world
    package = solutions.export(dev.dv, solution="W365Payments", out_dir=dist, managed=True, out=quiet).read_bytes()
    lines: list[str] = []
    result = solutions.import_(customer.dv, package, sleep=lambda s: None, out=lines.append)
    assert result.ok and result.status == 30
    method, path, body = next(s for s in customer.sent if s[1] == "ImportSolutionAsync")
    wanted = FIXTURE["import_solution_async"]["request"]["body"]
    assert (method, path) == ("POST", "ImportSolutionAsync") and set(body) == set(wanted)
    assert body["OverwriteUnmanagedCustomizations"] is False and zipfile.is_zipfile(
        io.BytesIO(base64.b64decode(body["CustomizationFile"])))
    polls = [s for s in customer.sent if s[0] == "GET" and s[1].startswith("asyncoperations(")]
    assert len(polls) >= 2 and any("still importing" in line for line in lines)   # In Progress, then Completed
    installed = customer.solution()
    assert installed["ismanaged"] is True and installed["version"] == "1.0.0.1"
    cat = customer.catalog
    assert {t.logical_name for t in footprint.OUR_TABLES} <= set(cat.entities)
    assert {r["uniquename"] for r in cat.rows.rows["appaction"].values()} == {c.unique_name for c in product.COMMANDS}
    assert {r["name"] for r in cat.rows.rows["savedquery"].values()} == {v.name for v in product.VIEWS}
    role = next(i for i, r in customer.standin.store.rows["role"].items() if r["name"] == product.CLERK)
    names = {cat.privilege(p)["name"] for p in cat.role_privileges[role]}
    assert names == set(product.role_privileges(product.CLERK))
    assert cat.rows.rows["serviceendpoint"] == {} and customer.standin.rows("environmentvariablevalue") == []

    configured = installer.install(customer.dv, webhook_url=WEBHOOK, webhook_key=KEY, root=root, settings=SETTINGS,
                                   scope="configuration", out=quiet)
    assert configured.ok
    kinds = {a.component for a in configured.done}
    assert kinds == {"webhook endpoint", "step", "image", "environment variable value", "configuration"}
    assert len(cat.rows.rows["sdkmessageprocessingstep"]) == len(footprint.WEBHOOK_STEPS)
    again = installer.install(customer.dv, webhook_url=WEBHOOK, webhook_key=KEY, root=root, settings=SETTINGS,
                              scope="configuration", out=quiet)
    assert again.done == []


def test_a_broken_zip_fails_with_the_jobs_own_words(world):
    _, customer, _, _ = world
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("solution.xml", "<ImportExportXml />")
    lines: list[str] = []
    result = solutions.import_(customer.dv, buffer.getvalue(), sleep=lambda s: None, out=lines.append)
    assert not result.ok and result.status == 31
    assert any("solution.xml, customizations.xml, and [Content_Types].xml" in e for e in result.errors)
    assert "Import FAILED" in lines[-1]


def test_a_managed_zip_cannot_land_on_its_own_unmanaged_source(world):
    dev, _, dist, _ = world
    package = solutions.export(dev.dv, solution="W365Payments", out_dir=dist, out=quiet).read_bytes()
    result = solutions.import_(dev.dv, package, sleep=lambda s: None, out=quiet)
    assert not result.ok and "unmanaged" in result.errors[0]


def test_configure_before_import_says_to_import_first(world):
    _, customer, _, root = world
    lines: list[str] = []
    result = installer.install(customer.dv, webhook_url=WEBHOOK, webhook_key=KEY, root=root, settings=SETTINGS,
                               scope="configuration", out=lines.append)
    assert result.done == [] and any("import the solution first" in line for line in lines)
