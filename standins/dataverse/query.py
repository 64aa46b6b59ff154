"""OData query options as Dataverse accepts them: $filter (tokenizer + recursive-descent parser), $select, $expand,
$orderby. Anything outside this subset is a 400, never a silently different result.

Comparisons follow Dataverse (SQL underneath): strings compare case-insensitively, and a null column never matches
eq/ne/gt/... against a value (only `eq null` / `ne null` test for null).
"""
from __future__ import annotations

import functools
import operator
import re
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Callable, Mapping

from core.footprint import Column, Table
from standins.dataverse.store import bad_request, parse_datetime, unknown_property

Predicate = Callable[[dict[str, Any]], bool]
MAX_DEPTH = 40

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<punct>[(),])
  | (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?(?![\w:.-]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
""", re.VERBOSE)

COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
FUNCTIONS = {"contains", "startswith", "endswith"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise bad_request(f"Syntax error at position {pos} in '{text}'.", "0x80060888")
        if m.lastgroup != "ws":
            tokens.append(Token(m.lastgroup, m.group(), pos))
        pos = m.end()
    return tokens


@dataclass(frozen=True)
class Literal:
    kind: str          # null, bool, int, decimal, string, guid, datetime
    value: Any


class FilterParser:
    """expr := and ('or' and)* ; and := unary ('and' unary)* ; unary := 'not' unary | primary ;
    primary := '(' expr ')' | func '(' property ',' string ')' | property op literal"""

    def __init__(self, table: Table, text: str):
        self.table, self.text = table, text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    def parse(self) -> Predicate:
        if not self.tokens:
            raise bad_request("The $filter expression is empty.", "0x80060888")
        predicate = self._or()
        if self.i != len(self.tokens):
            raise self._error("Syntax error")
        return predicate

    # --- helpers ---
    def _peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self) -> Token:
        token = self._peek()
        if token is None:
            raise bad_request(f"Syntax error: unexpected end of '{self.text}'.", "0x80060888")
        self.i += 1
        return token

    def _expect(self, text: str) -> None:
        token = self._take()
        if token.text != text:
            raise self._error(f"')' or '{text}' expected", token)

    def _error(self, what: str, token: Token | None = None):
        token = token or self._peek()
        where = f"at position {token.pos}" if token else "at the end"
        return bad_request(f"{what} {where} in '{self.text}'.", "0x80060888")

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "name" and token.text == word:
            self.i += 1
            return True
        return False

    # --- grammar ---
    def _or(self) -> Predicate:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise bad_request("The $filter expression is nested too deeply.", "0x80060888")
        left = self._and()
        while self._keyword("or"):
            left = (lambda a, b: lambda row: a(row) or b(row))(left, self._and())
        self.depth -= 1
        return left

    def _and(self) -> Predicate:
        left = self._unary()
        while self._keyword("and"):
            right = self._unary()
            both = (lambda a, b: lambda row: a(row) and b(row))(left, right)
            both.conjuncts = conjuncts(left) + conjuncts(right)
            left = both
        return left

    def _unary(self) -> Predicate:
        if self._keyword("not"):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise bad_request("The $filter expression is nested too deeply.", "0x80060888")
            inner = self._unary()
            self.depth -= 1
            return lambda row: not inner(row)
        token = self._peek()
        if token is not None and token.text == "(":
            self.i += 1
            inner = self._or()
            self._expect(")")
            return inner
        if token is not None and token.kind == "name" and token.text in FUNCTIONS:
            return self._function()
        return self._comparison()

    def _function(self) -> Predicate:
        name = self._take().text
        self._expect("(")
        column = self._property()
        self._expect(",")
        literal = self._literal()
        self._expect(")")
        if column.type not in ("string", "memo") or literal.kind != "string":
            raise bad_request(f"The function '{name}' needs a text column and a string literal.", "0x80060888")
        needle = literal.value.lower()
        test = {"contains": lambda s: needle in s, "startswith": lambda s: s.startswith(needle),
                "endswith": lambda s: s.endswith(needle)}[name]
        return lambda row: row.get(column.name) is not None and test(row[column.name].lower())

    def _property(self) -> Column:
        token = self._take()
        if token.kind != "name" or token.text in COMPARISONS | {"and", "or", "not", "null", "true", "false"}:
            raise self._error("A property name was expected", token)
        if "/" in token.text:
            raise bad_request(f"Navigation paths in $filter are not supported here: '{token.text}'; "
                              f"filter on the lookup's _x_value.", "0x80060888")
        return resolve_property(self.table, token.text)

    def _literal(self) -> Literal:
        token = self._take()
        if token.kind == "string":
            return Literal("string", token.text[1:-1].replace("''", "'"))
        if token.kind == "guid":
            return Literal("guid", token.text.lower())
        if token.kind == "number":
            return Literal("decimal", Decimal(token.text)) if "." in token.text else Literal("int", int(token.text))
        if token.kind == "datetime":
            moment = parse_datetime(token.text)
            if moment is None:                       # e.g. 2024-13-45; None would pose as the null literal
                raise self._error("Not a valid date", token)
            return Literal("datetime", moment)
        if token.kind == "name" and token.text in ("null", "true", "false"):
            return Literal("null", None) if token.text == "null" else Literal("bool", token.text == "true")
        raise self._error("A literal was expected", token)

    def _comparison(self) -> Predicate:
        column = self._property()
        op = self._take()
        if op.kind != "name" or op.text not in COMPARISONS:
            raise self._error("A comparison operator (eq, ne, gt, ge, lt, le) was expected", op)
        literal = self._literal()
        value = _comparable_literal(self.table, column, literal, op.text)
        name = column.name
        if value is None:
            if op.text not in ("eq", "ne"):
                raise bad_request(f"Only eq and ne can compare with null ('{name}').", "0x80060888")
            return (lambda row: _value(row, name) is None) if op.text == "eq" else \
                (lambda row: _value(row, name) is not None)
        compare = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge, "lt": operator.lt,
                   "le": operator.le}[op.text]
        kind = column.type
        # _value and _normalize, inlined: a paged read evaluates this for every row of the table on every page.
        if kind in ("string", "memo", "uniqueidentifier", "lookup"):
            def test(row: dict[str, Any]) -> bool:
                current = row.get(name)
                if isinstance(current, dict):
                    current = current["id"]
                return current is not None and compare(current.lower(), value)
        elif kind == "datetime":
            def test(row: dict[str, Any]) -> bool:
                current = row.get(name)
                return current is not None and compare(_stored_datetime(current), value)
        else:
            def test(row: dict[str, Any]) -> bool:
                current = row.get(name)
                if isinstance(current, dict):
                    current = current["id"]
                return current is not None and compare(current, value)
        test.conjuncts = ((name, op.text, value),)
        return test


def conjuncts(predicate: Predicate) -> tuple[tuple[str, str, Any], ...]:
    """The comparisons `column op value` (value normalized like the column's) that every row the predicate accepts
    meets: the comparisons its top-level `and`s join. What an index may narrow the rows by before the predicate
    decides; `or` and `not` hide theirs."""
    return getattr(predicate, "conjuncts", ())


def _value(row: dict[str, Any], name: str) -> Any:
    value = row.get(name)
    return value["id"] if isinstance(value, dict) else value


def _normalize(kind: str, value: Any) -> Any:
    if kind in ("string", "memo", "uniqueidentifier", "lookup"):
        return value.lower()
    if kind == "datetime":
        return _stored_datetime(value)
    return value


@functools.lru_cache(maxsize=65536)
def _stored_datetime(value: str) -> Any:
    """A stored date-time's moment: rows share few distinct values (due dates, a run's stamps), and a filter on
    one compares it for every row of the table."""
    return parse_datetime(value)


def resolve_property(table: Table, name: str) -> Column:
    """A column by its Web API property name: the name, or `_x_value` for a lookup."""
    m = re.fullmatch(r"_(\w+)_value", name)
    column = table.column(m.group(1)) if m else table.column(name)
    if column is None or (column.type == "lookup") != bool(m):
        raise unknown_property(table.logical_name, name)
    return column


def _comparable_literal(table: Table, column: Column, literal: Literal, op: str) -> Any:
    if literal.kind == "null":
        return None
    kind = column.type
    ok = {
        "string": ("string",), "memo": ("string",), "integer": ("int",), "choice": ("int",), "state": ("int",),
        "status": ("int",), "decimal": ("int", "decimal"), "money": ("int", "decimal"), "boolean": ("bool",),
        "datetime": ("datetime",), "uniqueidentifier": ("guid",), "lookup": ("guid",),
    }[kind]
    if literal.kind not in ok:
        raise bad_request(f"A binary operator with incompatible types was detected. Found operand types for "
                          f"'{column.value_property}' ({kind}) and a {literal.kind} literal for operator '{op}'.",
                          "0x80060888")
    if literal.kind == "string":
        return literal.value.lower()
    if literal.kind == "int" and kind in ("decimal", "money"):
        return Decimal(literal.value)
    return literal.value


# Parsed query options by (kind, table, text): a run sends the same few $filter/$select/$expand texts thousands of
# times, and parsing them was a good part of each request. Only successful parses are kept (a bad option is parsed,
# and refused, every time); the table itself is part of the entry, so a table the metadata API changed (a new object)
# never gets another's parse.
_PARSED: dict[tuple[str, int, str], tuple[Any, Any]] = {}
_PARSED_MAX = 4096


def _cached(kind: str, table: Any, text: str, parse: Callable[[], Any]) -> Any:
    key = (kind, id(table), text)
    hit = _PARSED.get(key)
    if hit is not None and hit[0] is table:
        return hit[1]
    value = parse()
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[key] = (table, value)
    return value


def parse_filter(table: Table, text: str) -> Predicate:
    return _cached("filter", table, text, lambda: FilterParser(table, text).parse())


# --- $select, $orderby, $expand ---------------------------------------------------------------------------------------

def parse_select(table: Table, text: str | None) -> list[Column] | None:
    if text is None:
        return None
    return list(_cached("select", table, text, lambda: _parse_select(table, text)))


def _parse_select(table: Table, text: str) -> tuple[Column, ...]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise bad_request("$select is empty.", "0x80060888")
    return tuple(resolve_property(table, n) for n in names)


def parse_orderby(table: Table, text: str) -> list[tuple[Column, bool]]:
    return list(_cached("orderby", table, text, lambda: _parse_orderby(table, text)))


def _parse_orderby(table: Table, text: str) -> tuple[tuple[Column, bool], ...]:
    keys = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise bad_request(f"Syntax error in $orderby '{text}'.", "0x80060888")
        keys.append((resolve_property(table, words[0]), len(words) == 2 and words[1] == "desc"))
    return tuple(keys)


def sort_rows(rows: list[dict[str, Any]], keys: list[tuple[Column, bool]]) -> list[dict[str, Any]]:
    """Stable multi-key sort; nulls first when ascending (SQL Server)."""
    for column, descending in reversed(keys):
        def key(row, column=column):
            value = _value(row, column.name)
            return (value is not None, _normalize(column.type, value) if value is not None else 0)
        rows = sorted(rows, key=key, reverse=descending)
    return rows


@dataclass(frozen=True)
class Expand:
    navigation: str
    options: Mapping[str, str] = field(default_factory=dict)     # read-only: parses are shared (_cached)


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on `separator` outside parentheses and quotes."""
    parts, depth, start, quoted = [], 0, 0, False
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise bad_request(f"Unbalanced parentheses in '{text}'.", "0x80060888")
        elif ch == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0 or quoted:
        raise bad_request(f"Unbalanced parentheses or quotes in '{text}'.", "0x80060888")
    parts.append(text[start:])
    return [p.strip() for p in parts]


EXPAND_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$expand"}


def parse_expand(text: str) -> list[Expand]:
    return list(_cached("expand", None, text, lambda: _parse_expand(text)))


def _parse_expand(text: str) -> tuple[Expand, ...]:
    expands = []
    for item in split_top_level(text, ","):
        m = re.fullmatch(r"(\w+)(?:\((.*)\))?", item, re.DOTALL)
        if not m:
            raise bad_request(f"Syntax error in $expand '{text}'.", "0x80060888")
        options = {}
        for option in split_top_level(m.group(2), ";") if m.group(2) else ():
            key, sep, value = option.partition("=")
            if not sep or key.strip() not in EXPAND_OPTIONS:
                raise bad_request(f"The query option '{key}' is not supported inside $expand.", "0x80060888")
            options[key.strip()] = value.strip()
        expands.append(Expand(m.group(1), MappingProxyType(options)))
    return tuple(expands)


def parse_top(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise bad_request(f"Invalid value for $top: '{text}'.", "0x80060888")
    return int(text)

