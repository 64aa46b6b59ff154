"""Security roles as the stand-in knows them: role name -> privileges, organization-wide (no business units or
ownership). Users and roles are rows (systemuser, role) tied by `systemuserroles_association`.
"""
from __future__ import annotations

from typing import Iterable

ACCESS = ("read", "write", "append", "appendto", "create", "delete", "share", "assign")
# RetrievePrincipalAccess answers with the AccessRights flag names, in this order.
ACCESS_RIGHTS = {"read": "ReadAccess", "write": "WriteAccess", "append": "AppendAccess", "appendto": "AppendToAccess",
                 "create": "CreateAccess", "delete": "DeleteAccess", "share": "ShareAccess", "assign": "AssignAccess"}

ALL = "*"
SALES_WRITABLE = ("salesorder", "salesorderdetail", "annotation", "email", "activityparty", "w365_securelink")

ROLE_PRIVILEGES: dict[str, set[tuple[str, str]]] = {
    "System Administrator": {(a, ALL) for a in ACCESS},
    "W365 Billing Manager": {(a, ALL) for a in ("read", "write", "create", "append", "appendto")},
    "Salesperson": {("read", ALL), ("append", ALL), ("appendto", ALL)}
    | {(a, t) for t in SALES_WRITABLE for a in ("write", "create")},
    "Read Only": {("read", ALL)},
}


def has_privilege(role_names: Iterable[str], access: str, table: str) -> bool:
    for role in role_names:
        granted = ROLE_PRIVILEGES.get(role, set())
        if (access, ALL) in granted or (access, table) in granted:
            return True
    return False


def access_rights(role_names: Iterable[str], table: str) -> str:
    roles = list(role_names)
    names = [ACCESS_RIGHTS[a] for a in ACCESS if has_privilege(roles, a, table)]
    return ", ".join(names) or "None"
