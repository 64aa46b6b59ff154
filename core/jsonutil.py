"""JSON with exact decimals: money never passes through float on its way out or in."""
from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_MARK = "\u0000dec:"
_MARKED = re.compile(r'"\\u0000dec:(-?[0-9]+(?:\.[0-9]+)?)"')


_SCALARS = frozenset({int, bool, float, type(None)})


def _mark(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return _mark_dict(value)
    if kind in _SCALARS:
        return value
    if kind is str:
        return value if not value.startswith(_MARK) else "\ufffd" + value[1:]
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("a decimal to send must be finite")
        return _MARK + format(value, "f")
    if isinstance(value, str) and value.startswith(_MARK):
        return "\ufffd" + value[1:]          # a NUL never belongs in text; never let input pose as a number
    if isinstance(value, dict):
        return _mark_dict(value)
    if isinstance(value, (list, tuple)):
        return [_mark(item) for item in value]
    return value


def _mark_dict(value: dict) -> dict:
    # The common values (text, numbers, null) are handled inline: a record is mostly those, and a call per value
    # made this walk a good part of every request's CPU.
    marked = {}
    for key, item in value.items():
        kind = type(item)
        if kind in _SCALARS or (kind is str and not item.startswith(_MARK)):
            marked[key] = item
        else:
            marked[key] = _mark(item)
    return marked


def dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps that writes a Decimal as the exact JSON number it is (40.00 stays 40.00)."""
    return _MARKED.sub(r"\1", json.dumps(_mark(value), **kwargs))


def loads(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    return json.loads(text, parse_float=Decimal)
