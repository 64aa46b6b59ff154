"""The service's Dataverse footprint as plain data: tables, columns, choices, Custom APIs, webhook steps, web resources,
environment variables.

Everything of CONTRACT §3-§4 lives here once. The installer reads it to add what is ours (our tables; `w365_` columns on
native tables), the stand-in builds its schema from it, and use cases call `choice()`/`label()` instead of writing
magic numbers. No I/O.

Naming rules (CONTRACT §4):
- entity set = logical name + "s" for our tables; natives keep theirs (`transactioncurrencies`, `activityparties`).
- a lookup is read as `_<column>_value` and written `<navigation>@odata.bind`. Ours: navigation = column name.
  A native polymorphic lookup has one navigation per target, `<column>_<target>` (`customerid_account`,
  `regardingobjectid_invoice`).
- one-to-many relationships (collection-valued navigation on the referenced table, for `$expand`): natives keep their
  Dataverse names (`invoice_details`, `order_details`, `email_activity_parties`, `SalesOrder_Annotation`); ours are
  `w365_<referencing table without w365_>_<column without w365_>`, e.g. account -> `w365_paymentprofile_accountid`,
  invoice -> `w365_paymenttransaction_invoiceid`, w365_billingcontract -> `w365_invoice_billingcontractid`.
- choices of ours: 100000000, 100000001, ... in CONTRACT order.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Mapping

from core import bill_to

COLUMN_TYPES = frozenset({"string", "memo", "integer", "decimal", "money", "boolean", "datetime", "choice", "lookup",
                          "uniqueidentifier", "state", "status"})
PREFIX = "w365_"
FIRST_CHOICE = 100000000


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    max_length: int | None = None
    choices: tuple[tuple[int, str], ...] = ()      # (value, label)
    target: str | tuple[str, ...] | None = None    # lookup: one table, or several (polymorphic)
    navigation: str | None = None                  # single-valued navigation property (single-target lookups)
    required: bool = False
    precision: int | None = None                   # decimal places of decimal/money
    relationship: str | tuple[str, ...] | None = None  # one-to-many name(s), aligned with target; None: derived
    system: bool = False                           # set by Dataverse (ids, createdon, ...), never added by us

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"{self.name}: unknown column type {self.type}")

    @property
    def is_ours(self) -> bool:
        return self.name.startswith(PREFIX)

    @property
    def value_property(self) -> str:
        """The property the Web API returns: `_x_value` for a lookup, the name otherwise."""
        return f"_{self.name}_value" if self.type == "lookup" else self.name

    @property
    def targets(self) -> tuple[str, ...]:
        if self.target is None:
            return ()
        return (self.target,) if isinstance(self.target, str) else tuple(self.target)

    @property
    def navigations(self) -> dict[str, str]:
        """navigation property -> target table."""
        if isinstance(self.target, str):
            return {self.navigation or self.name: self.target}
        return {f"{self.name}_{t}": t for t in self.targets}


@dataclass(frozen=True)
class State:
    value: int
    label: str
    statuses: tuple[tuple[int, str], ...]          # (statuscode, label); the first is the default

    @property
    def default_status(self) -> int:
        return self.statuses[0][0]


@dataclass(frozen=True)
class Table:
    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str | None
    columns: tuple[Column, ...]
    native: bool = False
    alternate_keys: tuple[tuple[str, ...], ...] = ()
    states: tuple[State, ...] = ()

    def column(self, name: str) -> Column | None:
        return self._by_name.get(name)

    @functools.cached_property
    def _by_name(self) -> dict[str, Column]:
        """name -> column (the first of that name), built once: every request of the stand-in looks columns up."""
        by_name: dict[str, Column] = {}
        for c in self.columns:
            by_name.setdefault(c.name, c)
        return by_name

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def custom_columns(self) -> tuple[Column, ...]:
        """What the installer adds: every non-system column of our tables, only `w365_` columns of native ones."""
        return tuple(c for c in self.columns if not c.system and (c.is_ours or not self.native))

    def state(self, value: int) -> State | None:
        return next((s for s in self.states if s.value == value), None)

    def valid_state_status(self, statecode: int, statuscode: int) -> bool:
        state = self.state(statecode)
        return state is not None and any(v == statuscode for v, _ in state.statuses)


@dataclass(frozen=True)
class Relationship:
    """One-to-many: `name` is the collection-valued navigation property on `referenced`."""
    name: str
    referenced: str
    referencing: str
    column: str
    navigation: str                                # single-valued navigation on `referencing`


@dataclass(frozen=True)
class ManyToMany:
    name: str                                      # navigation property on both sides
    table1: str
    table2: str
    intersect: str


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str                                      # Custom API parameter type: String, Guid, Decimal, Boolean
    optional: bool = False


@dataclass(frozen=True)
class CustomApi:
    unique_name: str
    bound_to: str | None                           # table (BindingType 1, implicit Target), None = global
    parameters: tuple[Parameter, ...] = ()
    step_type: int = 2                             # AllowedCustomProcessingStepType 2: sync and async
    privilege: str | None = None                   # ExecutePrivilegeName
    is_function: bool = False


@dataclass(frozen=True)
class WebhookStep:
    message: str
    table: str
    stage: int = 40                                # PostOperation
    mode: int = 1                                  # asynchronous
    filtering_attributes: tuple[str, ...] = ()
    pre_image: tuple[str, ...] = ()


# The app settings whose values may go into Dataverse environment variables: public ones only. The transaction and
# signature keys never leave the function app's settings.
PUBLIC_SETTINGS = frozenset({"AUTHORIZENET_CLIENT_KEY", "AUTHORIZENET_LOGIN_ID", "AUTHORIZENET_ENVIRONMENT"})


@dataclass(frozen=True)
class EnvironmentVariable:
    schema_name: str
    display_name: str
    type: str                                      # label of environmentvariabledefinition.type
    default_value: str | None
    setting: str                                   # the app setting (CONTRACT §1) that supplies the current value

    def __post_init__(self) -> None:
        if self.setting not in PUBLIC_SETTINGS:
            raise ValueError(f"{self.schema_name}: {self.setting} is not a public setting")


@dataclass(frozen=True)
class WebResource:
    name: str
    path: str                                      # in this repository
    type: int = 3                                  # webresourcetype 3: Script (JScript)


# --- builders --------------------------------------------------------------------------------------------------------

def _choices(*labels: str) -> tuple[tuple[int, str], ...]:
    return tuple((FIRST_CHOICE + i, label) for i, label in enumerate(labels))


def _s(name: str, max_length: int = 100, **kw) -> Column:
    return Column(name, "string", max_length=max_length, **kw)


def _memo(name: str, max_length: int = 2000) -> Column:
    return Column(name, "memo", max_length=max_length)


def _money(name: str) -> Column:
    return Column(name, "money", precision=2)


def _dec(name: str, precision: int = 2) -> Column:
    return Column(name, "decimal", precision=precision)


def _bool(name: str) -> Column:
    return Column(name, "boolean")


def _dt(name: str) -> Column:
    return Column(name, "datetime")


def _choice(name: str, *labels: str) -> Column:
    return Column(name, "choice", choices=_choices(*labels))


def _lookup(name: str, target: str | tuple[str, ...], navigation: str | None = None,
            relationship: str | tuple[str, ...] | None = None, required: bool = False) -> Column:
    return Column(name, "lookup", target=target, navigation=navigation, relationship=relationship, required=required)


ACTIVE_INACTIVE = (State(0, "Active", ((1, "Active"),)), State(1, "Inactive", ((2, "Inactive"),)))


def _table(logical_name: str, primary_id: str, primary_name: str | None, columns: tuple[Column, ...], *,
           native: bool = False, entity_set: str | None = None, states: tuple[State, ...] = (),
           alternate_keys: tuple[tuple[str, ...], ...] = ()) -> Table:
    system = [Column(primary_id, "uniqueidentifier", system=True)]
    tail = [Column("createdon", "datetime", system=True), Column("modifiedon", "datetime", system=True)]
    if states:
        tail += [Column("statecode", "state", system=True), Column("statuscode", "status", system=True)]
    if primary_name and not any(c.name == primary_name for c in columns):
        system.append(_s(primary_name, 200 if native else 100, system=not primary_name.startswith(PREFIX)))
    return Table(logical_name, entity_set or logical_name + "s", primary_id, primary_name,
                 tuple(system) + columns + tuple(tail), native, alternate_keys, states)


def _ours(short: str, columns: tuple[Column, ...], **kw) -> Table:
    name = PREFIX + short
    return _table(name, f"{name}id", f"{PREFIX}name", columns, states=ACTIVE_INACTIVE, **kw)


BILL_TO = tuple(_s(field.column, field.limit) for field in bill_to.FIELDS)   # Authorize.Net customerAddressType limits

# --- our tables ------------------------------------------------------------------------------------------------------

W365_CONFIGURATION = _ours("configuration", (
    _bool("w365_enablecredithold"),
    _lookup("w365_emailfromqueueid", "queue"),
    Column("w365_linkexpiryhours", "integer"),
    _bool("w365_salescansendforapproval"),
    _bool("w365_approvalcanacceptpayment"),
    # Autopay, dunning and card lifecycle (CONTRACT §6)
    _bool("w365_autopayenabled"),
    _s("w365_retryschedule", 100),
    _choice("w365_dunningfinalaction", "None", "Credit Hold"),
    _s("w365_cardupdatesubject", 200),
    _memo("w365_cardupdatebody", 10000),
    _bool("w365_sendreceipts"),
    Column("w365_expirynoticedays", "integer"),
    _dt("w365_autopaysince"),
))

W365_PAYMENTPROFILE = _ours("paymentprofile", (
    _lookup("w365_accountid", "account", required=True),
    _lookup("w365_contactid", "contact"),
    _s("w365_customerprofileid", 40),
    _s("w365_paymentprofileidgateway", 40),
    _s("w365_cardtype", 30),
    _s("w365_cardlast4", 20),
    _s("w365_expiration", 20),
    *BILL_TO,
    _bool("w365_isdefault"),
    _choice("w365_source", "Direct Entry", "Profile Request", "Order"),
    _choice("w365_syncstatus", "Pending Sync", "Synced", "Sync Failed"),
    _dt("w365_lastsyncedon"),
    _dt("w365_expirynoticeon"),
))

W365_SECURELINK = _ours("securelink", (
    _choice("w365_purpose", "Profile Request", "Order Approval", "Card Update"),
    _lookup("w365_accountid", "account"),
    _lookup("w365_contactid", "contact"),
    _lookup("w365_salesorderid", "salesorder"),
    _s("w365_tokenhash", 64),
    _dt("w365_expireson"),
    _choice("w365_status", "Sent", "Completed", "Expired", "Cancelled", "Locked"),
    _dt("w365_completedon"),
    _lookup("w365_paymentprofileid", "w365_paymentprofile"),
    _lookup("w365_emailid", "email"),
    _lookup("w365_failedprofileid", "w365_paymentprofile"),
    Column("w365_declinedcards", "integer"),
), alternate_keys=(("w365_tokenhash",),))

W365_BILLINGCONTRACT = _ours("billingcontract", (
    _lookup("w365_accountid", "account"),
    _lookup("w365_paymentprofileid", "w365_paymentprofile"),
    _bool("w365_autopay"),
))

W365_BILLINGRUN = _ours("billingrun", (
    _dt("w365_asof"),
    _choice("w365_trigger", "Timer", "Manual"),
    _choice("w365_status", "Running", "Completed", "Completed With Errors"),
    _dt("w365_startedon"),
    _dt("w365_completedon"),
    _lookup("w365_startedby", "systemuser"),
    Column("w365_invoicesdue", "integer"),
    Column("w365_charged", "integer"),
    Column("w365_declined", "integer"),
    Column("w365_skipped", "integer"),
    Column("w365_pending", "integer"),
    _money("w365_amountcollected"),
    _money("w365_amountfailed"),
    _money("w365_amountrecovered"),
))

W365_PAYMENTTRANSACTION = _ours("paymenttransaction", (
    _lookup("w365_invoiceid", "invoice"),
    _lookup("w365_salesorderid", "salesorder"),
    _lookup("w365_paymentprofileid", "w365_paymentprofile"),
    _lookup("w365_accountid", "account"),
    _money("w365_amount"),
    _choice("w365_type", "Charge", "Refund", "Void"),
    _choice("w365_outcome", "Pending", "Approved", "Declined", "Error", "Held For Review", "Unknown"),
    _memo("w365_transactionresult"),
    _s("w365_gatewaytransactionid", 40),
    _s("w365_responsecode", 10),
    _s("w365_authcode", 10),
    _s("w365_refid", 20, required=True),            # Authorize.Net refId: at most 20 characters
    _choice("w365_source", "Manual", "Autopay", "Retry", "Order", "Customer Page"),
    _s("w365_reasoncode", 10),
    _choice("w365_declinetype", "Soft", "Hard", "Merchant"),
    _lookup("w365_billingrunid", "w365_billingrun"),
    _dt("w365_nextcheckon"),
    _bool("w365_needsattention"),
), alternate_keys=(("w365_refid",),))

W365_SUBSCRIPTION = _ours("subscription", (
    _lookup("w365_accountid", "account"),
    _lookup("w365_salesorderid", "salesorder"),
    _lookup("w365_productid", "product"),
    _dec("w365_quantity", 5),
    _lookup("w365_providerid", "w365_provider"),
    _choice("w365_provisioningstatus", "Pending", "Blocked By Credit Hold", "Provisioning", "Provisioned", "Failed"),
    _memo("w365_provisioningresult"),
    # Set by Dataverse (the creator unless assigned); the Manual provider files its task for this person.
    Column("ownerid", "lookup", target="systemuser", navigation="ownerid", relationship="user_w365_subscription",
           system=True),
))

W365_PROVIDER = _ours("provider", (
    _choice("w365_type", "Manual", "Webhook"),
    _s("w365_endpointurl", 500),
))

W365_OPERATION = _ours("operation", (
    _s("w365_requestid", 100, required=True),
    _memo("w365_message", 4000),
    _choice("w365_status", "Succeeded", "Failed"),
    _s("w365_messagename", 100),
    _s("w365_regardingtable", 100),
    _s("w365_regardingid", 36),
    _s("w365_initiatinguserid", 36),
    _s("w365_correlationid", 36),
), alternate_keys=(("w365_requestid",),))

# --- native tables (only the columns the service uses; `w365_` columns are ours) -------------------------------------

ACCOUNT = _table("account", "accountid", "name", (
    _bool("creditonhold"),
    _s("accountnumber", 20),
    _s("emailaddress1", 100),
    _s("telephone1", 50),
    _lookup("primarycontactid", "contact", "primarycontactid", "account_primary_contact"),
    _lookup("transactioncurrencyid", "transactioncurrency", "transactioncurrencyid", "transactioncurrency_account"),
    _s("w365_gatewaycustomerprofileid", 40),
), native=True, entity_set="accounts", states=ACTIVE_INACTIVE)

CONTACT = _table("contact", "contactid", "fullname", (
    _s("firstname", 50),
    _s("lastname", 50),
    _s("fullname", 160, system=True),               # computed by Dataverse from first and last name
    _s("emailaddress1", 100),
    _s("telephone1", 50),
    _lookup("parentcustomerid", ("account", "contact"),
            relationship=("contact_customer_accounts", "contact_customer_contacts")),
), native=True, entity_set="contacts", states=ACTIVE_INACTIVE)

INVOICE = _table("invoice", "invoiceid", "name", (
    _s("invoicenumber", 100),
    Column("customerid", "lookup", target=("account", "contact"),
           relationship=("invoice_customer_accounts", "invoice_customer_contacts")),
    _lookup("salesorderid", "salesorder", "salesorderid", "order_invoices"),
    _lookup("pricelevelid", "pricelevel", "pricelevelid", "price_level_invoices"),
    _lookup("transactioncurrencyid", "transactioncurrency", "transactioncurrencyid", "transactioncurrency_invoice"),
    _money("totalamount"), _money("totaltax"), _money("totallineitemamount"), _money("discountamount"),
    _dt("duedate"),
    _memo("description"),
    _lookup("w365_billingcontractid", "w365_billingcontract"),
    _money("w365_amountpaid"),
    _money("w365_balance"),
    _s("w365_lastchargestatus", 200),
    _choice("w365_dunningstatus", "None", "Retrying", "Awaiting Card", "Exhausted", "Recovered", "Needs Review"),
    _dt("w365_firstfailedon"),
    _dt("w365_nextretryon"),
    Column("w365_failedattempts", "integer"),
), native=True, entity_set="invoices", states=(
    State(0, "Active", ((1, "New"), (2, "Partially Shipped"), (4, "Billed"), (5, "Booked"), (6, "Installed"))),
    State(2, "Paid", ((100001, "Complete"), (100002, "Partial"))),
    State(3, "Canceled", ((100003, "Canceled"),)),
))

_LINE = (
    _lookup("productid", "product", "productid"),
    _s("productdescription", 500),
    _dec("quantity", 5),
    _money("priceperunit"), _money("baseamount"), _money("tax"), _money("extendedamount"),
)

INVOICEDETAIL = _table("invoicedetail", "invoicedetailid", None, (
    _lookup("invoiceid", "invoice", "invoiceid", "invoice_details", required=True),
    *_LINE,
), native=True, entity_set="invoicedetails")

SALESORDER = _table("salesorder", "salesorderid", "name", (
    _s("ordernumber", 100),
    Column("customerid", "lookup", target=("account", "contact"),
           relationship=("order_customer_accounts", "order_customer_contacts")),
    _lookup("pricelevelid", "pricelevel", "pricelevelid", "price_level_orders"),
    _lookup("transactioncurrencyid", "transactioncurrency", "transactioncurrencyid", "transactioncurrency_salesorder"),
    _money("totalamount"), _money("totaltax"), _money("totallineitemamount"), _money("discountamount"),
    _memo("description"),
    _choice("w365_orderstatus", "Draft", "Pending Approval", "Declined", "Activated", "Scheduled"),
    _bool("w365_paymentdeclined"),
    _dt("w365_activationdate"),
    _lookup("w365_paymentprofileid", "w365_paymentprofile"),
    _s("w365_signaturename", 200),
    _dt("w365_approvedon"),
), native=True, entity_set="salesorders", states=(
    State(0, "Active", ((1, "New"), (2, "Pending"))),
    State(1, "Submitted", ((3, "In Progress"),)),
    State(2, "Canceled", ((4, "No Money"),)),
    State(3, "Fulfilled", ((100001, "Complete"), (100002, "Partial"))),
    State(4, "Invoiced", ((100003, "Invoiced"),)),
))

SALESORDERDETAIL = _table("salesorderdetail", "salesorderdetailid", None, (
    _lookup("salesorderid", "salesorder", "salesorderid", "order_details", required=True),
    *_LINE,
), native=True, entity_set="salesorderdetails")

PRODUCT = _table("product", "productid", "name", (
    _s("productnumber", 100),
    _money("price"),
    _memo("description"),
), native=True, entity_set="products", states=(
    State(0, "Active", ((1, "Active"),)), State(1, "Retired", ((2, "Retired"),)),
    State(2, "Draft", ((0, "Draft"),)), State(3, "Under Revision", ((3, "Under Revision"),)),
))

_NOTE_TARGETS = ("account", "contact", "invoice", "salesorder", "w365_paymentprofile", "w365_paymenttransaction")
ANNOTATION = _table("annotation", "annotationid", "subject", (
    _memo("notetext", 100000),
    # An attachment (the signature image of an approved order): base64 body, its type and file name.
    _bool("isdocument"),
    _memo("documentbody", 1_048_576),
    _s("mimetype", 256),
    _s("filename", 255),
    _lookup("objectid", _NOTE_TARGETS, relationship=(
        "Account_Annotation", "Contact_Annotation", "Invoice_Annotation", "SalesOrder_Annotation",
        "w365_paymentprofile_Annotations", "w365_paymenttransaction_Annotations")),
), native=True, entity_set="annotations")

_REGARDING = ("account", "contact", "invoice", "salesorder", "w365_securelink", "w365_paymentprofile")

EMAIL = _table("email", "activityid", "subject", (
    _memo("description", 100000),
    _bool("directioncode"),
    _lookup("regardingobjectid", _REGARDING, relationship=(
        "Account_Emails", "Contact_Emails", "Invoice_Emails", "SalesOrder_Emails", "w365_securelink_Emails",
        "w365_paymentprofile_Emails")),
), native=True, entity_set="emails", states=(
    State(0, "Open", ((1, "Draft"), (8, "Failed"))),
    State(1, "Completed", ((2, "Completed"), (3, "Sent"), (4, "Received"), (6, "Pending Send"), (7, "Sending"))),
    State(2, "Canceled", ((5, "Canceled"),)),
))

# Senders and recipients of an email: created inline with it, as `email_activity_parties: [{"partyid_contact@odata.bind":
# "/contacts(<id>)", "participationtypemask": 2}, {"partyid_queue@odata.bind": "/queues(<id>)",
# "participationtypemask": 1}]`.
ACTIVITYPARTY = _table("activityparty", "activitypartyid", None, (
    _lookup("activityid", ("email",), relationship=("email_activity_parties",)),
    _lookup("partyid", ("systemuser", "contact", "account", "queue"), relationship=(
        "systemuser_activity_parties", "contact_activity_parties", "account_activity_parties",
        "queue_activity_parties")),
    Column("participationtypemask", "choice", choices=((1, "Sender"), (2, "To Recipient"), (3, "CC Recipient"),
                                                       (4, "BCC Recipient"))),
    _s("addressused", 200),
), native=True, entity_set="activityparties")

TASK = _table("task", "activityid", "subject", (
    _memo("description", 2000),
    _dt("scheduledend"),
    Column("ownerid", "lookup", target="systemuser", navigation="ownerid", relationship="user_task", system=True),
    _lookup("regardingobjectid", _REGARDING[:4], relationship=(
        "Account_Tasks", "Contact_Tasks", "Invoice_Tasks", "SalesOrder_Tasks")),
), native=True, entity_set="tasks", states=(
    State(0, "Open", ((2, "Not Started"), (3, "In Progress"), (4, "Waiting on someone else"), (7, "Deferred"))),
    State(1, "Completed", ((5, "Completed"),)),
    State(2, "Canceled", ((6, "Canceled"),)),
))

QUEUE = _table("queue", "queueid", "name", (
    _s("emailaddress", 100),
), native=True, entity_set="queues", states=ACTIVE_INACTIVE)

SYSTEMUSER = _table("systemuser", "systemuserid", "fullname", (
    _s("firstname", 64), _s("lastname", 64),
    _s("domainname", 1024),
    _s("internalemailaddress", 100),
    _bool("isdisabled"),
    Column("applicationid", "uniqueidentifier"),
), native=True, entity_set="systemusers")

ROLETEMPLATE = _table("roletemplate", "roletemplateid", "name", (), native=True, entity_set="roletemplates")

# A role exists once per business unit: the copies point at the root role (parentrootroleid), and Dataverse's own
# roles also name their template (roletemplateid), the same in every organization. Administrators are recognised by
# these ids (core/permissions.py), never by a role's name.
ROLE = _table("role", "roleid", "name", (
    Column("parentrootroleid", "lookup", target="role", navigation="parentrootroleid",
           relationship="role_parent_root_role", system=True),
    Column("roletemplateid", "lookup", target="roletemplate", navigation="roletemplateid",
           relationship="role_template_roles", system=True),
), native=True, entity_set="roles")

TEAM = _table("team", "teamid", "name", (), native=True, entity_set="teams")

TRANSACTIONCURRENCY = _table("transactioncurrency", "transactioncurrencyid", "currencyname", (
    _s("isocurrencycode", 5), _s("currencysymbol", 10), _dec("exchangerate", 10),
), native=True, entity_set="transactioncurrencies", states=ACTIVE_INACTIVE)

PRICELEVEL = _table("pricelevel", "pricelevelid", "name", (
    _lookup("transactioncurrencyid", "transactioncurrency", "transactioncurrencyid", "transactioncurrency_pricelevel"),
), native=True, entity_set="pricelevels", states=(
    State(0, "Active", ((100001, "Active"),)), State(1, "Inactive", ((100002, "Inactive"),)),
))

# Solution components read by the Direct Entry dialog (directentry.js: current value, else default value).
ENVIRONMENTVARIABLEDEFINITION = _table(
    "environmentvariabledefinition", "environmentvariabledefinitionid", "schemaname", (
    _s("schemaname", 100),
    _s("displayname", 100),
    _choice("type", "String", "Number", "Boolean", "JSON", "Data source", "Secret"),    # Dataverse's own values
    _memo("defaultvalue", 2000),
    _memo("description", 2000),
), native=True, entity_set="environmentvariabledefinitions", states=ACTIVE_INACTIVE)

ENVIRONMENTVARIABLEVALUE = _table("environmentvariablevalue", "environmentvariablevalueid", "schemaname", (
    _s("schemaname", 100),
    _memo("value", 2000),
    _lookup("environmentvariabledefinitionid", "environmentvariabledefinition", "EnvironmentVariableDefinitionId",
            "environmentvariabledefinition_environmentvariablevalue", required=True),
), native=True, entity_set="environmentvariablevalues", states=ACTIVE_INACTIVE)

OUR_TABLES = (W365_CONFIGURATION, W365_PAYMENTPROFILE, W365_SECURELINK, W365_BILLINGCONTRACT, W365_PAYMENTTRANSACTION,
              W365_SUBSCRIPTION, W365_PROVIDER, W365_OPERATION, W365_BILLINGRUN)
NATIVE_TABLES = (ACCOUNT, CONTACT, INVOICE, INVOICEDETAIL, SALESORDER, SALESORDERDETAIL, PRODUCT, ANNOTATION, EMAIL,
                 ACTIVITYPARTY, TASK, QUEUE, SYSTEMUSER, ROLETEMPLATE, ROLE, TEAM, TRANSACTIONCURRENCY, PRICELEVEL,
                 ENVIRONMENTVARIABLEDEFINITION, ENVIRONMENTVARIABLEVALUE)
TABLES = OUR_TABLES + NATIVE_TABLES

MANY_TO_MANY = (ManyToMany("systemuserroles_association", "systemuser", "role", "systemuserroles"),
                ManyToMany("teamroles_association", "team", "role", "teamroles"),
                ManyToMany("teammembership_association", "systemuser", "team", "teammembership"))

# Security privileges are named prv<Access><schema name>: ours by their logical name (schema = logical, CONTRACT §4),
# natives by Dataverse's schema names; activities share prv<Access>Activity and notes are prv<Access>Note.
PRIVILEGE_SCHEMA: Mapping[str, str] = {
    "account": "Account", "contact": "Contact", "invoice": "Invoice", "salesorder": "SalesOrder", "product": "Product",
    "annotation": "Note", "email": "Activity", "task": "Activity", "queue": "Queue", "systemuser": "User",
    "role": "Role", "team": "Team", "transactioncurrency": "TransactionCurrency", "pricelevel": "PriceLevel",
    "environmentvariabledefinition": "environmentvariabledefinition",
    "environmentvariablevalue": "environmentvariablevalue"}


def _relationships() -> tuple[Relationship, ...]:
    found = []
    for t in TABLES:
        for c in t.columns:
            if c.type != "lookup":
                continue
            names = c.relationship
            if names is None:
                names = f"{PREFIX}{t.logical_name.removeprefix(PREFIX)}_{c.name.removeprefix(PREFIX)}"
            names = (names,) if isinstance(names, str) else names
            for name, (nav, target) in zip(names, c.navigations.items(), strict=True):
                found.append(Relationship(name, target, t.logical_name, c.name, nav))
    return tuple(found)


RELATIONSHIPS = _relationships()

# --- Custom APIs (CONTRACT §3): RequestId on all; Target implicit on bound ones --------------------------------------

_REQ = Parameter("RequestId", "String")
_OPAQUE = (Parameter("OpaqueDataDescriptor", "String", True), Parameter("OpaqueDataValue", "String", True))
_PROFILE_WRITE = "prvWritew365_paymentprofile"
_PAY = "prvCreatew365_paymenttransaction"

CUSTOM_APIS = (
    CustomApi("w365_AddPaymentProfile", "account", (
        _REQ, Parameter("ContactId", "Guid"), Parameter("Method", "String"), *_OPAQUE,
        Parameter("BillTo", "String", True), Parameter("SetAsDefault", "Boolean", True),
        Parameter("EmailSubject", "String", True), Parameter("EmailBody", "String", True),
    ), privilege="prvCreatew365_paymentprofile"),
    CustomApi("w365_SyncPaymentProfile", "w365_paymentprofile", (_REQ,), privilege=_PROFILE_WRITE),
    CustomApi("w365_SyncPaymentProfiles", "account", (_REQ,), privilege=_PROFILE_WRITE),
    CustomApi("w365_SetDefaultPaymentProfile", "w365_paymentprofile", (_REQ,), privilege=_PROFILE_WRITE),
    CustomApi("w365_UpdatePaymentProfile", "w365_paymentprofile", (
        _REQ, Parameter("BillTo", "String"), *_OPAQUE), privilege=_PROFILE_WRITE),
    CustomApi("w365_DeactivatePaymentProfile", "w365_paymentprofile", (_REQ,), privilege=_PROFILE_WRITE),
    CustomApi("w365_ChargeInvoice", "invoice", (_REQ, Parameter("Amount", "Decimal", True)), privilege=_PAY),
    CustomApi("w365_RefundTransaction", "w365_paymenttransaction", (_REQ, Parameter("Amount", "Decimal", True)),
              privilege=_PAY),
    CustomApi("w365_SubmitOrderPayment", "salesorder", (
        _REQ, Parameter("PaymentProfileId", "Guid", True), *_OPAQUE, Parameter("BillTo", "String", True),
    ), privilege=_PAY),
    CustomApi("w365_SendOrderForApproval", "salesorder", (
        _REQ, Parameter("ContactId", "Guid"), Parameter("EmailSubject", "String"), Parameter("EmailBody", "String"),
    ), privilege="prvWriteSalesOrder"),
    CustomApi("w365_ConvertOrderToDraft", "salesorder", (_REQ,), privilege="prvWriteSalesOrder"),
    CustomApi("w365_RunBilling", "w365_configuration", (_REQ, Parameter("AsOf", "DateTime", True)), privilege=_PAY),
)

WEBHOOK_STEPS = tuple(WebhookStep(api.unique_name, api.bound_to or "none") for api in CUSTOM_APIS) + (
    WebhookStep("Update", "account", filtering_attributes=("creditonhold",), pre_image=("creditonhold",)),
    WebhookStep("Create", "w365_subscription"),
    # The pre-image shows whether the switch really went from on to off.
    WebhookStep("Update", "w365_configuration",
                filtering_attributes=("w365_enablecredithold", "w365_autopayenabled"),
                pre_image=("w365_enablecredithold", "w365_autopayenabled")),
)

WEB_RESOURCES = tuple(WebResource(f"w365_/scripts/{n}.js", f"webresources/w365_/scripts/{n}.js")
                      for n in ("common", "paymentprofile", "invoice", "salesorder", "account", "amount",
                                "paymenttransaction", "directentry", "configuration")) + (
    WebResource("w365_/pages/directentry.html", "webresources/w365_/pages/directentry.html", type=1),)  # 1: HTML

# What the Direct Entry dialog needs for Accept.js; the installer sets each value from its setting when present.
ENVIRONMENT_VARIABLES = (
    EnvironmentVariable("w365_AcceptJsClientKey", "Accept.js Client Key", "String", None, "AUTHORIZENET_CLIENT_KEY"),
    EnvironmentVariable("w365_AuthorizeNetLoginId", "Authorize.Net API Login ID", "String", None,
                        "AUTHORIZENET_LOGIN_ID"),
    EnvironmentVariable("w365_AuthorizeNetEnvironment", "Authorize.Net Environment", "String", "sandbox",
                        "AUTHORIZENET_ENVIRONMENT"),
)

CONFIGURATION_DEFAULTS: Mapping[str, object] = {
    "w365_name": "Configuration",
    "w365_enablecredithold": False,
    "w365_linkexpiryhours": 72,
    "w365_salescansendforapproval": False,
    "w365_approvalcanacceptpayment": False,
    "w365_autopayenabled": False,
    "w365_retryschedule": "3,7,14,21",
    "w365_sendreceipts": False,
    "w365_expirynoticedays": 30,
}

# --- look-ups --------------------------------------------------------------------------------------------------------

_BY_NAME = {t.logical_name: t for t in TABLES}
_BY_SET = {t.entity_set: t for t in TABLES}


def table(logical_name: str) -> Table:
    try:
        return _BY_NAME[logical_name]
    except KeyError:
        raise KeyError(f"no table {logical_name!r} in the footprint") from None


def table_by_entity_set(name: str) -> Table:
    try:
        return _BY_SET[name]
    except KeyError:
        raise KeyError(f"no entity set {name!r} in the footprint") from None


def entity_set(logical_name: str) -> str:
    return table(logical_name).entity_set


def one_to_many(logical_name: str) -> tuple[Relationship, ...]:
    """Relationships where `logical_name` is the referenced (one) side: its collection-valued navigations."""
    return tuple(r for r in RELATIONSHIPS if r.referenced == logical_name)


def _options(table_name: str, column: str) -> tuple[tuple[int, str], ...]:
    t = table(table_name)
    if column == "statecode":
        return tuple((s.value, s.label) for s in t.states)
    if column == "statuscode":
        return tuple(st for s in t.states for st in s.statuses)
    col = t.column(column)
    if col is None or not col.choices:
        raise KeyError(f"{table_name}.{column} is not a choice column")
    return col.choices


def choice(table_name: str, column: str, label_: str) -> int:
    """choice("invoice", "statecode", "Paid") -> 2; choice("w365_paymentprofile", "w365_syncstatus", "Synced") ->
    100000001. Status labels repeated across states (none in this footprint) would return the first."""
    for value, text in _options(table_name, column):
        if text == label_:
            return value
    raise KeyError(f"{table_name}.{column} has no choice {label_!r}")


def label(table_name: str, column: str, value: int) -> str:
    for v, text in _options(table_name, column):
        if v == value:
            return text
    raise KeyError(f"{table_name}.{column} has no value {value!r}")
