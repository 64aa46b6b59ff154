"""Solutions moving between environments, as the Web API offers it: `ExportSolution` (SolutionName, Managed ->
ExportSolutionFile) and `ImportSolutionAsync` (CustomizationFile -> AsyncOperationId, ImportJobKey), followed by
polling `asyncoperations(<id>)` until statecode 3 (statuscode 30 succeeded, 31 failed) and reading the import job's
log at `importjobs(<ImportJobKey>)` (fixture: tests/fixtures/dataverse/solution_endpoints.json).

The zip has the root files Dataverse requires (solution.xml with the manifest: unique name, version, managed,
publisher, root components; customizations.xml; [Content_Types].xml) and, like a real export, one folder per
environment variable (`environmentvariabledefinitions/<schema>/environmentvariabledefinition.xml`, plus
`environmentvariablevalues.json` when a current value is in the solution) and the service endpoints in
customizations.xml with their URL and authentication value when an endpoint is in the solution. What a real
customizations.xml spells out component by component, this stand-in carries as one JSON document
(`standin/components.json`, the catalog's own records), which its import reads back: the stand-in stands in for the
platform on both ends, not for the file format in every detail.
"""
from __future__ import annotations

import base64
import binascii
import copy
import io
import json
import uuid
import zipfile
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from core import jsonutil
from standins.dataverse.store import ODataError, bad_request, dumps

JSON = "application/json; odata.metadata=minimal"
COMPONENTS = "standin/components.json"
ROOT_FILES = ("solution.xml", "customizations.xml", "[Content_Types].xml")
# Solution component types of the manifest's RootComponents.
TYPE_CODES = {"table": 1, "role": 20, "savedquery": 26, "webresource": 61, "savedqueryvisualization": 59,
              "systemform": 60, "sitemap": 62, "appmodule": 80, "serviceendpoint": 95, "fieldsecurityprofile": 70,
              "customapi": 10027, "environmentvariabledefinition": 380, "environmentvariablevalue": 381,
              "appaction": 10121}


def _ok(kind: str, body: dict[str, Any]):
    return 200, {"Content-Type": JSON}, dumps({"@odata.context": f"$metadata#Microsoft.Dynamics.CRM.{kind}",
                                               **body}).encode()


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


# --- export ----------------------------------------------------------------------------------------------------------

def export_solution(standin: Any, cat: Any, data: dict) -> tuple[int, dict[str, str], bytes]:
    name = data.get("SolutionName")
    if not isinstance(name, str) or not isinstance(data.get("Managed"), bool):
        raise bad_request("ExportSolution needs SolutionName (string) and Managed (boolean).")
    solution = next((s for s in cat.rows.rows["solution"].values() if s["uniquename"] == name), None)
    if solution is None:
        raise ODataError(404, "0x8004a109", f"The solution {name} does not exist.")
    if solution.get("ismanaged"):
        raise bad_request(f"The solution {name} is managed: a managed solution cannot be exported.", "0x80048033")
    publisher = cat.rows.rows["publisher"][solution["publisherid"]["id"]]
    recorded = cat.components.get(name, [])
    rows = cat.component_rows.get(name, [])
    carried: dict[str, Any] = {
        "tables": [copy.deepcopy(cat.entities[n]) for k, n in recorded if k == "table" and n in cat.entities],
        "columns": [], "keys": [],
        "relationships": [copy.deepcopy(cat.relationships[n]) for k, n in recorded if k == "relationship"
                          and n in cat.relationships],
        "rows": [], "roles": [], "variables": [], "values": []}
    tables = {t["LogicalName"] for t in carried["tables"]}
    for kind, ident in recorded:
        table, _, child = ident.partition(".")
        if kind == "column" and table not in tables and table in cat.entities:
            carried["columns"].append(copy.deepcopy(cat.entities[table]["_attributes"].get(child)))
        if kind == "key" and table not in tables and table in cat.entities:
            carried["keys"].append([table, copy.deepcopy(cat.entities[table]["_keys"].get(child))])
    for table, row_id in rows:
        if table == "role":
            role = standin.store.rows["role"].get(row_id)
            if role is not None:
                privileges = {cat.privilege(p)["name"]: depth for p, depth in cat.role_privileges.get(row_id, {})
                              .items()}
                # A solution carries a root role with its id, so every environment knows it by the same id.
                carried["roles"].append({"roleid": row_id, "name": role["name"], "privileges": privileges})
            continue
        row = cat.rows.find(cat.rows.table(table), row_id)
        if row is not None:
            carried["rows"].append([table, _plain(row)])
        if table == "appmodule":                     # an app travels with what it contains
            carried["rows"] += [["appmodulecomponent", _plain(c)] for c in cat.rows.rows["appmodulecomponent"].values()
                                if c["appmoduleidunique"]["id"] == row_id]
    for kind, schema in recorded:
        if kind in ("environmentvariabledefinition", "environmentvariablevalue"):
            found = [r for r in standin.store.rows[kind].values() if r.get("schemaname") == schema]
            carried["variables" if kind.endswith("definition") else "values"] += [_plain(r) for r in found]

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("solution.xml", _manifest(solution, publisher, recorded, data["Managed"]))
        archive.writestr("customizations.xml", _customizations(carried))
        archive.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="utf-8"?><Types xmlns="http://schemas.'
                         'openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType='
                         '"application/octet-stream" /><Default Extension="json" ContentType="application/json" />'
                         '</Types>')
        for variable in carried["variables"]:
            folder = f"environmentvariabledefinitions/{variable['schemaname']}/"
            archive.writestr(folder + "environmentvariabledefinition.xml",
                             f'<environmentvariabledefinition schemaname={quoteattr(variable["schemaname"])}>'
                             f'<displayname default={quoteattr(variable.get("displayname") or "")} />'
                             f'<defaultvalue>{escape(variable.get("defaultvalue") or "")}</defaultvalue>'
                             f'<type>{variable.get("type")}</type></environmentvariabledefinition>')
            values = [v for v in carried["values"] if v.get("schemaname") == variable["schemaname"]]
            if values:
                archive.writestr(folder + "environmentvariablevalues.json", json.dumps({
                    "environmentvariablevalues": {"environmentvariablevalue": [
                        {"schemaname": v["schemaname"], "value": v.get("value")} for v in values]}}))
        archive.writestr(COMPONENTS, jsonutil.dumps(carried))
    return _ok("ExportSolutionResponse", {"ExportSolutionFile": base64.b64encode(buffer.getvalue()).decode()})


def _manifest(solution: dict, publisher: dict, recorded: list[tuple[str, str]], managed: bool) -> str:
    roots = "".join(f'<RootComponent type="{TYPE_CODES[k]}" schemaName={quoteattr(n)} behavior="0" />'
                    for k, n in recorded if k in TYPE_CODES)
    return (f'<ImportExportXml version="9.2.0.0" SolutionPackageVersion="9.2" languagecode="1033" '
            f'generatedBy="CrmLive"><SolutionManifest><UniqueName>{escape(solution["uniquename"])}</UniqueName>'
            f'<LocalizedNames><LocalizedName description={quoteattr(solution.get("friendlyname") or "")} '
            f'languagecode="1033" /></LocalizedNames><Version>{escape(solution.get("version") or "1.0.0.0")}'
            f'</Version><Managed>{1 if managed else 0}</Managed><Publisher><UniqueName>'
            f'{escape(publisher["uniquename"])}</UniqueName><LocalizedNames><LocalizedName description='
            f'{quoteattr(publisher.get("friendlyname") or "")} languagecode="1033" /></LocalizedNames>'
            f'<CustomizationPrefix>{escape(publisher["customizationprefix"])}</CustomizationPrefix>'
            f'<CustomizationOptionValuePrefix>{publisher.get("customizationoptionvalueprefix")}'
            f'</CustomizationOptionValuePrefix></Publisher><RootComponents>{roots}</RootComponents>'
            f'<MissingDependencies /></SolutionManifest></ImportExportXml>')


def _customizations(carried: dict[str, Any]) -> str:
    entities = "".join(f'<Entity><Name>{escape(t["LogicalName"])}</Name></Entity>' for t in carried["tables"])
    roles = "".join(f'<Role name={quoteattr(r["name"])}><RolePrivileges>' + "".join(
        f'<RolePrivilege name={quoteattr(p)} level="{d}" />' for p, d in sorted(r["privileges"].items()))
        + "</RolePrivileges></Role>" for r in carried["roles"])
    endpoints = "".join(
        f'<ServiceEndpoint Name={quoteattr(row.get("name") or "")}><Url>{escape(row.get("url") or "")}</Url>'
        f'<AuthType>{row.get("authtype")}</AuthType><AuthValue>{escape(row.get("authvalue") or "")}</AuthValue>'
        f'</ServiceEndpoint>' for table, row in carried["rows"] if table == "serviceendpoint")
    return (f'<ImportExportXml><Entities>{entities}</Entities><Roles>{roles}</Roles>'
            f'<ServiceEndpoints>{endpoints}</ServiceEndpoints></ImportExportXml>')


# --- import ----------------------------------------------------------------------------------------------------------

def import_solution_async(standin: Any, cat: Any, data: dict) -> tuple[int, dict[str, str], bytes]:
    try:
        package = base64.b64decode(data.get("CustomizationFile") or "", validate=True)
    except (binascii.Error, TypeError):
        raise bad_request("CustomizationFile must be the solution zip, base64-encoded.") from None
    if not package:
        raise bad_request("ImportSolutionAsync needs CustomizationFile.")
    now = standin.store.now_iso()
    job = cat.insert("importjob", {"solutionname": None, "data": None, "progress": 0, "startedon": now})
    operation = cat.insert("asyncoperation", {"name": "Import Solution", "operationtype": 103, "statecode": 0,
                                              "statuscode": 0})
    cat.pending_imports[operation["asyncoperationid"]] = {"package": package, "job": job["importjobid"],
                                                          "polls": 0, "standin": standin}
    return _ok("ImportSolutionAsyncResponse", {"AsyncOperationId": operation["asyncoperationid"],
                                               "ImportJobKey": job["importjobid"]})


def advance(cat: Any, operation: dict) -> None:
    """Each poll moves the job on: Waiting -> In Progress -> Completed (Succeeded or Failed), as the real job does
    while a client waits."""
    work = cat.pending_imports.get(operation["asyncoperationid"])
    if work is None:
        return
    work["polls"] += 1
    table = cat.rows.table("asyncoperation")
    standin = work["standin"]
    if work["polls"] == 1:
        cat.rows.update(table, operation, {"statecode": 2, "statuscode": 20, "startedon": standin.store.now_iso()})
        return
    del cat.pending_imports[operation["asyncoperationid"]]
    job = cat.rows.find(cat.rows.table("importjob"), work["job"])
    try:
        name, results = _apply(standin, cat, work["package"])
        outcome = {"statecode": 3, "statuscode": 30, "message": None}
        log = results
    except _ImportFailed as failure:
        name, log = failure.solution, [("failure", failure.code, str(failure))]
        outcome = {"statecode": 3, "statuscode": 31, "message": str(failure), "friendlymessage": str(failure)}
    now = standin.store.now_iso()
    cat.rows.update(table, operation, {**outcome, "completedon": now})
    cat.rows.update(cat.rows.table("importjob"), job, {"solutionname": name, "progress": 100, "completedon": now,
                                                       "data": _job_log(name, log)})


def _job_log(name: str | None, results: list[tuple[str, str, str]]) -> str:
    items = "".join(f'<result result="{r}" errorcode="{code}" errortext={quoteattr(text)} />'
                    for r, code, text in results)
    return (f'<importexportxml><solutionManifests><solutionManifest languagecode="1033" id={quoteattr(name or "")}>'
            f'{items}</solutionManifest></solutionManifests></importexportxml>')


class _ImportFailed(Exception):
    def __init__(self, message: str, code: str = "0x80048033", solution: str | None = None):
        super().__init__(message)
        self.code, self.solution = code, solution


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _apply(standin: Any, cat: Any, package: bytes) -> tuple[str, list[tuple[str, str, str]]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(package))
        names = set(archive.namelist())
    except zipfile.BadZipFile:
        raise _ImportFailed("The solution file is not a valid compressed (zip) file.") from None
    if not set(ROOT_FILES) <= names:
        raise _ImportFailed("The solution file is invalid. The compressed file must contain the following files at "
                            "its root: solution.xml, customizations.xml, and [Content_Types].xml.")
    manifest = ET.fromstring(archive.read("solution.xml")).find("SolutionManifest")
    name = manifest.findtext("UniqueName")
    version = manifest.findtext("Version") or "1.0.0.0"
    managed = manifest.findtext("Managed") == "1"
    prefix = manifest.findtext("Publisher/CustomizationPrefix")
    existing = next((s for s in cat.rows.rows["solution"].values() if s["uniquename"] == name), None)
    if existing is not None and not existing.get("ismanaged") and managed:
        raise _ImportFailed(f"The solution is already installed on this system as an unmanaged solution and the "
                            f"package supplied is attempting to install it in managed mode. Import can only update "
                            f"solutions when the modes match.", solution=name)
    if existing is not None and _version(version) < _version(existing.get("version") or "0"):
        raise _ImportFailed(f"The solution {name} {version} is older than the installed {existing['version']}.",
                            solution=name)
    carried = json.loads(archive.read(COMPONENTS)) if COMPONENTS in names else {}
    publisher = next((p for p in cat.rows.rows["publisher"].values()
                      if p["uniquename"] == manifest.findtext("Publisher/UniqueName")), None)
    if publisher is None:
        publisher = cat.insert("publisher", {"uniquename": manifest.findtext("Publisher/UniqueName"),
                                             "friendlyname": manifest.findtext("Publisher/UniqueName"),
                                             "customizationprefix": prefix, "customizationoptionvalueprefix": int(
                                                 manifest.findtext("Publisher/CustomizationOptionValuePrefix") or 0)})
    results: list[tuple[str, str, str]] = []
    for entity in carried.get("tables", []):
        cat.entities.setdefault(entity["LogicalName"], entity)
        cat.add_privileges(entity["LogicalName"], entity["SchemaName"])
        cat._add_filters(entity["LogicalName"])
        results.append(("success", "0", f"table {entity['LogicalName']}"))
    for attribute in carried.get("columns", []):
        cat.entities[attribute["EntityLogicalName"]]["_attributes"].setdefault(attribute["LogicalName"], attribute)
    for table, key in carried.get("keys", []):
        cat.entities[table]["_keys"].setdefault(key["LogicalName"], key)
    for relation in carried.get("relationships", []):
        cat.relationships.setdefault(relation["SchemaName"], relation)
        referencing = cat.entities[relation["ReferencingEntity"]]["_attributes"]
        referencing.setdefault(relation["ReferencingAttribute"], {
            "MetadataId": str(uuid.uuid4()), "LogicalName": relation["ReferencingAttribute"],
            "SchemaName": relation["ReferencingAttribute"], "AttributeType": "Lookup",
            "@odata.type": "#Microsoft.Dynamics.CRM.LookupAttributeMetadata",
            "EntityLogicalName": relation["ReferencingEntity"], "IsCustomAttribute": True,
            "Targets": [relation["ReferencedEntity"]], "IsSecured": False})
    for table_name, row in carried.get("rows", []):
        table = cat.rows.table(table_name)
        record_id = row[table.primary_id]
        values = {k: v for k, v in row.items() if k not in (table.primary_id, "createdon", "modifiedon")}
        values.pop("sdkmessageid", None)                 # the message is this environment's own (below)
        found = cat.rows.find(table, record_id)
        if found is None:
            inserted = cat.rows.insert(table, values, record_id)
            if table_name == "customapi":
                from standins.dataverse.metadata import register_message
                register_message(cat, inserted)
        else:
            cat.rows.update(table, found, values)
        if table_name != "appmodulecomponent":
            cat.component(name, table_name, str(row.get("uniquename") or row.get("name") or record_id),
                          (table_name, record_id))
    for role in carried.get("roles", []):
        role_id = next((i for i, r in standin.store.rows["role"].items() if r["name"] == role["name"]), None) \
            or standin.seed("role", {"name": role["name"], **({"roleid": role["roleid"]} if role.get("roleid") else {})})
        by_name = {p["name"]: p["privilegeid"] for p in cat.rows.rows["privilege"].values()}
        missing = sorted(set(role["privileges"]) - set(by_name))
        if missing:
            raise _ImportFailed(f"The role {role['name']} needs privileges this environment lacks: "
                                f"{', '.join(missing[:3])}", "0x80040217", name)
        cat.role_privileges[role_id] = {by_name[p]: d for p, d in role["privileges"].items()}
        cat.component(name, "role", role["name"], ("role", role_id))
    for kind, key in (("environmentvariabledefinition", "variables"), ("environmentvariablevalue", "values")):
        for row in carried.get(key, []):
            if not any(r.get("schemaname") == row["schemaname"] for r in standin.store.rows[kind].values()):
                standin.seed(kind, {k: v for k, v in row.items() if k not in ("createdon", "modifiedon")
                                    and not k.endswith("id")} | _variable_link(standin, kind, row))
            cat.component(name, kind, row["schemaname"])
    localized = manifest.find("LocalizedNames/LocalizedName")
    fields = {"uniquename": name, "friendlyname": (localized.get("description") if localized is not None else None)
              or name, "version": version, "ismanaged": managed,
              "publisherid": {"id": publisher["publisherid"], "table": "publisher"}}
    if existing is None:
        cat.insert("solution", fields)
    else:
        cat.rows.update(cat.rows.table("solution"), existing, fields)
    results.append(("success", "0", f"solution {name} {version} ({'managed' if managed else 'unmanaged'})"))
    return name, results


def _variable_link(standin: Any, kind: str, row: dict) -> dict[str, Any]:
    if kind != "environmentvariablevalue":
        return {}
    definition = next(i for i, r in standin.store.rows["environmentvariabledefinition"].items()
                      if r.get("schemaname") == row["schemaname"])
    return {"EnvironmentVariableDefinitionId@odata.bind": f"/environmentvariabledefinitions({definition})"}
