"""The one in-memory Dataverse of the unit tests (the `core.ports.Dataverse` port without HTTP).

Rows by entity set; ETags that change on every write and are checked on If-Match (ConcurrencyConflict); binds
stored as Dataverse returns them (`x@odata.bind` -> `_x_value`); `$filter` of comparisons (`eq ne lt le gt ge` with
text, numbers, booleans, null and GUIDs), `startswith`, `and` / `or`; a single-valued `$expand` of a lookup; the
alternate key of w365_paymenttransaction (`w365_refid`: DuplicateRecord) and the primary id of an existing row on a
create (DuplicateRecord); atomic `$batch`; a log of every write and injectable failures. What it leaves out
(privileges, plug-ins, formatted values, paging) the Dataverse stand-in does over HTTP: the `world` fixture of
tests/conftest.py.
"""
from __future__ import annotations

import copy
import itertools
import re
import threading
import uuid
from typing import Any, Callable

from core import footprint
from core.errors import ConcurrencyConflict, DataverseError, DuplicateRecord, RecordNotFound
from core.ports import BatchResult

ALTERNATE_KEYS = {"w365_paymenttransactions": "w365_refid"}
_CLAUSE = re.compile(r"^(?P<column>\w+) (?P<op>eq|ne|lt|le|gt|ge) (?P<literal>.+)$")
_STARTSWITH = re.compile(r"^startswith\((?P<column>\w+),\s*(?P<literal>'(?:[^']|'')*')\)$")


class InMemoryDataverse:
    def __init__(self, *, ids: Callable[[], str] | None = None):
        self.tables: dict[str, dict[str, dict[str, Any]]] = {}
        self.log: list[tuple] = []                          # ("create", set, body) / ("update", id, body) / ("batch", ops)
        self.executed: list[tuple[str, Any]] = []
        self.fail: dict[str, Exception] = {}                # "create" / "update" / "batch" -> raised on that call
        self.fail_creates_in: set[str] = set()              # entity sets whose creates fail (500)
        self.before_update: Callable[[], None] | None = None  # runs once before the next update: a concurrent writer
        self.lock = threading.Lock()
        self._versions = itertools.count(1)
        self._ids = ids or (lambda: str(uuid.uuid4()))

    # --- test support ------------------------------------------------------------------------------------------------

    def add(self, entity_set: str, row: dict[str, Any] | str | None = None, **values: Any) -> str:
        """A row as an import would make it: `add(set, {...})`, or `add(set, "id", column=value, ...)`; an ETag of
        its own is kept."""
        key = _primary_key(entity_set)
        if isinstance(row, str):
            row = {key: row}
        row = {**(row or {}), **values}
        if key not in row:
            row[key] = self._ids()
        row["@odata.etag"] = row.get("@odata.etag") or self._etag()
        self.tables.setdefault(entity_set, {})[row[key]] = row
        return row[key]

    # --- the port ----------------------------------------------------------------------------------------------------

    def retrieve(self, entity_set, record_id, *, select=(), expand=None):
        row = self.tables.get(entity_set, {}).get(record_id)
        if row is None:
            raise RecordNotFound("not found", status=404)
        return self._expanded(copy.deepcopy(row), expand, entity_set)

    def query(self, entity_set, *, select=(), filter=None, expand=None, orderby=None, top=None):
        test = _predicate(filter)
        rows = [self._expanded(copy.deepcopy(r), expand, entity_set) for r in self.tables.get(entity_set, {}).values()
                if test(r)]
        return rows[:top] if top else rows

    def create(self, entity_set, body):
        self.log.append(("create", entity_set, dict(body)))
        self._maybe_fail("create")
        return self._create(entity_set, body)

    def _create(self, entity_set, body):
        if entity_set in self.fail_creates_in:
            raise DataverseError("create failed", status=500)
        row = _flatten(body)
        key = _primary_key(entity_set)
        if row.get(key) is not None and row[key] in self.tables.get(entity_set, {}):
            # Dataverse refuses a create with the primary id of an existing row (412, 0x80040237), as the stand-in does
            raise DuplicateRecord("A record with matching key values already exists.", status=412, code="0x80040237")
        alternate = ALTERNATE_KEYS.get(entity_set)
        if alternate and any(r.get(alternate) == row.get(alternate) for r in self.tables.get(entity_set, {}).values()):
            raise DuplicateRecord("A record with matching key values already exists.", status=412)
        return self.add(entity_set, row)

    def update(self, entity_set, record_id, body, *, etag=None):
        self.log.append(("update", record_id, dict(body)))
        if self.before_update:
            hook, self.before_update = self.before_update, None
            hook()
        self._maybe_fail("update")
        self._update(entity_set, record_id, body, etag)

    def _update(self, entity_set, record_id, body, etag):
        with self.lock:
            row = self.tables.get(entity_set, {}).get(record_id)
            if row is None:
                raise RecordNotFound("not found", status=404)
            if etag and etag != "*" and etag != row["@odata.etag"]:
                raise ConcurrencyConflict("The version of the existing record doesn't match.", status=412)
            row.update(_flatten(body))
            row["@odata.etag"] = self._etag()

    def delete(self, entity_set, record_id):
        del self.tables[entity_set][record_id]

    def execute(self, operation, parameters=None, *, bound_to=None, is_function=False):
        self.executed.append((operation, bound_to))
        if operation == "RetrievePrincipalAccess":
            return {"AccessRights": "ReadAccess, WriteAccess, AppendToAccess"}
        return {}

    def batch(self, changeset):
        self.log.append(("batch", list(changeset)))
        self._maybe_fail("batch")
        saved = copy.deepcopy(self.tables)
        results = []
        created: dict[str, tuple[str, str]] = {}        # Content-ID -> (entity set, id) of a row made earlier
        try:
            for op in changeset:
                entity_set, _, rest = op.path.partition("(")
                body = {k: (f"/{created[v[1:]][0]}({created[v[1:]][1]})" if k.endswith("@odata.bind") and
                            isinstance(v, str) and v.startswith("$") and v[1:] in created else v)
                        for k, v in (op.body or {}).items()}
                if op.method == "POST":
                    record_id = self._create(entity_set, body)
                    if op.content_id:
                        created[str(op.content_id)] = (entity_set, record_id)
                    results.append(BatchResult(204, record_id))
                else:
                    self._update(entity_set, rest.rstrip(")"), body, op.etag)
                    results.append(BatchResult(204))
        except Exception:
            self.tables = saved                  # all or nothing, as a changeset
            raise
        return results

    def read(self, reads):
        """The read $batch: each Read as retrieve, query or function, in order."""
        answers = []
        for read in reads:
            if read.kind == "function":
                answers.append(self.execute(read.target, read.parameters, bound_to=read.bound_to, is_function=True))
            elif read.kind == "query":
                answers.append(self.query(read.target, filter=read.filter, expand=read.expand, top=read.top))
            else:
                answers.append(self.retrieve(read.target, read.record_id, expand=read.expand))
        return answers

    def as_user(self, systemuser_id):
        return self

    # --- internals ---------------------------------------------------------------------------------------------------

    def _etag(self) -> str:
        return f'W/"{next(self._versions)}"'

    def _maybe_fail(self, what: str) -> None:
        if what in self.fail:
            raise self.fail[what]

    def _expanded(self, row: dict[str, Any], expand: str | None, entity_set: str | None = None) -> dict[str, Any]:
        """Navigation properties named in $expand: a lookup's row (or None); a one-to-many relationship of the row's
        table (footprint) as the list of its children, with the item's own $filter and nested $expand."""
        for name, options in _expand_items(expand or ""):
            relation = _one_to_many(entity_set, name)
            if relation is not None:
                child_set = footprint.entity_set(relation.referencing)
                test = _predicate(options.get("$filter"))
                children = [self._expanded(copy.deepcopy(r), options.get("$expand"), child_set)
                            for r in self.tables.get(child_set, {}).values()
                            if r.get(f"_{relation.column}_value") == row.get(_primary_key(entity_set)) and test(r)]
                row[name] = children
                continue
            target_id = row.get(f"_{name}_value")
            if f"_{name}_value" not in row and name not in row:
                continue
            found = next(((set_name, t.get(target_id)) for set_name, t in self.tables.items() if target_id in t),
                         (None, None))
            row[name] = self._expanded(copy.deepcopy(found[1]), options.get("$expand"), found[0]) if found[1] \
                else None
        return row


def _one_to_many(entity_set: str | None, navigation: str):
    if not entity_set:
        return None
    try:
        table = footprint.table_by_entity_set(entity_set)
    except KeyError:
        return None
    return next((r for r in footprint.one_to_many(table.logical_name) if r.name == navigation), None)


def _expand_items(expand: str) -> list[tuple[str, dict[str, str]]]:
    """`a($select=x;$expand=b($filter=y)),c` -> [("a", {"$select": "x", "$expand": "b($filter=y)"}), ("c", {})]."""
    items = []
    for item in _split_top(expand, ","):
        item = item.strip()
        if not item:
            continue
        name, _, rest = item.partition("(")
        options: dict[str, str] = {}
        for option in _split_top(rest[:-1] if rest.endswith(")") else rest, ";"):
            key, _, value = option.partition("=")
            if key.strip():
                options[key.strip()] = value.strip()
        items.append((name.strip(), options))
    return items


def _primary_key(entity_set: str) -> str:
    try:
        return footprint.table_by_entity_set(entity_set).primary_id
    except KeyError:
        return (entity_set[:-1] if entity_set.endswith("s") else entity_set) + "id"


def _flatten(body: dict[str, Any]) -> dict[str, Any]:
    """A write body as the row reads back: binds become `_x_value` (`objectid_account` -> `_objectid_value`, the
    polymorphic lookup's own name); collection-valued deep inserts are left out."""
    out = {}
    for key, value in body.items():
        if key.endswith("@odata.bind"):
            name = key.split("@")[0]
            base = name.rsplit("_", 1)[0]
            if base.endswith("objectid") or base == "partyid":
                name = base
            out[f"_{name}_value"] = re.search(r"\(([^)]+)\)", value).group(1)
        elif not isinstance(value, list):
            out[key] = value
    return out


def _predicate(text: str | None) -> Callable[[dict[str, Any]], bool]:
    if not text:
        return lambda row: True
    text = text.strip()
    if text.startswith("(") and _balanced(text[1:-1]) and text.endswith(")"):
        return _predicate(text[1:-1])
    for joiner, combine in ((" or ", any), (" and ", all)):
        parts = _split_top(text, joiner)
        if len(parts) > 1:
            tests = [_predicate(p) for p in parts]
            return lambda row, tests=tests, combine=combine: combine(t(row) for t in tests)
    match = _STARTSWITH.match(text)
    if match:
        prefix = _literal(match.group("literal")).lower()
        column = match.group("column")
        return lambda row: isinstance(row.get(column), str) and row[column].lower().startswith(prefix)
    match = _CLAUSE.match(text)
    if not match:
        raise ValueError(f"the in-memory Dataverse does not read this $filter: {text!r}")
    column, op, wanted = match.group("column"), match.group("op"), _literal(match.group("literal"))

    def test(row: dict[str, Any]) -> bool:
        value = row.get(column)
        if wanted is None or value is None:           # Dataverse: only eq/ne null test for null
            return (value is None) == (wanted is None) if op == "eq" else (value is None) != (wanted is None) \
                if op == "ne" else False
        if isinstance(value, str) and isinstance(wanted, str):
            value, other = value.lower(), wanted.lower()
        else:
            other = wanted
        return {"eq": value == other, "ne": value != other, "lt": value < other, "le": value <= other,
                "gt": value > other, "ge": value >= other}[op]
    return test


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text                                      # a GUID or a date-time literal: compared as text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _split_top(text: str, joiner: str) -> list[str]:
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        char = text[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and text.startswith(joiner, i):
            parts.append(text[start:i])
            i += len(joiner)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts
