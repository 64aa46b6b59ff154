"""Rows, value checks and the JSON shape of records, as Dataverse keeps and returns them.

A stored row maps column name -> Python value: str, int, bool, Decimal, ISO datetime string ("...Z"), and for a
lookup {"id": <guid>, "table": <logical name>}. `_version` is the row's version number (the `@odata.etag`).
"""
from __future__ import annotations

import copy
import datetime as dt
import os
import re
import tempfile
import uuid
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

from core import dates, jsonutil
from core.footprint import Column, Table

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
VERSION = "_version"
INT32 = 2 ** 31


class ODataError(Exception):
    """An error response: status, Dataverse error code and message, as `{"error":{"code","message"}}`."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


def bad_request(message: str, code: str = "0x80048d19") -> ODataError:
    return ODataError(400, code, message)


def not_found(table: str, record_id: str) -> ODataError:
    return ODataError(404, "0x80040217", f"Entity '{table}' With Id = {record_id} Does Not Exist")


def unknown_property(table: str, name: str) -> ODataError:
    return ODataError(400, "0x80060888", f"Could not find a property named '{name}' on type "
                                         f"'Microsoft.Dynamics.CRM.{table}'.")


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


_ZONE = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


def parse_datetime(text: str) -> dt.datetime | None:
    """ISO 8601 with Z or an offset (Edm.DateTimeOffset), or a bare date; None if it is neither. The parse is
    core/dates.py's; the stand-in adds Dataverse's rule that a date-time carries its zone."""
    if not isinstance(text, str) or not text or ("T" in text and not _ZONE.search(text)):
        return None
    try:
        return dates.parse(text).astimezone(dt.timezone.utc)
    except ValueError:
        return None


def format_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- JSON that keeps Decimal exact ------------------------------------------------------------------------------------

def dumps(value: Any) -> str:
    """Compact JSON as Dataverse writes it, Decimal digit for digit."""
    return jsonutil.dumps(value, separators=(",", ":"), ensure_ascii=False)


loads = jsonutil.loads


# --- value checks ----------------------------------------------------------------------------------------------------

def _type_error(table: Table, column: Column, value: Any) -> ODataError:
    edm = {"string": "Edm.String", "memo": "Edm.String", "integer": "Edm.Int32", "decimal": "Edm.Decimal",
           "money": "Edm.Decimal", "boolean": "Edm.Boolean", "datetime": "Edm.DateTimeOffset",
           "choice": "Edm.Int32", "state": "Edm.Int32", "status": "Edm.Int32",
           "uniqueidentifier": "Edm.Guid"}[column.type]
    return bad_request(f"Cannot convert the literal '{value}' to the expected type '{edm}' "
                       f"(property '{column.name}' of '{table.logical_name}').", "0x80060888")


def coerce(table: Table, column: Column, value: Any) -> Any:
    """The stored value for a JSON value written to `column`, or a 400 like Dataverse's."""
    if value is None:
        return None
    kind = column.type
    if kind in ("string", "memo"):
        if not isinstance(value, str):
            raise _type_error(table, column, value)
        if column.max_length is not None and len(value) > column.max_length:
            raise bad_request(f"A validation error occurred. The length of the '{column.name}' attribute of the "
                              f"'{table.logical_name}' entity exceeded the maximum allowed length of "
                              f"'{column.max_length}'.", "0x80044331")
        return value
    if kind in ("integer", "choice", "state", "status"):
        if not isinstance(value, int) or isinstance(value, bool) or not -INT32 <= value < INT32:
            raise _type_error(table, column, value)
        if kind == "choice" and value not in {v for v, _ in column.choices}:
            raise bad_request(f"A validation error occurred. The value {value} of '{column.name}' on record of type "
                              f"'{table.logical_name}' is outside the valid range.", "0x8004431a")
        return value
    if kind in ("decimal", "money"):
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise _type_error(table, column, value)
        try:
            # Dataverse rounds to the column's precision instead of refusing extra digits.
            return Decimal(value).quantize(Decimal(1).scaleb(-(column.precision or 0)), ROUND_HALF_EVEN)
        except InvalidOperation:
            raise _type_error(table, column, value) from None
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _type_error(table, column, value)
        return value
    if kind == "datetime":
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise _type_error(table, column, value)
        return format_datetime(parsed)
    if kind == "uniqueidentifier":
        if not isinstance(value, str) or not GUID.match(value):
            raise _type_error(table, column, value)
        return value.lower()
    raise bad_request(f"The property '{column.name}' cannot be written directly; use "
                      f"'{next(iter(column.navigations))}@odata.bind'.", "0x80060888")


class Store:
    """The rows of every table, many-to-many links, and one version counter (like Dataverse's rowversion)."""

    def __init__(self, tables: Iterable[Table], clock: Any = None):
        self.tables = {t.logical_name: t for t in tables}
        self.clock = clock                 # anything with now() (aware UTC): createdon/modifiedon follow a test's clock
        self.rows: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.tables}
        self.links: dict[str, list[list[str]]] = {}
        self.outbox: list[dict[str, Any]] = []     # emails sent with SendEmail(IssueSend=true)
        self.version = 1000
        # Indexes, so a long run stays linear: alternate key values -> row id, and lookup target -> referencing rows
        # (what a one-to-many $expand and the key check read instead of scanning the table).
        self._keys: dict[tuple[str, tuple[str, ...]], dict[tuple, str]] = {}
        self._refs: dict[tuple[str, str], dict[str, set[str]]] = {}
        # Undo log of the open atomic scopes (a $batch changeset, a deep insert): only what changed is kept, never a
        # copy of the store.
        self._journal: list[tuple] = []
        self._depth = 0
        self._created: dict[str, int] = {}         # row id -> creation order, so an indexed $expand keeps it
        # Each table's row ids in order (keyset paging by the primary id), rebuilt when rows come or go.
        self._members = 0                          # bumped whenever a row is added to or removed from a table
        self._ordered: dict[str, tuple[Any, int, int, list[str]]] = {}

    def table(self, logical_name: str) -> Table:
        return self.tables[logical_name]

    def now_iso(self) -> str:
        if self.clock is None:
            return now_iso()
        return self.clock.now().astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def next_version(self) -> int:
        self.version += 1
        return self.version

    # --- writes (values already coerced) ---------------------------------------------------------------------------

    def insert(self, table: Table, values: dict[str, Any], record_id: str | None = None) -> dict[str, Any]:
        record_id = (record_id or str(uuid.uuid4())).lower()
        if record_id in self.rows[table.logical_name]:
            raise ODataError(412, "0x80040237", "A record with matching key values already exists.")
        stamp = self.now_iso()
        row: dict[str, Any] = {c.name: None for c in table.columns if c.type != "lookup"}
        row.update({c.name: None for c in table.columns if c.type == "lookup"})
        row.update(values)
        row.update({table.primary_id: record_id, "createdon": values.get("createdon") or stamp, "modifiedon": stamp})
        if table.states:
            state = table.states[0] if row.get("statecode") is None else table.state(row["statecode"])
            row["statecode"] = state.value if state else row["statecode"]
            if row.get("statuscode") is None and state is not None:
                row["statuscode"] = state.default_status
        self._derive(table, row)
        self._check(table, row, record_id)
        row[VERSION] = self.next_version()
        self.rows[table.logical_name][record_id] = row
        self._members += 1
        self._created.setdefault(record_id, len(self._created))
        self._index(table, row, record_id)
        self._log(("insert", table, record_id))
        return row

    def update(self, table: Table, row: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        if table.states and "statecode" in values and "statuscode" not in values:
            state = table.state(values["statecode"])
            if state is not None:
                values = {**values, "statuscode": state.default_status}
        candidate = {**row, **values, "modifiedon": self.now_iso()}
        self._derive(table, candidate)
        self._check(table, candidate, row[table.primary_id])
        candidate[VERSION] = self.next_version()
        record_id = row[table.primary_id]
        self._log(("update", table, row, dict(row)))
        self._unindex(table, row, record_id)
        row.clear()
        row.update(candidate)
        self._index(table, row, record_id)
        return row

    def delete(self, table: Table, record_id: str) -> None:
        row = self.rows[table.logical_name].pop(record_id)
        self._members += 1
        self._unindex(table, row, record_id)
        removed = {}
        for name, pairs in self.links.items():
            kept = [p for p in pairs if record_id not in p]
            if len(kept) != len(pairs):
                removed[name] = list(pairs)
                pairs[:] = kept
        self._log(("delete", table, record_id, row, removed))

    @staticmethod
    def _derive(table: Table, row: dict[str, Any]) -> None:
        if table.logical_name in ("contact", "systemuser") and (row.get("firstname") or row.get("lastname")):
            row["fullname"] = " ".join(p for p in (row.get("firstname"), row.get("lastname")) if p)

    def _check(self, table: Table, row: dict[str, Any], record_id: str) -> None:
        if table.states and not table.valid_state_status(row["statecode"], row["statuscode"]):
            raise bad_request(f"{row['statuscode']} is not a valid status code for state code "
                              f"{table.logical_name}State.{row['statecode']} on {table.logical_name} with Id "
                              f"{record_id}.", "0x80040278")
        for key in table.alternate_keys:
            values = tuple(row.get(c) for c in key)
            if None in values:
                continue
            other_id = self._keys.get((table.logical_name, tuple(key)), {}).get(values)
            if other_id is not None and other_id != record_id:
                    raise ODataError(412, "0x80060892", f"A record that has the attribute values "
                                     f"{', '.join(map(str, values))} already exists. The entity key "
                                     f"{'_'.join(key)} requires that this set of attributes contains unique values. "
                                     f"Select unique values and try again.")

    def find(self, table: Table, record_id: str) -> dict[str, Any] | None:
        return self.rows[table.logical_name].get(record_id.lower())

    def find_by_key(self, table: Table, key: Mapping[str, Any]) -> dict[str, Any] | None:
        declared = next((tuple(k) for k in table.alternate_keys if sorted(k) == sorted(key)), None)
        if declared is None:
            raise bad_request(f"The key {', '.join(key)} is not an alternate key of {table.logical_name}.",
                              "0x80060888")
        record_id = self._keys.get((table.logical_name, declared), {}).get(tuple(key[c] for c in declared))
        return None if record_id is None else self.rows[table.logical_name].get(record_id)

    def ids_in_order(self, table: Table) -> list[str]:
        """The table's row ids sorted as `$orderby=<primary id>` sorts them (lower-case text). Do not change it."""
        rows = self.rows[table.logical_name]
        cached = self._ordered.get(table.logical_name)
        if cached is not None and cached[0] is rows and cached[1] == self._members and cached[2] == len(rows):
            return cached[3]
        ordered = sorted(rows, key=str.lower)
        self._ordered[table.logical_name] = (rows, self._members, len(rows), ordered)
        return ordered

    def referencing(self, table: Table, column: str, target_id: str) -> list[dict[str, Any]]:
        """The rows of `table` whose lookup `column` points at `target_id` (a one-to-many $expand)."""
        ids = self._refs.get((table.logical_name, column), {}).get(target_id, ())
        rows = self.rows[table.logical_name]
        return [rows[i] for i in sorted(ids, key=lambda i: self._created.get(i, 0)) if i in rows]

    # --- indexes -----------------------------------------------------------------------------------------------------

    def _index(self, table: Table, row: dict[str, Any], record_id: str) -> None:
        for key in table.alternate_keys:
            values = tuple(row.get(c) for c in key)
            if None not in values:
                self._keys.setdefault((table.logical_name, tuple(key)), {})[values] = record_id
        for name, value in row.items():
            if isinstance(value, dict) and "id" in value:
                self._refs.setdefault((table.logical_name, name), {}).setdefault(value["id"], set()).add(record_id)

    def _unindex(self, table: Table, row: dict[str, Any], record_id: str) -> None:
        for key in table.alternate_keys:
            values = tuple(row.get(c) for c in key)
            index = self._keys.get((table.logical_name, tuple(key)), {})
            if index.get(values) == record_id:
                del index[values]
        for name, value in row.items():
            if isinstance(value, dict) and "id" in value:
                self._refs.get((table.logical_name, name), {}).get(value["id"], set()).discard(record_id)

    def reindex(self) -> None:
        self._keys, self._refs = {}, {}
        self._members += 1
        for name, rows in self.rows.items():
            for record_id, row in rows.items():
                self._created.setdefault(record_id, len(self._created))
                self._index(self.tables[name], row, record_id)

    def linked(self, relationship: str, record_id: str) -> list[str]:
        return [b if a == record_id else a for a, b in self.links.get(relationship, []) if record_id in (a, b)]

    def link(self, relationship: str, first: str, second: str) -> None:
        pairs = self.links.setdefault(relationship, [])
        if [first, second] not in pairs:
            pairs.append([first, second])
            self._log(("link", relationship, [first, second]))

    def send(self, email: dict[str, Any]) -> None:
        self.outbox.append(email)
        self._log(("outbox",))

    # --- atomic scopes and persistence ------------------------------------------------------------------------------

    def snapshot(self) -> tuple:
        """A full copy, for tests that put the store back as it was (never used per request)."""
        return copy.deepcopy((self.rows, self.links, self.outbox, self.version))

    def restore(self, snapshot: tuple) -> None:
        self.rows, self.links, self.outbox, self.version = snapshot
        self.reindex()

    def begin(self) -> int:
        """Open an atomic scope (scopes nest); returns the mark `rollback` undoes back to."""
        self._depth += 1
        return len(self._journal)

    def commit(self, mark: int) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._journal.clear()

    def rollback(self, mark: int) -> None:
        """Undo every change made since `mark`, newest first, then close the scope."""
        while len(self._journal) > mark:
            entry = self._journal.pop()
            kind = entry[0]
            if kind == "insert":
                _, table, record_id = entry
                row = self.rows[table.logical_name].pop(record_id)
                self._members += 1
                self._unindex(table, row, record_id)
            elif kind == "update":
                _, table, row, before = entry
                record_id = before[table.primary_id]
                self._unindex(table, row, record_id)
                row.clear()
                row.update(before)
                self._index(table, row, record_id)
            elif kind == "delete":
                _, table, record_id, row, removed = entry
                self.rows[table.logical_name][record_id] = row
                self._members += 1
                self._index(table, row, record_id)
                for name, pairs in removed.items():
                    self.links[name][:] = pairs
            elif kind == "link":
                _, relationship, pair = entry
                self.links[relationship].remove(pair)
            elif kind == "outbox":
                self.outbox.pop()
        self.commit(mark)

    def _log(self, entry: tuple) -> None:
        if self._depth:
            self._journal.append(entry)

    def save(self, path: str) -> None:
        data = dumps({"version": self.version, "rows": self.rows, "links": self.links, "outbox": self.outbox,
                      "decimals": {t: {i: [c for c, v in r.items() if isinstance(v, Decimal)] for i, r in rows.items()}
                                   for t, rows in self.rows.items()}})
        directory = os.path.dirname(os.path.abspath(path))
        fd, temp = tempfile.mkstemp(dir=directory, prefix=".standin-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(data)
        os.replace(temp, path)

    def load(self, path: str) -> None:
        with open(path, encoding="utf-8") as f:
            data = loads(f.read())
        self.version = data["version"]
        self.links = data["links"]
        self.outbox = data["outbox"]
        for name, rows in data["rows"].items():
            if name in self.rows:
                for record_id, row in rows.items():
                    for column in data["decimals"][name][record_id]:
                        row[column] = Decimal(row[column])   # an integral money value parsed as int
                self.rows[name] = rows
        self.reindex()
