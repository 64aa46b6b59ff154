"""Text from outside that cannot be stored: JSON's `\\ud800` escapes decode to lone UTF-16 surrogates, which Python
holds in a str but no UTF-8 encoder writes. Refused where input enters, before anything is written (a profile at the
gateway, a link row), never found out by the JSON encoder half-way through a use case."""
from __future__ import annotations

from typing import Any

from core.errors import BadRequest

MAX_WALK = 64                   # deeper than any input we accept; the parsers refuse deeper nesting themselves


def _has_lone_surrogate(text: str) -> bool:
    return any("\ud800" <= char <= "\udfff" for char in text)


def find_invalid_text(value: Any, where: str = "", depth: int = 0) -> str | None:
    """The path of the first str (key or value) holding a lone surrogate, or None."""
    if depth > MAX_WALK:
        return None
    if isinstance(value, str):
        return where or "value" if _has_lone_surrogate(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and _has_lone_surrogate(key):
                return where or "a key"
            found = find_invalid_text(item, path, depth + 1)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = find_invalid_text(item, f"{where}[{index}]", depth + 1)
            if found:
                return found
    return None


def require_valid_text(value: Any, what: str = "") -> None:
    """BadRequest naming where a lone surrogate is (its text is not repeated: it cannot be printed either)."""
    found = find_invalid_text(value, what)
    if found:
        raise BadRequest(f"Field {found} contains text that is not valid Unicode (a lone surrogate).")
