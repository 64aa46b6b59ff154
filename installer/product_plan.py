"""Plan the product around the footprint (installer/product.py): auditing and field security on the tables, roles,
field security profiles, script dependencies, views, charts, the dashboard, the sitemap, the app and its commands.

Same rules as installer/plan.py: read first (installer.inventory.read_product), create what is missing, update what
differs, leave the rest; every create goes through the solution header. Bodies follow the Web API docs of each table
(role, fieldsecurityprofile/fieldpermission, savedquery, savedqueryvisualization, systemform, sitemap, appmodule,
appaction) and the messages AddPrivilegesRole and AddAppComponents.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from core import footprint, odata
from core.permissions import BILLING_MANAGER_ROLE_ID
from installer import desired, product
from installer.inventory import Inventory, entity_path
from installer.plan import CREATE, DRIFT, UPDATE, Action, Plan, Target

Add = Callable[[Action], None]
MERGE_LABELS = {"MSCRM.MergeLabels": "true"}        # a PUT of metadata keeps the labels of other languages
VIEW, CHART, DASHBOARD, SITEMAP, ENTITY = 26, 59, 60, 62, 1


# --- auditing, field security, script dependencies ------------------------------------------------------------------

def plan_table_settings(inv: Inventory, add: Add) -> None:
    """Tables and columns that exist already but predate auditing or field security: updated in place (PUT)."""
    for table in desired.tables_with_columns():
        state = inv.entities.get(table.logical_name)
        if state is None:
            continue
        wanted = table.logical_name in product.AUDITED_TABLES
        if not table.native and state.audited is not None and state.audited != wanted:
            add(Action("table auditing", table.logical_name, UPDATE, f"IsAuditEnabled -> {wanted}",
                       _put_entity(table.logical_name, wanted)))
        for column in desired.columns(table):
            secured = product.is_secured(table.logical_name, column.name)
            if column.name in state.attributes and (column.name in state.secured) != secured:
                add(Action("column security", f"{table.logical_name}.{column.name}", UPDATE,
                           f"IsSecured -> {secured}", _put_attribute(table.logical_name, column.name, secured)))


def _put_entity(logical_name: str, audited: bool) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        body = t.dv.retrieve("EntityDefinitions", f"LogicalName={odata.literal(logical_name)}")
        body = {k: v for k, v in body.items() if not k.startswith("@odata.") or k == "@odata.type"}
        body.setdefault("@odata.type", "Microsoft.Dynamics.CRM.EntityMetadata")
        body["IsAuditEnabled"] = desired.audit_setting(logical_name) | {"Value": audited}
        t.dv.put(entity_path(logical_name), body, headers=MERGE_LABELS)
    return run


def _put_attribute(table: str, column: str, secured: bool) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        key = f"LogicalName={odata.literal(column)}"
        path = f"{entity_path(table)}/Attributes({key})"
        body = t.dv.retrieve(f"{entity_path(table)}/Attributes", key)
        body = {k: v for k, v in body.items() if k != "@odata.context"}
        body["@odata.type"] = str(body.get("@odata.type", "")).removeprefix("#")
        body["IsSecured"] = secured
        t.dv.put(path, body, headers=MERGE_LABELS)
    return run


def plan_dependencies(inv: Inventory, add: Add) -> None:
    for resource in footprint.WEB_RESOURCES:
        row = inv.web_resources.get(resource.name)
        wanted = product.dependency_xml(resource.name)
        if row is not None and (row.get("dependencyxml") or None) != wanted:
            add(Action("web resource", resource.name, UPDATE, "dependencies: " + ", ".join(
                product.WEB_RESOURCE_DEPENDENCIES.get(resource.name, ())),
                _update("webresourceset", row["webresourceid"], {"dependencyxml": wanted})))


# --- roles and field security ----------------------------------------------------------------------------------------

# The service recognises W365 Billing Manager by its root role's id (CONTRACT §4: never by a name), so the product
# creates it with that id; a solution import keeps it in every environment.
FIXED_ROLE_IDS = {product.MANAGER: BILLING_MANAGER_ROLE_ID}


def plan_roles(inv: Inventory, plan: Plan) -> None:
    for role, description in product.ROLES.items():
        wanted = product.role_privileges(role)
        row = inv.roles.get(role)
        if row is None:
            plan.actions.append(Action("security role", role, CREATE, f"{len(wanted)} privileges",
                                       _create_role(role, description)))
            missing = wanted
        else:
            if role in FIXED_ROLE_IDS and str(row["roleid"]).lower() != FIXED_ROLE_IDS[role]:
                plan.actions.append(Action("security role", role, DRIFT,
                                           f"has id {row['roleid']}, not {FIXED_ROLE_IDS[role]}: the service "
                                           f"recognises administrators by that id, so people given this role are "
                                           f"not administrators; delete this role and install again"))
            have = inv.role_privileges.get(role, {})
            missing = {name: depth for name, depth in wanted.items() if have.get(name) != depth}
            extra = sorted(set(have) - set(wanted))
            if extra:
                plan.actions.append(Action("security role", role, DRIFT,
                                           f"holds {len(extra)} privileges the product does not give ("
                                           f"{', '.join(extra[:3])}{'...' if len(extra) > 3 else ''}): remove them "
                                           f"by hand if they were not meant"))
        if missing:
            plan.actions.append(Action("role privileges", role, CREATE if row is None else UPDATE,
                                       f"{len(missing)} privileges", _add_privileges(role, missing,
                                                                                     row and row["roleid"])))


def _create_role(role: str, description: str) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        unit = t.dv.execute("WhoAmI", {}, is_function=True)["BusinessUnitId"]
        body = {"name": role, "description": description, "businessunitid@odata.bind": f"/businessunits({unit})"}
        if role in FIXED_ROLE_IDS:
            body["roleid"] = FIXED_ROLE_IDS[role]
        t.ids[f"role:{role}"] = t.in_solution.create("roles", body)
    return run


def _privilege_ids(t: Target, names: list[str]) -> dict[str, str]:
    missing = [n for n in names if f"privilege:{n}" not in t.ids]
    for start in range(0, len(missing), 25):          # keeps each URL short
        chunk = missing[start:start + 25]
        for row in t.dv.query("privileges", select=("privilegeid", "name"),
                              filter=" or ".join(odata.eq("name", n) for n in chunk)):
            t.ids[f"privilege:{row['name']}"] = row["privilegeid"]
    unknown = [n for n in names if f"privilege:{n}" not in t.ids]
    if unknown:
        raise LookupError(f"Dataverse has no privilege named {', '.join(unknown)}")
    return {n: t.ids[f"privilege:{n}"] for n in names}


def _add_privileges(role: str, privileges: Mapping[str, str], role_id: str | None) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        ids = _privilege_ids(t, sorted(privileges))
        unit = t.dv.execute("WhoAmI", {}, is_function=True)["BusinessUnitId"]
        t.dv.execute("AddPrivilegesRole", {"Privileges": [
            {"Depth": depth, "PrivilegeId": ids[name], "BusinessUnitId": unit} for name, depth in
            sorted(privileges.items())]}, bound_to=("roles", role_id or t.ids[f"role:{role}"]))
    return run


def _permission_body(profile: product.FieldProfile, table: str, column: str) -> dict[str, Any]:
    allowed = lambda yes: product.ALLOWED if yes else product.NOT_ALLOWED       # noqa: E731
    return {"entityname": table, "attributelogicalname": column, "canread": allowed(profile.can_read),
            "cancreate": allowed(profile.can_write), "canupdate": allowed(profile.can_write)}


def plan_field_security(inv: Inventory, add: Add) -> None:
    for profile in product.FIELD_PROFILES:
        row = inv.field_profiles.get(profile.name)
        if row is None:
            add(Action("field security profile", profile.name, CREATE,
                       "read and write" if profile.can_write else "read only", _create_profile(profile)))
        elif row.get("description") != profile.description:
            add(Action("field security profile", profile.name, UPDATE, "description",
                       _update("fieldsecurityprofiles", row["fieldsecurityprofileid"],
                               {"description": profile.description})))
        have = inv.field_permissions.get(profile.name, {})
        for table, column in product.SECURED_COLUMNS:
            wanted = _permission_body(profile, table, column)
            existing = have.get((table, column))
            name = f"{profile.name}: {table}.{column}"
            if existing is None:
                add(Action("field permission", name, CREATE, _rights(wanted),
                           _create_permission(profile, wanted, row and row["fieldsecurityprofileid"])))
            else:
                changed = {k: v for k, v in wanted.items() if existing.get(k) != v}
                if changed:
                    add(Action("field permission", name, UPDATE, _rights(wanted),
                               _update("fieldpermissions", existing["fieldpermissionid"], changed)))


def _rights(body: Mapping[str, Any]) -> str:
    return ", ".join(k.removeprefix("can") for k in ("canread", "cancreate", "canupdate")
                     if body[k] == product.ALLOWED) or "none"


def _create_profile(profile: product.FieldProfile) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.ids[f"profile:{profile.name}"] = t.in_solution.create("fieldsecurityprofiles", {
            "name": profile.name, "description": profile.description})
    return run


def _create_permission(profile: product.FieldProfile, body: dict[str, Any],
                       profile_id: str | None) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        owner = profile_id or t.ids[f"profile:{profile.name}"]
        t.in_solution.create("fieldpermissions", {
            **body, "fieldsecurityprofileid@odata.bind": f"/fieldsecurityprofiles({owner})"})
    return run


# --- views, charts, dashboard, sitemap, app, commands ---------------------------------------------------------------

def view_body(view: product.View) -> dict[str, Any]:
    return {"name": view.name, "description": view.description, "returnedtypecode": view.table, "querytype": 0,
            "fetchxml": view.fetch_xml, "layoutxml": view.layout_xml, "isdefault": False}


def chart_body(chart: product.Chart) -> dict[str, Any]:
    return {"name": chart.name, "description": chart.description, "primaryentitytypecode": chart.table,
            "datadescription": product.data_description(chart),
            "presentationdescription": product.presentation_description(chart), "isdefault": False}


def _differs(row: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k in row and row.get(k) != v}


def plan_views_and_charts(inv: Inventory, add: Add) -> None:
    for view in product.VIEWS:
        _plan_row(add, "view", view.name, inv.views.get((view.table, view.name)), "savedqueries", "savedqueryid",
                  view_body(view), f"view:{view.name}", view.table)
    for chart in product.CHARTS:
        _plan_row(add, "chart", chart.name, inv.charts.get((chart.table, chart.name)), "savedqueryvisualizations",
                  "savedqueryvisualizationid", chart_body(chart), f"chart:{chart.name}", chart.table)


def _plan_row(add: Add, component: str, name: str, row: Mapping[str, Any] | None, entity_set: str, id_column: str,
              body: dict[str, Any], key: str, detail: str) -> None:
    if row is None:
        add(Action(component, name, CREATE, detail, _create(entity_set, body, key)))
        return
    changed = _differs(row, body)
    if changed:
        add(Action(component, name, UPDATE, ", ".join(changed), _update(entity_set, row[id_column], changed)))


def _ids(inv: Inventory) -> tuple[dict[str, str], dict[str, str]]:
    """Chart and view ids by name, of those that exist already."""
    charts = {name: row["savedqueryvisualizationid"] for (_, name), row in inv.charts.items()}
    views = {name: row["savedqueryid"] for (_, name), row in inv.views.items()}
    return charts, views


def plan_app(inv: Inventory, plan: Plan) -> None:
    """Dashboard, sitemap, app (with its components) and the commands, in that order: each names the one before."""
    add = plan.actions.append
    charts, views = _ids(inv)
    complete = len(charts) == len(product.CHARTS) and len(views) == len(product.VIEWS)
    if inv.dashboard is None:
        add(Action("dashboard", product.DASHBOARD_NAME, CREATE, f"{len(product.CHARTS)} charts, "
                   f"{len(product.DASHBOARD_VIEWS)} views", _save_dashboard(None)))
    elif not complete or inv.dashboard.get("formxml") != product.dashboard_xml(charts, views) \
            or inv.dashboard.get("description") != product.DASHBOARD_DESCRIPTION:
        add(Action("dashboard", product.DASHBOARD_NAME, UPDATE, "charts and views",
                   _save_dashboard(inv.dashboard["formid"])))
    dashboard_id = inv.dashboard["formid"] if inv.dashboard else None
    if inv.sitemap is None:
        add(Action("sitemap", product.SITEMAP_UNIQUE_NAME, CREATE, ", ".join(t for t, _ in product.SITEMAP),
                   _save_sitemap(None)))
    elif dashboard_id is None or inv.sitemap.get("sitemapxml") != product.sitemap_xml(dashboard_id):
        add(Action("sitemap", product.SITEMAP_UNIQUE_NAME, UPDATE, "areas", _save_sitemap(inv.sitemap["sitemapid"])))
    app_body = {"name": product.APP_NAME, "description": product.APP_DESCRIPTION}
    if inv.app is None:
        add(Action("app", product.APP_NAME, CREATE, product.APP_UNIQUE_NAME, _create_app))
    elif _differs(inv.app, app_body):
        add(Action("app", product.APP_NAME, UPDATE, "name, description",
                   _update("appmodules", inv.app["appmoduleid"], _differs(inv.app, app_body))))
    wanted = _app_components(inv)
    if inv.app is None or wanted is None or not wanted <= inv.app_components:
        missing = "all" if wanted is None or inv.app is None else str(len(wanted - inv.app_components))
        add(Action("app components", product.APP_NAME, CREATE if inv.app is None else UPDATE,
                   f"{missing}: tables, views, charts, dashboard, sitemap", _add_app_components))
    for sequence, command in enumerate(product.COMMANDS, 1):
        row = inv.commands.get(command.unique_name)
        resource = inv.web_resources.get(command.library)
        if row is None:
            add(Action("command", command.unique_name, CREATE, f"{command.table} form: {command.label}",
                       _save_command(command, sequence, None)))
        elif (row.get("buttonlabeltext"), row.get("onclickeventjavascriptfunctionname"), row.get("contextvalue"),
              row.get("location")) != (command.label, command.function, command.table, product.FORM) \
                or resource is None or row.get("_onclickeventjavascriptwebresourceid_value") != resource["webresourceid"] \
                or inv.app is None or row.get("_appmoduleid_value") != inv.app["appmoduleid"]:
            add(Action("command", command.unique_name, UPDATE, f"{command.table} form: {command.label}",
                       _save_command(command, sequence, row["appactionid"])))


def _app_components(inv: Inventory) -> set[tuple[int, str]] | None:
    """What the app should contain, or None while part of it does not exist yet."""
    charts, views = _ids(inv)
    tables = [inv.entities.get(t) for t in product.APP_TABLES]
    if None in tables or inv.dashboard is None or inv.sitemap is None or len(charts) < len(product.CHARTS) \
            or len(views) < len(product.VIEWS):
        return None
    return ({(ENTITY, s.metadata_id) for s in tables} | {(VIEW, i) for i in views.values()}
            | {(CHART, i) for i in charts.values()} | {(DASHBOARD, inv.dashboard["formid"]),
                                                       (SITEMAP, inv.sitemap["sitemapid"])})


def command_body(command: product.Command, sequence: int, resource_id: str, app_id: str) -> dict[str, Any]:
    return {"uniquename": command.unique_name, "name": command.label, "buttonlabeltext": command.label,
            "buttontooltiptitle": command.label, "buttontooltipdescription": command.tooltip,
            "context": 1, "contextvalue": command.table, "location": product.FORM, "type": 0,
            "onclickeventtype": product.JAVASCRIPT, "onclickeventjavascriptfunctionname": command.function,
            "onclickeventjavascriptparameters": product.PRIMARY_CONTROL, "visibilitytype": product.SHOW,
            "fonticon": command.icon, "sequence": sequence * 10, "hidden": False,
            "OnClickEventJavaScriptWebResourceId@odata.bind": f"/webresourceset({resource_id})",
            "AppModuleId@odata.bind": f"/appmodules({app_id})"}


# --- the actions' work (ids are read at run time: what this run created is in t.ids) ---------------------------------

def _create(entity_set: str, body: dict[str, Any], key: str) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.ids[key] = t.in_solution.create(entity_set, body)
    return run


def _update(entity_set: str, record_id: str, body: dict[str, Any]) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.dv.update(entity_set, record_id, body)
    return run


def _lookup_ids(t: Target, kind: str, entity_set: str, id_column: str, names: list[str]) -> dict[str, str]:
    for name in names:
        if f"{kind}:{name}" not in t.ids:
            found = t.dv.query(entity_set, select=(id_column,), filter=odata.eq("name", name))
            if not found:
                raise LookupError(f"Dataverse has no {kind} named {name}")
            t.ids[f"{kind}:{name}"] = found[0][id_column]
    return {name: t.ids[f"{kind}:{name}"] for name in names}


def _chart_and_view_ids(t: Target) -> tuple[dict[str, str], dict[str, str]]:
    return (_lookup_ids(t, "chart", "savedqueryvisualizations", "savedqueryvisualizationid",
                        [c.name for c in product.CHARTS]),
            _lookup_ids(t, "view", "savedqueries", "savedqueryid", [v.name for v in product.VIEWS]))


def _save(t: Target, key: str, entity_set: str, record_id: str | None, body: dict[str, Any]) -> None:
    """Create (in the solution) or update one row, remembering its id for the actions after it."""
    if record_id is None:
        t.ids[key] = t.in_solution.create(entity_set, body)
    else:
        t.dv.update(entity_set, record_id, body)
        t.ids[key] = record_id


def _save_dashboard(form_id: str | None) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        _save(t, "dashboard", "systemforms", form_id, {
            "name": product.DASHBOARD_NAME, "description": product.DASHBOARD_DESCRIPTION, "type": 0,
            "objecttypecode": "none", "formxml": product.dashboard_xml(*_chart_and_view_ids(t))})
    return run


def _dashboard_id(t: Target) -> str:
    return _single(t, "dashboard", "systemforms", "formid",
                   f"type eq 0 and {odata.eq('name', product.DASHBOARD_NAME)}")


def _save_sitemap(sitemap_id: str | None) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        _save(t, "sitemap", "sitemaps", sitemap_id, {
            "sitemapname": product.APP_NAME, "sitemapnameunique": product.SITEMAP_UNIQUE_NAME,
            "sitemapxml": product.sitemap_xml(_dashboard_id(t)), "isappaware": True})
    return run


def _create_app(t: Target) -> None:
    t.ids["app"] = t.in_solution.create("appmodules", {
        "uniquename": product.APP_UNIQUE_NAME, "name": product.APP_NAME, "description": product.APP_DESCRIPTION,
        "clienttype": 4, "formfactor": 1, "webresourceid": product.DEFAULT_APP_ICON})   # 4: Unified Interface


def _single(t: Target, key: str, entity_set: str, id_column: str, filter_: str) -> str:
    if key not in t.ids:
        found = t.dv.query(entity_set, select=(id_column,), filter=filter_)
        if not found:
            raise LookupError(f"Dataverse has no {entity_set} row matching {filter_}")
        t.ids[key] = found[0][id_column]
    return t.ids[key]


def _app_id(t: Target) -> str:
    return _single(t, "app", "appmodules", "appmoduleid", odata.eq("uniquename", product.APP_UNIQUE_NAME))


def _add_app_components(t: Target) -> None:
    charts, views = _chart_and_view_ids(t)
    sitemap = _single(t, "sitemap", "sitemaps", "sitemapid", odata.eq("sitemapnameunique", product.SITEMAP_UNIQUE_NAME))
    components: list[dict[str, Any]] = []
    for table in product.APP_TABLES:
        entity = t.dv.retrieve("EntityDefinitions", f"LogicalName={odata.literal(table)}", select=("MetadataId",))
        components.append({"@odata.type": "Microsoft.Dynamics.CRM.entity", "entityid": entity["MetadataId"]})
    components += [{"@odata.type": "Microsoft.Dynamics.CRM.savedquery", "savedqueryid": i} for i in views.values()]
    components += [{"@odata.type": "Microsoft.Dynamics.CRM.savedqueryvisualization", "savedqueryvisualizationid": i}
                   for i in charts.values()]
    components.append({"@odata.type": "Microsoft.Dynamics.CRM.systemform", "formid": _dashboard_id(t)})
    components.append({"@odata.type": "Microsoft.Dynamics.CRM.sitemap", "sitemapid": sitemap})
    t.dv.execute("AddAppComponents", {"AppId": _app_id(t), "Components": components})


def _save_command(command: product.Command, sequence: int, action_id: str | None) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        resource = _single(t, f"webresource:{command.library}", "webresourceset", "webresourceid",
                           odata.eq("name", command.library))
        body = command_body(command, sequence, resource, _app_id(t))
        if action_id is None:
            t.in_solution.create("appactions", body)
        else:
            t.dv.update("appactions", action_id, {k: v for k, v in body.items() if k != "uniquename"})
    return run
