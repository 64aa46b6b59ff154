"""What core/footprint.py asks of an environment, as Web API metadata and row bodies. Pure functions, no I/O.

Body shapes follow the Web API metadata docs (create-update-entity-definitions-using-web-api,
create-update-column-definitions-using-web-api, create-update-entity-relationships-using-web-api,
create-custom-api-with-code, register-web-hook, environmentvariables): labels are LocalizedLabels in 1033, our schema
names equal the logical names (CONTRACT §4), choice values are the footprint's (publisher option value prefix 10000 ->
100000000).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from pathlib import Path
from typing import Any, Mapping
from xml.sax.saxutils import escape

from core import footprint
from core.footprint import Column, CustomApi, Table, WebhookStep
from installer import labels, product

PUBLISHER = {"uniquename": "w365", "friendlyname": "W365", "customizationprefix": "w365",
             "customizationoptionvalueprefix": 10000, "description": "Publisher of the W365 Payments solution"}
ENDPOINT_NAME = "W365 Payments"
WEBHOOK_HEADER = "x-w365-webhook-key"
STEP_PREFIX = "W365: "
IMAGE_ALIAS = "PreImage"                 # the key handlers read (standins/payloads.py sends the same)
LANGUAGE = 1033
VARIABLE_VALUES = "environmentvariabledefinition_environmentvariablevalue"    # definition -> its value rows

CONTRACT_WEBHOOK, AUTH_HTTP_HEADER, CONNECTION_NORMAL, FORMAT_JSON = 8, 5, 1, 2
PARAMETER_TYPES = {"Boolean": 0, "DateTime": 1, "Decimal": 2, "Entity": 3, "EntityCollection": 4,
                   "EntityReference": 5, "Float": 6, "Integer": 7, "Money": 8, "Picklist": 9, "String": 10,
                   "StringArray": 11, "Guid": 12}
ATTRIBUTE_TYPES = {"string": "String", "memo": "Memo", "integer": "Integer", "decimal": "Decimal", "money": "Money",
                   "boolean": "Boolean", "datetime": "DateTime", "choice": "Picklist", "lookup": "Lookup"}
_METADATA_TYPES = {"string": "StringAttributeMetadata", "memo": "MemoAttributeMetadata",
                   "integer": "IntegerAttributeMetadata", "decimal": "DecimalAttributeMetadata",
                   "money": "MoneyAttributeMetadata", "boolean": "BooleanAttributeMetadata",
                   "datetime": "DateTimeAttributeMetadata", "choice": "PicklistAttributeMetadata"}
# Settings tables belong to the organization; the rest follow their owner's security role depth.
ORGANIZATION_OWNED = frozenset({"w365_configuration", "w365_provider"})
# Tables that hold customers' records: uninstall keeps them (and our columns on native tables) unless asked.
DATA_TABLES = ("w365_paymentprofile", "w365_paymenttransaction", "w365_securelink", "w365_subscription",
               "w365_billingcontract", "w365_operation")


def label(text: str) -> dict[str, Any]:
    return {"@odata.type": "Microsoft.Dynamics.CRM.Label",
            "LocalizedLabels": [{"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text,
                                 "LanguageCode": LANGUAGE}]}


# --- what is ours --------------------------------------------------------------------------------------------------

def tables_to_create() -> tuple[Table, ...]:
    return footprint.OUR_TABLES


def tables_with_columns() -> tuple[Table, ...]:
    """Every table the installer touches: ours, and natives that get `w365_` columns."""
    return tuple(t for t in footprint.TABLES if not t.native or t.custom_columns())


def columns(table: Table) -> tuple[Column, ...]:
    """Columns added one by one: the primary name comes with a new table, lookups come with their relationship."""
    return tuple(c for c in table.custom_columns() if c.name != table.primary_name or table.native)


def relationship_for(table: Table, column: Column) -> footprint.Relationship:
    return next(r for r in footprint.RELATIONSHIPS if r.referencing == table.logical_name and r.column == column.name)


def key_name(table: Table, key: tuple[str, ...]) -> str:
    return f"{table.logical_name}_{'_'.join(c.removeprefix(footprint.PREFIX) for c in key)}_key"


def _targets_of(table_name: str, column: str) -> frozenset[str]:
    return frozenset(footprint.table(table_name).column(column).targets)


def has_notes(table: Table) -> bool:
    return table.logical_name in _targets_of("annotation", "objectid")


def has_activities(table: Table) -> bool:
    return table.logical_name in _targets_of("email", "regardingobjectid")


# --- bodies ----------------------------------------------------------------------------------------------------------

def _required(column: Column) -> dict[str, Any]:
    return {"Value": "ApplicationRequired" if column.required else "None", "CanBeChanged": True,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"}


def attribute_body(table: Table, column: Column, *, primary_name: bool = False) -> dict[str, Any]:
    name, description = labels.column_label(table.logical_name, column.name)
    body: dict[str, Any] = {"@odata.type": f"Microsoft.Dynamics.CRM.{_METADATA_TYPES[column.type]}",
                            "SchemaName": column.name, "DisplayName": label(name),
                            "Description": label(description), "RequiredLevel": _required(column),
                            # Field security: only the profiles of installer/product.py may write (or read) it.
                            "IsSecured": product.is_secured(table.logical_name, column.name)}
    kind = column.type
    if kind == "string":
        body.update(MaxLength=column.max_length or 100, FormatName={"Value": "Text"})
        if primary_name:
            body["IsPrimaryName"] = True
    elif kind == "memo":
        body.update(MaxLength=column.max_length or 2000, Format="TextArea")
    elif kind == "integer":
        body.update(Format="None", MinValue=-2147483648, MaxValue=2147483647)
    elif kind == "decimal":
        body.update(Precision=column.precision or 2, MinValue=-100000000000, MaxValue=100000000000)
    elif kind == "money":
        body.update(Precision=column.precision or 2, PrecisionSource=2, MinValue=-922337203685477,
                    MaxValue=922337203685477)
    elif kind == "boolean":
        body.update(DefaultValue=False, OptionSet={
            "@odata.type": "Microsoft.Dynamics.CRM.BooleanOptionSetMetadata", "OptionSetType": "Boolean",
            "TrueOption": {"Value": 1, "Label": label("Yes")}, "FalseOption": {"Value": 0, "Label": label("No")}})
    elif kind == "datetime":
        body.update(Format="DateAndTime", DateTimeBehavior={"Value": "UserLocal"})
    elif kind == "choice":
        body["OptionSet"] = {"@odata.type": "Microsoft.Dynamics.CRM.OptionSetMetadata", "IsGlobal": False,
                             "OptionSetType": "Picklist",
                             "Options": [{"Value": value, "Label": label(text)} for value, text in column.choices]}
    else:
        raise ValueError(f"{column.name}: a {kind} column is not created as an attribute")
    return body


def entity_body(table: Table) -> dict[str, Any]:
    primary = table.column(table.primary_name)
    name, plural, description = labels.table_label(table.logical_name)
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata",
        "SchemaName": table.logical_name,
        "DisplayName": label(name),
        "DisplayCollectionName": label(plural),
        "Description": label(description),
        "IsAuditEnabled": audit_setting(table.logical_name),
        "OwnershipType": "OrganizationOwned" if table.logical_name in ORGANIZATION_OWNED else "UserOwned",
        "IsActivity": False,
        "HasNotes": has_notes(table),
        "HasActivities": has_activities(table),
        "PrimaryNameAttribute": table.primary_name,
        "IsOptimisticConcurrencyEnabled": True,     # the use cases PATCH with If-Match ETags
        "Attributes": [attribute_body(table, primary, primary_name=True)],
    }


def audit_setting(logical_name: str) -> dict[str, Any]:
    return {"Value": logical_name in product.AUDITED_TABLES, "CanBeChanged": True,
            "ManagedPropertyLogicalName": "canmodifyauditsettings"}


def relationship_body(table: Table, column: Column) -> dict[str, Any]:
    relation = relationship_for(table, column)
    target = footprint.table(relation.referenced)
    name, description = labels.column_label(table.logical_name, column.name)
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "SchemaName": relation.name,
        "ReferencedEntity": target.logical_name,
        "ReferencedAttribute": target.primary_id,
        "ReferencingEntity": table.logical_name,
        "ReferencedEntityNavigationPropertyName": relation.name,
        "ReferencingEntityNavigationPropertyName": relation.navigation,
        # Deleting a customer's account must not delete payment history: the link is cleared instead.
        "CascadeConfiguration": {"Assign": "NoCascade", "Delete": "RemoveLink", "Merge": "NoCascade",
                                 "Reparent": "NoCascade", "Share": "NoCascade", "Unshare": "NoCascade"},
        "Lookup": {"@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata", "SchemaName": column.name,
                   "DisplayName": label(name), "Description": label(description),
                   "RequiredLevel": _required(column),
                   "IsSecured": product.is_secured(table.logical_name, column.name)},
    }


def key_body(table: Table, key: tuple[str, ...]) -> dict[str, Any]:
    return {"SchemaName": key_name(table, key), "DisplayName": label(" + ".join(labels.column_label(table.logical_name, c)[0] for c in key)),
            "KeyAttributes": list(key)}


def parameter_body(api: CustomApi, parameter: footprint.Parameter) -> dict[str, Any]:
    return {"uniquename": parameter.name, "name": f"{api.unique_name}.{parameter.name}",
            "displayname": parameter.name, "description": f"{parameter.name} of {api.unique_name}",
            "type": PARAMETER_TYPES[parameter.type], "isoptional": parameter.optional}


def custom_api_body(api: CustomApi) -> dict[str, Any]:
    name, description = labels.api_label(api.unique_name)
    return {
        "uniquename": api.unique_name, "name": api.unique_name,
        "displayname": name, "description": description,
        "bindingtype": 1 if api.bound_to else 0,
        "boundentitylogicalname": api.bound_to,
        "allowedcustomprocessingsteptype": api.step_type,
        "executeprivilegename": api.privilege,
        "isfunction": api.is_function,
        "isprivate": False,
        "workflowsdkstepenabled": False,
        "CustomAPIRequestParameters": [parameter_body(api, p) for p in api.parameters],
    }


def auth_value(webhook_key: str) -> str:
    value = escape(webhook_key, {'"': "&quot;"})
    return f'<settings><setting name="{WEBHOOK_HEADER}" value="{value}" /></settings>'


_KEY_CHECK = re.compile(r"key check ([0-9a-f]{16}):([0-9a-f]{16})")


def key_check(webhook_key: str, salt: str | None = None) -> str:
    """Dataverse never returns serviceendpoint.authvalue (IsValidForRead False), so the endpoint's description
    carries a salted, slow hash of the key: a re-run tells a rotated key without the key being readable anywhere."""
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", webhook_key.encode(), bytes.fromhex(salt), 100_000)[:8].hex()
    return f"key check {salt}:{digest}"


def key_matches(description: str | None, webhook_key: str) -> bool:
    found = _KEY_CHECK.search(description or "")
    return found is not None and hmac.compare_digest(key_check(webhook_key, found.group(1)), found.group(0))


def endpoint_body(url: str, webhook_key: str) -> dict[str, Any]:
    return {"name": ENDPOINT_NAME,
            "description": f"W365 Payments function app (POST /api/dataverse); {key_check(webhook_key)}",
            "contract": CONTRACT_WEBHOOK, "connectionmode": CONNECTION_NORMAL, "authtype": AUTH_HTTP_HEADER,
            "messageformat": FORMAT_JSON, "url": url, "authvalue": auth_value(webhook_key)}


def step_name(step: WebhookStep) -> str:
    return f"{STEP_PREFIX}{step.message} of {step.table}"


def step_body(step: WebhookStep) -> dict[str, Any]:
    """Without the message, filter and endpoint binds, which are looked up when the step is created."""
    body: dict[str, Any] = {"name": step_name(step), "description": step_name(step), "stage": step.stage,
                            "mode": step.mode, "rank": 1, "supporteddeployment": 0,
                            # Succeeded system jobs are deleted at once (they pile up otherwise, one per button
                            # press); failed ones stay, the trace of a webhook that did not get through.
                            "asyncautodelete": True}
    body["filteringattributes"] = ",".join(step.filtering_attributes) or None
    return body


def image_body(step: WebhookStep) -> dict[str, Any]:
    return {"name": IMAGE_ALIAS, "entityalias": IMAGE_ALIAS, "imagetype": 0, "messagepropertyname": "Target",
            "attributes": ",".join(step.pre_image)}


def web_resource_content(root: Path, resource: footprint.WebResource) -> str | None:
    """Base64 of the file, or None when it is not in the tree."""
    path = root / resource.path
    return base64.b64encode(path.read_bytes()).decode("ascii") if path.is_file() else None


def web_resource_body(resource: footprint.WebResource, content: str) -> dict[str, Any]:
    return {"name": resource.name, "displayname": resource.name, "webresourcetype": resource.type,
            "content": content, "description": "W365 Payments ribbon script",
            "dependencyxml": product.dependency_xml(resource.name)}


def variable_body(variable: footprint.EnvironmentVariable) -> dict[str, Any]:
    return {"schemaname": variable.schema_name, "displayname": variable.display_name,
            "description": f"W365 Payments: from the app setting {variable.setting}",
            "type": footprint.choice("environmentvariabledefinition", "type", variable.type),
            "defaultvalue": variable.default_value}


def variable_value(variable: footprint.EnvironmentVariable, settings: Mapping[str, str]) -> str | None:
    """The current value the settings give, or None when the setting is absent (an existing value is then kept)."""
    return (settings.get(variable.setting) or "").strip() or None


def publish_xml(entities: list[str], web_resource_ids: list[str], app_ids: list[str] = ()) -> str:
    parts = ["<importexportxml>"]
    if app_ids:                          # the app with its sitemap and commands
        parts.append("<appmodules>" + "".join(f"<appmodule>{{{i}}}</appmodule>" for i in app_ids) + "</appmodules>")
    if entities:
        parts.append("<entities>" + "".join(f"<entity>{e}</entity>" for e in entities) + "</entities>")
    if web_resource_ids:
        parts.append("<webresources>" + "".join(f"<webresource>{{{i}}}</webresource>" for i in web_resource_ids)
                     + "</webresources>")
    parts.append("</importexportxml>")
    return "".join(parts)
