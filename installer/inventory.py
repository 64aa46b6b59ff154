"""What an environment already has of our footprint, read through the Web API (GETs only)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from core import footprint, odata
from core.errors import RecordNotFound
from core.ports import Dataverse, Record
from installer import desired, product

TYPED_READS = {"string": "StringAttributeMetadata", "memo": "MemoAttributeMetadata"}


@dataclass
class EntityState:
    metadata_id: str
    attributes: dict[str, str] = field(default_factory=dict)            # logical name -> AttributeType
    max_lengths: dict[str, int] = field(default_factory=dict)
    options: dict[str, dict[int, str]] = field(default_factory=dict)    # picklist -> value -> label
    keys: dict[tuple[str, ...], str] = field(default_factory=dict)      # sorted key columns -> key logical name
    audited: bool | None = None                                         # IsAuditEnabled.Value
    secured: set[str] = field(default_factory=set)                      # columns with IsSecured


@dataclass
class Inventory:
    publisher: Record | None = None
    solution: Record | None = None
    entities: dict[str, EntityState] = field(default_factory=dict)
    custom_apis: dict[str, Record] = field(default_factory=dict)
    parameters: dict[str, dict[str, Record]] = field(default_factory=dict)   # api unique name -> name -> row
    endpoint: Record | None = None
    steps: dict[str, Record] = field(default_factory=dict)                  # step name -> row
    images: dict[str, list[Record]] = field(default_factory=dict)           # step id -> image rows
    web_resources: dict[str, Record] = field(default_factory=dict)
    configuration_rows: int = 0
    variables: dict[str, Record] = field(default_factory=dict)    # schema name -> definition, values expanded
    # The product around the footprint (installer/product.py), each by its name there.
    roles: dict[str, Record] = field(default_factory=dict)
    role_privileges: dict[str, dict[str, str]] = field(default_factory=dict)   # role name -> privilege -> depth
    field_profiles: dict[str, Record] = field(default_factory=dict)
    field_permissions: dict[str, dict[tuple[str, str], Record]] = field(default_factory=dict)  # profile -> column
    views: dict[tuple[str, str], Record] = field(default_factory=dict)        # (table, name)
    charts: dict[tuple[str, str], Record] = field(default_factory=dict)       # (table, name)
    dashboard: Record | None = None
    sitemap: Record | None = None
    app: Record | None = None
    app_components: set[tuple[int, str]] = field(default_factory=set)        # (component type, object id)
    commands: dict[str, Record] = field(default_factory=dict)
    webhook_providers: list[Record] = field(default_factory=list)             # w365_provider rows of type Webhook


def _label_text(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    user = value.get("UserLocalizedLabel")
    if isinstance(user, dict) and user.get("Label") is not None:
        return str(user["Label"])
    labels = value.get("LocalizedLabels") or []
    return str(labels[0].get("Label", "")) if labels else ""


def entity_path(logical_name: str) -> str:
    return f"EntityDefinitions(LogicalName={odata.literal(logical_name)})"


def read_entity(dv: Dataverse, logical_name: str) -> EntityState | None:
    try:
        found = dv.retrieve("EntityDefinitions", f"LogicalName={odata.literal(logical_name)}",
                            select=("MetadataId", "LogicalName", "PrimaryNameAttribute", "IsAuditEnabled"))
    except RecordNotFound:
        return None
    state = EntityState(str(found.get("MetadataId")))
    state.audited = bool((found.get("IsAuditEnabled") or {}).get("Value"))
    base = entity_path(logical_name)
    for row in dv.query(f"{base}/Attributes", select=("LogicalName", "AttributeType", "IsSecured")):
        state.attributes[row["LogicalName"]] = row.get("AttributeType")
        if row.get("IsSecured"):
            state.secured.add(row["LogicalName"])
    for kind, cast in TYPED_READS.items():
        for row in dv.query(f"{base}/Attributes/Microsoft.Dynamics.CRM.{cast}", select=("LogicalName", "MaxLength")):
            if row.get("MaxLength") is not None:
                state.max_lengths[row["LogicalName"]] = int(row["MaxLength"])
    for row in dv.query(f"{base}/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
                        select=("LogicalName",), expand="OptionSet($select=Options)"):
        options = (row.get("OptionSet") or {}).get("Options") or []
        state.options[row["LogicalName"]] = {int(o["Value"]): _label_text(o.get("Label")) for o in options}
    for row in dv.query(f"{base}/Keys", select=("LogicalName", "KeyAttributes")):
        state.keys[tuple(sorted(row.get("KeyAttributes") or ()))] = row["LogicalName"]
    return state


def read(dv: Dataverse, solution: str) -> Inventory:
    inv = Inventory()
    found = dv.query("publishers", select=("publisherid", "uniquename", "customizationprefix"),
                     filter=f"uniquename eq {odata.literal(desired.PUBLISHER['uniquename'])}")
    inv.publisher = found[0] if found else None
    found = dv.query("solutions", select=("solutionid", "uniquename", "_publisherid_value", "ismanaged"),
                     filter=f"uniquename eq {odata.literal(solution)}")
    inv.solution = found[0] if found else None
    for table in desired.tables_with_columns():
        state = read_entity(dv, table.logical_name)
        if state is not None:
            inv.entities[table.logical_name] = state

    prefix = odata.literal(footprint.PREFIX)
    for row in dv.query("customapis", select=("customapiid", "uniquename", "bindingtype", "boundentitylogicalname",
                                              "allowedcustomprocessingsteptype", "executeprivilegename",
                                              "isfunction"),
                        filter=f"startswith(uniquename,{prefix})"):
        inv.custom_apis[row["uniquename"]] = row
    if inv.custom_apis:
        by_id = {row["customapiid"]: name for name, row in inv.custom_apis.items()}
        condition = " or ".join(f"_customapiid_value eq {i}" for i in by_id)
        for row in dv.query("customapirequestparameters",
                            select=("customapirequestparameterid", "uniquename", "type", "isoptional",
                                    "_customapiid_value"), filter=condition):
            api = by_id.get(row.get("_customapiid_value"))
            if api:
                inv.parameters.setdefault(api, {})[row["uniquename"]] = row

    found = dv.query("serviceendpoints", select=("serviceendpointid", "name", "url", "contract", "authtype",
                                                 "authvalue", "description"),
                     filter=f"name eq {odata.literal(desired.ENDPOINT_NAME)}")
    inv.endpoint = found[0] if found else None
    for row in dv.query("sdkmessageprocessingsteps",
                        select=("sdkmessageprocessingstepid", "name", "stage", "mode", "filteringattributes",
                                "_eventhandler_value", "_sdkmessageid_value", "_sdkmessagefilterid_value"),
                        filter=f"startswith(name,{odata.literal(desired.STEP_PREFIX)})"):
        inv.steps[row["name"]] = row
    if inv.steps:
        condition = " or ".join(f"_sdkmessageprocessingstepid_value eq {r['sdkmessageprocessingstepid']}"
                                for r in inv.steps.values())
        for row in dv.query("sdkmessageprocessingstepimages",
                            select=("sdkmessageprocessingstepimageid", "entityalias", "imagetype", "attributes",
                                    "_sdkmessageprocessingstepid_value"), filter=condition):
            inv.images.setdefault(row["_sdkmessageprocessingstepid_value"], []).append(row)
    for row in dv.query("webresourceset", select=("webresourceid", "name", "content", "webresourcetype",
                                                  "dependencyxml"),
                        filter=f"startswith(name,{odata.literal(footprint.PREFIX + '/')})"):
        inv.web_resources[row["name"]] = row
    for row in dv.query("environmentvariabledefinitions",
                        select=("environmentvariabledefinitionid", "schemaname", "displayname", "type", "defaultvalue"),
                        filter=f"startswith(schemaname,{prefix})",
                        expand=f"{desired.VARIABLE_VALUES}($select=environmentvariablevalueid,value)"):
        inv.variables[row["schemaname"]] = row
    if "w365_configuration" in inv.entities:
        config = footprint.table("w365_configuration")
        inv.configuration_rows = len(dv.query(config.entity_set, select=(config.primary_id,), top=1))
    read_product(dv, inv)
    if "w365_provider" in inv.entities:
        provider = footprint.table("w365_provider")
        inv.webhook_providers = dv.query(provider.entity_set, select=("w365_name", "w365_endpointurl"), filter=odata.eq(
            "w365_type", footprint.choice("w365_provider", "w365_type", "Webhook")))
    return inv


def _any_of(column: str, values: Any) -> str:
    return " or ".join(f"{column} eq {odata.literal(v)}" for v in values)


def read_product(dv: Dataverse, inv: Inventory) -> None:
    """Roles, field security, views, charts, dashboard, app, sitemap and commands of installer/product.py."""
    for row in dv.query("roles", select=("roleid", "name"), filter=_any_of("name", product.ROLES)):
        inv.roles[row["name"]] = row
        answer = dv.execute("RetrieveRolePrivilegesRole", {"RoleId": uuid.UUID(row["roleid"])}, is_function=True)
        inv.role_privileges[row["name"]] = {p["PrivilegeName"]: p["Depth"] for p in answer.get("RolePrivileges", [])}
    names = [p.name for p in product.FIELD_PROFILES]
    for row in dv.query("fieldsecurityprofiles", select=("fieldsecurityprofileid", "name", "description"),
                        filter=_any_of("name", names)):
        inv.field_profiles[row["name"]] = row
    if inv.field_profiles:
        by_id = {r["fieldsecurityprofileid"]: n for n, r in inv.field_profiles.items()}
        for row in dv.query("fieldpermissions", select=("fieldpermissionid", "entityname", "attributelogicalname",
                                                        "canread", "cancreate", "canupdate",
                                                        "_fieldsecurityprofileid_value"),
                            filter=" or ".join(f"_fieldsecurityprofileid_value eq {i}" for i in by_id)):
            profile = by_id.get(row.get("_fieldsecurityprofileid_value"))
            if profile:
                inv.field_permissions.setdefault(profile, {})[(row["entityname"], row["attributelogicalname"])] = row
    for row in dv.query("savedqueries", select=("savedqueryid", "name", "returnedtypecode", "description",
                                                "fetchxml", "layoutxml"),
                        filter=f"querytype eq 0 and ({_any_of('name', {v.name for v in product.VIEWS})})"):
        inv.views[(row["returnedtypecode"], row["name"])] = row
    for row in dv.query("savedqueryvisualizations",
                        select=("savedqueryvisualizationid", "name", "primaryentitytypecode", "description",
                                "datadescription", "presentationdescription"),
                        filter=_any_of("name", {c.name for c in product.CHARTS})):
        inv.charts[(row["primaryentitytypecode"], row["name"])] = row
    found = dv.query("systemforms", select=("formid", "name", "description", "formxml"),
                     filter=f"type eq 0 and name eq {odata.literal(product.DASHBOARD_NAME)}")
    inv.dashboard = found[0] if found else None
    found = dv.query("sitemaps", select=("sitemapid", "sitemapname", "sitemapnameunique", "sitemapxml"),
                     filter=f"sitemapnameunique eq {odata.literal(product.SITEMAP_UNIQUE_NAME)}")
    inv.sitemap = found[0] if found else None
    found = dv.query("appmodules", select=("appmoduleid", "uniquename", "name", "description"),
                     filter=f"uniquename eq {odata.literal(product.APP_UNIQUE_NAME)}")
    inv.app = found[0] if found else None
    if inv.app:
        for row in dv.query("appmodulecomponents", select=("objectid", "componenttype"),
                            filter=f"_appmoduleidunique_value eq {inv.app['appmoduleid']}"):
            inv.app_components.add((row["componenttype"], row["objectid"]))
    for row in dv.query("appactions", select=("appactionid", "uniquename", "buttonlabeltext", "buttontooltiptitle",
                                              "onclickeventjavascriptfunctionname", "contextvalue", "location",
                                              "_onclickeventjavascriptwebresourceid_value", "_appmoduleid_value"),
                        filter=f"startswith(uniquename,{odata.literal(footprint.PREFIX)})"):
        inv.commands[row["uniquename"]] = row
