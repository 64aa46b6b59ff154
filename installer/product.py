"""The Dynamics product around the footprint, as data: security roles (a privilege matrix), field security profiles,
auditing, the command bar, views, charts, the dashboard and the model-driven app with its sitemap.

Installer data only (the function app never imports it). installer/desired.py turns it into Web API bodies,
installer/plan.py into idempotent actions; tests/unit/test_product.py checks it against core/footprint.py (every column
named exists, every command's function exists in its script, the privilege matrix gives each Custom API to exactly the
roles that should run it).

Choice values are taken from the footprint by label (footprint.choice), never written as numbers here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable
from xml.sax.saxutils import quoteattr

from core import footprint

# --- security roles --------------------------------------------------------------------------------------------------

MANAGER, CLERK, SERVICE = "W365 Billing Manager", "W365 Billing Clerk", "W365 Service"
ROLES: dict[str, str] = {
    MANAGER: "Everything of W365 Payments, payments included: charge, refund, submit order payments, run billing, "
             "change the configuration and the providers.",
    CLERK: "Payment profiles and profile requests; sees payments, invoices, runs and the configuration but cannot "
           "charge, refund or change settings.",
    SERVICE: "The function app's application user: what the service reads and writes, and acting for the person "
             "who pressed a button (impersonation).",
}

# Depths of a role privilege (the Web API's PrivilegeDepth enum names, as AddPrivilegesRole takes them).
BASIC, LOCAL, DEEP, GLOBAL = "Basic", "Local", "Deep", "Global"
ACCESS = ("Create", "Read", "Write", "Delete", "Append", "AppendTo", "Assign", "Share")

# Privileges that belong to no table.
ACT_ON_BEHALF = "prvActOnBehalfOfAnotherUser"


def privilege(access: str, table: str) -> str:
    if access not in ACCESS:
        raise ValueError(f"unknown access {access}")
    return f"prv{access}{footprint.PRIVILEGE_SCHEMA.get(table, table)}"


def privilege_table(name: str) -> str | None:
    """The logical name of the table a privilege is about (None for a table-less one such as impersonation)."""
    for access in sorted(ACCESS, key=len, reverse=True):
        if name.startswith(f"prv{access}"):
            schema = name[len(f"prv{access}"):]
            natives = [t for t, s in footprint.PRIVILEGE_SCHEMA.items() if s == schema]
            return natives[0] if natives else schema
    return None


_ALL = ACCESS
_CRWAA = ("Create", "Read", "Write", "Append", "AppendTo")
_CRWDAA = _CRWAA + ("Delete",)
_RA = ("Read", "AppendTo")
_R = ("Read",)

# role -> table -> accesses (all at GLOBAL depth unless DEPTHS says otherwise). The billing team works across the
# organization's accounts, so its depth is the organization's; money rows are never deleted by anyone but a System
# Administrator (no Delete on w365_paymenttransaction or w365_billingrun), and W365 Service never deletes.
MATRIX: dict[str, dict[str, tuple[str, ...]]] = {
    MANAGER: {
        "w365_configuration": ("Read", "Write", "Append", "AppendTo"),
        "w365_provider": _CRWDAA,
        "w365_paymentprofile": _CRWDAA + ("Assign", "Share"),
        "w365_paymenttransaction": _CRWAA,            # Create: the payment privilege of Charge, Refund, ...
        "w365_securelink": _CRWAA,
        "w365_billingcontract": _CRWDAA + ("Assign", "Share"),
        "w365_billingrun": ("Read", "Append", "AppendTo"),
        "w365_subscription": _CRWDAA + ("Assign", "Share"),
        "w365_operation": _R,                         # the buttons read what the service wrote
        "account": ("Read", "Write", "Append", "AppendTo"),
        "contact": ("Read", "Append", "AppendTo"),
        "invoice": ("Read", "Write", "Append", "AppendTo"),
        "salesorder": ("Read", "Write", "Append", "AppendTo"),
        "product": _R,
        "annotation": ("Create", "Read", "Append"),
        "email": ("Create", "Read", "Write", "Append"),
        "queue": ("Read", "AppendTo"),
        "transactioncurrency": _R,
        "pricelevel": _R,
        "environmentvariabledefinition": _R,
        "environmentvariablevalue": _R,
    },
    CLERK: {
        "w365_configuration": _R,
        "w365_provider": _R,
        "w365_paymentprofile": _CRWAA,                # Add, Sync, Set Default, Update, Deactivate
        "w365_paymenttransaction": _R,                 # sees payments, cannot make one
        "w365_securelink": _R,
        "w365_billingcontract": ("Read", "Write", "Append", "AppendTo"),
        "w365_billingrun": _R,
        "w365_subscription": _R,
        "w365_operation": _R,
        "account": ("Read", "Append", "AppendTo"),
        "contact": ("Read", "Append", "AppendTo"),
        "invoice": _R,
        "salesorder": _R,
        "product": _R,
        "annotation": ("Create", "Read", "Append"),
        "email": ("Create", "Read", "Write", "Append"),
        "queue": _RA,
        "transactioncurrency": _R,
        "pricelevel": _R,
        "environmentvariabledefinition": _R,
        "environmentvariablevalue": _R,
    },
    SERVICE: {
        **{t.logical_name: _CRWAA for t in footprint.OUR_TABLES},
        # It withdraws its own claim on a request that could not be handled (app/platform.py).
        "w365_operation": _CRWAA + ("Delete",),
        "w365_configuration": ("Read", "Write", "Append", "AppendTo"),
        "w365_provider": _RA,
        "account": ("Read", "Write", "Append", "AppendTo"),
        "contact": ("Read", "Append", "AppendTo"),
        "invoice": _CRWAA,                             # ConvertSalesOrderToInvoice creates the paid order's invoice
        "salesorder": ("Read", "Write", "Append", "AppendTo"),
        "product": _RA,
        # Notes on orders and accounts; the signature note of an approval that did not complete is withdrawn.
        "annotation": ("Create", "Read", "Append", "Delete"),
        "email": _CRWAA,                               # emails and the Manual provider's tasks
        "queue": _RA,
        "systemuser": _RA,
        "role": _R,                                    # administrators are recognised by their roles' ids,
        "team": _R,                                    # given directly or through a team
        "transactioncurrency": _R,
        "pricelevel": _R,
    },
}
EXTRA_PRIVILEGES: dict[str, dict[str, str]] = {
    # The service acts as the person who pressed the button (MSCRMCallerID), so Dataverse applies their privileges.
    SERVICE: {ACT_ON_BEHALF: GLOBAL},
}


def role_privileges(role: str) -> dict[str, str]:
    """privilege name -> depth of one role."""
    found = {privilege(access, table): GLOBAL for table, accesses in MATRIX[role].items() for access in accesses}
    found.update(EXTRA_PRIVILEGES.get(role, {}))
    return found


def holders(privilege_name: str) -> set[str]:
    return {role for role in ROLES if privilege_name in role_privileges(role)}


# --- field security --------------------------------------------------------------------------------------------------

# The columns the service trusts (CONTRACT §4): gateway ids, sync status, amounts paid and balances, dunning columns,
# providers' endpoints, outcomes. The configuration row and email templates are Manager-only through table privileges.
SECURED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("account", "w365_gatewaycustomerprofileid"),
    ("w365_paymentprofile", "w365_customerprofileid"),
    ("w365_paymentprofile", "w365_paymentprofileidgateway"),
    ("w365_paymentprofile", "w365_syncstatus"),
    ("w365_paymentprofile", "w365_lastsyncedon"),
    ("w365_paymenttransaction", "w365_outcome"),
    ("w365_paymenttransaction", "w365_gatewaytransactionid"),
    ("w365_paymenttransaction", "w365_amount"),
    ("invoice", "w365_amountpaid"),
    ("invoice", "w365_balance"),
    ("invoice", "w365_lastchargestatus"),
    ("invoice", "w365_dunningstatus"),
    ("invoice", "w365_firstfailedon"),
    ("invoice", "w365_nextretryon"),
    ("invoice", "w365_failedattempts"),
    ("w365_provider", "w365_endpointurl"),
)
ALLOWED, NOT_ALLOWED = 4, 0          # fieldpermission canread/cancreate/canupdate


@dataclass(frozen=True)
class FieldProfile:
    name: str
    description: str
    can_read: bool
    can_write: bool                  # create and update


FIELD_PROFILES = (
    FieldProfile("W365 Service", "The function app's application user: reads and writes the trusted columns.",
                 True, True),
    FieldProfile("W365 Billing Manager", "Billing managers: read and correct the trusted columns.", True, True),
    FieldProfile("W365 Billing Readers", "Billing clerks and anyone who must see balances and sync status: "
                                         "read only.", True, False),
)


def is_secured(table: str, column: str) -> bool:
    return (table, column) in SECURED_COLUMNS


# Auditing on the tables where money or the rules about it change (Dataverse audits only when the organization's
# auditing is on too: `configure` says so when it is off).
AUDITED_TABLES = frozenset({"w365_paymenttransaction", "w365_paymentprofile", "w365_billingrun",
                            "w365_billingcontract", "w365_configuration", "w365_provider"})

# --- the command bar: modern commands (appaction rows) on the main forms ---------------------------------------------

FORM = 0                             # appaction.location: Main Form
JAVASCRIPT = 2                       # appaction.onclickeventtype
PRIMARY_CONTROL = '[{"type":5}]'     # the JavaScript parameter list: PrimaryControl
SHOW = 0                             # appaction.visibilitytype: always shown (the scripts refuse what is not allowed)


@dataclass(frozen=True)
class Command:
    unique_name: str
    table: str
    label: str
    tooltip: str
    library: str                     # web resource name
    function: str                    # W365.<Module>.<function>
    icon: str                        # Fluent UI icon name of modern commands
    money: bool = False


_SCRIPTS = "w365_/scripts/"
COMMANDS = (
    Command("w365_account_addpaymentprofile", "account", "Add Payment Profile",
            "Add a card typed in here, or email the customer a secure link", f"{_SCRIPTS}account.js",
            "W365.Account.openAddPaymentProfile", "Payment"),
    Command("w365_account_syncpaymentprofiles", "account", "Sync Payment Profiles",
            "Import and refresh this account's cards from the gateway", f"{_SCRIPTS}account.js",
            "W365.Account.syncAll", "ArrowSync"),
    Command("w365_paymentprofile_sync", "w365_paymentprofile", "Sync", "Check this card with the gateway",
            f"{_SCRIPTS}paymentprofile.js", "W365.PaymentProfile.sync", "ArrowSync"),
    Command("w365_paymentprofile_setdefault", "w365_paymentprofile", "Set Default",
            "Charge this card when no other is named", f"{_SCRIPTS}paymentprofile.js",
            "W365.PaymentProfile.setDefault", "Star"),
    Command("w365_paymentprofile_update", "w365_paymentprofile", "Update",
            "Send the billing details on this form to the gateway", f"{_SCRIPTS}paymentprofile.js",
            "W365.PaymentProfile.updateFromForm", "Edit"),
    Command("w365_paymentprofile_deactivate", "w365_paymentprofile", "Deactivate",
            "Stop using this card", f"{_SCRIPTS}paymentprofile.js", "W365.PaymentProfile.deactivate", "Delete"),
    Command("w365_invoice_charge", "invoice", "Charge", "Charge the balance, or less, to the account's card",
            f"{_SCRIPTS}invoice.js", "W365.Invoice.charge", "Money", money=True),
    Command("w365_paymenttransaction_refund", "w365_paymenttransaction", "Refund",
            "Refund or void this charge, in full or in part", f"{_SCRIPTS}paymenttransaction.js",
            "W365.PaymentTransaction.refund", "ArrowUndo", money=True),
    Command("w365_salesorder_submitpayment", "salesorder", "Submit Order Payment",
            "Pay this order with a card on file", f"{_SCRIPTS}salesorder.js", "W365.SalesOrder.submitOrderPayment",
            "Money", money=True),
    Command("w365_salesorder_paywithnewcard", "salesorder", "Pay with New Card", "Pay this order with a new card",
            f"{_SCRIPTS}salesorder.js", "W365.SalesOrder.openPayWithNewCard", "Payment", money=True),
    Command("w365_salesorder_converttodraft", "salesorder", "Convert to Draft",
            "Put a declined or pending order back to Draft", f"{_SCRIPTS}salesorder.js",
            "W365.SalesOrder.convertToDraft", "ArrowReset"),
    Command("w365_configuration_runbilling", "w365_configuration", "Run Billing",
            "Collect every due invoice of the autopay contracts now", f"{_SCRIPTS}configuration.js",
            "W365.Configuration.runBilling", "Money", money=True),
)

# Libraries each script needs loaded first (webresource.dependencyxml): Dataverse loads them with the script, so no
# one adds them by hand.
WEB_RESOURCE_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    f"{_SCRIPTS}account.js": (f"{_SCRIPTS}common.js",),
    f"{_SCRIPTS}paymentprofile.js": (f"{_SCRIPTS}common.js",),
    f"{_SCRIPTS}invoice.js": (f"{_SCRIPTS}common.js", f"{_SCRIPTS}amount.js"),
    f"{_SCRIPTS}paymenttransaction.js": (f"{_SCRIPTS}common.js", f"{_SCRIPTS}amount.js"),
    f"{_SCRIPTS}salesorder.js": (f"{_SCRIPTS}common.js",),
    f"{_SCRIPTS}configuration.js": (f"{_SCRIPTS}common.js",),
    f"{_SCRIPTS}amount.js": (f"{_SCRIPTS}common.js",),
    f"{_SCRIPTS}directentry.js": (f"{_SCRIPTS}common.js",),
}


def dependency_xml(resource: str) -> str | None:
    libraries = WEB_RESOURCE_DEPENDENCIES.get(resource)
    if not libraries:
        return None
    items = "".join(f'<Library name={quoteattr(name)} displayName={quoteattr(name)} languagecode="" '
                    f'description="" libraryUniqueId="" />' for name in libraries)
    return f'<Dependencies><Dependency componentType="WebResource">{items}</Dependency></Dependencies>'


# --- FetchXML --------------------------------------------------------------------------------------------------------

def _values(table: str, column: str, *labels_: str) -> str:
    return "".join(f"<value>{footprint.choice(table, column, text)}</value>" for text in labels_)


def _in(table: str, column: str, *labels_: str) -> str:
    return f'<condition attribute="{column}" operator="in">{_values(table, column, *labels_)}</condition>'


def _eq(table: str, column: str, label_: str) -> str:
    return f'<condition attribute="{column}" operator="eq" value="{footprint.choice(table, column, label_)}" />'


def fetch(table: str, columns: Iterable[str], *, filters: str = "", order: Iterable[tuple[str, bool]] = (),
          links: str = "") -> str:
    parts = [f'<fetch version="1.0" mapping="logical"><entity name="{table}">']
    parts += [f'<attribute name="{c}" />' for c in columns]
    parts += [f'<order attribute="{c}" descending="{str(d).lower()}" />' for c, d in order]
    if filters:
        parts.append(filters)
    parts.append(links)
    parts.append("</entity></fetch>")
    return "".join(parts)


def layout(table: str, columns: Iterable[tuple[str, int]]) -> str:
    primary = footprint.table(table).primary_id
    cells = "".join(f'<cell name="{c}" width="{w}" />' for c, w in columns)
    return (f'<grid name="resultset" object="0" jump="{footprint.table(table).primary_name}" select="1" icon="1" '
            f'preview="1"><row name="result" id="{primary}">{cells}</row></grid>')


@dataclass(frozen=True)
class View:
    name: str
    table: str
    description: str
    fetch_xml: str
    layout_xml: str


_PT, _PP, _INV = "w365_paymenttransaction", "w365_paymentprofile", "invoice"
VIEWS = (
    View("Active Payment Profiles", _PP, "Cards in use, the default first.",
         fetch(_PP, ("w365_name", "w365_accountid", "w365_cardtype", "w365_expiration", "w365_isdefault",
                     "w365_syncstatus"),
               filters='<filter type="and"><condition attribute="statecode" operator="eq" value="0" /></filter>',
               order=(("w365_isdefault", True), ("w365_name", False))),
         layout(_PP, (("w365_name", 200), ("w365_accountid", 200), ("w365_cardtype", 100),
                      ("w365_expiration", 100), ("w365_isdefault", 80), ("w365_syncstatus", 120)))),
    View("Profiles Waiting for Sync or Failing It", _PP, "New cards nobody synced yet, and cards the gateway refused.",
         fetch(_PP, ("w365_name", "w365_accountid", "w365_syncstatus", "w365_lastsyncedon", "modifiedon"),
               filters=f'<filter type="and">{_in(_PP, "w365_syncstatus", "Pending Sync", "Sync Failed")}</filter>',
               order=(("modifiedon", True),)),
         layout(_PP, (("w365_name", 200), ("w365_accountid", 200), ("w365_syncstatus", 120),
                      ("w365_lastsyncedon", 140), ("modifiedon", 140)))),
    View("Transactions Needing Attention", _PT,
         "Attempts whose outcome is unknown, held for review, or flagged for a person.",
         fetch(_PT, ("w365_name", "w365_accountid", "w365_invoiceid", "w365_amount", "w365_outcome",
                     "w365_transactionresult", "w365_nextcheckon", "createdon"),
               filters=f'<filter type="or">{_in(_PT, "w365_outcome", "Unknown", "Held For Review")}'
                       f'<condition attribute="w365_needsattention" operator="eq" value="1" /></filter>',
               order=(("createdon", True),)),
         layout(_PT, (("w365_name", 200), ("w365_accountid", 160), ("w365_invoiceid", 140), ("w365_amount", 100),
                      ("w365_outcome", 120), ("w365_transactionresult", 260), ("w365_nextcheckon", 140)))),
    View("Failed Payments This Month", _PT, "Declined charges and gateway errors since the first of the month.",
         fetch(_PT, ("w365_name", "w365_accountid", "w365_invoiceid", "w365_amount", "w365_outcome",
                     "w365_reasoncode", "w365_declinetype", "createdon"),
               filters=f'<filter type="and">{_eq(_PT, "w365_type", "Charge")}'
                       f'{_in(_PT, "w365_outcome", "Declined", "Error")}'
                       '<condition attribute="createdon" operator="this-month" /></filter>',
               order=(("createdon", True),)),
         layout(_PT, (("w365_name", 200), ("w365_accountid", 160), ("w365_amount", 100), ("w365_outcome", 100),
                      ("w365_reasoncode", 80), ("w365_declinetype", 100), ("createdon", 140)))),
    View("Invoices in Dunning by Status", _INV, "Invoices automatic collection is still chasing, by dunning status.",
         fetch(_INV, ("name", "customerid", "w365_balance", "w365_dunningstatus", "w365_failedattempts",
                      "w365_nextretryon", "duedate"),
               filters=f'<filter type="and">'
                       f'{_in(_INV, "w365_dunningstatus", "Retrying", "Awaiting Card", "Exhausted", "Needs Review")}'
                       '</filter>',
               order=(("w365_dunningstatus", False), ("w365_nextretryon", False)),
               links='<link-entity name="account" from="accountid" to="customerid" link-type="outer" '
                     'alias="customer"><attribute name="creditonhold" /></link-entity>'),
         layout(_INV, (("name", 200), ("customerid", 180), ("w365_balance", 100), ("w365_dunningstatus", 120),
                       ("w365_failedattempts", 80), ("w365_nextretryon", 140), ("customer.creditonhold", 100)))),
    View("Billing Runs", "w365_billingrun", "Every automatic collection, the latest first.",
         fetch("w365_billingrun", ("w365_name", "w365_asof", "w365_trigger", "w365_status", "w365_invoicesdue",
                                   "w365_charged", "w365_declined", "w365_amountcollected", "w365_amountfailed",
                                   "w365_startedon"),
               order=(("w365_startedon", True),)),
         layout("w365_billingrun", (("w365_name", 180), ("w365_asof", 110), ("w365_trigger", 80),
                                    ("w365_status", 140), ("w365_invoicesdue", 80), ("w365_charged", 80),
                                    ("w365_declined", 80), ("w365_amountcollected", 110),
                                    ("w365_amountfailed", 110)))),
    View("Button Results of the Last Day", "w365_operation", "What the buttons answered in the last 24 hours.",
         fetch("w365_operation", ("w365_name", "w365_messagename", "w365_status", "w365_message", "createdon"),
               filters='<filter type="and"><condition attribute="createdon" operator="last-x-hours" value="24" />'
                       '</filter>',
               order=(("createdon", True),)),
         layout("w365_operation", (("w365_name", 200), ("w365_messagename", 180), ("w365_status", 90),
                                   ("w365_message", 360), ("createdon", 140)))),
)


@dataclass(frozen=True)
class Chart:
    name: str
    table: str
    description: str
    fetch_xml: str                   # aggregate FetchXML: the groupby aliases are the category, the rest the series
    category: tuple[str, ...]        # groupby aliases, outermost first (a date: year, month[, day])
    series: tuple[str, ...]          # aggregate aliases
    kind: str                        # Column, Bar, Line, Pie, Funnel


def _aggregate(table: str, *, measures: Iterable[tuple[str, str, str]], groups: Iterable[tuple[str, str, str | None]],
               filters: str = "") -> str:
    """measures: (column, aggregate, alias); groups: (column, alias, dategrouping or None)."""
    groups = list(groups)
    parts = [f'<fetch aggregate="true" mapping="logical"><entity name="{table}">']
    parts += [f'<attribute name="{c}" aggregate="{a}" alias="{alias}" />' for c, a, alias in measures]
    for column, alias, dategrouping in groups:
        grouping = f' dategrouping="{dategrouping}"' if dategrouping else ""
        parts.append(f'<attribute name="{column}" groupby="true" alias="{alias}"{grouping} />')
    if filters:
        parts.append(filters)
    parts += [f'<order alias="{alias}" />' for _, alias, _ in groups]
    parts.append("</entity></fetch>")
    return "".join(parts)


_APPROVED_CHARGES = (f'<filter type="and">{_eq(_PT, "w365_type", "Charge")}{_eq(_PT, "w365_outcome", "Approved")}'
                     '<condition attribute="createdon" operator="last-x-days" value="30" /></filter>')
CHARTS = (
    Chart("Collected per Day", _PT, "Approved charges of the last 30 days, per day.",
          _aggregate(_PT, measures=(("w365_amount", "sum", "collected"), ("w365_amount", "count", "payments")),
                     groups=(("createdon", "year", "year"), ("createdon", "month", "month"),
                             ("createdon", "day", "day")), filters=_APPROVED_CHARGES),
          ("year", "month", "day"), ("collected",), "Column"),
    Chart("Failures by Reason", _PT, "Declined charges and errors of the last 30 days, by the gateway's reason code.",
          _aggregate(_PT, measures=(("w365_paymenttransactionid", "count", "failures"),),
                     groups=(("w365_reasoncode", "reason", None),),
                     filters=f'<filter type="and">{_in(_PT, "w365_outcome", "Declined", "Error")}'
                             '<condition attribute="createdon" operator="last-x-days" value="30" /></filter>'),
          ("reason",), ("failures",), "Bar"),
    Chart("Dunning Funnel", _INV, "Invoices by dunning status: retrying, waiting for a card, exhausted, recovered.",
          _aggregate(_INV, measures=(("invoiceid", "count", "invoices"),),
                     groups=(("w365_dunningstatus", "status", None),),
                     filters=f'<filter type="and">{_in(_INV, "w365_dunningstatus", "Retrying", "Awaiting Card", "Exhausted", "Recovered", "Needs Review")}'
                             '</filter>'),
          ("status",), ("invoices",), "Funnel"),
    Chart("Recovery per Month", "w365_billingrun", "Per month: what automatic collection failed to collect, and what "
                                                   "retries and card updates recovered.",
          _aggregate("w365_billingrun", measures=(("w365_amountfailed", "sum", "failed"),
                                                  ("w365_amountrecovered", "sum", "recovered")),
                     groups=(("w365_startedon", "year", "year"), ("w365_startedon", "month", "month"))),
          ("year", "month"), ("failed", "recovered"), "Column"),
    Chart("Open Attempts", _PT, "Attempts whose outcome is not final yet, by outcome.",
          _aggregate(_PT, measures=(("w365_amount", "sum", "amount"), ("w365_paymenttransactionid", "count", "attempts")),
                     groups=(("w365_outcome", "outcome", None),),
                     filters=f'<filter type="and">{_in(_PT, "w365_outcome", "Pending", "Unknown", "Held For Review")}'
                             '</filter>'),
          ("outcome",), ("attempts",), "Pie"),
)


def data_description(chart: Chart) -> str:
    """savedqueryvisualization.datadescription: the fetch and which aliases are the category and the series."""
    measures = "".join(f'<measurecollection><measure alias="{alias}" /></measurecollection>' for alias in chart.series)
    return (f"<datadefinition><fetchcollection>{chart.fetch_xml}</fetchcollection><categorycollection>"
            f'<category alias="{chart.category[-1]}">{measures}</category></categorycollection></datadefinition>')


def presentation_description(chart: Chart) -> str:
    series = "".join(f'<Series ChartType="{chart.kind}" Name="{alias}" IsValueShownAsLabel="True" />'
                     for alias in chart.series)
    return (f'<Chart Palette="None" PaletteCustomColors="0,120,212; 216,59,1; 16,124,16">'
            f'<Series>{series}</Series><ChartAreas><ChartArea Name="ChartArea1" /></ChartAreas>'
            f'<Titles><Title Text={quoteattr(chart.name)} /></Titles></Chart>')


# --- dashboard, app, sitemap -----------------------------------------------------------------------------------------

DASHBOARD_NAME = "W365 Payments"
DASHBOARD_DESCRIPTION = "What was collected, what failed and why, what needs a person now."
DASHBOARD_CHARTS = tuple(c.name for c in CHARTS)
DASHBOARD_VIEWS = ("Transactions Needing Attention", "Invoices in Dunning by Status")
CHART_CONTROL = "{E7A81278-8635-4d9e-8D4D-59480B391C5B}"          # the chart control's classid in form XML


def dashboard_xml(chart_ids: dict[str, str], view_ids: dict[str, str]) -> str:
    """systemform.formxml of a system dashboard (type 0): one cell per chart and per view."""
    def cell(i: int, label_: str, table: str, view: str, chart: str | None) -> str:
        chart_part = f"<VisualizationId>{{{chart}}}</VisualizationId>" if chart else ""
        return (f'<cell id="{{w365-cell-{i}}}" rowspan="6" colspan="1"><labels><label description={quoteattr(label_)} '
                f'languagecode="1033" /></labels><control id="w365_part_{i}" classid="{CHART_CONTROL}">'
                f"<parameters><ViewId>{{{view}}}</ViewId><TargetEntityType>{table}</TargetEntityType>"
                f"{chart_part}<IsUserChart>false</IsUserChart><EnableChartPicker>false</EnableChartPicker>"
                f"</parameters></control></cell>")
    cells = []
    for i, chart in enumerate(CHARTS):
        view = next(v for v in VIEWS if v.table == chart.table)        # the chart draws that view's table
        cells.append(cell(i, chart.name, chart.table, view_ids[view.name], chart_ids[chart.name]))
    for j, name in enumerate(DASHBOARD_VIEWS, len(cells)):
        view = next(v for v in VIEWS if v.name == name)
        cells.append(cell(j, name, view.table, view_ids[name], None))
    rows = "".join(f"<row>{''.join(cells[k:k + 2])}</row>" for k in range(0, len(cells), 2))
    return (f'<form><tabs><tab name="w365_dashboard" verticallayout="true"><labels><label description='
            f'{quoteattr(DASHBOARD_NAME)} languagecode="1033" /></labels><columns><column width="100%"><sections>'
            f'<section name="w365_main" showlabel="false"><labels><label description="Main" languagecode="1033" />'
            f"</labels><rows>{rows}</rows></section></sections></column></columns></tab></tabs></form>")


APP_UNIQUE_NAME = "w365_Payments"
APP_NAME = "W365 Payments"
APP_DESCRIPTION = "Billing runs, invoices, payment profiles, transactions and the W365 configuration."
# The default app icon of model-driven apps (appmodule.webresourceid when no icon of one's own is given).
DEFAULT_APP_ICON = "953b9fac-1e5e-e611-80d6-00155ded156f"
SITEMAP_UNIQUE_NAME = "w365_payments"

# (group title, [(subarea id, title, table or None for the dashboard)])
SITEMAP: tuple[tuple[str, tuple[tuple[str, str, str | None], ...]], ...] = (
    ("Overview", (("w365_dashboard", "Dashboard", None),)),
    ("Billing", (("w365_billingruns", "Billing Runs", "w365_billingrun"), ("w365_invoices", "Invoices", "invoice"),
                 ("w365_orders", "Orders", "salesorder"), ("w365_accounts", "Accounts", "account"))),
    ("Payments", (("w365_profiles", "Payment Profiles", "w365_paymentprofile"),
                  ("w365_transactions", "Transactions", "w365_paymenttransaction"),
                  ("w365_operations", "Button Results", "w365_operation"))),
    ("Settings", (("w365_configuration", "Configuration", "w365_configuration"),
                  ("w365_providers", "Providers", "w365_provider"))),
)
APP_TABLES = tuple(dict.fromkeys(t for _, items in SITEMAP for _, _, t in items if t))


def sitemap_xml(dashboard_id: str | None) -> str:
    groups = []
    for title, items in SITEMAP:
        subareas = []
        for ident, text, table in items:
            target = f'Entity="{table}"' if table else \
                f'Url="/main.aspx?pagetype=dashboard&amp;id={{{dashboard_id or ""}}}"'
            subareas.append(f'<SubArea Id="{ident}" {target}><Titles><Title LCID="1033" Title={quoteattr(text)} />'
                            f"</Titles></SubArea>")
        groups.append(f'<Group Id="w365_{title.lower()}"><Titles><Title LCID="1033" Title={quoteattr(title)} />'
                      f"</Titles>{''.join(subareas)}</Group>")
    return (f'<SiteMap IntroducedVersion="7.0.0.0"><Area Id="w365_area" ShowGroups="true"><Titles><Title LCID="1033" '
            f'Title={quoteattr(APP_NAME)} /></Titles>{"".join(groups)}</Area></SiteMap>')

