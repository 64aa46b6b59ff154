"""The deletions that undo an install, in an order Dataverse accepts (dependents before what they depend on).

Customer-data tables (desired.DATA_TABLES) and our columns on native tables stay unless `include_data`; a table of
ours that a kept table still points at stays too, since Dataverse refuses to delete a table a lookup refers to.
"""
from __future__ import annotations

from typing import Callable

from core import footprint
from installer import desired
from installer.inventory import Inventory, entity_path
from installer.plan import DELETE, Action, Plan, Target


def plan_uninstall(inv: Inventory, *, include_data: bool = False) -> Plan:
    plan = Plan([])
    add = plan.actions.append
    for name, row in inv.steps.items():
        add(Action("step", name, DELETE, "with its images",
                   _delete("sdkmessageprocessingsteps", row["sdkmessageprocessingstepid"])))
    if inv.endpoint is not None:
        add(Action("webhook endpoint", desired.ENDPOINT_NAME, DELETE, "",
                   _delete("serviceendpoints", inv.endpoint["serviceendpointid"])))
    for name, row in inv.custom_apis.items():
        add(Action("custom api", name, DELETE, "with its parameters", _delete("customapis", row["customapiid"])))
    # The product around the tables goes first: commands name web resources, the app names views and charts.
    for name, row in inv.commands.items():
        add(Action("command", name, DELETE, "", _delete("appactions", row["appactionid"])))
    if inv.app is not None:
        add(Action("app", inv.app["name"], DELETE, "with its components", _delete("appmodules",
                                                                                  inv.app["appmoduleid"])))
    if inv.sitemap is not None:
        add(Action("sitemap", inv.sitemap["sitemapnameunique"], DELETE, "", _delete("sitemaps", inv.sitemap["sitemapid"])))
    if inv.dashboard is not None:
        add(Action("dashboard", inv.dashboard["name"], DELETE, "", _delete("systemforms", inv.dashboard["formid"])))
    for (_, name), row in inv.charts.items():
        add(Action("chart", name, DELETE, "", _delete("savedqueryvisualizations", row["savedqueryvisualizationid"])))
    for (_, name), row in inv.views.items():
        add(Action("view", name, DELETE, "", _delete("savedqueries", row["savedqueryid"])))
    for name, row in inv.field_profiles.items():
        for permission in inv.field_permissions.get(name, {}).values():
            add(Action("field permission", f"{name}: {permission['entityname']}.{permission['attributelogicalname']}",
                       DELETE, "", _delete("fieldpermissions", permission["fieldpermissionid"])))
        add(Action("field security profile", name, DELETE, "", _delete("fieldsecurityprofiles",
                                                                        row["fieldsecurityprofileid"])))
    for name, row in inv.roles.items():
        add(Action("security role", name, DELETE, "people keep their other roles", _delete("roles", row["roleid"])))
    for name, row in inv.web_resources.items():
        add(Action("web resource", name, DELETE, "", _delete("webresourceset", row["webresourceid"])))
    for name, row in inv.variables.items():          # configuration, not customer data: always removed
        add(Action("environment variable", name, DELETE, "with its value",
                   _delete("environmentvariabledefinitions", row["environmentvariabledefinitionid"])))

    ours = [t for t in footprint.OUR_TABLES if t.logical_name in inv.entities]
    if include_data:
        for table in desired.tables_with_columns():
            state = inv.entities.get(table.logical_name)
            if not table.native or state is None:
                continue
            for column in desired.columns(table):
                if column.name not in state.attributes:
                    continue
                if column.type == "lookup":
                    relation = desired.relationship_for(table, column)
                    add(Action("lookup", f"{table.logical_name}.{column.name}", DELETE, relation.name,
                               _delete("RelationshipDefinitions", f"SchemaName='{relation.name}'")))
                else:
                    add(Action("column", f"{table.logical_name}.{column.name}", DELETE, "",
                               _delete(f"{entity_path(table.logical_name)}/Attributes",
                                       f"LogicalName='{column.name}'")))
        doomed = [t.logical_name for t in ours]
    else:
        doomed = [t.logical_name for t in ours if t.logical_name not in desired.DATA_TABLES]
        kept = {t.logical_name for t in ours} - set(doomed)
        changed = True
        while changed:                      # keep whatever a kept table still refers to
            changed = False
            for name in list(doomed):
                users = [r for r in footprint.RELATIONSHIPS if r.referenced == name and r.referencing in kept]
                if users:
                    doomed.remove(name)
                    kept.add(name)
                    changed = True
                    plan.warnings.append(f"{name} is kept: {users[0].referencing}.{users[0].column} refers to it "
                                         f"(use --include-data to remove the data tables too)")
        plan.warnings.append("kept with their rows: " + ", ".join(sorted(kept & set(desired.DATA_TABLES)))
                             + "; and the w365_ columns of account, invoice and salesorder")
    for name in _referencing_first(doomed):
        add(Action("table", name, DELETE, "with its rows, columns and keys",
                   _delete("EntityDefinitions", f"LogicalName='{name}'")))
    if include_data and inv.solution is not None:
        add(Action("solution", inv.solution["uniquename"], DELETE, "now empty",
                   _delete("solutions", inv.solution["solutionid"])))
    return plan


def _referencing_first(names: list[str]) -> list[str]:
    """Tables in an order where no table is deleted while another still to be deleted refers to it."""
    left, ordered = list(names), []
    while left:
        for name in left:
            if not any(r.referenced == name and r.referencing in left and r.referencing != name
                       for r in footprint.RELATIONSHIPS):
                ordered.append(name)
                left.remove(name)
                break
        else:
            raise ValueError(f"the tables {left} refer to each other in a cycle")
    return ordered


def _delete(entity_set: str, record_id: str) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.dv.delete(entity_set, record_id)
    return run
