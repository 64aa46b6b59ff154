"""The stand-in's single HTTP entry, `DataverseStandIn.handle`, and its adapters for `responses` and WSGI.

Routes under `<org>/api/data/v9.2/`: entity sets (`{set}`, `{set}(<id>)`, `{set}(key='value')`), `$batch`,
`WhoAmI`, `ConvertSalesOrderToInvoice`, `emails(<id>)/Microsoft.Dynamics.CRM.SendEmail`,
`systemusers(<id>)/Microsoft.Dynamics.CRM.RetrievePrincipalAccess(Target=@tid)`, and
`{set}(<id>)/<many-to-many>/$ref` to associate rows.
"""
from __future__ import annotations

import bisect
import functools
import os
import re
import threading
import uuid
from http import HTTPStatus
from itertools import islice
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from core import footprint
from core.footprint import Column, Table
from standins import LOCAL_ORGANIZATION_ID
from standins.dataverse import actions, fetchxml, metadata
from standins.dataverse.batch import Changeset, PartResponse, parse_batch, write_batch
from standins.dataverse.query import (conjuncts, parse_expand, parse_filter, parse_orderby, parse_select,
                                     parse_top, sort_rows)
from standins.dataverse.protection import (REMAINING_HEADER, TIME_REMAINING_HEADER, ServiceProtection,
                                          time_remaining)
from standins.dataverse.security import has_privilege
from standins.dataverse.store import (GUID, VERSION, ODataError, Store, bad_request, coerce, dumps, loads,
                                     not_found, parse_datetime, unknown_property)

API = "/api/data/v9.2/"
JSON = "application/json; odata.metadata=minimal"
READ_ONLY = {"createdon", "modifiedon"}
COMPUTED = {"contact": {"fullname"}, "systemuser": {"fullname"}}
PARENTAL = {"invoicedetail", "salesorderdetail", "activityparty", "annotation",     # deleted with their parent
            "environmentvariablevalue"}
QUERY_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$expand", "$count", "$skiptoken"}
APP_USER = "W365 Service"
ACCESS_NAMES = {"read": "Read", "write": "Write", "append": "Append", "appendto": "AppendTo", "create": "Create",
                "delete": "Delete", "share": "Share", "assign": "Assign"}

Response = tuple[int, dict[str, str], bytes]


class StandInConnectionError(ConnectionError):
    """An injected connection fault (fail_next(kind="connection")): the adapters turn it into their own error."""


def etag(row: Mapping[str, Any]) -> str:
    return f'W/"{row[VERSION]}"'


class DataverseStandIn:
    """An in-memory Dataverse Web API v9.2 for the footprint's tables. Thread-safe (one lock around each request)."""

    organization_id = LOCAL_ORGANIZATION_ID
    business_unit_id = "5f1c2a8e-3b5d-4e7f-9a1b-2c3d4e5f6a7b"

    def __init__(self, tables: Iterable[Table] = footprint.TABLES, *, storage_path: str | None = None,
                 clock: Any = None):
        self._lock = threading.RLock()
        self.store = Store(tables, clock)
        self.storage_path = storage_path
        self.request_count = 0
        self.requests: list[tuple[str, str]] = []
        self._faults: list[dict[str, Any]] = []
        self.protection: ServiceProtection | None = None
        self._cursors: dict[tuple, list[str]] = {}      # paged reads' first-page matches (_remember_cursor)
        if storage_path and os.path.exists(storage_path):
            self.store.load(storage_path)
        else:
            self._seed_roles()
            self.add_user(APP_USER, roles=("System Administrator",), application_id=str(uuid.uuid4()))
        self.app_user_id = next(i for i, r in self.store.rows["systemuser"].items() if r.get("fullname") == APP_USER)

    # --- test support (direct, no HTTP, no counters) ---------------------------------------------------------------

    def seed(self, logical_name: str, attributes: Mapping[str, Any]) -> str:
        """Insert a row as an import would: plain values; lookups as `x@odata.bind` or `{"id":..,"table":..}`."""
        with self._lock:
            table = self.store.table(logical_name)
            values, deep = self._values(table, dict(attributes), {}, creating=True, allow_system=True)
            row = self._insert(table, values, deep)
            self._save()
            return row[table.primary_id]

    def update(self, logical_name: str, record_id: str, attributes: Mapping[str, Any]) -> None:
        """Change a row directly (no HTTP, no privilege or read-only checks); bumps its version."""
        with self._lock:
            table = self.store.table(logical_name)
            values, _ = self._values(table, dict(attributes), {}, creating=False, allow_system=True)
            self.store.update(table, self.store.rows[logical_name][record_id], values)
            self._save()

    def add_user(self, fullname: str, *, roles: Iterable[str] = (), email: str | None = None,
                 application_id: str | None = None) -> str:
        first, _, last = fullname.partition(" ")
        user_id = self.seed("systemuser", {"firstname": first, "lastname": last or None, "isdisabled": False,
                                           "internalemailaddress": email, "applicationid": application_id})
        for role in roles:
            self.store.link("systemuserroles_association", user_id, self.role_id(role))
        self._save()
        return user_id

    def _seed_roles(self) -> None:
        """Dataverse's System Administrator (with its template, the same id in every organization), the product's
        W365 Billing Manager (the root role's id the solution installs) and two roles of no importance to us."""
        from core.permissions import BILLING_MANAGER_ROLE_ID, SYSTEM_ADMINISTRATOR_TEMPLATE_ID

        template = self.seed("roletemplate", {"roletemplateid": SYSTEM_ADMINISTRATOR_TEMPLATE_ID,
                                              "name": "System Administrator"})
        self.seed("role", {"name": "System Administrator", "roletemplateid": {"id": template, "table": "roletemplate"}})
        self.seed("role", {"roleid": BILLING_MANAGER_ROLE_ID, "name": "W365 Billing Manager"})
        for role in ("Salesperson", "Read Only"):
            self.seed("role", {"name": role})

    def add_team(self, name: str, *, roles: Iterable[str] = (), members: Iterable[str] = ()) -> str:
        """An owner team holding `roles` (by name here, test support), with `members` (systemuser ids)."""
        team_id = self.seed("team", {"name": name})
        with self._lock:
            for role in roles:
                self.store.link("teamroles_association", team_id, self.role_id(role))
            for user_id in members:
                self.store.link("teammembership_association", user_id, team_id)
            self._save()
        return team_id

    def add_role(self, name: str, *, parent_root_role: str | None = None) -> str:
        """Another role: a copy of a root role in another business unit, or any role someone made (and named)."""
        values: dict[str, Any] = {"name": name}
        if parent_root_role:
            values["parentrootroleid"] = {"id": parent_root_role, "table": "role"}
        return self.seed("role", values)

    def grant_role(self, user_id: str, role_id: str) -> None:
        with self._lock:
            self.store.link("systemuserroles_association", user_id, role_id)
            self._save()

    def role_id(self, name: str) -> str:
        return next(i for i, r in self.store.rows["role"].items() if r["name"] == name)

    def rows(self, logical_name: str) -> list[dict[str, Any]]:
        """Copies of the stored rows (lookups as {"id", "table"}, money as Decimal)."""
        with self._lock:
            return [_copy(r) for r in self.store.rows[logical_name].values()]

    def get(self, logical_name: str, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self.store.find(self.store.table(logical_name), record_id)
            return None if row is None else _copy(row)

    def sent_emails(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self.store.outbox]

    def reset_counters(self) -> None:
        with self._lock:
            self.request_count = 0
            self.requests.clear()

    def fail_next(self, count: int = 1, status: int = 503, retry_after: float | None = None,
                  match: Callable[[str, str], bool] | None = None, kind: str = "http") -> None:
        """The next `count` requests (that `match(method, path)` accepts) fail with `status`, or as a dropped
        connection with kind="connection". `path` is relative to the Web API root, without the query; a `$batch` of
        reads only (no changeset) is `$batch (reads)`, so that `$batch` names the writes."""
        if kind not in ("http", "connection"):
            raise ValueError(kind)
        with self._lock:
            self._faults.append({"remaining": count, "status": status, "retry_after": retry_after, "match": match,
                                 "kind": kind})

    # --- HTTP ------------------------------------------------------------------------------------------------------

    def protect(self, protection: "ServiceProtection | None") -> None:
        """Enforce service protection (standins/dataverse/protection.py) from now on; None turns it off."""
        self.protection = protection

    def handle(self, method: str, url: str, headers: Mapping[str, str], body: bytes | str | None) -> Response:
        protection = self.protection
        if protection is None:
            return self._handle(method, url, headers, body)
        user = next((v for k, v in headers.items() if k.lower() == "authorization"), "") or "anonymous"
        try:
            requests_left, seconds_left = protection.enter(user)
        except ODataError as throttled:
            return self._error_response(throttled)
        started, latency = protection.now(), None
        try:
            latency = protection.wait_latency()    # outside the lock: concurrent requests overlap, as on the server
            status, out_headers, out = self._handle(method, url, headers, body)
        finally:
            protection.leave(user, started, latency)
        out_headers[REMAINING_HEADER] = str(requests_left)
        out_headers[TIME_REMAINING_HEADER] = time_remaining(seconds_left)
        return status, out_headers, out

    def _handle(self, method: str, url: str, headers: Mapping[str, str], body: bytes | str | None) -> Response:
        method = method.upper()
        headers = {k.lower(): v for k, v in headers.items()}
        body = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        parts = urlsplit(url)
        at = parts.path.find(API)
        with self._lock:
            path = parts.path[at + len(API):] if at >= 0 else parts.path
            self.request_count += 1
            self.requests.append((method, unquote(path)))
            fault = self._take_fault(method, _fault_path(unquote(path), body)) if self._faults else None
            if fault is not None:
                if fault["kind"] == "connection":
                    raise StandInConnectionError(f"injected connection fault on {method} {path}")
                return self._error_response(_fault_error(fault["status"], fault["retry_after"]))
            if at < 0:
                return self._error_response(ODataError(404, "0x8006088a", f"Resource not found for the segment "
                                                                          f"'{parts.path}'."))
            root = f"{parts.scheme}://{parts.netloc}{parts.path[:at + len(API)]}"
            try:
                status, out_headers, out = self._dispatch(method, root, path, parts.query, headers, body, None)
            except ODataError as e:
                return self._error_response(e)
            if method != "GET" and status < 400:
                self._save()
            out_headers.setdefault("OData-Version", "4.0")
            out_headers["x-ms-service-request-id"] = str(uuid.uuid4())
            return status, out_headers, out

    def _take_fault(self, method: str, path: str) -> dict[str, Any] | None:
        for fault in self._faults:
            if fault["remaining"] > 0 and (fault["match"] is None or fault["match"](method, path)):
                fault["remaining"] -= 1
                return fault
        return None

    @staticmethod
    def _error_response(error: ODataError) -> Response:
        headers = {"Content-Type": JSON, "OData-Version": "4.0", "x-ms-service-request-id": str(uuid.uuid4()),
                   **error.headers}
        return error.status, headers, dumps({"error": {"code": error.code, "message": error.message}}).encode()

    def _save(self) -> None:
        if self.storage_path:
            self.store.save(self.storage_path)

    # --- routing ---------------------------------------------------------------------------------------------------

    def _dispatch(self, method: str, root: str, path: str, query: str, headers: dict[str, str], body: bytes,
                  content_ids: dict[str, tuple[Table, str]] | None) -> Response:
        caller = self._caller(headers)
        q = dict(_query_options(query))
        m = re.fullmatch(r"([\w$.]+)(?:\((.*?)\))?(?:/(.+))?", unquote(path), re.DOTALL)
        if not m:
            raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{path}'.")
        name, key, rest = m.groups()
        ctx = Context(self, root, caller, q, headers, content_ids if content_ids is not None else {})
        if name == "$batch" and method == "POST":
            return self._batch(ctx, body)
        if name == "WhoAmI" and method == "GET" and not rest:
            return actions.who_am_i(ctx)
        if name == "ConvertSalesOrderToInvoice" and method == "POST" and key is None:
            return actions.convert_sales_order_to_invoice(ctx, _json_body(body))
        answered = metadata.dispatch(self, method, root, name, key, rest, q, headers, body)
        if answered is not None:
            return answered
        try:
            table = footprint.table_by_entity_set(name)
        except KeyError:
            table = None
        if table is None or table.logical_name not in self.store.tables:
            raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{name}'.")
        self._check_query_options(q)
        if key is None:
            if rest:
                raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")
            if method == "GET":
                return self._query(ctx, table)
            if method == "POST":
                data = _json_body(body)
                return metadata.create_component_row(self, table, headers, data,
                                                     lambda: self._create(ctx, table, data))
            raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on '{name}'.")
        lookup = self._parse_key(table, key)
        row = self.store.find(table, lookup) if isinstance(lookup, str) else self.store.find_by_key(table, lookup)
        if rest:
            return self._bound(ctx, method, table, row, lookup, rest, body)
        if method == "GET":
            if row is None:
                raise not_found(table.logical_name, key)
            self.require(caller, "read", table)
            return 200, {"Content-Type": JSON}, dumps(ctx.entity(table, row)).encode()
        if method == "PATCH":
            return self._update(ctx, table, row, lookup, _json_body(body))
        if method == "DELETE":
            if row is None:
                raise not_found(table.logical_name, key)
            self.require(caller, "delete", table)
            self._delete(table, row)
            return 204, {}, b""
        raise ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed here.")

    def _bound(self, ctx: "Context", method: str, table: Table, row: dict | None, lookup: Any, rest: str,
               body: bytes) -> Response:
        if row is None:
            raise not_found(table.logical_name, str(lookup))
        if rest == "Microsoft.Dynamics.CRM.SendEmail" and table.logical_name == "email" and method == "POST":
            return actions.send_email(ctx, row, _json_body(body))
        if rest.startswith("Microsoft.Dynamics.CRM.RetrievePrincipalAccess(") and table.logical_name == "systemuser" \
                and method == "GET":
            return actions.retrieve_principal_access(ctx, row, rest)
        m = re.fullmatch(r"(\w+)/\$ref", rest)
        relation = next((r for r in footprint.MANY_TO_MANY if m and r.name == m.group(1)), None)
        if relation is not None and method == "POST":
            self.require(ctx.caller, "append", table)
            other_table, other_id = self._resolve_reference(loads(body or b"{}").get("@odata.id"), ctx.content_ids)
            other = {relation.table1, relation.table2} - {table.logical_name}
            if other_table.logical_name not in other:
                raise bad_request(f"{other_table.logical_name} cannot be associated through {relation.name}.")
            pair = (row[table.primary_id], other_id)
            self.store.link(relation.name, *(pair if table.logical_name == relation.table1 else pair[::-1]))
            return 204, {}, b""
        raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")

    # --- security --------------------------------------------------------------------------------------------------

    def _caller(self, headers: Mapping[str, str]) -> str:
        caller = headers.get("mscrmcallerid")
        if caller is None:
            return self.app_user_id
        if not GUID.match(caller):
            raise bad_request(f"The MSCRMCallerID header '{caller}' is not a GUID.")
        user = self.store.rows["systemuser"].get(caller.lower())
        if user is None:
            raise not_found("systemuser", caller)
        if user.get("isdisabled"):
            raise ODataError(403, "0x8004140c", f"The user with SystemUserId={caller} is disabled.")
        return caller.lower()

    def role_ids(self, user_id: str) -> list[str]:
        """The user's roles, direct and through their teams."""
        roles = list(self.store.linked("systemuserroles_association", user_id))
        for team_id in self.store.linked("teammembership_association", user_id):
            roles += self.store.linked("teamroles_association", team_id)
        return [r for r in roles if r in self.store.rows["role"]]

    def role_names(self, user_id: str) -> list[str]:
        """The names of the user's roles (the stand-in's built-in privileges are by name)."""
        return [self.store.rows["role"][r]["name"] for r in self.role_ids(user_id)]

    def require(self, caller: str, access: str, table: Table) -> None:
        """A role the installer gave privileges to (AddPrivilegesRole) holds exactly those; any other role the
        stand-in's built-in table of role names (security.ROLE_PRIVILEGES)."""
        installed = {r: metadata.installed_privileges(self, r) for r in self.role_ids(caller)}
        named = [self.store.rows["role"][r]["name"] for r, granted in installed.items() if granted is None]
        wanted = f"prv{ACCESS_NAMES[access]}{footprint.PRIVILEGE_SCHEMA.get(table.logical_name, table.logical_name)}"
        if not has_privilege(named, access, table.logical_name) and \
                not any(granted and wanted in granted for granted in installed.values()):
            raise ODataError(403, "0x80040220", f"Principal user (Id={caller}, type=8) is missing "
                                                f"prv{access.capitalize()}{table.logical_name} privilege on "
                                                f"entity '{table.logical_name}'.")

    # --- reads -----------------------------------------------------------------------------------------------------

    @staticmethod
    def _check_query_options(q: Mapping[str, str]) -> None:
        for key in q:
            if key.startswith("$") and key not in QUERY_OPTIONS:
                raise bad_request(f"The query parameter {key} is not supported", "0x80060888")

    def _query(self, ctx: "Context", table: Table) -> Response:
        self.require(ctx.caller, "read", table)
        q = ctx.query
        if "fetchXml" in q:
            return self._fetch(ctx, table, q["fetchXml"])
        select = parse_select(table, q.get("$select"))
        expands = parse_expand(q["$expand"]) if q.get("$expand") else []
        top = parse_top(q.get("$top"))
        page_size = ctx.prefer.get("odata.maxpagesize")
        skip = int(q.get("$skiptoken", "0")) if q.get("$skiptoken", "0").isdigit() else None
        if skip is None:
            raise bad_request("Invalid $skiptoken.", "0x80060888")
        found = self._first_by_key(table, q, top) if top is not None and q.get("$count") != "true" else None
        paged = top is None and bool(page_size)
        if found is None and paged and skip:
            found = self._cursor_rows(table, q, skip)
        if found is None:
            found = ctx.filtered(table, list(self.store.rows[table.logical_name].values()), q)
            if paged and len(found) > page_size:
                self._remember_cursor(table, q, found)
        body: dict[str, Any] = {"@odata.context": ctx.context_url(table, select)}
        if q.get("$count") == "true":
            body["@odata.count"] = len(found)
        elif q.get("$count") not in (None, "false"):
            raise bad_request("$count must be true or false.", "0x80060888")
        headers = {"Content-Type": JSON}
        if top is not None:
            page, more = found[:top], False
        elif page_size:
            page, more = found[skip:skip + page_size], skip + page_size < len(found)
            headers["Preference-Applied"] = f"odata.maxpagesize={page_size}"
        else:
            page, more = found, False
        body["value"] = [ctx.shape(table, r, select, expands) for r in page]
        if more:
            body["@odata.nextLink"] = f"{ctx.root}{table.entity_set}?" + urlencode(
                {**{k: v for k, v in q.items() if k != "$skiptoken"}, "$skiptoken": str(skip + page_size)},
                quote_via=quote, safe="$,()'=")
        return 200, headers, dumps(body).encode()

    # A paged read's later pages continue from what its first page found, as Dataverse's paging cookie continues
    # from where the last page ended, instead of filtering and sorting the whole table again for every page (a read
    # of N rows in pages of P would cost N*N/P row tests: a long run's periodic count grew quadratically).
    CURSORS = 16

    @staticmethod
    def _cursor_key(table: Table, q: Mapping[str, str]) -> tuple:
        return table.logical_name, repr(sorted((k, v) for k, v in q.items() if k != "$skiptoken"))

    def _remember_cursor(self, table: Table, q: Mapping[str, str], found: list[dict[str, Any]]) -> None:
        cursors = self._cursors
        key = self._cursor_key(table, q)
        cursors.pop(key, None)
        cursors[key] = [row[table.primary_id] for row in found]
        while len(cursors) > self.CURSORS:
            del cursors[next(iter(cursors))]

    def _cursor_rows(self, table: Table, q: Mapping[str, str], skip: int) -> "_Positions | None":
        """The rows of a later page's query: the first page's matches in its order, each as it is now; a row deleted
        since, or changed so that it no longer matches, is left out; a row that began to match since is not seen
        (a read that pages while rows change sees some of the changes on Dataverse too). Positions are the first
        page's, so `$skiptoken` offsets stay valid. None when no cursor is known (the full filter then answers)."""
        ids = self._cursors.get(self._cursor_key(table, q))
        if ids is None or skip >= len(ids):
            return None
        rows = self.store.rows[table.logical_name]
        predicate = parse_filter(table, q["$filter"]) if "$filter" in q else None
        return _Positions(ids, rows, predicate)

    def _first_by_key(self, table: Table, q: Mapping[str, str], top: int) -> list[dict[str, Any]] | None:
        """Keyset paging (`$orderby=<primary id>&$top=N`, with `<primary id> gt <last>` after the first page) through
        the table's ids in order: start past the key's lower bound, stop at the N-th match. The same rows, in the same
        order, as filtering the whole table, sorting it and taking N (tests/adapters/test_standin_indexes.py), without
        reading every row for every page. None when the query is not of that shape."""
        if not q.get("$orderby"):
            return None
        predicate = parse_filter(table, q["$filter"]) if "$filter" in q else (lambda row: True)
        if [(c.name, d) for c, d in parse_orderby(table, q["$orderby"])] != [(table.primary_id, False)]:
            return None
        ids = self.store.ids_in_order(table)
        start = 0
        for name, op, value in conjuncts(predicate):
            if name == table.primary_id and op in ("gt", "ge") and isinstance(value, str):
                after = bisect.bisect_right if op == "gt" else bisect.bisect_left
                start = max(start, after(ids, value, key=str.lower))
        rows = self.store.rows[table.logical_name]
        found: list[dict[str, Any]] = []
        for record_id in islice(ids, start, None):
            if len(found) >= top:
                break
            row = rows[record_id]
            if predicate(row):
                found.append(row)
        return found

    def _fetch(self, ctx: "Context", table: Table, text: str) -> Response:
        """`GET <entityset>?fetchXml=...`: the views' and charts' queries (standins/dataverse/fetchxml.py)."""
        if set(ctx.query) - {"fetchXml"}:
            raise bad_request("fetchXml cannot be combined with other query options.", "0x80060888")
        now = parse_datetime(self.store.now_iso())
        query, rows = fetchxml.run(text, self.store.tables, self.store.rows, now, expected_table=table.logical_name)
        for link in fetchxml.linked_tables(query):
            self.require(ctx.caller, "read", link)
        body = {"@odata.context": f"{ctx.root}$metadata#{table.entity_set}", "value": rows}
        return 200, {"Content-Type": JSON}, dumps(body).encode()

    # --- writes ----------------------------------------------------------------------------------------------------

    def _create(self, ctx: "Context", table: Table, data: dict[str, Any], key_values: Mapping[str, Any] = (),
                record_id: str | None = None) -> Response:
        self.require(ctx.caller, "create", table)
        values, deep = self._values(table, data, ctx.content_ids, creating=True)
        values.update(key_values)
        if record_id:
            values[table.primary_id] = record_id
        row = self._insert(table, values, deep)
        return self._written(ctx, table, row, 201)

    def _insert(self, table: Table, values: dict[str, Any], deep: list) -> dict[str, Any]:
        missing = [c.name for c in table.columns if c.required and values.get(c.name) is None]
        if missing:
            raise bad_request(f"A validation error occurred. A value for the attribute {missing[0]} of "
                              f"{table.logical_name} is required.", "0x80040200")
        mark = self.store.begin()
        try:
            record_id = values.pop(table.primary_id, None)
            row = self.store.insert(table, values, record_id)
            for relation, items in deep:
                child = self.store.table(relation.referencing)
                for item in items:
                    child_values, grandchildren = self._values(child, item, {}, creating=True)
                    child_values[relation.column] = {"id": row[table.primary_id], "table": table.logical_name}
                    self._insert(child, child_values, grandchildren)
        except ODataError:
            self.store.rollback(mark)
            raise
        self.store.commit(mark)
        return row

    def _update(self, ctx: "Context", table: Table, row: dict | None, lookup: Any, data: dict[str, Any]) -> Response:
        if_match, if_none_match = ctx.headers.get("if-match"), ctx.headers.get("if-none-match")
        if row is None:
            if if_match:
                raise not_found(table.logical_name, str(lookup))
            if isinstance(lookup, str):
                return self._create(ctx, table, data, record_id=lookup)
            return self._create(ctx, table, data, key_values=lookup)
        if if_none_match == "*":
            raise ODataError(412, "0x80040237", "A record with matching key values already exists.")
        if if_match and if_match != "*" and if_match != etag(row):
            raise ODataError(412, "0x80060882", "The version of the existing record doesn't match the RowVersion "
                                                "property provided.")
        self.require(ctx.caller, "write", table)
        values, deep = self._values(table, data, ctx.content_ids, creating=False)
        if values.get(table.primary_id, row[table.primary_id]) != row[table.primary_id]:
            raise bad_request(f"The primary key {table.primary_id} cannot be changed.")
        values.pop(table.primary_id, None)
        if table.logical_name == "invoice" and row["statecode"] in (2, 3) \
                and set(values) - {"statecode", "statuscode"}:
            state = "Paid" if row["statecode"] == 2 else "Canceled"
            raise bad_request(f"This invoice is {state} and read-only: only statecode and statuscode can change "
                              f"until it is reactivated (statecode 0). Refused columns: "
                              f"{', '.join(sorted(set(values) - {'statecode', 'statuscode'}))}.", "0x80040203")
        self.store.update(table, row, values)
        return self._written(ctx, table, row, 200)

    def _written(self, ctx: "Context", table: Table, row: dict[str, Any], status_with_body: int) -> Response:
        location = f"{ctx.root}{table.entity_set}({row[table.primary_id]})"
        headers = {"OData-EntityId": location}
        if "return" in ctx.prefer and ctx.prefer["return"] == "representation":
            select = parse_select(table, ctx.query.get("$select"))
            body = ctx.entity(table, row, select=select)
            headers.update({"Content-Type": JSON, "Preference-Applied": "return=representation"})
            return status_with_body, headers, dumps(body).encode()
        return 204, headers, b""

    def _delete(self, table: Table, row: dict[str, Any]) -> None:
        record_id = row[table.primary_id]
        self.store.delete(table, record_id)
        for relation in footprint.one_to_many(table.logical_name):
            if relation.referencing not in self.store.tables:
                continue
            child_table = self.store.table(relation.referencing)
            for child in list(self.store.rows[relation.referencing].values()):
                ref = child.get(relation.column)
                if ref and ref["id"] == record_id and ref["table"] == table.logical_name:
                    if relation.referencing in PARENTAL:
                        self._delete(child_table, child)
                    else:
                        self.store.update(child_table, child, {relation.column: None})

    def _values(self, table: Table, data: Any, content_ids: Mapping[str, tuple[Table, str]], *, creating: bool,
                allow_system: bool = False) -> tuple[dict[str, Any], list]:
        """Stored values from a JSON body: `@odata.bind` lookups, type checks, deep-insert children."""
        if not isinstance(data, dict):
            raise bad_request("The request body must be a JSON object.")
        values: dict[str, Any] = {}
        deep = []
        relations = _one_to_many(table.logical_name)
        for key, value in data.items():
            if key.endswith("@odata.bind"):
                column, target = self._navigation(table, key[:-len("@odata.bind")])
                if value is None:
                    values[column.name] = None
                    continue
                ref_table, ref_id = self._resolve_reference(value, content_ids)
                if ref_table.logical_name != target:
                    raise bad_request(f"'{key}' must point at a {target}, not a {ref_table.logical_name}.")
                if self.store.find(ref_table, ref_id) is None:
                    raise not_found(target, ref_id)
                values[column.name] = {"id": ref_id.lower(), "table": target}
            elif allow_system and isinstance(value, dict) and {"id", "table"} <= set(value):
                values[key] = {"id": value["id"].lower(), "table": value["table"]}
            elif "@" in key:
                continue                       # instance annotations such as @odata.type are ignored
            elif key in relations and isinstance(value, list):
                if not creating:
                    raise bad_request(f"Deep insert through '{key}' is only possible on create.")
                deep.append((relations[key], value))
            else:
                column = table.column(key)
                if column is None:
                    raise bad_request(f"The property '{key}' does not exist on type 'Microsoft.Dynamics.CRM."
                                      f"{table.logical_name}'. Make sure to only use property names that are "
                                      f"defined by the type.", "0x80060888")
                read_only = key in READ_ONLY or key in COMPUTED.get(table.logical_name, ()) or (
                    key == table.primary_id and not creating)
                if read_only and not allow_system:
                    if key == table.primary_id:
                        values[key] = coerce(table, column, value)    # allowed when it names the same row
                        continue
                    raise bad_request(f"The property '{key}' of '{table.logical_name}' is read-only.", "0x80060888")
                values[key] = coerce(table, column, value)
        return values, deep

    @staticmethod
    def _navigation(table: Table, navigation: str) -> tuple[Column, str]:
        column = _lookup_navigations(table).get(navigation)
        if column is not None:
            return column, column.navigations[navigation]
        raise bad_request(f"An undeclared property '{navigation}' which only has property annotations in the "
                          f"payload but no property value was found in the payload. In OData, only declared "
                          f"navigation properties and declared named streams can be represented as properties "
                          f"without values.", "0x80060888")

    def _resolve_reference(self, value: Any, content_ids: Mapping[str, tuple[Table, str]]) -> tuple[Table, str]:
        """`/accounts(<id>)`, `accounts(<id>)`, an absolute URL, or `$<content-id>` inside a changeset."""
        if isinstance(value, str) and value.startswith("$") and value[1:] in content_ids:
            return content_ids[value[1:]]
        m = re.fullmatch(r"(?:.*/api/data/v\d+\.\d+/|/)?(\w+)\(([^)]*)\)", value) if isinstance(value, str) else None
        if not m:
            raise bad_request(f"The reference '{value}' is not a valid entity URL.", "0x80060888")
        try:
            ref_table = footprint.table_by_entity_set(m.group(1))
        except KeyError:
            raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{m.group(1)}'.") from None
        key = self._parse_key(ref_table, m.group(2))
        if not isinstance(key, str):
            row = self.store.find_by_key(ref_table, key)
            if row is None:
                raise not_found(ref_table.logical_name, m.group(2))
            key = row[ref_table.primary_id]
        return ref_table, key

    def _parse_key(self, table: Table, text: str) -> str | dict[str, Any]:
        """A GUID, or an alternate key `name='value'[,name2=...]` (values coerced like the column)."""
        text = text.strip()
        if GUID.match(text):
            return text.lower()
        pairs = re.findall(r"(\w+)\s*=\s*('(?:[^']|'')*'|[^,]+)\s*(?:,|$)", text)
        if not pairs:
            raise bad_request(f"The key '{text}' is neither a GUID nor an alternate key.", "0x80060888")
        key = {}
        for name, raw in pairs:
            column = table.column(name)
            if column is None:
                raise unknown_property(table.logical_name, name)
            try:
                key[name] = raw[1:-1].replace("''", "'") if raw.startswith("'") else loads(raw)
            except ValueError:
                raise bad_request(f"The key value {raw} is neither a quoted string nor a number.") from None
        return key

    # --- $batch ----------------------------------------------------------------------------------------------------

    def _batch(self, ctx: "Context", body: bytes) -> Response:
        items = parse_batch(ctx.headers.get("content-type", ""), body)
        continue_on_error = "odata.continue-on-error" in ctx.prefer
        outer = {k: v for k, v in ctx.headers.items() if k == "mscrmcallerid"}
        responses: list = []
        failed = False
        for item in items:
            if isinstance(item, Changeset):
                mark = self.store.begin()
                content_ids: dict[str, tuple[Table, str]] = {}
                done = []
                for part in item.parts:
                    response = self._batch_part(ctx.root, part, outer, content_ids)
                    if response.status >= 400:
                        self.store.rollback(mark)
                        responses.append(response)
                        failed = True
                        break
                    done.append(response)
                else:
                    self.store.commit(mark)
                    responses.append(done)
            else:
                response = self._batch_part(ctx.root, item, outer, {})
                responses.append(response)
                failed = failed or response.status >= 400
            if failed and not continue_on_error:
                break
        content_type, out = write_batch(responses)
        # Without odata.continue-on-error Dataverse stops at the first failure and answers 400; the part carries
        # the real status (412, 403, ...) and error.
        return (400 if failed and not continue_on_error else 200), {"Content-Type": content_type}, out

    def _batch_part(self, root: str, part, outer: dict[str, str], content_ids: dict) -> PartResponse:
        url = part.url
        m = re.match(r"\$(\w+)(.*)", url)
        if m and m.group(1) in content_ids:
            ref_table, ref_id = content_ids[m.group(1)]
            url = f"{ref_table.entity_set}({ref_id}){m.group(2)}"
        at = url.find(API)
        path = url[at + len(API):] if at >= 0 else url.lstrip("/")
        path, _, query = path.partition("?")
        try:
            status, headers, body = self._dispatch(part.method, root, path, query, {**outer, **part.headers},
                                                   part.body, content_ids)
        except ODataError as e:
            status, headers, body = self._error_response(e)
            headers.pop("x-ms-service-request-id", None)
        headers.setdefault("OData-Version", "4.0")
        if "OData-EntityId" in headers:
            headers["Location"] = headers["OData-EntityId"]
            if part.content_id and status < 400:
                entity_set, record_id = re.search(r"(\w+)\(([^)]+)\)$", headers["OData-EntityId"]).groups()
                content_ids[part.content_id] = (footprint.table_by_entity_set(entity_set), record_id)
        return PartResponse(status, headers, body, part.content_id)

    # --- adapters --------------------------------------------------------------------------------------------------

    def register_with_responses(self, rsps, base_url: str = "https://contoso.crm.dynamics.com") -> None:
        """Route every request under `<base_url>/api/data/v9.2/` of a `responses.RequestsMock` to `handle`.

        One callback per method is registered, so build the mock with `assert_all_requests_are_fired=False`."""
        import requests

        def callback(request):
            try:
                return self.handle(request.method, request.url, dict(request.headers), request.body)
            except StandInConnectionError as e:
                raise requests.ConnectionError(str(e)) from None

        pattern = re.compile(re.escape(base_url.rstrip("/") + API) + ".*")
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            rsps.add_callback(method, pattern, callback=callback, content_type=None)

    def wsgi_app(self, prefix: str = ""):
        """A WSGI app serving this stand-in under `prefix` (e.g. "/dataverse"; the org URL is then
        `http://host:port/dataverse`)."""
        def app(environ, start_response):
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            if not path.startswith(prefix):
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"not found"]
            url = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}{quote(path)}"
            if environ.get("QUERY_STRING"):
                url += "?" + environ["QUERY_STRING"]
            headers = {k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
            if environ.get("CONTENT_TYPE"):
                headers["content-type"] = environ["CONTENT_TYPE"]
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            status, out_headers, out = self.handle(environ["REQUEST_METHOD"], url, headers, body)
            start_response(f"{status} {HTTPStatus(status).phrase}", list(out_headers.items()))
            return [out]
        return app


def _fault_path(path: str, body: bytes) -> str:
    if path == "$batch" and not re.search(rb"(?im)^content-type:\s*multipart/mixed", body):
        return "$batch (reads)"
    return path


def _copy(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in row.items() if k != VERSION} | {"@odata.etag": etag(row)}


def _json_body(body: bytes) -> Any:
    if not body:
        return {}
    try:
        return loads(body)
    except ValueError:
        raise bad_request("The request body is not valid JSON.") from None


def _fault_error(status: int, retry_after: float | None) -> ODataError:
    headers = {"Retry-After": str(int(retry_after) if float(retry_after).is_integer() else retry_after)} \
        if retry_after is not None else {}
    if status == 429:
        return ODataError(429, "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 "
                                             "seconds.", headers)
    return ODataError(status, "0x80040216", f"An unexpected error occurred (injected fault, HTTP {status}).", headers)


class Context:
    """One request's view: root URL, caller, query options, Prefer, content ids; shapes rows into JSON."""

    def __init__(self, standin: DataverseStandIn, root: str, caller: str, query: dict[str, str],
                 headers: dict[str, str], content_ids: dict[str, tuple[Table, str]]):
        self.standin, self.store = standin, standin.store
        self.root, self.caller, self.query, self.headers, self.content_ids = root, caller, query, headers, content_ids
        self.prefer = _prefer(headers.get("prefer", ""))
        self._allowed: set[tuple[str, str]] = set()     # (access, table) checked already in this request
        annotations = self.prefer.get("odata.include-annotations", "")
        self.annotate = annotations == "*" or "FormattedValue" in annotations or "lookuplogicalname" in annotations

    def require(self, access: str, table: Table) -> None:
        """The caller's privilege, checked once per request and table (rights cannot change within a request: one
        lock holds the store while it runs), not once per row an $expand reads."""
        if (access, table.logical_name) not in self._allowed:
            self.standin.require(self.caller, access, table)
            self._allowed.add((access, table.logical_name))

    def context_url(self, table: Table, select: list[Column] | None, entity: bool = False) -> str:
        columns = f"({','.join(c.value_property for c in select)})" if select else ""
        return f"{self.root}$metadata#{table.entity_set}{columns}{'/$entity' if entity else ''}"

    def entity(self, table: Table, row: dict[str, Any], select: list[Column] | None = None) -> dict[str, Any]:
        """A single-row response body, honouring this request's $select and $expand."""
        if select is None:
            select = parse_select(table, self.query.get("$select"))
        expands = parse_expand(self.query["$expand"]) if self.query.get("$expand") else []
        return {"@odata.context": self.context_url(table, select, entity=True),
                **self.shape(table, row, select, expands)}

    def filtered(self, table: Table, rows: list[dict[str, Any]], options: Mapping[str, str]) -> list[dict[str, Any]]:
        if "$filter" in options:
            predicate = parse_filter(table, options["$filter"])
            rows = [r for r in rows if predicate(r)]
        if options.get("$orderby"):
            rows = sort_rows(rows, parse_orderby(table, options["$orderby"]))
        return rows

    def shape(self, table: Table, row: dict[str, Any], select: list[Column] | None, expands: list) -> dict[str, Any]:
        out: dict[str, Any] = {"@odata.etag": etag(row)}
        annotate = self.annotate
        for name, prop, kind, labels, formatted, logical in _shape_plan(table, select):
            value = row.get(name)
            if kind is _LOOKUP:
                out[prop] = value["id"] if value else None
                if annotate and value:
                    target = self.store.table(value["table"])
                    ref = self.store.find(target, value["id"])
                    out[formatted] = ref.get(target.primary_name) if ref and target.primary_name else None
                    out[logical] = value["table"]
            else:
                out[name] = value
                if annotate and value is not None and kind is _LABELLED:
                    out[formatted] = labels(value)
        for expand in expands:
            out[expand.navigation] = self._expand(table, row, expand)
        return out

    def _expand(self, table: Table, row: dict[str, Any], expand) -> Any:
        nav, options = expand.navigation, expand.options
        nested = parse_expand(options["$expand"]) if options.get("$expand") else []
        column = _lookup_navigations(table).get(nav)
        if column is not None:
            if set(options) - {"$select", "$expand"}:
                raise bad_request(f"Only $select and $expand apply to the single-valued '{nav}'.", "0x80060888")
            value = row.get(column.name)
            if not value or value["table"] != column.navigations[nav]:
                return None
            target = self.store.table(value["table"])
            ref = self.store.find(target, value["id"])
            self.require("read", target)
            return None if ref is None else self.shape(target, ref, parse_select(target, options.get("$select")),
                                                       nested)
        relation = _one_to_many(table.logical_name).get(nav)
        record_id = row[table.primary_id]
        if relation is not None and relation.referencing in self.store.tables:
            target = self.store.table(relation.referencing)
            children = [r for r in self.store.referencing(target, relation.column, record_id)
                        if r[relation.column]["table"] == table.logical_name]
        else:
            many = next((m for m in footprint.MANY_TO_MANY if m.name == nav
                         and table.logical_name in (m.table1, m.table2)), None)
            if many is None:
                raise unknown_property(table.logical_name, nav)
            target = self.store.table(many.table2 if table.logical_name == many.table1 else many.table1)
            children = [self.store.rows[target.logical_name][i] for i in self.store.linked(many.name, record_id)
                        if i in self.store.rows[target.logical_name]]
        self.require("read", target)
        children = self.filtered(target, children, options)
        top = parse_top(options.get("$top"))
        children = children[:top] if top is not None else children
        select = parse_select(target, options.get("$select"))
        return [self.shape(target, c, select, nested) for c in children]


# --- per-table plans, built once (a table's columns do not change while it is the same object) -----------------------

_LOOKUP, _LABELLED, _PLAIN = object(), object(), object()
_PLANS: dict[tuple, tuple] = {}


def _shape_plan(table: Table, select: list[Column] | None) -> tuple:
    """What `shape` writes for each column of `select` (all columns when None) plus the primary id: (name, property,
    kind, labels, formatted-value annotation, lookuplogicalname annotation). Keyed by the identity of the table and
    the columns; the entry holds them, so an id is never reused while it is cached."""
    key = (id(table), None if select is None else tuple(map(id, select)))
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is table:
        return hit[2]
    columns = list(select) if select is not None else [c for c in table.columns]
    if table.column(table.primary_id) not in columns:
        columns = columns + [table.column(table.primary_id)]
    plan = []
    for column in columns:
        prop = column.value_property
        formatted = f"{prop}@OData.Community.Display.V1.FormattedValue"
        if column.type == "lookup":
            plan.append((column.name, prop, _LOOKUP, None, formatted, f"{prop}@Microsoft.Dynamics.CRM.lookuplogicalname"))
        elif column.type in ("choice", "state", "status"):
            labels = (dict(column.choices).__getitem__ if column.type == "choice" else
                      _StateLabels(table.logical_name, column.name))
            plan.append((column.name, prop, _LABELLED, labels, formatted, None))
        else:
            plan.append((column.name, prop, _PLAIN, None, None, None))
    if len(_PLANS) >= 4096:
        _PLANS.clear()
    entry = (table, select and tuple(select), tuple(plan))
    _PLANS[key] = entry
    return entry[2]


class _StateLabels:
    """footprint.label of a statecode/statuscode, remembered per value."""

    def __init__(self, table_name: str, column: str):
        self._table, self._column = table_name, column
        self._known: dict[int, str] = {}

    def __call__(self, value: int) -> str:
        text = self._known.get(value)
        if text is None:
            text = self._known[value] = footprint.label(self._table, self._column, value)
        return text


def _lookup_navigations(table: Table) -> dict[str, Column]:
    """navigation property -> its lookup column (the first that has it, in column order)."""
    key = ("navigations", id(table))
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is table:
        return hit[2]
    navigations: dict[str, Column] = {}
    for column in table.columns:
        if column.type == "lookup":
            for nav in column.navigations:
                navigations.setdefault(nav, column)
    _PLANS[key] = (table, None, navigations)
    return navigations


class _Positions:
    """A cursor's matches by position, read as _query reads a result (its length, a slice): a slice holds each row
    as it is now, without those deleted or no longer matching."""

    def __init__(self, ids: list[str], rows: Mapping[str, dict[str, Any]], predicate: Callable | None):
        self._ids, self._rows, self._predicate = ids, rows, predicate

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, window: slice) -> list[dict[str, Any]]:
        found = (self._rows.get(record_id) for record_id in self._ids[window])
        return [row for row in found if row is not None and (self._predicate is None or self._predicate(row))]


@functools.lru_cache(maxsize=1024)
def _query_options(query: str) -> tuple[tuple[str, str], ...]:
    """The query string's options (a run repeats the same few, with the ids in the path)."""
    return tuple(parse_qsl(query, keep_blank_values=True))


def _one_to_many(logical_name: str) -> dict[str, Any]:
    """The table's one-to-many relationships by name (the first of a name, as footprint lists them)."""
    key = ("relations", logical_name)
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is footprint.RELATIONSHIPS:
        return hit[2]
    relations: dict[str, Any] = {}
    for relation in footprint.one_to_many(logical_name):
        relations.setdefault(relation.name, relation)
    _PLANS[key] = (footprint.RELATIONSHIPS, None, relations)
    return relations


def _prefer(header: str) -> dict[str, Any]:
    return dict(_parsed_prefer(header))


@functools.lru_cache(maxsize=256)
def _parsed_prefer(header: str) -> tuple[tuple[str, Any], ...]:
    return tuple(_parse_prefer(header).items())


def _parse_prefer(header: str) -> dict[str, Any]:
    prefer: dict[str, Any] = {}
    for name, value in re.findall(r'([\w.-]+)\s*(?:=\s*("[^"]*"|[^,]*))?', header):
        value = value.strip().strip('"')
        if name == "odata.maxpagesize":
            if not value.isdigit() or int(value) == 0:
                raise bad_request(f"Invalid odata.maxpagesize '{value}'.")
            prefer[name] = int(value)
        else:
            prefer[name] = value
    return prefer
