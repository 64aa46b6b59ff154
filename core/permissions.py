"""The service never does for a person what that person could not do in Dataverse (CONTRACT §3).

Dataverse checks the Custom API's ExecutePrivilegeName before the step runs; these checks are about the records.
RIGHTS says, for every message and event, which rights on which records it needs and how each is checked; the
handlers ask it (`AccessCheck`) which explicit checks to run, and README "Rights: who may do what" is its table (a test
keeps the two equal). Two ways of checking, the cheaper for the flow:
- AS_PERSON: the write is made as the person (`services.for_user(user_id)`, MSCRMCallerID), so Dataverse applies
  their privileges to it (403 -> AccessDenied) at no extra round trip;
- EXPLICIT: the work is done with the service's own rights (it writes what the person may not touch directly: the
  invoice's amount paid, the operation row), so RetrievePrincipalAccess asks first, riding in the read `$batch` of the
  record it guards (no extra round trip either), before anything is written or sent to the gateway.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from core import footprint
from core.errors import AccessDenied, BusinessRuleViolation
from core.ports import Read, Record
from core.services import Services

READ, WRITE, CREATE, APPEND, APPEND_TO, DELETE, SHARE, ASSIGN = (
    "ReadAccess", "WriteAccess", "CreateAccess", "AppendAccess", "AppendToAccess", "DeleteAccess", "ShareAccess",
    "AssignAccess")

EXPLICIT = "RetrievePrincipalAccess, in the read $batch"
AS_PERSON = "as the person (MSCRMCallerID)"
ADMINISTRATOR = "administrator role, by id, direct or through a team"
DATAVERSE = "by Dataverse before the event"

# CONTRACT §4: administrators are System Administrator or W365 Billing Manager, assigned directly or through a team,
# recognised by the roles' ids. System Administrator is a Dataverse role: its template id is the same in every
# organization. W365 Billing Manager is the root role the product's solution installs with this id; its copies in
# other business units point at it through parentrootroleid.
SYSTEM_ADMINISTRATOR_TEMPLATE_ID = "627090ff-40a3-4053-8790-584edc5be201"
BILLING_MANAGER_ROLE_ID = "5d6b0c7e-3a41-4f6e-9c2d-7b1e0a9f3c51"
_ROLE_COLUMNS = "roleid,_parentrootroleid_value,_roletemplateid_value"
ROLES_EXPAND = (f"systemuserroles_association($select={_ROLE_COLUMNS}),"
                f"teammembership_association($select=teamid;$expand=teamroles_association($select={_ROLE_COLUMNS}))")


@dataclass(frozen=True)
class Right:
    """`rights` on `table` rows named by `record` (Target, a parameter, or words for rows the handler finds), checked
    `how`."""
    table: str
    record: str
    rights: tuple[str, ...]
    how: str


# Every message and event, with the rights it needs. A message's ExecutePrivilegeName (Dataverse's own check before
# the call) is not repeated here.
RIGHTS: dict[str, tuple[Right, ...]] = {
    "w365_ChargeInvoice": (
        Right("invoice", "Target", (READ, WRITE), EXPLICIT),
        Right("w365_paymenttransaction", "the attempt", (CREATE,), AS_PERSON),
    ),
    "w365_RefundTransaction": (
        # CreateAccess on the charge says whether they may make a payment transaction (the refund) at all: asked
        # before the gateway is asked about the charge.
        Right("w365_paymenttransaction", "Target", (READ, CREATE), EXPLICIT),
        Right("invoice", "the charge's invoice", (WRITE,), EXPLICIT),
        Right("w365_paymenttransaction", "the refund attempt", (CREATE,), AS_PERSON),
    ),
    "w365_SubmitOrderPayment": (
        Right("salesorder", "Target", (READ, WRITE), EXPLICIT),
        Right("w365_paymentprofile", "PaymentProfileId", (READ,), EXPLICIT),
        Right("w365_paymenttransaction", "the attempt", (CREATE,), AS_PERSON),
    ),
    "w365_SendOrderForApproval": (
        Right("salesorder", "Target", (READ, WRITE), EXPLICIT),
        Right("role", "the person's roles", (), ADMINISTRATOR),
    ),
    "w365_ConvertOrderToDraft": (
        Right("salesorder", "Target", (READ, WRITE), EXPLICIT),
    ),
    "w365_AddPaymentProfile": (
        Right("account", "Target", (READ, APPEND_TO), EXPLICIT),
    ),
    "w365_SyncPaymentProfile": (
        Right("w365_paymentprofile", "Target", (WRITE,), EXPLICIT),
    ),
    "w365_SyncPaymentProfiles": (
        Right("account", "Target", (READ, APPEND_TO), EXPLICIT),
    ),
    "w365_SetDefaultPaymentProfile": (
        Right("w365_paymentprofile", "Target", (WRITE,), EXPLICIT),
        Right("w365_paymentprofile", "the account's current default", (WRITE,), AS_PERSON),
    ),
    "w365_UpdatePaymentProfile": (
        Right("w365_paymentprofile", "Target", (WRITE,), EXPLICIT),
    ),
    "w365_DeactivatePaymentProfile": (
        Right("w365_paymentprofile", "Target", (WRITE,), EXPLICIT),
    ),
    "w365_RunBilling": (
        Right("role", "the person's roles", (), ADMINISTRATOR),
    ),
    "Update of account (creditonhold)": (
        Right("account", "the account", (WRITE,), DATAVERSE),
    ),
    "Create of w365_subscription": (
        Right("w365_subscription", "the subscription", (CREATE,), DATAVERSE),
    ),
    "Update of w365_configuration (w365_enablecredithold, w365_autopayenabled)": (
        Right("w365_configuration", "the configuration", (WRITE,), DATAVERSE),
    ),
}


def rights_rows() -> list[tuple[str, str, str, str, str]]:
    """RIGHTS as README's table rows: (message or event, table, record, rights, checked how)."""
    return [(message, right.table, right.record,
             ", ".join(r.removesuffix("Access") for r in right.rights) or "-", right.how)
            for message, rights in RIGHTS.items() for right in rights]


def rights_for(message: str, table: str | None = None) -> tuple[Right, ...]:
    """The rights of a Custom API message, or of a table event (`Update` + `account`)."""
    if message in RIGHTS:
        return RIGHTS[message]
    found = [rights for name, rights in RIGHTS.items()
             if table and name.lower().startswith(f"{message} of {table}".lower())]
    if not found:
        raise KeyError(f"no rights declared for {message} on {table}")
    return found[0]


class AccessCheck:
    """The EXPLICIT checks of `message` for the records the caller names (`records`: Right.record -> row id), as
    reads for the caller's read `$batch`, and their verdict. A message's other explicit checks (rows found by a first
    read) are made with a second AccessCheck naming those records."""

    def __init__(self, message: str, user_id: str | None, records: Mapping[str, str], *, action: str = "do this"):
        if not user_id:
            raise BusinessRuleViolation(f"Cannot {action}: the request does not say who asked.")
        self.user_id = user_id
        self.action = action
        self.checks = [(right, records[right.record]) for right in rights_for(message)
                       if right.how == EXPLICIT and right.record in records]
        unknown = set(records) - {right.record for right in rights_for(message)}
        if unknown:
            raise KeyError(f"{message} declares no rights on {', '.join(sorted(unknown))}")

    def reads(self) -> list[Read]:
        return [access_read(self.user_id, right.table, record_id) for right, record_id in self.checks]

    def verify(self, answers: Sequence[Record]) -> None:
        """Refuse (a `failed` outcome, not an error) when a right is missing."""
        for (right, _), answer in zip(self.checks, answers):
            refuse_missing(_granted(answer), right.rights, right.table, self.action)

    def run(self, services: Services) -> None:
        """The checks alone, as one request (when there is no read to ride along with)."""
        if self.checks:
            self.verify(services.dataverse.read(self.reads()))


def access_read(user_id: str, table: str, record_id: str) -> Read:
    return Read.function("RetrievePrincipalAccess",
                         {"Target": {"@odata.id": f"{footprint.entity_set(table)}({record_id})"}},
                         bound_to=("systemusers", user_id))


def _granted(answer: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(part.strip() for part in str(answer.get("AccessRights", "")).split(",") if part.strip())


def access_rights(services: Services, user_id: str, table: str, record_id: str) -> frozenset[str]:
    return _granted(services.dataverse.read([access_read(user_id, table, record_id)])[0])


def require_access(services: Services, user_id: str, table: str, record_id: str, *rights: str,
                   action: str = "do this") -> None:
    """Refuse (a `failed` outcome, not an error) when the person lacks any of `rights` on the record."""
    if not user_id:
        raise BusinessRuleViolation(f"Cannot {action}: the request does not say who asked.")
    try:
        granted = access_rights(services, user_id, table, record_id)
    except AccessDenied:
        granted = frozenset()
    refuse_missing(granted, rights, table, action)


def refuse_missing(granted: frozenset[str], rights: Sequence[str], table: str, action: str) -> None:
    missing = [r.removesuffix("Access").lower().replace("appendto", "append to") for r in rights if r not in granted]
    if missing:
        raise BusinessRuleViolation(f"You do not have permission to {action}: Dynamics 365 does not let you "
                                    f"{' or '.join(missing)} this {table_label(table)}. Nothing was done.")


# --- administrators -------------------------------------------------------------------------------------------------

def roles_read(user_id: str) -> Read:
    """The person's roles, assigned directly and through their teams, for a read `$batch`."""
    return Read.retrieve("systemusers", user_id, select=("systemuserid",), expand=ROLES_EXPAND)


def has_administrator_role(user: Mapping[str, Any]) -> bool:
    """`user`: the answer to `roles_read`."""
    roles = list(user.get("systemuserroles_association") or [])
    for team in user.get("teammembership_association") or []:
        roles += team.get("teamroles_association") or []
    return any(_is_administrator_role(role) for role in roles)


def _is_administrator_role(role: Mapping[str, Any]) -> bool:
    ids = {str(role.get(key) or "").lower() for key in ("roleid", "_parentrootroleid_value")}
    return (str(role.get("_roletemplateid_value") or "").lower() == SYSTEM_ADMINISTRATOR_TEMPLATE_ID
            or BILLING_MANAGER_ROLE_ID in ids)


def is_administrator(services: Services, user_id: str) -> bool:
    read = roles_read(user_id)
    return has_administrator_role(services.dataverse.retrieve(read.target, read.record_id or "", select=read.select,
                                                              expand=read.expand))


def table_label(table: str) -> str:
    return {"w365_paymentprofile": "payment profile", "w365_paymenttransaction": "payment transaction",
            "salesorder": "order"}.get(table, table.removeprefix("w365_"))


def rights_markdown() -> str:
    """README's table (`python -m core.permissions`)."""
    lines = ["| message or event | table | which rows | rights | checked |", "|---|---|---|---|---|"]
    for row in rights_rows():
        cells = [f"`{c}`" if i in (0, 1) and " " not in c else c for i, c in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(rights_markdown())
