"""The metadata side of the stand-in: what the installer (installer/) reads and writes, answered as Dataverse does.

- `EntityDefinitions` (tables), `.../Attributes` (columns, with the `Microsoft.Dynamics.CRM.<Type>AttributeMetadata`
  cast and `$expand=OptionSet`), `.../Keys`, `RelationshipDefinitions` (one-to-many with its lookup),
  `InsertOptionValue`, `UpdateOptionValue`, `PublishXml`;
- the solution-aware rows: `publishers`, `solutions`, `customapis` (deep insert of `CustomAPIRequestParameters`;
  creating one adds its `sdkmessage` and `sdkmessagefilter`), `customapirequestparameters`, `serviceendpoints`,
  `sdkmessages`, `sdkmessagefilters`, `sdkmessageprocessingsteps`, `sdkmessageprocessingstepimages`,
  `webresourceset`; and, on the data side, the solution header of `environmentvariabledefinitions` and
  `environmentvariablevalues` creates (COMPONENT_ROWS).

A new environment (`attach(standin)`) has the native tables of core/footprint.py with their native columns, the
Create/Update/Delete messages, and none of ours. `MSCRM.SolutionUniqueName` on a component create must name an
unmanaged solution whose publisher's prefix starts the component's name; the component is then recorded in
`Catalog.components[solution]`. With `enforce=True`, data requests to a table of ours that was not created yet are
404s, as in a real environment before the install.
"""
from __future__ import annotations

import base64
import binascii
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Mapping

from core import footprint
from core.footprint import Column, Table
from standins.dataverse.query import parse_filter, parse_select, parse_top
from standins.dataverse.store import ODataError, Store, bad_request, coerce, dumps, loads, not_found

JSON = "application/json; odata.metadata=minimal"
CRM = "Microsoft.Dynamics.CRM."
ATTRIBUTE_KINDS = {"StringAttributeMetadata": "String", "MemoAttributeMetadata": "Memo",
                   "IntegerAttributeMetadata": "Integer", "DecimalAttributeMetadata": "Decimal",
                   "MoneyAttributeMetadata": "Money", "BooleanAttributeMetadata": "Boolean",
                   "DateTimeAttributeMetadata": "DateTime", "PicklistAttributeMetadata": "Picklist"}
_FOOTPRINT_KINDS = {"string": "String", "memo": "Memo", "integer": "Integer", "decimal": "Decimal",
                    "money": "Money", "boolean": "Boolean", "datetime": "DateTime", "choice": "Picklist",
                    "lookup": "Lookup", "uniqueidentifier": "Uniqueidentifier", "state": "State", "status": "Status"}
_CAST_OF = {v: k for k, v in ATTRIBUTE_KINDS.items()} | {"Lookup": "LookupAttributeMetadata",
                                                          "Uniqueidentifier": "UniqueIdentifierAttributeMetadata",
                                                          "State": "StateAttributeMetadata",
                                                          "Status": "StatusAttributeMetadata"}
BASE_ATTRIBUTE_PROPERTIES = {"MetadataId", "LogicalName", "SchemaName", "AttributeType", "EntityLogicalName",
                             "DisplayName", "Description", "RequiredLevel", "IsCustomAttribute", "IsPrimaryName",
                             "IsSecured"}
TYPED_PROPERTIES = {"String": {"MaxLength", "FormatName"}, "Memo": {"MaxLength", "Format"},
                    "Integer": {"MinValue", "MaxValue", "Format"}, "Decimal": {"Precision", "MinValue", "MaxValue"},
                    "Money": {"Precision", "PrecisionSource", "MinValue", "MaxValue"},
                    "Boolean": {"DefaultValue", "OptionSet"}, "DateTime": {"Format", "DateTimeBehavior"},
                    "Picklist": {"OptionSet"}, "Lookup": {"Targets"}}
ENTITY_PROPERTIES = {"MetadataId", "LogicalName", "SchemaName", "EntitySetName", "PrimaryIdAttribute",
                     "PrimaryNameAttribute", "IsOptimisticConcurrencyEnabled", "HasNotes", "HasActivities",
                     "OwnershipType", "IsCustomEntity", "DisplayName", "DisplayCollectionName", "Description",
                     "IsActivity", "IsAuditEnabled"}
TABLE_MESSAGES = ("Create", "Update", "Delete")
_PRIVILEGE = re.compile(r"prv(Create|Read|Write|Delete|Append|AppendTo|Assign|Share)(\w+)$")


def _row_table(name: str, primary_id: str, columns: tuple[Column, ...], entity_set: str | None = None) -> Table:
    system = (Column(primary_id, "uniqueidentifier", system=True),)
    tail = (Column("createdon", "datetime", system=True), Column("modifiedon", "datetime", system=True))
    return Table(name, entity_set or name + "s", primary_id, "name", system + columns + tail)


def _text(name: str, n: int = 4000) -> Column:
    return Column(name, "memo" if n > 4000 else "string", max_length=n)


def _int(name: str) -> Column:
    return Column(name, "integer")


def _flag(name: str) -> Column:
    return Column(name, "boolean")


def _ref(name: str, target: str, navigation: str | None = None) -> Column:
    return Column(name, "lookup", target=target, navigation=navigation or name)


SYSTEM_TABLES = (
    _row_table("publisher", "publisherid", (_text("uniquename", 100), _text("friendlyname", 256), _text("name"),
                                            _text("customizationprefix", 8), _int("customizationoptionvalueprefix"),
                                            _text("description", 2000))),
    _row_table("solution", "solutionid", (_text("uniquename", 65), _text("friendlyname", 256), _text("name"),
                                          _text("version", 256), _text("description", 2000), _flag("ismanaged"),
                                          _ref("publisherid", "publisher"))),
    _row_table("customapi", "customapiid", (
        _text("uniquename", 128), _text("name", 100), _text("displayname", 100), _text("description", 300),
        _int("bindingtype"), _text("boundentitylogicalname", 100), _int("allowedcustomprocessingsteptype"),
        _text("executeprivilegename", 100), _flag("isfunction"), _flag("isprivate"),
        _flag("workflowsdkstepenabled"), _ref("sdkmessageid", "sdkmessage"))),
    _row_table("customapirequestparameter", "customapirequestparameterid", (
        _text("uniquename", 128), _text("name", 100), _text("displayname", 100), _text("description", 300),
        _int("type"), _flag("isoptional"), _text("logicalentityname", 100),
        _ref("customapiid", "customapi", "CustomAPIId"))),
    _row_table("serviceendpoint", "serviceendpointid", (
        _text("name", 256), _text("description", 2000), _int("contract"), _int("connectionmode"),
        _int("authtype"), _text("authvalue", 4000), _int("messageformat"), _int("namespaceformat"),
        _text("url", 2000))),
    _row_table("sdkmessage", "sdkmessageid", (_text("name", 256), _flag("customizationlevel"))),
    _row_table("sdkmessagefilter", "sdkmessagefilterid", (
        _text("name", 256), _text("primaryobjecttypecode", 100), _ref("sdkmessageid", "sdkmessage"))),
    _row_table("sdkmessageprocessingstep", "sdkmessageprocessingstepid", (
        _text("name", 256), _text("description", 256), _int("stage"), _int("mode"), _int("rank"),
        _int("supporteddeployment"), _flag("asyncautodelete"), _text("filteringattributes", 100000),
        _ref("sdkmessageid", "sdkmessage"), _ref("sdkmessagefilterid", "sdkmessagefilter"),
        _ref("eventhandler", "serviceendpoint", "eventhandler_serviceendpoint"))),
    _row_table("sdkmessageprocessingstepimage", "sdkmessageprocessingstepimageid", (
        _text("name", 256), _text("entityalias", 256), _int("imagetype"), _text("messagepropertyname", 256),
        _text("attributes", 100000), _ref("sdkmessageprocessingstepid", "sdkmessageprocessingstep"))),
    _row_table("webresource", "webresourceid", (
        _text("name", 256), _text("displayname", 200), _text("description", 2000), _int("webresourcetype"),
        _text("content", 1073741823), _text("dependencyxml", 1073741823)), entity_set="webresourceset"),
    # Security: privileges exist per table (created with it); field security profiles and their permissions.
    _row_table("privilege", "privilegeid", (_text("name", 100), _int("accessright"), _flag("canbeglobal"))),
    _row_table("fieldsecurityprofile", "fieldsecurityprofileid", (_text("name", 256), _text("description", 2000))),
    _row_table("fieldpermission", "fieldpermissionid", (
        _text("entityname", 100), _text("attributelogicalname", 100), _int("canread"), _int("cancreate"),
        _int("canupdate"), _ref("fieldsecurityprofileid", "fieldsecurityprofile"))),
    # The model-driven product: views, charts, dashboards (system forms), the app, its sitemap and components, and
    # modern commands.
    _row_table("savedquery", "savedqueryid", (
        _text("name", 200), _text("description", 2000), _text("returnedtypecode", 100), _int("querytype"),
        _text("fetchxml", 1073741823), _text("layoutxml", 1073741823), _flag("isdefault")),
        entity_set="savedqueries"),
    _row_table("savedqueryvisualization", "savedqueryvisualizationid", (
        _text("name", 200), _text("description", 2000), _text("primaryentitytypecode", 100),
        _text("datadescription", 1073741823), _text("presentationdescription", 1073741823), _flag("isdefault"))),
    _row_table("systemform", "formid", (
        _text("name", 100), _text("description", 2000), _int("type"), _text("objecttypecode", 100),
        _text("formxml", 1073741823))),
    _row_table("appmodule", "appmoduleid", (
        _text("uniquename", 100), _text("name", 100), _text("description", 2000), _int("clienttype"),
        _int("formfactor"), Column("webresourceid", "uniqueidentifier"))),
    _row_table("appmodulecomponent", "appmodulecomponentid", (
        Column("objectid", "uniqueidentifier"), _int("componenttype"), _ref("appmoduleidunique", "appmodule"))),
    _row_table("sitemap", "sitemapid", (
        _text("sitemapname", 200), _text("sitemapnameunique", 200), _text("sitemapxml", 1073741823),
        _flag("isappaware"))),
    _row_table("appaction", "appactionid", (
        _text("uniquename", 200), _text("name", 200), _text("buttonlabeltext", 200), _text("buttontooltiptitle", 200),
        _text("buttontooltipdescription", 2000), _text("contextvalue", 100), _int("context"), _int("location"),
        _int("type"), _int("onclickeventtype"), _text("onclickeventjavascriptfunctionname", 200),
        _text("onclickeventjavascriptparameters", 2000),
        _ref("onclickeventjavascriptwebresourceid", "webresource", "OnClickEventJavaScriptWebResourceId"),
        _int("visibilitytype"), _text("fonticon", 100), Column("sequence", "decimal", precision=2), _flag("hidden"),
        _ref("appmoduleid", "appmodule", "AppModuleId"))),
    # Solutions moving between environments: the import's system job and its log.
    _row_table("asyncoperation", "asyncoperationid", (
        _text("name", 256), _int("operationtype"), _int("statecode"), _int("statuscode"), _text("message", 100000),
        _text("friendlymessage", 100000), _text("startedon", 40), _text("completedon", 40))),
    _row_table("importjob", "importjobid", (
        _text("solutionname", 256), _text("data", 1073741823), Column("progress", "decimal", precision=2),
        _text("startedon", 40), _text("completedon", 40))),
)
_BY_SET = {t.entity_set: t for t in SYSTEM_TABLES}
# What each row table's create adds to a solution (the rest, publishers and solutions, are not components).
COMPONENT_SETS = {"customapis", "customapirequestparameters", "serviceendpoints", "sdkmessageprocessingsteps",
                  "sdkmessageprocessingstepimages", "webresourceset", "fieldsecurityprofiles", "fieldpermissions",
                  "savedqueries", "savedqueryvisualizations", "systemforms", "appmodules", "sitemaps", "appactions"}
READ_ONLY_SETS = {"privileges", "asyncoperations", "importjobs", "appmodulecomponents"}
# AddAppComponents: the component types an app takes, by the @odata.type of each item (solution component types).
APP_COMPONENT_TYPES = {"entity": 1, "savedquery": 26, "savedqueryvisualization": 59, "systemform": 60, "sitemap": 62}
ACCESS_RIGHTS = {"Read": 1, "Write": 2, "Append": 4, "AppendTo": 16, "Create": 32, "Delete": 65536, "Share": 262144,
                 "Assign": 524288}
DEPTHS = ("Basic", "Local", "Deep", "Global")
DEEP_INSERTS = {("customapis", "CustomAPIRequestParameters"): ("customapirequestparameters", "customapiid")}
# Native tables of the footprint whose rows are solution components (created through the data side): -> name column.
COMPONENT_ROWS = {"environmentvariabledefinition": "schemaname", "environmentvariablevalue": "schemaname"}


def _label_of(value: Any) -> dict[str, Any]:
    labels = (value or {}).get("LocalizedLabels") or []
    if not labels or not labels[0].get("Label"):
        raise bad_request("A label needs at least one LocalizedLabel with text.", "0x80044331")
    return {"LocalizedLabels": labels, "UserLocalizedLabel": labels[0]}


def _plain_label(text: str) -> dict[str, Any]:
    one = {"Label": text, "LanguageCode": 1033}
    return {"LocalizedLabels": [one], "UserLocalizedLabel": one}


@dataclass
class Catalog:
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)      # logical name -> entity metadata
    relationships: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: Store = field(default_factory=lambda: Store(SYSTEM_TABLES))
    components: dict[str, list[tuple[str, str]]] = field(default_factory=dict)   # solution -> (kind, name)
    published: list[str] = field(default_factory=list)                    # ParameterXml of each PublishXml
    enforce: bool = False
    component_rows: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # solution -> (table, row id)
    role_privileges: dict[str, dict[str, str]] = field(default_factory=dict)  # role id -> privilege id -> depth
    pending_imports: dict[str, dict[str, Any]] = field(default_factory=dict)  # async operation id -> the work

    # --- building ---------------------------------------------------------------------------------------------
    def add_entity_from_footprint(self, table: Table, *, ours: bool) -> None:
        entity = {"MetadataId": str(uuid.uuid4()), "LogicalName": table.logical_name,
                  "SchemaName": table.logical_name, "EntitySetName": table.entity_set,
                  "PrimaryIdAttribute": table.primary_id, "PrimaryNameAttribute": table.primary_name,
                  "IsOptimisticConcurrencyEnabled": True, "HasNotes": False, "HasActivities": False,
                  "OwnershipType": "UserOwned", "IsCustomEntity": not table.native,
                  "IsAuditEnabled": {"Value": False, "CanBeChanged": True,
                                     "ManagedPropertyLogicalName": "canmodifyauditsettings"},
                  "DisplayName": _plain_label(table.logical_name), "_attributes": {}, "_keys": {}}
        self.entities[table.logical_name] = entity
        for column in table.columns:
            if ours or not column.is_ours:
                self._add_column(entity, column)
        self._add_filters(table.logical_name)
        self.add_privileges(table.logical_name, footprint.PRIVILEGE_SCHEMA.get(table.logical_name, table.logical_name))

    def add_privileges(self, logical_name: str, schema: str) -> None:
        """prv<Access><schema> for each access right, as Dataverse creates them with a table (shared names, such as
        the activities' prv...Activity, exist once)."""
        existing = {p["name"] for p in self.rows.rows["privilege"].values()}
        for access, right in ACCESS_RIGHTS.items():
            if f"prv{access}{schema}" not in existing:
                self.insert("privilege", {"name": f"prv{access}{schema}", "accessright": right, "canbeglobal": True})

    def privilege(self, privilege_id: str) -> dict[str, Any] | None:
        return self.rows.find(self.rows.table("privilege"), privilege_id)

    def _add_column(self, entity: dict, column: Column) -> None:
        kind = _FOOTPRINT_KINDS[column.type]
        attribute = {"MetadataId": str(uuid.uuid4()), "LogicalName": column.name, "SchemaName": column.name,
                     "AttributeType": kind, "@odata.type": f"#{CRM}{_CAST_OF[kind]}",
                     "EntityLogicalName": entity["LogicalName"], "IsCustomAttribute": column.is_ours,
                     "IsSecured": False}
        if kind in ("String", "Memo"):
            attribute["MaxLength"] = column.max_length or 100
        if kind == "Picklist":
            attribute["OptionSet"] = {"Options": [{"Value": v, "Label": _plain_label(t)} for v, t in column.choices]}
        entity["_attributes"][column.name] = attribute

    def _add_filters(self, logical_name: str) -> None:
        for name in TABLE_MESSAGES:
            message = self.message(name) or self.insert("sdkmessage", {"name": name})
            self.insert("sdkmessagefilter", {"name": f"{name} {logical_name}", "primaryobjecttypecode": logical_name,
                                             "sdkmessageid": {"id": message["sdkmessageid"], "table": "sdkmessage"}})

    def insert(self, logical_name: str, values: dict[str, Any]) -> dict[str, Any]:
        return self.rows.insert(self.rows.table(logical_name), values)

    def message(self, name: str) -> dict[str, Any] | None:
        return next((m for m in self.rows.rows["sdkmessage"].values() if m["name"] == name), None)

    def component(self, solution: str | None, kind: str, name: str, row: tuple[str, str] | None = None) -> None:
        self.components.setdefault(solution or "Default", []).append((kind, name))
        if row is not None:
            self.component_rows.setdefault(solution or "Default", []).append(row)


def attach(standin: Any, *, installed: bool = False, enforce: bool = True) -> Catalog:
    """A catalog for `standin`: a new environment (natives only) or, with installed=True, the whole footprint."""
    catalog = Catalog(enforce=enforce)
    for table in footprint.TABLES:
        if table.native or installed:
            catalog.add_entity_from_footprint(table, ours=installed)
    catalog.insert("privilege", {"name": "prvActOnBehalfOfAnotherUser", "accessright": 0, "canbeglobal": True})
    standin._metadata_catalog = catalog
    return catalog


def catalog(standin: Any) -> Catalog:
    found = getattr(standin, "_metadata_catalog", None)
    return found if found is not None else attach(standin, enforce=False)


def create_component_row(standin: Any, table: Table, headers: Mapping[str, str], data: dict, create):
    """`create()` of a data-side row; a row of COMPONENT_ROWS is checked against the solution header and recorded in
    it as the metadata-side components are. Without an attached catalog, just `create()`."""
    cat = getattr(standin, "_metadata_catalog", None)
    column = COMPONENT_ROWS.get(table.logical_name)
    if cat is None or column is None:
        return create()
    solution = _solution(cat, headers.get("mscrm.solutionuniquename"))
    name = str(data.get(column) or "")
    _check_prefix(cat, solution, name)
    response = create()
    cat.component(solution and solution["uniquename"], table.logical_name, name)
    return response


# --- dispatch (called by DataverseStandIn._dispatch under its lock) ---------------------------------------------------

METADATA_NAMES = {"EntityDefinitions", "RelationshipDefinitions", "InsertOptionValue", "UpdateOptionValue",
                  "PublishXml", "RetrieveRolePrivilegesRole", "AddAppComponents", "ExportSolution",
                  "ImportSolutionAsync"}


def dispatch(standin: Any, method: str, root: str, name: str, key: str | None, rest: str | None,
             query: Mapping[str, str], headers: Mapping[str, str], body: bytes):
    """The response for a metadata or solution-row request, or None when the request is not one of those."""
    if name == "roles" and method == "POST":
        return _roles(standin, catalog(standin), root, key, rest, headers, loads(body) if body else {})
    if name not in METADATA_NAMES and name not in _BY_SET:
        cat = getattr(standin, "_metadata_catalog", None)
        if cat is not None and cat.enforce and name not in _BY_SET:
            table = next((t for t in footprint.OUR_TABLES if t.entity_set == name), None)
            if table is not None and table.logical_name not in cat.entities:
                raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{name}'.")
        return None
    cat = catalog(standin)
    data = loads(body) if body else {}
    solution = _solution(cat, headers.get("mscrm.solutionuniquename")) if method == "POST" else None
    if name == "EntityDefinitions":
        response = _entities(cat, method, root, key, rest, query, data, solution)
        if method == "DELETE" and not rest:
            standin.store.rows.get(_name_key(key, "LogicalName"), {}).clear()   # a table goes with its rows
        return response
    if name == "RelationshipDefinitions":
        return _relationships(cat, method, root, key, data, solution)
    if name in ("InsertOptionValue", "UpdateOptionValue") and method == "POST" and key is None:
        return _option_value(cat, name, data)
    if name == "PublishXml" and method == "POST" and key is None:
        return _publish(cat, data)
    if name == "RetrieveRolePrivilegesRole" and method == "GET":
        return _role_privileges(standin, cat, key, query)
    if name == "AddAppComponents" and method == "POST" and key is None:
        return _add_app_components(cat, data)
    if name in ("ExportSolution", "ImportSolutionAsync") and method == "POST" and key is None:
        from standins.dataverse import solutions
        return (solutions.export_solution if name == "ExportSolution" else solutions.import_solution_async)(
            standin, cat, data)
    if name in _BY_SET:
        return _rows(cat, method, root, _BY_SET[name], key, rest, query, data, solution)
    raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on '{name}'.")


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": JSON}, dumps(body).encode()


def _created(location: str) -> tuple[int, dict[str, str], bytes]:
    return 204, {"OData-EntityId": location}, b""


def _name_key(key: str | None, prop: str) -> str | None:
    if key is None:
        return None
    m = re.fullmatch(rf"{prop}='([^']*)'", key.strip())
    if m:
        return m.group(1)
    raise bad_request(f"Use {prop}='...' to address this metadata ('{key}').", "0x80060888")


def _solution(cat: Catalog, unique_name: str | None) -> dict[str, Any] | None:
    if unique_name is None:
        return None
    found = next((s for s in cat.rows.rows["solution"].values() if s["uniquename"] == unique_name), None)
    if found is None:
        raise ODataError(404, "0x8004a109", f"The solution '{unique_name}' named in MSCRM.SolutionUniqueName "
                                            f"does not exist.")
    if found.get("ismanaged"):
        raise bad_request(f"The solution '{unique_name}' is managed: components cannot be added to it.")
    return found


def _check_prefix(cat: Catalog, solution: dict | None, schema_name: str) -> None:
    """The name must start with the solution publisher's prefix (without a solution: any publisher's)."""
    publishers = cat.rows.rows["publisher"].values()
    if solution is not None:
        publishers = [cat.rows.rows["publisher"][solution["publisherid"]["id"]]]
    prefixes = [p["customizationprefix"] + "_" for p in publishers]
    if not any(schema_name.startswith(p) for p in prefixes):
        raise bad_request(f"The schema name {schema_name} does not start with the publisher prefix "
                          f"({', '.join(prefixes) or 'no publisher'}).", "0x80044339")


def _select(record: Mapping[str, Any], query: Mapping[str, str], allowed: set[str], type_name: str) -> dict:
    names = [n.strip() for n in query.get("$select", "").split(",") if n.strip()]
    for n in names:
        if n not in allowed:
            raise bad_request(f"Could not find a property named '{n}' on type '{CRM}{type_name}'.", "0x80060888")
    keep = names or [k for k in record if not k.startswith("_")]
    out = {k: record.get(k) for k in keep}
    out["MetadataId"] = record.get("MetadataId")
    if "@odata.type" in record:
        out["@odata.type"] = record["@odata.type"]
    return out


# --- EntityDefinitions ---------------------------------------------------------------------------------------------

def _entities(cat: Catalog, method: str, root: str, key: str | None, rest: str | None, query: Mapping[str, str],
              data: dict, solution: dict | None):
    logical = _name_key(key, "LogicalName")
    entity = cat.entities.get(logical) if logical else None
    if logical and entity is None:
        raise ODataError(404, "0x80060888", f"Could not find an entity with the name {logical}.")
    if rest:
        return _entity_children(cat, method, root, entity, rest, query, data, solution)
    if entity is None:
        if method == "GET":
            return _json(200, {"value": [_select(e, query, ENTITY_PROPERTIES, "EntityMetadata")
                                         for e in cat.entities.values()]})
        if method == "POST":
            return _create_entity(cat, root, data, solution)
    elif method == "GET":
        return _json(200, _select(entity, query, ENTITY_PROPERTIES, "EntityMetadata"))
    elif method == "DELETE":
        _delete_entity(cat, entity)
        return 204, {}, b""
    elif method == "PUT":
        # An update sends the whole definition back (create-update-entity-definitions-using-web-api: PUT, with
        # MSCRM.MergeLabels); what the product changes in place: auditing, names and description.
        if data.get("@odata.type") != f"{CRM}EntityMetadata" or str(data.get("LogicalName", "")) != logical:
            raise bad_request("PUT EntityDefinitions needs the table's whole EntityMetadata (LogicalName included).")
        entity["IsAuditEnabled"] = _managed_flag(data.get("IsAuditEnabled"))
        for prop in ("DisplayName", "DisplayCollectionName"):
            if data.get(prop):
                entity[prop] = _label_of(data[prop])
        return 204, {}, b""
    raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed here.")


def _create_entity(cat: Catalog, root: str, data: dict, solution: dict | None):
    if data.get("@odata.type") != f"{CRM}EntityMetadata":
        raise bad_request("A table is created with @odata.type Microsoft.Dynamics.CRM.EntityMetadata.")
    schema = str(data.get("SchemaName") or "")
    logical = schema.lower()
    _check_prefix(cat, solution, schema)
    if logical in cat.entities:
        raise ODataError(400, "0x80044363", f"An entity with the name {logical} already exists.")
    for prop in ("DisplayName", "DisplayCollectionName"):
        _label_of(data.get(prop))
    if data.get("OwnershipType") not in ("UserOwned", "OrganizationOwned"):
        raise bad_request("OwnershipType must be UserOwned or OrganizationOwned.")
    primaries = [a for a in data.get("Attributes") or [] if a.get("IsPrimaryName")]
    if len(primaries) != 1 or primaries[0].get("@odata.type") != f"{CRM}StringAttributeMetadata" \
            or primaries[0].get("SchemaName", "").lower() != str(data.get("PrimaryNameAttribute", "")).lower():
        raise bad_request("A new table needs exactly one StringAttributeMetadata with IsPrimaryName true, named "
                          "by PrimaryNameAttribute.", "0x80048403")
    entity = {"MetadataId": str(uuid.uuid4()), "LogicalName": logical, "SchemaName": schema,
              "EntitySetName": logical + "s", "PrimaryIdAttribute": logical + "id",
              "PrimaryNameAttribute": primaries[0]["SchemaName"].lower(),
              # Dataverse turns optimistic concurrency on for every custom table.
              "IsOptimisticConcurrencyEnabled": True,
              "HasNotes": bool(data.get("HasNotes")), "HasActivities": bool(data.get("HasActivities")),
              "OwnershipType": data["OwnershipType"], "IsCustomEntity": True, "IsActivity": False,
              "IsAuditEnabled": _managed_flag(data.get("IsAuditEnabled")),
              "Description": data.get("Description"),
              "DisplayName": _label_of(data["DisplayName"]),
              "DisplayCollectionName": _label_of(data["DisplayCollectionName"]), "_attributes": {}, "_keys": {}}
    cat.entities[logical] = entity
    for column in (Column(entity["PrimaryIdAttribute"], "uniqueidentifier"), Column("createdon", "datetime"),
                   Column("modifiedon", "datetime"), Column("statecode", "state"), Column("statuscode", "status")):
        cat._add_column(entity, column)
    _add_attribute(entity, primaries[0])
    cat._add_filters(logical)
    cat.add_privileges(logical, schema)
    cat.component(solution and solution["uniquename"], "table", logical)
    return _created(f"{root}EntityDefinitions({entity['MetadataId']})")


def _managed_flag(value: Any) -> dict[str, Any]:
    if value is None:
        return {"Value": False, "CanBeChanged": True, "ManagedPropertyLogicalName": "canmodifyauditsettings"}
    if not isinstance(value, dict) or not isinstance(value.get("Value"), bool):
        raise bad_request("IsAuditEnabled is a BooleanManagedProperty: {\"Value\": true|false, ...}.")
    return dict(value)


def _delete_entity(cat: Catalog, entity: dict) -> None:
    logical = entity["LogicalName"]
    users = [r for r in cat.relationships.values() if r["ReferencedEntity"] == logical
             and r["ReferencingEntity"] != logical and r["ReferencingEntity"] in cat.entities]
    if users:
        raise ODataError(400, "0x8004f01f", f"The table {logical} cannot be deleted: it is used by "
                                            f"{users[0]['SchemaName']} ({users[0]['ReferencingEntity']}).")
    for name in [n for n, r in cat.relationships.items() if logical in (r["ReferencedEntity"],
                                                                         r["ReferencingEntity"])]:
        del cat.relationships[name]
    for row in list(cat.rows.rows["sdkmessagefilter"].values()):
        if row["primaryobjecttypecode"] == logical:
            cat.rows.delete(cat.rows.table("sdkmessagefilter"), row["sdkmessagefilterid"])
    del cat.entities[logical]


def _add_attribute(entity: dict, data: dict) -> dict:
    type_name = str(data.get("@odata.type", "")).removeprefix("#").removeprefix(CRM)
    kind = ATTRIBUTE_KINDS.get(type_name)
    if kind is None:
        raise bad_request(f"'{data.get('@odata.type')}' is not a column type this endpoint creates (a lookup is "
                          f"created with its relationship).", "0x80048d19")
    schema = str(data.get("SchemaName") or "")
    logical = schema.lower()
    if not logical or logical in entity["_attributes"]:
        raise ODataError(400, "0x80044363", f"The column {logical} already exists on {entity['LogicalName']}.")
    _label_of(data.get("DisplayName"))
    attribute = {"MetadataId": str(uuid.uuid4()), "LogicalName": logical, "SchemaName": schema, "AttributeType": kind,
                 "@odata.type": f"#{CRM}{type_name}", "EntityLogicalName": entity["LogicalName"],
                 "IsCustomAttribute": True, "IsPrimaryName": bool(data.get("IsPrimaryName")),
                 "IsSecured": bool(data.get("IsSecured")), "Description": data.get("Description"),
                 "DisplayName": data.get("DisplayName"), "RequiredLevel": data.get("RequiredLevel")}
    if kind in ("String", "Memo"):
        limit = 4000 if kind == "String" else 1048576
        if not isinstance(data.get("MaxLength"), int) or not 1 <= data["MaxLength"] <= limit:
            raise bad_request(f"MaxLength of {logical} must be between 1 and {limit}.", "0x80044331")
        attribute["MaxLength"] = data["MaxLength"]
    elif kind in ("Decimal", "Money"):
        precision = data.get("Precision")
        if not isinstance(precision, int) or not 0 <= precision <= (10 if kind == "Decimal" else 4):
            raise bad_request(f"Precision of {logical} is out of range.", "0x80044331")
        attribute["Precision"] = precision
    elif kind == "Picklist":
        options = ((data.get("OptionSet") or {}).get("Options")) or []
        values = [o.get("Value") for o in options]
        if not options or len(set(values)) != len(values) or not all(isinstance(v, int) for v in values):
            raise bad_request(f"The choice {logical} needs options with distinct integer values.", "0x80044331")
        attribute["OptionSet"] = {"Options": [{"Value": o["Value"], "Label": _label_of(o.get("Label"))}
                                              for o in options]}
    elif kind == "Boolean":
        option_set = data.get("OptionSet") or {}
        if not option_set.get("TrueOption") or not option_set.get("FalseOption"):
            raise bad_request(f"The yes/no column {logical} needs TrueOption and FalseOption.", "0x80044331")
    entity["_attributes"][logical] = attribute
    return attribute


def _entity_children(cat: Catalog, method: str, root: str, entity: dict, rest: str, query: Mapping[str, str],
                     data: dict, solution: dict | None):
    m = re.fullmatch(r"(Attributes|Keys)(?:\((.*)\))?(?:/Microsoft\.Dynamics\.CRM\.(\w+))?", rest)
    if not m:
        raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")
    segment, child_key, cast = m.groups()
    if segment == "Keys":
        return _keys(cat, method, root, entity, child_key, query, data, solution)
    attributes = entity["_attributes"]
    if child_key is not None:
        logical = _name_key(child_key, "LogicalName")
        attribute = attributes.get(logical)
        if attribute is None:
            raise ODataError(404, "0x80060888", f"Could not find a column {logical} on {entity['LogicalName']}.")
        if method == "GET":
            return _json(200, _select(attribute, query, BASE_ATTRIBUTE_PROPERTIES
                                      | TYPED_PROPERTIES.get(attribute["AttributeType"], set()), "AttributeMetadata"))
        if method == "PUT":
            cast_name = str(data.get("@odata.type", "")).removeprefix("#").removeprefix(CRM)
            if cast_name != attribute["@odata.type"].removeprefix(f"#{CRM}") or data.get("LogicalName") != logical:
                raise bad_request(f"PUT of {logical} needs its whole {attribute['@odata.type']} definition; the "
                                  f"type of a column cannot change.", "0x80048d19")
            attribute["IsSecured"] = bool(data.get("IsSecured"))
            if data.get("DisplayName"):
                attribute["DisplayName"] = _label_of(data["DisplayName"])
            return 204, {}, b""
        if method == "DELETE":
            if attribute["AttributeType"] == "Lookup":
                cat.relationships = {n: r for n, r in cat.relationships.items()
                                     if not (r["ReferencingEntity"] == entity["LogicalName"]
                                             and r["ReferencingAttribute"] == logical)}
            del attributes[logical]
            return 204, {}, b""
        raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed here.")
    if method == "POST" and cast is None:
        _check_prefix(cat, solution, str(data.get("SchemaName") or ""))
        attribute = _add_attribute(entity, data)
        cat.component(solution and solution["uniquename"], "column", f"{entity['LogicalName']}.{attribute['LogicalName']}")
        return _created(f"{root}EntityDefinitions({entity['MetadataId']})/Attributes({attribute['MetadataId']})")
    if method != "GET":
        raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed here.")
    allowed = set(BASE_ATTRIBUTE_PROPERTIES)
    found = list(attributes.values())
    if cast is not None:
        kind = ATTRIBUTE_KINDS.get(cast) or {"LookupAttributeMetadata": "Lookup"}.get(cast)
        if kind is None:
            raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{cast}'.")
        allowed |= TYPED_PROPERTIES[kind]
        found = [a for a in found if a["AttributeType"] == kind]
    expand = query.get("$expand")
    if expand and not (cast == "PicklistAttributeMetadata" and re.fullmatch(r"OptionSet(\(\$select=Options\))?",
                                                                            expand)):
        raise bad_request(f"$expand={expand} is not supported here.", "0x80060888")
    select_query = {"$select": query["$select"]} if query.get("$select") else {}
    value = []
    for attribute in found:
        out = _select(attribute, select_query, allowed, cast or "AttributeMetadata")
        if expand:
            out["OptionSet"] = attribute.get("OptionSet")
        value.append(out)
    return _json(200, {"value": value})


def _keys(cat: Catalog, method: str, root: str, entity: dict, child_key: str | None, query: Mapping[str, str],
          data: dict, solution: dict | None):
    keys = entity["_keys"]
    if child_key is not None:
        logical = _name_key(child_key, "LogicalName")
        if logical not in keys:
            raise ODataError(404, "0x80060888", f"Could not find a key {logical} on {entity['LogicalName']}.")
        if method == "DELETE":
            del keys[logical]
            return 204, {}, b""
        return _json(200, keys[logical])
    if method == "GET":
        return _json(200, {"value": [_select(k, query, {"LogicalName", "SchemaName", "KeyAttributes",
                                                         "EntityKeyIndexStatus"}, "EntityKeyMetadata")
                                     for k in keys.values()]})
    if method != "POST":
        raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed here.")
    schema = str(data.get("SchemaName") or "")
    _check_prefix(cat, solution, schema)
    columns = data.get("KeyAttributes") or []
    for column in columns:
        attribute = entity["_attributes"].get(column)
        if attribute is None or attribute["AttributeType"] in ("Memo", "Boolean", "Picklist"):
            raise bad_request(f"{column} cannot be part of a key of {entity['LogicalName']}.", "0x80060891")
    if not columns or schema.lower() in keys:
        raise bad_request(f"The key {schema} is empty or exists already.", "0x80060891")
    key = {"MetadataId": str(uuid.uuid4()), "LogicalName": schema.lower(), "SchemaName": schema,
           "KeyAttributes": list(columns), "EntityKeyIndexStatus": "Active"}
    keys[key["LogicalName"]] = key
    cat.component(solution and solution["uniquename"], "key", f"{entity['LogicalName']}.{key['LogicalName']}")
    return _created(f"{root}EntityDefinitions({entity['MetadataId']})/Keys({key['MetadataId']})")


# --- RelationshipDefinitions, options, publishing ------------------------------------------------------------------

def _relationships(cat: Catalog, method: str, root: str, key: str | None, data: dict, solution: dict | None):
    schema = _name_key(key, "SchemaName")
    if schema is not None:
        found = cat.relationships.get(schema)
        if found is None:
            raise ODataError(404, "0x80060888", f"Could not find a relationship {schema}.")
        if method == "GET":
            return _json(200, found)
        if method == "DELETE":
            entity = cat.entities.get(found["ReferencingEntity"])
            if entity is not None:
                entity["_attributes"].pop(found["ReferencingAttribute"], None)
            del cat.relationships[schema]
            return 204, {}, b""
        raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed here.")
    if method != "POST":
        raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed here.")
    if data.get("@odata.type") != f"{CRM}OneToManyRelationshipMetadata":
        raise bad_request("Only OneToManyRelationshipMetadata is created here.")
    name = str(data.get("SchemaName") or "")
    _check_prefix(cat, solution, name)
    referenced, referencing = cat.entities.get(data.get("ReferencedEntity")), cat.entities.get(
        data.get("ReferencingEntity"))
    if referenced is None or referencing is None:
        raise ODataError(404, "0x80060888", f"The relationship {name} names a table that does not exist "
                                            f"({data.get('ReferencedEntity')} -> {data.get('ReferencingEntity')}).")
    if data.get("ReferencedAttribute") != referenced["PrimaryIdAttribute"]:
        raise bad_request(f"ReferencedAttribute must be {referenced['PrimaryIdAttribute']}.")
    lookup = data.get("Lookup") or {}
    column = str(lookup.get("SchemaName") or "").lower()
    if lookup.get("@odata.type") != f"{CRM}LookupAttributeMetadata" or not column:
        raise bad_request("The relationship needs a LookupAttributeMetadata named by SchemaName.")
    if name in cat.relationships or column in referencing["_attributes"]:
        raise ODataError(400, "0x80044363", f"The relationship {name} or the column {column} exists already.")
    _label_of(lookup.get("DisplayName"))
    relation = {"MetadataId": str(uuid.uuid4()), "SchemaName": name, "ReferencedEntity": referenced["LogicalName"],
                "ReferencedAttribute": referenced["PrimaryIdAttribute"],
                "ReferencingEntity": referencing["LogicalName"], "ReferencingAttribute": column,
                "ReferencedEntityNavigationPropertyName": data.get("ReferencedEntityNavigationPropertyName") or name,
                "ReferencingEntityNavigationPropertyName":
                    data.get("ReferencingEntityNavigationPropertyName") or lookup["SchemaName"],
                "CascadeConfiguration": data.get("CascadeConfiguration")}
    cat.relationships[name] = relation
    referencing["_attributes"][column] = {
        "MetadataId": str(uuid.uuid4()), "LogicalName": column, "SchemaName": lookup["SchemaName"],
        "AttributeType": "Lookup", "@odata.type": f"#{CRM}LookupAttributeMetadata",
        "EntityLogicalName": referencing["LogicalName"], "IsCustomAttribute": True,
        "Targets": [referenced["LogicalName"]], "RequiredLevel": lookup.get("RequiredLevel"),
        "IsSecured": bool(lookup.get("IsSecured"))}
    cat.component(solution and solution["uniquename"], "relationship", name)
    return _created(f"{root}RelationshipDefinitions({relation['MetadataId']})")


def _option_value(cat: Catalog, action: str, data: dict):
    entity = cat.entities.get(data.get("EntityLogicalName"))
    attribute = entity["_attributes"].get(data.get("AttributeLogicalName")) if entity else None
    if attribute is None or attribute["AttributeType"] != "Picklist":
        raise bad_request(f"{data.get('EntityLogicalName')}.{data.get('AttributeLogicalName')} is not a choice.")
    options = attribute["OptionSet"]["Options"]
    existing = next((o for o in options if o["Value"] == data.get("Value")), None)
    if action == "InsertOptionValue":
        if existing is not None or not isinstance(data.get("Value"), int):
            raise bad_request(f"The option value {data.get('Value')} exists already.", "0x80044331")
        options.append({"Value": data["Value"], "Label": _label_of(data.get("Label"))})
        return _json(200, {"NewOptionValue": data["Value"]})
    if existing is None:
        raise ODataError(404, "0x80060888", f"The option value {data.get('Value')} does not exist.")
    existing["Label"] = _label_of(data.get("Label"))
    return 204, {}, b""


def _publish(cat: Catalog, data: dict):
    text = data.get("ParameterXml")
    try:
        root = ET.fromstring(text or "")
    except ET.ParseError:
        raise bad_request("ParameterXml is not XML.", "0x80040216") from None
    for entity in root.iter("entity"):
        if entity.text not in cat.entities:
            raise bad_request(f"PublishXml: there is no table {entity.text}.", "0x80040216")
    cat.published.append(text)
    return 204, {}, b""


# --- solution-aware rows ---------------------------------------------------------------------------------------------

def _rows(cat: Catalog, method: str, root: str, table: Table, key: str | None, rest: str | None,
          query: Mapping[str, str], data: dict, solution: dict | None):
    if rest:
        raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")
    store = cat.rows
    if key is None:
        if method == "GET":
            rows = list(store.rows[table.logical_name].values())
            if query.get("$filter"):
                predicate = parse_filter(table, query["$filter"])
                rows = [r for r in rows if predicate(r)]
            top = parse_top(query.get("$top"))
            select = parse_select(table, query.get("$select"))
            return _json(200, {"value": [_shape(table, r, select) for r in rows[:top]]})
        if method == "POST" and table.entity_set not in READ_ONLY_SETS:
            row = _create_row(cat, table, data, solution)
            return _created(f"{root}{table.entity_set}({row[table.primary_id]})")
        raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on '{table.entity_set}'.")
    row = store.find(table, key.strip())
    if row is None:
        raise not_found(table.logical_name, key)
    if table.logical_name == "asyncoperation" and method == "GET":
        from standins.dataverse import solutions
        solutions.advance(cat, row)            # a poll lets the system job move on, as the real one does meanwhile
    if method == "GET":
        return _json(200, _shape(table, row, parse_select(table, query.get("$select"))))
    if table.entity_set in READ_ONLY_SETS:
        raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on '{table.entity_set}'.")
    if method == "PATCH":
        values = _values(cat, table, data)
        if table.logical_name == "sdkmessageprocessingstep":
            _check_step(cat, {**row, **values})
        _check_product_row(cat, table.logical_name, {**row, **values})
        store.update(table, row, values)
        return 204, {"OData-EntityId": f"{root}{table.entity_set}({key})"}, b""
    if method == "DELETE":
        _delete_row(cat, table, row)
        return 204, {}, b""
    raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed here.")


# Write-only columns (IsValidForRead False in Microsoft's table reference): selectable, always read back as null.
_WRITE_ONLY = {("serviceendpoint", "authvalue")}


def _shape(table: Table, row: dict, select: list[Column] | None) -> dict[str, Any]:
    columns = select if select is not None else list(table.columns)
    out = {"@odata.etag": f'W/"{row["_version"]}"', table.primary_id: row[table.primary_id]}
    for column in columns:
        value = row.get(column.name)
        if (table.logical_name, column.name) in _WRITE_ONLY:
            out[column.name] = None
        elif column.type == "lookup":
            out[column.value_property] = value["id"] if value else None
        else:
            out[column.name] = value
    return out


def _values(cat: Catalog, table: Table, data: dict) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name.endswith("@odata.bind"):
            navigation = name[:-len("@odata.bind")]
            column = next((c for c in table.columns if c.type == "lookup" and navigation in c.navigations), None)
            m = re.fullmatch(r"/?(\w+)\(([0-9a-fA-F-]{36})\)", str(value))
            if column is None or not m or m.group(1) not in _BY_SET:
                raise bad_request(f"'{name}' is not a navigation property of {table.logical_name}, or '{value}' "
                                  f"is not a reference to a row.", "0x80060888")
            target = _BY_SET[m.group(1)]
            if target.logical_name != column.navigations[navigation] or cat.rows.find(target, m.group(2)) is None:
                raise not_found(target.logical_name, m.group(2))
            values[column.name] = {"id": m.group(2).lower(), "table": target.logical_name}
        elif "@" in name or any(name == nav for (s, nav) in DEEP_INSERTS if s == table.entity_set):
            continue
        else:
            column = table.column(name)
            if column is None or column.type == "lookup" or column.system:
                raise bad_request(f"The property '{name}' does not exist on type '{CRM}{table.logical_name}'.",
                                  "0x80060888")
            values[name] = coerce(table, column, value)
    return values


def _create_row(cat: Catalog, table: Table, data: dict, solution: dict | None,
                parent: tuple[str, dict] | None = None) -> dict[str, Any]:
    values = _values(cat, table, data)
    if parent is not None:
        values[parent[0]] = parent[1]
    name = table.logical_name
    if name in ("customapi", "webresource", "appaction", "appmodule"):
        _check_prefix(cat, solution, str(values.get("uniquename") or values.get("name") or ""))
    if name == "solution" and values.get("publisherid") is None:
        raise bad_request("A solution needs publisherid@odata.bind.")
    if name in ("publisher", "solution", "customapi", "webresource", "serviceendpoint", "appaction", "appmodule") and any(
            r.get(_unique(name)) == values.get(_unique(name)) for r in cat.rows.rows[name].values()):
        raise ODataError(412 if name != "webresource" else 400, "0x80040237",
                         f"A {name} named {values.get(_unique(name))} already exists.")
    if name == "customapi":
        _check_custom_api(cat, values)
    elif name == "sdkmessageprocessingstep":
        _check_step(cat, values)
    elif name == "webresource":
        try:
            base64.b64decode(values.get("content") or "", validate=True)
        except binascii.Error:
            raise bad_request("The web resource content is not base64.") from None
    elif name in _PRODUCT_CHECKS:
        _check_product_row(cat, name, values)
    elif name == "serviceendpoint" and values.get("contract") == 8 and values.get("authtype") == 5:
        try:
            ET.fromstring(values.get("authvalue") or "")
        except ET.ParseError:
            raise bad_request("authvalue must be <settings><setting name=... value=... /></settings>.") from None
    row = cat.insert(name, values)
    if name == "customapi":
        register_message(cat, row)
        for item in data.get("CustomAPIRequestParameters") or []:
            _create_row(cat, cat.rows.table("customapirequestparameter"), item, solution,
                        ("customapiid", {"id": row["customapiid"], "table": "customapi"}))
    if table.entity_set in COMPONENT_SETS:
        cat.component(solution and solution["uniquename"], name, _component_name(name, values),
                      (name, row[table.primary_id]))
    return row


def register_message(cat: Catalog, api: dict[str, Any]) -> None:
    """A Custom API brings its sdkmessage and sdkmessagefilter (what steps bind to)."""
    message = cat.insert("sdkmessage", {"name": api["uniquename"]})
    cat.rows.update(cat.rows.table("customapi"), api,
                    {"sdkmessageid": {"id": message["sdkmessageid"], "table": "sdkmessage"}})
    cat.insert("sdkmessagefilter", {"name": api["uniquename"],
                                    "primaryobjecttypecode": api.get("boundentitylogicalname") or "none",
                                    "sdkmessageid": {"id": message["sdkmessageid"], "table": "sdkmessage"}})


def _component_name(table: str, values: Mapping[str, Any]) -> str:
    if table == "fieldpermission":
        return f"{values.get('entityname')}.{values.get('attributelogicalname')}"
    if table == "sitemap":
        return str(values.get("sitemapnameunique"))
    return str(values.get("uniquename") or values.get("name"))


# --- the product's components: checked as Dataverse checks them on save ------------------------------------------------

def _xml(text: Any, what: str) -> ET.Element:
    try:
        return ET.fromstring(text or "")
    except ET.ParseError:
        raise bad_request(f"{what} is not well-formed XML.", "0x80040216") from None


def _check_fetch(cat: Catalog, text: Any, entity: Any, what: str, *, aggregate: bool) -> None:
    """The query must parse, name its entity, and use only tables and columns that exist in this environment."""
    from standins.dataverse import fetchxml

    def table_of(name: str) -> Table:
        if name not in cat.entities:
            raise KeyError(name)
        return footprint.table(name)
    query = fetchxml.parse(str(text or ""), table_of)
    if query.table.logical_name != entity:
        raise bad_request(f"{what}: the query's entity {query.table.logical_name} is not {entity}.", "0x80040216")
    if query.aggregate != aggregate:
        raise bad_request(f"{what}: a {'chart' if aggregate else 'view'} needs "
                          f"{'an aggregate' if aggregate else 'a plain'} query.", "0x80040216")
    for attribute in fetchxml.all_attributes(query):
        if attribute.column.name not in cat.entities[attribute.table.logical_name]["_attributes"]:
            raise bad_request(f"{what}: {attribute.table.logical_name}.{attribute.column.name} does not exist here.",
                              "0x80041103")


def _check_product_row(cat: Catalog, name: str, values: Mapping[str, Any]) -> None:
    check = _PRODUCT_CHECKS.get(name)
    if check is not None:
        check(cat, values)


def _check_view(cat: Catalog, values: Mapping[str, Any]) -> None:
    entity = values.get("returnedtypecode")
    if entity not in cat.entities:
        raise bad_request(f"The view's table {entity} does not exist.", "0x80040216")
    _check_fetch(cat, values.get("fetchxml"), entity, f"view {values.get('name')}", aggregate=False)
    if _xml(values.get("layoutxml"), "layoutxml").tag != "grid":
        raise bad_request("layoutxml must be a <grid>.", "0x80040216")


def _check_chart(cat: Catalog, values: Mapping[str, Any]) -> None:
    entity = values.get("primaryentitytypecode")
    data = _xml(values.get("datadescription"), "datadescription")
    fetches = data.findall("fetchcollection/fetch")
    if entity not in cat.entities or len(fetches) != 1:
        raise bad_request("A chart names an existing table and holds one <fetch> in its datadescription.")
    _check_fetch(cat, ET.tostring(fetches[0], encoding="unicode"), entity, f"chart {values.get('name')}",
                 aggregate=True)
    aliases = {a.get("alias") for a in fetches[0].iter("attribute")}
    used = {c.get("alias") for c in data.iter("category")} | {m.get("alias") for m in data.iter("measure")}
    if not used <= aliases:
        raise bad_request(f"chart {values.get('name')}: {sorted(used - aliases)} are not aliases of its query.")
    _xml(values.get("presentationdescription"), "presentationdescription")


def _check_dashboard(cat: Catalog, values: Mapping[str, Any]) -> None:
    form = _xml(values.get("formxml"), "formxml")
    for tag, table in (("VisualizationId", "savedqueryvisualization"), ("ViewId", "savedquery")):
        for ref in form.iter(tag):
            if cat.rows.find(cat.rows.table(table), (ref.text or "").strip("{}")) is None:
                raise bad_request(f"The dashboard names a {table} {ref.text} that does not exist.", "0x80040216")


def _check_field_permission(cat: Catalog, values: Mapping[str, Any]) -> None:
    entity = cat.entities.get(values.get("entityname"))
    attribute = entity["_attributes"].get(values.get("attributelogicalname")) if entity else None
    if attribute is None:
        raise bad_request(f"{values.get('entityname')}.{values.get('attributelogicalname')} does not exist.")
    if not attribute.get("IsSecured"):
        raise bad_request(f"The column {attribute['LogicalName']} is not enabled for field security; a field "
                          f"permission needs IsSecured on it first.", "0x8004f508")
    for right in ("canread", "cancreate", "canupdate"):
        if values.get(right) not in (0, 4):
            raise bad_request(f"{right} must be 0 (not allowed) or 4 (allowed).")
    if values.get("fieldsecurityprofileid") is None:
        raise bad_request("A field permission belongs to a field security profile (fieldsecurityprofileid).")


def _check_command(cat: Catalog, values: Mapping[str, Any]) -> None:
    if values.get("contextvalue") not in cat.entities:
        raise bad_request(f"The command's table {values.get('contextvalue')} does not exist.")
    if values.get("onclickeventtype") == 2 and not (values.get("onclickeventjavascriptfunctionname")
                                                    and values.get("onclickeventjavascriptwebresourceid")):
        raise bad_request("A JavaScript command names its function and its web resource.")
    if values.get("location") not in (0, 1, 2, 3):
        raise bad_request("location must be 0 (form), 1 (grid), 2 (subgrid) or 3 (associated grid).")


def _check_sitemap(cat: Catalog, values: Mapping[str, Any]) -> None:
    for area in _xml(values.get("sitemapxml"), "sitemapxml").iter("SubArea"):
        if area.get("Entity") and area.get("Entity") not in cat.entities:
            raise bad_request(f"The sitemap names a table {area.get('Entity')} that does not exist.")


_PRODUCT_CHECKS = {"savedquery": _check_view, "savedqueryvisualization": _check_chart, "systemform": _check_dashboard,
                   "fieldpermission": _check_field_permission, "appaction": _check_command,
                   "sitemap": _check_sitemap}


def _roles(standin: Any, cat: Catalog, root: str, key: str | None, rest: str | None, headers: Mapping[str, str],
           data: dict):
    """POST roles (a new role in the root business unit, in the named solution) and
    POST roles(<id>)/Microsoft.Dynamics.CRM.AddPrivilegesRole. The role row itself lives on the data side, where the
    stand-in's security reads it."""
    if key is None and not rest:
        name = str(data.get("name") or "").strip()
        unit = re.fullmatch(r"/?businessunits\(([0-9a-fA-F-]{36})\)", str(data.get("businessunitid@odata.bind", "")))
        if not name or unit is None or unit.group(1).lower() != standin.business_unit_id:
            raise bad_request("A role needs a name and businessunitid@odata.bind to the root business unit.")
        if any(r["name"] == name for r in standin.store.rows["role"].values()):
            raise ODataError(400, "0x80040237", f"A role named {name} already exists in this business unit.")
        solution = _solution(cat, headers.get("mscrm.solutionuniquename"))
        given = str(data.get("roleid") or "").strip().lower()     # Dataverse takes a primary key given on create
        if given and given in standin.store.rows["role"]:
            raise ODataError(412, "0x80040237", "A record with matching key values already exists.")
        role_id = standin.seed("role", {"name": name, **({"roleid": given} if given else {})})
        cat.role_privileges[role_id] = {}
        cat.component(solution and solution["uniquename"], "role", name, ("role", role_id))
        return _created(f"{root}roles({role_id})")
    if key and rest == "Microsoft.Dynamics.CRM.AddPrivilegesRole":
        role_id = key.strip().lower()
        if role_id not in standin.store.rows["role"]:
            raise not_found("role", key)
        granted = cat.role_privileges.setdefault(role_id, {})
        for item in data.get("Privileges") or []:
            privilege = cat.privilege(str(item.get("PrivilegeId", "")).lower())
            if privilege is None or item.get("Depth") not in DEPTHS:
                raise bad_request(f"Unknown privilege {item.get('PrivilegeId')} or depth {item.get('Depth')}.",
                                  "0x80040217")
            granted[privilege["privilegeid"]] = item["Depth"]
        return 204, {}, b""
    raise ODataError(405, "0x80060888", "Only creating a role and AddPrivilegesRole are supported here.")


def installed_privileges(standin: Any, role_id: str) -> set[str] | None:
    """The privilege names AddPrivilegesRole gave this role, or None when the installer never touched it."""
    cat = getattr(standin, "_metadata_catalog", None)
    if cat is None or role_id not in cat.role_privileges:
        return None
    return {cat.privilege(p)["name"] for p in cat.role_privileges[role_id]}


def _role_privileges(standin: Any, cat: Catalog, key: str | None, query: Mapping[str, str]):
    """GET RetrieveRolePrivilegesRole(RoleId=@p1)?@p1=<guid>"""
    m = re.fullmatch(r"RoleId=(@\w+)", (key or "").strip())
    role_id = (query.get(m.group(1)) if m else "") or ""
    role_id = role_id.strip("'").lower()
    if role_id not in standin.store.rows["role"]:
        raise not_found("role", role_id)
    privileges = []
    for privilege_id, depth in cat.role_privileges.get(role_id, {}).items():
        privilege = cat.privilege(privilege_id)
        privileges.append({"Depth": depth, "PrivilegeId": privilege_id, "BusinessUnitId": standin.business_unit_id,
                           "PrivilegeName": privilege["name"]})
    return _json(200, {"@odata.context": "$metadata#Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRoleResponse",
                       "RolePrivileges": privileges})


def _add_app_components(cat: Catalog, data: dict):
    app = cat.rows.find(cat.rows.table("appmodule"), str(data.get("AppId", "")).lower())
    if app is None:
        raise not_found("appmodule", str(data.get("AppId")))
    have = {(c["componenttype"], c["objectid"]) for c in cat.rows.rows["appmodulecomponent"].values()
            if c["appmoduleidunique"]["id"] == app["appmoduleid"]}
    for item in data.get("Components") or []:
        kind = str(item.get("@odata.type", "")).removeprefix("#").removeprefix(CRM)
        if kind not in APP_COMPONENT_TYPES:
            raise bad_request(f"AddAppComponents does not take {item.get('@odata.type')}.")
        object_id = str(item.get(f"{kind}id" if kind != "systemform" else "formid", "")).lower()
        if kind == "entity":
            if not any(e["MetadataId"] == object_id for e in cat.entities.values()):
                raise not_found("entity", object_id)
        elif cat.rows.find(cat.rows.table(kind), object_id) is None:
            raise not_found(kind, object_id)
        if (APP_COMPONENT_TYPES[kind], object_id) not in have:
            cat.insert("appmodulecomponent", {"objectid": object_id, "componenttype": APP_COMPONENT_TYPES[kind],
                                              "appmoduleidunique": {"id": app["appmoduleid"], "table": "appmodule"}})
    return 204, {}, b""


def _unique(name: str) -> str:
    return "name" if name in ("webresource", "serviceendpoint") else "uniquename"


def _check_custom_api(cat: Catalog, values: dict) -> None:
    if values.get("bindingtype") == 1 and values.get("boundentitylogicalname") not in cat.entities:
        raise bad_request(f"The bound table {values.get('boundentitylogicalname')} does not exist.")
    m = _PRIVILEGE.match(values.get("executeprivilegename") or "")
    if values.get("executeprivilegename") and (m is None or m.group(2).lower() not in cat.entities):
        raise bad_request(f"The privilege {values.get('executeprivilegename')} does not exist.", "0x80040217")


def _check_step(cat: Catalog, values: dict) -> None:
    message = values.get("sdkmessageid")
    step_filter = cat.rows.find(cat.rows.table("sdkmessagefilter"), values["sdkmessagefilterid"]["id"]) \
        if values.get("sdkmessagefilterid") else None
    if message is None or values.get("eventhandler") is None:
        raise bad_request("A step needs sdkmessageid and an event handler.")
    if step_filter is not None and step_filter["sdkmessageid"]["id"] != message["id"]:
        raise bad_request("The sdkmessagefilter belongs to another message.")
    if values.get("stage") not in (10, 20, 40) or values.get("mode") not in (0, 1):
        raise bad_request("stage must be 10, 20 or 40 and mode 0 or 1.")
    if values.get("mode") == 1 and values.get("stage") != 40:
        raise bad_request("An asynchronous step must be PostOperation (stage 40).")
    entity = cat.entities.get(step_filter["primaryobjecttypecode"]) if step_filter else None
    for name in filter(None, (values.get("filteringattributes") or "").split(",")):
        if entity is None or name.strip() not in entity["_attributes"]:
            raise bad_request(f"The filtering attribute {name} is not a column of the step's table.")


def _delete_row(cat: Catalog, table: Table, row: dict) -> None:
    store, name, record_id = cat.rows, table.logical_name, row[table.primary_id]

    def children(child: str, column: str) -> list[dict]:
        return [r for r in store.rows[child].values() if (r.get(column) or {}).get("id") == record_id]

    if name == "serviceendpoint" and children("sdkmessageprocessingstep", "eventhandler"):
        raise bad_request("The service endpoint still has steps registered on it.", "0x80040216")
    if name == "sdkmessageprocessingstep":
        for image in children("sdkmessageprocessingstepimage", "sdkmessageprocessingstepid"):
            store.delete(store.table("sdkmessageprocessingstepimage"), image["sdkmessageprocessingstepimageid"])
    if name == "customapi":
        message = row.get("sdkmessageid")
        if message and any((s.get("sdkmessageid") or {}).get("id") == message["id"]
                           for s in store.rows["sdkmessageprocessingstep"].values()):
            raise bad_request("The Custom API's message still has steps registered on it.", "0x80040216")
        for parameter in children("customapirequestparameter", "customapiid"):
            store.delete(store.table("customapirequestparameter"), parameter["customapirequestparameterid"])
        if message:
            for f in [f for f in store.rows["sdkmessagefilter"].values() if f["sdkmessageid"]["id"] == message["id"]]:
                store.delete(store.table("sdkmessagefilter"), f["sdkmessagefilterid"])
            store.delete(store.table("sdkmessage"), message["id"])
    store.delete(table, record_id)
