"""The service never does for a person what that person could not do in Dataverse (CONTRACT §3).

Dataverse checks the Custom API's ExecutePrivilegeName before the step runs; these checks are about the record itself.
Two ways, pick the cheaper one for the flow:
- act as the person (`services.for_user(user_id)`): Dataverse applies their privileges to every call (403 ->
  AccessDenied), which costs no extra round trip;
- ask explicitly with `require_access` (RetrievePrincipalAccess) when the work is done as the service.
"""
from __future__ import annotations

from core import footprint
from core.errors import AccessDenied, BusinessRuleViolation
from core.services import Services

READ, WRITE, CREATE, APPEND, APPEND_TO, DELETE, SHARE, ASSIGN = (
    "ReadAccess", "WriteAccess", "CreateAccess", "AppendAccess", "AppendToAccess", "DeleteAccess", "ShareAccess",
    "AssignAccess")
ADMINISTRATOR_ROLES = frozenset({"System Administrator", "W365 Billing Manager"})


def access_rights(services: Services, user_id: str, table: str, record_id: str) -> frozenset[str]:
    answer = services.dataverse.execute(
        "RetrievePrincipalAccess", {"Target": {"@odata.id": f"{footprint.entity_set(table)}({record_id})"}},
        bound_to=("systemusers", user_id), is_function=True)
    return frozenset(part.strip() for part in str(answer.get("AccessRights", "")).split(",") if part.strip())


def require_access(services: Services, user_id: str, table: str, record_id: str, *rights: str,
                   action: str = "do this") -> None:
    """Refuse (a `failed` outcome, not an error) when the person lacks any of `rights` on the record."""
    if not user_id:
        raise BusinessRuleViolation(f"Cannot {action}: the request does not say who asked.")
    try:
        granted = access_rights(services, user_id, table, record_id)
    except AccessDenied:
        granted = frozenset()
    missing = [r for r in rights if r not in granted]
    if missing:
        raise BusinessRuleViolation(f"You do not have permission to {action} on this {table_label(table)}.")


def user_roles(services: Services, user_id: str) -> frozenset[str]:
    row = services.dataverse.retrieve("systemusers", user_id, select=("systemuserid",),
                                      expand="systemuserroles_association($select=name)")
    return frozenset(r.get("name", "") for r in row.get("systemuserroles_association") or [])


def is_administrator(services: Services, user_id: str) -> bool:
    return bool(user_roles(services, user_id) & ADMINISTRATOR_ROLES)


def table_label(table: str) -> str:
    return {"w365_paymentprofile": "payment profile", "w365_paymenttransaction": "payment transaction",
            "salesorder": "order"}.get(table, table.removeprefix("w365_"))
