"""Compare the footprint with an Inventory and list the actions that would make them agree, in a safe order.

Each Action carries the function that carries it out; the functions get a `Target` (the client with the solution
header, and the ids learnt along the way: the solution's publisher, the endpoint, new Custom APIs and steps).
Only what is missing or different is planned; a difference the Web API cannot change in place (a column's type, a
Custom API's binding) is a `drift` line: reported, never acted on.

What belongs to one environment (marked CONFIGURATION below: the webhook endpoint with its URL and key, its steps and
images, the environment variables' current values, the configuration row) is created outside the product's
solution, so an exported solution never carries them; `scope="configuration"` plans only those (what
`python -m installer configure` does after a managed import), `scope="product"` everything else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from core import footprint, odata
from core.footprint import Column, CustomApi, Table, WebhookStep
from core.ports import Dataverse
from installer import desired
from installer.inventory import Inventory, entity_path

CREATE, UPDATE, DELETE, DRIFT = "create", "update", "delete", "drift"
SOLUTION_HEADER = "MSCRM.SolutionUniqueName"


@dataclass
class Target:
    """Where the actions write. `dv` is the plain client; `in_solution` the same client sending the solution header
    (every component create goes through it so that the component lands in the solution)."""
    dv: Dataverse
    in_solution: Dataverse
    solution: str
    ids: dict[str, str] = field(default_factory=dict)
    published_web_resources: list[str] = field(default_factory=list)


@dataclass
class Action:
    component: str
    name: str
    change: str
    detail: str = ""
    run: Callable[[Target], None] | None = field(default=None, repr=False, compare=False)


@dataclass
class Plan:
    actions: list[Action]
    warnings: list[str] = field(default_factory=list)     # e.g. a web resource file missing from the tree

    @property
    def changes(self) -> list[Action]:
        return [a for a in self.actions if a.change != DRIFT]

    @property
    def drift(self) -> list[Action]:
        return [a for a in self.actions if a.change == DRIFT]

    def table(self) -> str:
        """The plan as a fixed-width text table (what --dry-run prints)."""
        if not self.actions:
            return "Nothing to change: the environment already matches the footprint."
        rows = [("#", "change", "component", "name", "detail")]
        rows += [(str(i), a.change, a.component, a.name, a.detail) for i, a in enumerate(self.actions, 1)]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths)) + ("  " + r[4] if r[4] else "")
                 for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths) + "  ------")
        counts = {}
        for a in self.actions:
            counts[a.change] = counts.get(a.change, 0) + 1
        lines.append(", ".join(f"{n} to {c}" if c != DRIFT else f"{n} drift (not changed)"
                               for c, n in counts.items()))
        return "\n".join(lines)


# --- install -----------------------------------------------------------------------------------------------------

SCOPES = ("all", "product", "configuration")


def plan_install(inv: Inventory, *, solution: str, webhook_url: str | None, webhook_key: str | None,
                 root: Path, settings: Mapping[str, str] | None = None, scope: str = "all") -> Plan:
    """`settings`: app settings by name; only those of footprint.ENVIRONMENT_VARIABLES are read."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}")
    from installer import product_plan            # imports this module's Action, Plan, Target

    plan = Plan([])
    if scope != "product":
        _plan_configuration(inv, plan, webhook_url, webhook_key, settings, product_missing=scope == "configuration")
    if scope == "configuration":
        return plan
    configuration, plan.actions = plan.actions, []
    add = plan.actions.append
    _plan_solution(inv, solution, add)
    for table in desired.tables_to_create():
        if table.logical_name not in inv.entities:
            add(Action("table", table.logical_name, CREATE, f"primary name {table.primary_name}",
                       _create_table(table)))
    for table in desired.tables_with_columns():
        _plan_columns(inv, table, add)
    for table in desired.tables_with_columns():
        for key in table.alternate_keys:
            state = inv.entities.get(table.logical_name)
            if state is None or tuple(sorted(key)) not in state.keys:
                add(Action("key", f"{table.logical_name}.{desired.key_name(table, key)}", CREATE,
                           ", ".join(key), _create_key(table, key)))
    product_plan.plan_table_settings(inv, add)
    for api in footprint.CUSTOM_APIS:
        _plan_custom_api(inv, api, add)
    _plan_web_resources(inv, root, plan)
    product_plan.plan_dependencies(inv, add)
    for variable in footprint.ENVIRONMENT_VARIABLES:
        _plan_variable(inv, variable, add)
    product_plan.plan_roles(inv, plan)
    product_plan.plan_field_security(inv, add)
    product_plan.plan_views_and_charts(inv, add)
    product_plan.plan_app(inv, plan)
    plan.actions += configuration                         # steps need the Custom APIs' messages: after them
    if plan.changes:
        # Everything of ours, not only this run's changes: a run cut short before publishing is published by the next.
        add(Action("publish", "PublishXml", CREATE, "our tables, web resources and the app",
                   _publish([t.logical_name for t in desired.tables_with_columns()],
                            [r["webresourceid"] for r in inv.web_resources.values()],
                            [inv.app["appmoduleid"]] if inv.app else [])))
    return plan


def _plan_configuration(inv: Inventory, plan: Plan, webhook_url: str | None, webhook_key: str | None,
                        settings: Mapping[str, str] | None, *, product_missing: bool) -> None:
    """What belongs to this environment only: the endpoint, its steps, the variables' values, the configuration row.
    With product_missing (configure after an import) a part of the product that is absent is an error line."""
    add = plan.actions.append
    if product_missing:
        missing = [api.unique_name for api in footprint.CUSTOM_APIS if api.unique_name not in inv.custom_apis]
        missing += [t.logical_name for t in footprint.OUR_TABLES if t.logical_name not in inv.entities]
        if missing:
            plan.warnings.append(f"the product is not installed here ({', '.join(missing[:4])}... missing): "
                                 f"import the solution first (python -m installer import <zip>)")
            return
    _plan_endpoint(inv, webhook_url, webhook_key, plan)
    has_endpoint = inv.endpoint is not None or any(a.component == "webhook endpoint" for a in plan.actions)
    for step in footprint.WEBHOOK_STEPS:
        _plan_step(inv, step, add, has_endpoint)
    from adapters.provider_webhook import endpoint_refusal     # the service's own rule, checked where it is saved
    for provider in inv.webhook_providers:
        refusal = endpoint_refusal(provider.get("w365_endpointurl") or "", resolve=None)
        if refusal:
            plan.warnings.append(f"the Webhook provider {provider.get('w365_name')}: its endpoint URL {refusal}; the "
                                 f"service will refuse to post there until it is changed")
    for variable in footprint.ENVIRONMENT_VARIABLES:
        value = desired.variable_value(variable, settings or {})
        if value is not None:
            _plan_variable_value(inv, variable, value, add)
        elif not (inv.variables.get(variable.schema_name) or {}).get(desired.VARIABLE_VALUES):
            plan.warnings.append(f"{variable.schema_name}: no value ({variable.setting} is not set); the dialog uses "
                                 f"the default ({variable.default_value or 'none'})")
    if "w365_configuration" in inv.entities or not product_missing:
        if inv.configuration_rows == 0:
            add(Action("configuration", "w365_configuration", CREATE,
                       ", ".join(f"{k}={v}" for k, v in footprint.CONFIGURATION_DEFAULTS.items()),
                       _create_configuration))


def _plan_solution(inv: Inventory, solution: str, add: Callable[[Action], None]) -> None:
    if inv.publisher is None:
        add(Action("publisher", desired.PUBLISHER["uniquename"], CREATE,
                   f"prefix {desired.PUBLISHER['customizationprefix']}, option values from 100000000",
                   _create_publisher))
    elif inv.publisher.get("customizationprefix") != desired.PUBLISHER["customizationprefix"]:
        add(Action("publisher", desired.PUBLISHER["uniquename"], DRIFT,
                   f"prefix is {inv.publisher.get('customizationprefix')!r}, not 'w365'"))
    if inv.solution is None:
        add(Action("solution", solution, CREATE, "unmanaged", _create_solution(solution)))
    elif inv.solution.get("ismanaged"):
        add(Action("solution", solution, DRIFT, "is managed: components cannot be added to it"))


def _plan_columns(inv: Inventory, table: Table, add: Callable[[Action], None]) -> None:
    state = inv.entities.get(table.logical_name)
    for column in desired.columns(table):
        name = f"{table.logical_name}.{column.name}"
        have = state.attributes.get(column.name) if state else None
        want = desired.ATTRIBUTE_TYPES[column.type]
        if have is None:
            if column.type == "lookup":
                relation = desired.relationship_for(table, column)
                add(Action("lookup", name, CREATE, f"{relation.name} -> {relation.referenced}",
                           _create_relationship(table, column)))
            else:
                add(Action("column", name, CREATE, _column_detail(column), _create_column(table, column)))
            continue
        if have != want:
            add(Action("column", name, DRIFT, f"is {have}, the footprint says {want}: change it by hand"))
            continue
        if column.type in ("string", "memo") and column.max_length and \
                state.max_lengths.get(column.name, column.max_length) < column.max_length:
            add(Action("column", name, DRIFT,
                       f"MaxLength {state.max_lengths[column.name]} < {column.max_length}: widen it by hand"))
        if column.type == "choice":
            options = state.options.get(column.name, {})
            for value, text in column.choices:
                if value not in options:
                    add(Action("choice option", f"{name}={value}", CREATE, text,
                               _option(table, column, value, text, "InsertOptionValue")))
                elif options[value] != text:
                    add(Action("choice option", f"{name}={value}", UPDATE, f"{options[value]!r} -> {text!r}",
                               _option(table, column, value, text, "UpdateOptionValue")))


def _column_detail(column: Column) -> str:
    kind = desired.ATTRIBUTE_TYPES[column.type]
    if column.max_length and column.type in ("string", "memo"):
        return f"{kind}({column.max_length})"
    if column.choices:
        return f"{kind}: " + ", ".join(f"{v} {t}" for v, t in column.choices)
    return kind


def _plan_custom_api(inv: Inventory, api: CustomApi, add: Callable[[Action], None]) -> None:
    row = inv.custom_apis.get(api.unique_name)
    if row is None:
        params = ", ".join(f"{p.name}:{p.type}{'?' if p.optional else ''}" for p in api.parameters)
        add(Action("custom api", api.unique_name, CREATE, f"bound to {api.bound_to or '-'}; {params}",
                   _create_custom_api(api)))
        return
    body = desired.custom_api_body(api)
    fixed = [k for k in ("bindingtype", "boundentitylogicalname", "allowedcustomprocessingsteptype", "isfunction")
             if row.get(k) != body[k]]
    if fixed:
        add(Action("custom api", api.unique_name, DRIFT,
                   ", ".join(f"{k} is {row.get(k)!r}, not {body[k]!r}" for k in fixed)
                   + ": these cannot change; delete the Custom API and re-run"))
    if row.get("executeprivilegename") != api.privilege:
        add(Action("custom api", api.unique_name, UPDATE,
                   f"executeprivilegename {row.get('executeprivilegename')!r} -> {api.privilege!r}",
                   _update_row("customapis", row["customapiid"], {"executeprivilegename": api.privilege})))
    have = inv.parameters.get(api.unique_name, {})
    for parameter in api.parameters:
        existing = have.get(parameter.name)
        wanted = desired.parameter_body(api, parameter)
        name = f"{api.unique_name}.{parameter.name}"
        if existing is None:
            add(Action("parameter", name, CREATE, parameter.type, _create_parameter(api, parameter, row)))
        elif existing.get("type") != wanted["type"] or bool(existing.get("isoptional")) != parameter.optional:
            add(Action("parameter", name, DRIFT, "type or optionality differs: delete the parameter and re-run"))


def _plan_endpoint(inv: Inventory, url: str | None, key: str | None, plan: Plan) -> None:
    if url is None or key is None:
        missing = " and ".join(n for n, v in (("--webhook-url", url), ("W365_WEBHOOK_KEY", key)) if v is None)
        if inv.endpoint is None:
            plan.warnings.append(f"no webhook endpoint and no {missing}: the endpoint and its steps are left out")
        return
    if inv.endpoint is None:
        plan.actions.append(Action("webhook endpoint", desired.ENDPOINT_NAME, CREATE,
                                   f"{_redacted(url)}, HttpHeader {desired.WEBHOOK_HEADER}", _create_endpoint(url, key)))
        return
    body = desired.endpoint_body(url, key)
    changed = {k: body[k] for k in ("url", "contract", "authtype") if inv.endpoint.get(k) != body[k]}
    # Dataverse never returns authvalue: the key check in the description tells whether the key was rotated.
    if not desired.key_matches(inv.endpoint.get("description"), key):
        changed["authvalue"] = body["authvalue"]
    if changed:
        what = ", ".join("webhook key" if k == "authvalue" else k for k in changed)
        plan.actions.append(Action("webhook endpoint", desired.ENDPOINT_NAME, UPDATE, what,
                                   _update_row("serviceendpoints", inv.endpoint["serviceendpointid"],
                                               {**changed, "authtype": body["authtype"],
                                                "authvalue": body["authvalue"],
                                                "description": body["description"]}, key="endpoint")))


def _redacted(url: str) -> str:
    """The URL without its query: `code=` is the function key."""
    return url.split("?", 1)[0] + ("?code=***" if "?" in url else "")


def _plan_step(inv: Inventory, step: WebhookStep, add: Callable[[Action], None], has_endpoint: bool) -> None:
    name = desired.step_name(step)
    row = inv.steps.get(name)
    if row is None:
        if not has_endpoint:
            return                                   # nothing to bind to: _plan_endpoint warned
        detail = f"stage {step.stage}, mode {step.mode}"
        if step.filtering_attributes:
            detail += f", filtering {','.join(step.filtering_attributes)}"
        add(Action("step", name, CREATE, detail, _create_step(step)))
        if step.pre_image:
            add(Action("image", f"{name} {desired.IMAGE_ALIAS}", CREATE, ",".join(step.pre_image),
                       _create_image(step)))
        return
    step_id = row["sdkmessageprocessingstepid"]
    wanted = desired.step_body(step)
    changes: dict[str, Any] = {k: wanted[k] for k in ("stage", "mode") if row.get(k) != wanted[k]}
    if _attribute_set(row.get("filteringattributes")) != set(step.filtering_attributes):
        changes["filteringattributes"] = wanted["filteringattributes"]
    if inv.endpoint and row.get("_eventhandler_value") != inv.endpoint["serviceendpointid"]:
        changes["eventhandler_serviceendpoint@odata.bind"] = None        # filled in at run time
    if changes:
        add(Action("step", name, UPDATE, ", ".join(k.split("@")[0] for k in changes), _update_step(step_id, changes)))
    if step.pre_image:
        images = [i for i in inv.images.get(step_id, []) if i.get("entityalias") == desired.IMAGE_ALIAS]
        if not images:
            add(Action("image", f"{name} {desired.IMAGE_ALIAS}", CREATE, ",".join(step.pre_image),
                       _create_image(step, step_id)))
        elif _attribute_set(images[0].get("attributes")) != set(step.pre_image):
            add(Action("image", f"{name} {desired.IMAGE_ALIAS}", UPDATE, ",".join(step.pre_image),
                       _update_row("sdkmessageprocessingstepimages", images[0]["sdkmessageprocessingstepimageid"],
                                   {"attributes": ",".join(step.pre_image)})))


def _attribute_set(text: Any) -> set[str]:
    return {a.strip() for a in str(text or "").split(",") if a.strip()}


def _plan_web_resources(inv: Inventory, root: Path, plan: Plan) -> None:
    for resource in footprint.WEB_RESOURCES:
        content = desired.web_resource_content(root, resource)
        if content is None:
            plan.warnings.append(f"web resource file {resource.path} is missing: {resource.name} is left out")
            continue
        row = inv.web_resources.get(resource.name)
        if row is None:
            plan.actions.append(Action("web resource", resource.name, CREATE, resource.path,
                                       _create_web_resource(resource, content)))
        elif row.get("content") != content:
            plan.actions.append(Action("web resource", resource.name, UPDATE, "content changed",
                                       _update_web_resource(row["webresourceid"], content)))


def _plan_variable(inv: Inventory, variable: footprint.EnvironmentVariable, add: Callable[[Action], None]) -> None:
    """The definition (a product component); its current value is configuration (_plan_variable_value)."""
    name = variable.schema_name
    row = inv.variables.get(name)
    if row is None:
        default = f", default {variable.default_value}" if variable.default_value is not None else ""
        add(Action("environment variable", name, CREATE, variable.type + default, _create_variable(variable)))
        return
    wanted = desired.variable_body(variable)
    if row.get("type") != wanted["type"]:
        add(Action("environment variable", name, DRIFT,
                   f"type is {row.get('type')!r}, not {wanted['type']}: delete the variable and re-run"))
    changed = {k: wanted[k] for k in ("displayname", "defaultvalue") if row.get(k) != wanted[k]}
    if changed:
        add(Action("environment variable", name, UPDATE, ", ".join(changed),
                   _update_row("environmentvariabledefinitions", row["environmentvariabledefinitionid"], changed)))


def _plan_variable_value(inv: Inventory, variable: footprint.EnvironmentVariable, value: str,
                         add: Callable[[Action], None]) -> None:
    """A current value from the settings (none given: whatever an administrator set in the environment stays)."""
    name = variable.schema_name
    source = f"value from {variable.setting}"
    row = inv.variables.get(name)
    if row is None:                              # created earlier in this run (install), or imported just now
        add(Action("environment variable value", name, CREATE, source, _create_variable_value(variable, value)))
        return
    current = (row.get(desired.VARIABLE_VALUES) or [None])[0]
    if current is None:
        add(Action("environment variable value", name, CREATE, source,
                   _create_variable_value(variable, value, row["environmentvariabledefinitionid"])))
    elif current.get("value") != value:
        add(Action("environment variable value", name, UPDATE, source,
                   _update_row("environmentvariablevalues", current["environmentvariablevalueid"], {"value": value})))


# --- the actions' work ---------------------------------------------------------------------------------------------

def _create_publisher(t: Target) -> None:
    t.ids["publisher"] = t.dv.create("publishers", desired.PUBLISHER)


def _create_solution(solution: str) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.ids["solution"] = t.dv.create("solutions", {
            "uniquename": solution, "friendlyname": "W365 Payments", "version": "1.0.0.0",
            "description": "Tables, Custom APIs, webhook steps and ribbon scripts of W365 Payments",
            "publisherid@odata.bind": f"/publishers({t.ids['publisher']})"})
    return run


def _create_table(table: Table) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.in_solution.create("EntityDefinitions", desired.entity_body(table))
    return run


def _create_column(table: Table, column: Column) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.in_solution.create(f"{entity_path(table.logical_name)}/Attributes", desired.attribute_body(table, column))
    return run


def _create_relationship(table: Table, column: Column) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.in_solution.create("RelationshipDefinitions", desired.relationship_body(table, column))
    return run


def _create_key(table: Table, key: tuple[str, ...]) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.in_solution.create(f"{entity_path(table.logical_name)}/Keys", desired.key_body(table, key))
    return run


def _option(table: Table, column: Column, value: int, text: str, action: str) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.dv.execute(action, {"EntityLogicalName": table.logical_name, "AttributeLogicalName": column.name,
                              "Value": value, "Label": desired.label(text), "SolutionUniqueName": t.solution,
                              **({"MergeLabels": True} if action == "UpdateOptionValue" else {})})
    return run


def _create_custom_api(api: CustomApi) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.ids[f"customapi:{api.unique_name}"] = t.in_solution.create("customapis", desired.custom_api_body(api))
    return run


def _create_parameter(api: CustomApi, parameter: footprint.Parameter, row: dict) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.in_solution.create("customapirequestparameters", {
            **desired.parameter_body(api, parameter), "CustomAPIId@odata.bind": f"/customapis({row['customapiid']})"})
    return run


def _create_endpoint(url: str, key: str) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.ids["endpoint"] = t.dv.create("serviceendpoints", desired.endpoint_body(url, key))   # CONFIGURATION
    return run


def _update_row(entity_set: str, record_id: str, body: dict, key: str | None = None) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.dv.update(entity_set, record_id, body)
        if key:
            t.ids[key] = record_id
    return run


def _endpoint_id(t: Target) -> str:
    if "endpoint" not in t.ids:
        found = t.dv.query("serviceendpoints", select=("serviceendpointid",),
                           filter=odata.eq("name", desired.ENDPOINT_NAME))
        t.ids["endpoint"] = found[0]["serviceendpointid"]
    return t.ids["endpoint"]


def _message_ids(t: Target, step: WebhookStep) -> tuple[str, str | None]:
    """The sdkmessage and sdkmessagefilter of a step, found by name (a Custom API's exist once it is created)."""
    messages = t.dv.query("sdkmessages", select=("sdkmessageid",), filter=odata.eq("name", step.message))
    if not messages:
        raise LookupError(f"Dataverse has no message named {step.message}")
    message_id = messages[0]["sdkmessageid"]
    if step.table == "none":
        return message_id, None
    filters = t.dv.query("sdkmessagefilters", select=("sdkmessagefilterid",),
                         filter=f"_sdkmessageid_value eq {message_id} and "
                                f"{odata.eq('primaryobjecttypecode', step.table)}")
    if not filters:
        raise LookupError(f"Dataverse has no {step.message} message for the table {step.table}")
    return message_id, filters[0]["sdkmessagefilterid"]


def _create_step(step: WebhookStep) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        message_id, filter_id = _message_ids(t, step)
        body = {k: v for k, v in desired.step_body(step).items() if v is not None}
        body["sdkmessageid@odata.bind"] = f"/sdkmessages({message_id})"
        if filter_id:
            body["sdkmessagefilterid@odata.bind"] = f"/sdkmessagefilters({filter_id})"
        body["eventhandler_serviceendpoint@odata.bind"] = f"/serviceendpoints({_endpoint_id(t)})"
        t.ids[f"step:{desired.step_name(step)}"] = t.dv.create("sdkmessageprocessingsteps", body)    # CONFIGURATION
    return run


def _update_step(step_id: str, changes: dict[str, Any]) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        body = dict(changes)
        if "eventhandler_serviceendpoint@odata.bind" in body:
            body["eventhandler_serviceendpoint@odata.bind"] = f"/serviceendpoints({_endpoint_id(t)})"
        t.dv.update("sdkmessageprocessingsteps", step_id, body)
    return run


def _create_image(step: WebhookStep, step_id: str | None = None) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        owner = step_id or t.ids[f"step:{desired.step_name(step)}"]
        t.dv.create("sdkmessageprocessingstepimages", {                               # CONFIGURATION
            **desired.image_body(step), "sdkmessageprocessingstepid@odata.bind": f"/sdkmessageprocessingsteps({owner})"})
    return run


def _create_web_resource(resource: footprint.WebResource, content: str) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.published_web_resources.append(t.in_solution.create("webresourceset",
                                                              desired.web_resource_body(resource, content)))
    return run


def _update_web_resource(resource_id: str, content: str) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        t.dv.update("webresourceset", resource_id, {"content": content})
        t.published_web_resources.append(resource_id)
    return run


def _create_variable(variable: footprint.EnvironmentVariable) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        body = {k: v for k, v in desired.variable_body(variable).items() if v is not None}
        t.ids[f"variable:{variable.schema_name}"] = t.in_solution.create("environmentvariabledefinitions", body)
    return run


def _create_variable_value(variable: footprint.EnvironmentVariable, value: str,
                           definition_id: str | None = None) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        owner = definition_id or t.ids[f"variable:{variable.schema_name}"]
        t.dv.create("environmentvariablevalues", {                                    # CONFIGURATION
            "schemaname": variable.schema_name, "value": value,
            "EnvironmentVariableDefinitionId@odata.bind": f"/environmentvariabledefinitions({owner})"})
    return run


def _create_configuration(t: Target) -> None:
    table = footprint.table("w365_configuration")
    # A data row, not a solution component: no solution header.
    t.dv.create(table.entity_set, dict(footprint.CONFIGURATION_DEFAULTS))


def _publish(entities: list[str], web_resource_ids: list[str], app_ids: list[str]) -> Callable[[Target], None]:
    def run(t: Target) -> None:
        ids = list(dict.fromkeys(web_resource_ids + t.published_web_resources))
        apps = list(dict.fromkeys(app_ids + ([t.ids["app"]] if "app" in t.ids else [])))
        t.dv.execute("PublishXml", {"ParameterXml": desired.publish_xml(entities, ids, apps)})
    return run
