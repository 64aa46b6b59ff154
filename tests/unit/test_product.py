"""The Dynamics product data (installer/product.py, installer/labels.py) checked against the footprint and the scripts:
every privilege, column and function they name exists, and each Custom API reaches exactly the roles that should run
it (CONTRACT §3-§4)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from core import footprint
from installer import desired, labels, product
from installer.product import CLERK, MANAGER, SERVICE

ROOT = Path(__file__).resolve().parents[2]

# Who should be able to run each message, from CONTRACT §3-§4, written here independently of the matrix. W365 Service
# holds the privileges because it writes those rows itself (it never presses a button).
SHOULD_RUN = {
    "w365_AddPaymentProfile": {MANAGER, CLERK, SERVICE},
    "w365_SyncPaymentProfile": {MANAGER, CLERK, SERVICE},
    "w365_SyncPaymentProfiles": {MANAGER, CLERK, SERVICE},
    "w365_SetDefaultPaymentProfile": {MANAGER, CLERK, SERVICE},
    "w365_UpdatePaymentProfile": {MANAGER, CLERK, SERVICE},
    "w365_DeactivatePaymentProfile": {MANAGER, CLERK, SERVICE},
    "w365_ChargeInvoice": {MANAGER, SERVICE},                  # the payment privilege: never a clerk
    "w365_RefundTransaction": {MANAGER, SERVICE},
    "w365_SubmitOrderPayment": {MANAGER, SERVICE},
    "w365_RunBilling": {MANAGER, SERVICE},
    "w365_SendOrderForApproval": {MANAGER, SERVICE},           # others through their own sales roles
    "w365_ConvertOrderToDraft": {MANAGER, SERVICE},
}


def test_every_custom_api_names_its_execute_privilege_and_exactly_the_right_roles_hold_it():
    assert set(SHOULD_RUN) == {api.unique_name for api in footprint.CUSTOM_APIS}
    for api in footprint.CUSTOM_APIS:
        assert api.privilege, api.unique_name
        assert product.holders(api.privilege) == SHOULD_RUN[api.unique_name], api.unique_name


def test_running_a_bound_message_also_needs_read_on_its_table_which_the_runners_hold():
    for api in footprint.CUSTOM_APIS:
        for role in SHOULD_RUN[api.unique_name]:
            assert product.privilege("Read", api.bound_to) in product.role_privileges(role), (api.unique_name, role)


def test_configuration_and_providers_are_manager_only_and_money_rows_are_never_deleted():
    assert product.holders("prvWritew365_provider") == {MANAGER}
    assert product.holders("prvCreatew365_provider") == {MANAGER}
    # The service writes autopay's start date on the configuration row; no clerk changes a setting.
    assert product.holders("prvWritew365_configuration") == {MANAGER, SERVICE}
    for table in ("w365_paymenttransaction", "w365_billingrun"):
        assert product.holders(product.privilege("Delete", table)) == set(), table
    assert product.holders(product.privilege("Delete", "w365_operation")) == {SERVICE}     # its own claims only
    assert product.holders(product.ACT_ON_BEHALF) == {SERVICE}


def test_the_service_role_covers_what_the_service_deletes_and_reads_for_rights():
    service = product.role_privileges(SERVICE)
    for name in ("prvDeleteNote", "prvDeletew365_operation", "prvReadTeam", "prvReadRole", "prvReadUser"):
        assert name in service, name


def test_every_privilege_is_about_a_table_of_the_footprint_at_a_known_depth():
    tables = {t.logical_name for t in footprint.TABLES}
    for role in product.ROLES:
        for name, depth in product.role_privileges(role).items():
            assert depth in (product.BASIC, product.LOCAL, product.DEEP, product.GLOBAL)
            if name != product.ACT_ON_BEHALF:
                assert product.privilege_table(name) in tables, name
    assert product.privilege("Read", "email") == "prvReadActivity"
    assert product.privilege("Create", "annotation") == "prvCreateNote"
    assert product.privilege_table("prvAppendTow365_paymentprofile") == "w365_paymentprofile"


def test_secured_columns_are_columns_the_installer_adds_and_the_profiles_cover_read_and_write():
    added = {(t.logical_name, c.name) for t in desired.tables_with_columns() for c in t.custom_columns()}
    assert set(product.SECURED_COLUMNS) <= added
    writers = [p.name for p in product.FIELD_PROFILES if p.can_write]
    readers = [p.name for p in product.FIELD_PROFILES if p.can_read and not p.can_write]
    assert writers == ["W365 Service", "W365 Billing Manager"] and readers == ["W365 Billing Readers"]
    invoice, profile = footprint.table("invoice"), footprint.table("w365_paymentprofile")
    assert desired.attribute_body(invoice, invoice.column("w365_balance"))["IsSecured"] is True
    assert desired.attribute_body(profile, profile.column("w365_cardtype"))["IsSecured"] is False


# --- display names -------------------------------------------------------------------------------------------------

def _machine_made(display_name: str, logical_name: str) -> bool:
    """"Paymentprofile", "Isdefault": the logical name title-cased, words run together (short ones may be words)."""
    return display_name == logical_name.removeprefix(footprint.PREFIX).replace("_", " ").title() and \
        len(display_name) > 12 and " " not in display_name


def test_every_table_column_and_custom_api_has_a_display_name_a_person_would_write():
    for table in footprint.OUR_TABLES:
        name, plural, description = labels.TABLES[table.logical_name]
        assert not _machine_made(name, table.logical_name) and plural and description.endswith(".")
    wanted = {(t.logical_name, c.name) for t in desired.tables_with_columns() for c in t.custom_columns()}
    assert set(labels.COLUMNS) == wanted, "a column without a display name, or a name for a column that is gone"
    for (table, column), (name, description) in labels.COLUMNS.items():
        assert name and description, (table, column)
        assert not _machine_made(name, column), f"{table}.{column} is named like a machine would: {name}"
    assert set(labels.CUSTOM_APIS) == {a.unique_name for a in footprint.CUSTOM_APIS}
    assert labels.api_label("w365_ChargeInvoice")[0] == "Charge Invoice"
    assert labels.column_label("w365_paymentprofile", "w365_isdefault")[0] == "Is Default"
    assert labels.table_label("w365_paymentprofile")[0] == "Payment Profile"


def test_the_installer_sends_those_names():
    body = desired.entity_body(footprint.table("w365_paymentprofile"))
    assert body["DisplayName"]["LocalizedLabels"][0]["Label"] == "Payment Profile"
    assert body["IsAuditEnabled"]["Value"] is True
    assert desired.entity_body(footprint.table("w365_securelink"))["IsAuditEnabled"]["Value"] is False
    api = next(a for a in footprint.CUSTOM_APIS if a.unique_name == "w365_RefundTransaction")
    assert desired.custom_api_body(api)["displayname"] == "Refund Transaction"
    assert all(desired.step_body(s)["asyncautodelete"] is True for s in footprint.WEBHOOK_STEPS)


# --- views, charts, commands ---------------------------------------------------------------------------------------

def _columns_named(fetch_xml: str) -> list[tuple[str, str]]:
    """(table, column) of every attribute, condition, order and link the FetchXML names."""
    root = ET.fromstring(fetch_xml)
    found = []

    def walk(element: ET.Element, table: str) -> None:
        for child in element:
            if child.tag == "attribute" or (child.tag == "condition" and "entityname" not in child.attrib):
                found.append((table, child.attrib["name" if child.tag == "attribute" else "attribute"]))
            elif child.tag == "order" and "attribute" in child.attrib:
                found.append((table, child.attrib["attribute"]))
            elif child.tag == "link-entity":
                found.append((child.attrib["name"], child.attrib["from"]))
                found.append((table, child.attrib["to"]))
                walk(child, child.attrib["name"])
            elif child.tag == "filter":
                walk(child, table)
    entity = root.find("entity")
    found.append((entity.attrib["name"], footprint.table(entity.attrib["name"]).primary_id))
    walk(entity, entity.attrib["name"])
    return found


def _exists(table: str, column: str) -> bool:
    try:
        return footprint.table(table).column(column) is not None
    except KeyError:
        return False


@pytest.mark.parametrize("view", product.VIEWS, ids=lambda v: v.name)
def test_every_column_a_view_names_exists(view):
    for table, column in _columns_named(view.fetch_xml):
        assert _exists(table, column), f"{view.name}: {table}.{column}"
    links = {link.attrib["alias"]: link.attrib["name"] for link in ET.fromstring(view.fetch_xml).iter("link-entity")}
    for cell in ET.fromstring(view.layout_xml).iter("cell"):
        alias, _, column = cell.attrib["name"].rpartition(".")
        assert _exists(links[alias] if alias else view.table, column), f"{view.name}: layout {cell.attrib['name']}"


@pytest.mark.parametrize("chart", product.CHARTS, ids=lambda c: c.name)
def test_every_column_a_chart_names_exists_and_its_aliases_are_in_the_fetch(chart):
    root = ET.fromstring(chart.fetch_xml)
    assert root.attrib["aggregate"] == "true"
    for table, column in _columns_named(chart.fetch_xml):
        assert _exists(table, column), f"{chart.name}: {table}.{column}"
    aliases = {a.attrib["alias"] for a in root.iter("attribute")}
    assert set(chart.category) | set(chart.series) <= aliases
    ET.fromstring(product.data_description(chart))
    ET.fromstring(product.presentation_description(chart))


def _script_functions(library: str) -> dict[str, set[str]]:
    """module -> names the script exports: `W365.X = (function () { ... return { a: a, b: b }; })();`"""
    text = (ROOT / f"webresources/{library}").read_text(encoding="utf-8")
    found = {}
    for module, body in re.findall(r"W365\.(\w+) = \(function \(\) \{(.*?)\n\}\)\(\);", text, re.S):
        exported = re.findall(r"\n  return \{(.*?)\};", body, re.S)[-1]
        found[module] = set(re.findall(r"(\w+)\s*:", exported))
    return found


@pytest.mark.parametrize("command", product.COMMANDS, ids=lambda c: c.unique_name)
def test_every_command_calls_a_function_its_web_resource_exports(command):
    assert command.library in {r.name for r in footprint.WEB_RESOURCES}
    namespace, module, function = command.function.split(".")
    assert namespace == "W365"
    assert function in _script_functions(command.library)[module], command.function
    assert command.unique_name.startswith(footprint.PREFIX) and footprint.table(command.table)


def test_money_commands_are_form_commands_of_tables_whose_messages_need_the_payment_privilege():
    pay = {a.bound_to for a in footprint.CUSTOM_APIS if a.privilege == "prvCreatew365_paymenttransaction"}
    assert {c.table for c in product.COMMANDS if c.money} <= pay
    assert product.FORM == 0      # every command is placed on its table's main form (appaction.location 0)


def test_every_button_of_the_readme_table_is_shipped_as_a_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^ *\| (\w+) \| ([^|]+?) \| `(w365_/scripts/\w+\.js)` \| `(W365\.[\w.]+)` \|", readme, re.M)
    assert len(rows) == 12
    shipped = {(c.table, c.label, c.library, c.function) for c in product.COMMANDS}
    assert {tuple(r) for r in rows} == shipped


def test_each_script_loads_what_it_needs_through_its_dependencies():
    for resource in footprint.WEB_RESOURCES:
        header = (ROOT / resource.path).read_text(encoding="utf-8").split("*/", 1)[0]
        needs = set(re.findall(r"w365_/scripts/\w+\.js", header.split("Needs", 1)[1])) if "Needs" in header else set()
        assert needs <= set(product.WEB_RESOURCE_DEPENDENCIES.get(resource.name, ())), resource.name
        xml = product.dependency_xml(resource.name)
        if xml:
            assert {lib.attrib["name"] for lib in ET.fromstring(xml).iter("Library")} == set(
                product.WEB_RESOURCE_DEPENDENCIES[resource.name])


def test_dashboard_and_sitemap_name_what_exists():
    chart_ids = {c.name: f"0000000{i}-0000-0000-0000-000000000000" for i, c in enumerate(product.CHARTS)}
    view_ids = {v.name: f"1000000{i}-0000-0000-0000-000000000000" for i, v in enumerate(product.VIEWS)}
    form = ET.fromstring(product.dashboard_xml(chart_ids, view_ids))
    controls = list(form.iter("control"))
    assert len(controls) == len(product.CHARTS) + len(product.DASHBOARD_VIEWS)
    assert {c.findtext("parameters/VisualizationId").strip("{}") for c in controls
            if c.find("parameters/VisualizationId") is not None} == set(chart_ids.values())
    sitemap = ET.fromstring(product.sitemap_xml("20000000-0000-0000-0000-000000000000"))
    titles = [t.attrib["Title"] for s in sitemap.iter("SubArea") for t in s.iter("Title")]
    for wanted in ("Billing Runs", "Invoices", "Payment Profiles", "Transactions", "Button Results", "Configuration",
                   "Dashboard"):
        assert wanted in titles
    for sub in sitemap.iter("SubArea"):
        if "Entity" in sub.attrib:
            assert footprint.table(sub.attrib["Entity"])
