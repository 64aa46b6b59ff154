"""OData literals: the one place a value becomes text inside a `$filter` or a function's parameter alias.

A string literal is single-quoted with each quote doubled (OData 4.01 ABNF `SQUOTE-in-string`), so a value from a
webhook, a gateway answer or a person can never end the literal and add a clause of its own.
"""
from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any


def literal(value: Any) -> str:
    """`'O''Brien'`, `true`, `null`, `10.50`, a bare GUID. Anything else is a programming error."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"no OData literal for {type(value).__name__}")


def eq(column: str, value: Any) -> str:
    """`column eq <literal>`."""
    return f"{column} eq {literal(value)}"


def startswith(column: str, prefix: str) -> str:
    """`startswith(column,<literal>)`."""
    return f"startswith({column},{literal(prefix)})"
