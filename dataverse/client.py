"""The Dataverse Web API client (implements core.ports.Dataverse) on requests, with one request chokepoint.

Facts it relies on are in research/dataverse.md §2: OData headers, If-Match ETags, 429 + Retry-After (api-limits),
`$batch` changesets, error bodies `{"error": {"code", "message"}}` whose code is often empty.
"""
from __future__ import annotations

import copy
import email.utils
import logging
import math
import random
import re
import time
import uuid
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit

import requests

from core import jsonutil, odata
from core.errors import (AccessDenied, ConcurrencyConflict, ConfigurationError, DataverseAuthError, DataverseError,
                         DuplicateRecord, PlatformUnavailable, RecordNotFound)
from core.transport import never_sent
from core.ports import BatchOperation, BatchResult, Read, Record
from dataverse import batch as batch_format

log = logging.getLogger(__name__)

API_PATH = "/api/data/v9.2/"
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# 429 and 503 mean Dataverse turned the request away: safe to resend even a create. 502/504 come from a gateway that
# may have passed the request on, so a POST that got one has an unknown outcome.
REJECTED_UNPROCESSED = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "PATCH", "DELETE"})  # a replayed PATCH with an ETag at worst answers 412
DUPLICATE_CODES = frozenset({"0x80060892", "0x80040237"})         # alternate key / duplicate key on insert
CONCURRENCY_CODES = frozenset({"0x80060882"})                      # ConcurrencyVersionMismatch
# "Resource not found for the segment 'x'": the URL names no table, action or property (a wrong path, a missing
# installation step), which no retry or "record not found" handling can mend.
UNKNOWN_SEGMENT_CODE = "0x8006088a"
_SEGMENT = re.compile(r"segment '([^']*)'")
FIRST_BACKOFF = 0.5
CLIENT_REQUEST_ID = "x-ms-client-request-id"
# Query-string characters OData reads literally; everything else is percent-encoded (a space as %20, not '+').
_QUERY_SAFE = "$'(),/:=@*"
# What quote() leaves alone: its always-safe characters and _QUERY_SAFE.
_TO_QUOTE = re.compile(r"[^A-Za-z0-9_.~$'(),/:=@*-]+")
_ENTITY_ID = re.compile(r"\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)\s*$")


class DataverseClient:
    """`token_provider()` returns a bearer token (dataverse.auth). `sleep` is injectable so tests never wait."""

    page_size = 5000                     # Prefer: odata.maxpagesize (Dataverse's own default and maximum)

    def __init__(self, base_url: str, token_provider: Callable[[], str], *, session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = (5, 30), max_retries: int = 4, max_backoff: float = 30,
                 sleep: Callable[[float], None] = time.sleep, caller_id: str | None = None,
                 observer: Callable[[int, Mapping[str, str]], None] | None = None):
        base = base_url.rstrip("/")
        self._api_root = base + API_PATH
        self._api_path = (urlsplit(base).path or "") + API_PATH
        self._tokens = token_provider
        self._session = session or requests.Session()
        self._timeout = timeout
        self._max_retries = max_retries
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._caller_id = caller_id
        self._extra_headers: dict[str, str] = {}
        # Told the status and headers of every answer (core.throttle.RequestBudget reads the rate-limit headers).
        self._observer = observer

    def __repr__(self) -> str:
        return f"DataverseClient({self._api_root!r}, caller_id={self._caller_id!r})"

    # --- the port ----------------------------------------------------------------------------------------------------

    def retrieve(self, entity_set: str, record_id: str, *, select: Sequence[str] = (),
                 expand: str | None = None) -> Record:
        path, params = _get_target(Read.retrieve(entity_set, record_id, select=select, expand=expand))
        return self._request("GET", path, params=params, expected=(200,)).json_body

    def query(self, entity_set: str, *, select: Sequence[str] = (), filter: str | None = None,
              expand: str | None = None, orderby: str | None = None, top: int | None = None) -> list[Record]:
        path, params = _get_target(Read.query(entity_set, select=select, filter=filter, expand=expand,
                                              orderby=orderby, top=top))
        # Dataverse does not page a $top query; maxpagesize only applies without it.
        headers = {} if top is not None else {"Prefer": f"odata.maxpagesize={self.page_size}"}
        rows: list[Record] = []
        page = self._request("GET", path, params=params, headers=headers, expected=(200,)).json_body or {}
        while True:
            rows.extend(page.get("value", []))
            next_link = page.get("@odata.nextLink")
            if not next_link or (top is not None and len(rows) >= top):
                break
            page = self._request("GET", next_link, headers=headers, expected=(200,)).json_body or {}
        return rows[:top] if top is not None else rows

    def create(self, entity_set: str, body: Mapping[str, Any]) -> str:
        response = self._request("POST", entity_set, json_body=body, expected=(201, 204))
        record_id = _id_from_entity_url(response.headers.get("OData-EntityId"))
        if record_id is None and isinstance(response.json_body, dict):
            record_id = response.json_body.get(_primary_key(entity_set))
        if not record_id:
            raise DataverseError(f"Dataverse created a row in {entity_set} without saying its id",
                                 status=response.status_code, request_id=_request_id(response))
        return record_id

    def update(self, entity_set: str, record_id: str, body: Mapping[str, Any], *, etag: str | None = None) -> None:
        # If-Match: * keeps PATCH from creating the row when it is missing (an upsert otherwise).
        self._request("PATCH", f"{entity_set}({record_id})", json_body=body, headers={"If-Match": etag or "*"},
                      expected=(200, 204))

    def delete(self, entity_set: str, record_id: str) -> None:
        self._request("DELETE", f"{entity_set}({record_id})", expected=(204,))

    def put(self, path: str, body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None) -> None:
        """Replace a whole definition: metadata updates are PUTs of the full EntityDefinitions(...) or
        .../Attributes(...) body (the installer's use; the service never calls it)."""
        self._request("PUT", path, json_body=body, headers=headers, expected=(204,))

    def execute(self, operation: str, parameters: Mapping[str, Any] | None = None, *,
                bound_to: tuple[str, str] | None = None, is_function: bool = False) -> Record:
        if is_function:
            path, params = _get_target(Read.function(operation, parameters, bound_to=bound_to))
            response = self._request("GET", path, params=params, expected=(200, 204))
        else:
            response = self._request("POST", _operation_path(operation, bound_to), json_body=dict(parameters or {}),
                                     expected=(200, 204))
        return response.json_body if isinstance(response.json_body, dict) else {}

    def batch(self, changeset: Sequence[BatchOperation]) -> list[BatchResult]:
        if not changeset:
            return []
        request = batch_format.build_changeset_request(changeset, self._api_path)
        response = self._request("POST", "$batch", body=request.body, headers={"Content-Type": request.content_type},
                                 expected=None)
        content_type = response.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/"):
            if response.status_code == 200:
                # Sent and answered with something unreadable: the changeset may have been applied, so callers treat
                # it like any write whose outcome is unknown (re-read, never assume it failed).
                raise PlatformUnavailable("Dataverse answered a $batch without a multipart body; the changeset may "
                                          "have been applied", status=200, request_id=_request_id(response),
                                          is_transient=True)
            raise _error_from(response.status_code, response.json_body, response.headers, "POST")
        parts = batch_format.parse_batch_response(content_type, response.content)
        methods = {cid: op.method.upper() for cid, op in zip(request.content_ids, changeset)}
        for part in parts:
            if part.status >= 400:
                # The changeset was rolled back as a whole; raise the failing operation's own error. An answer without
                # a Content-ID does not say which operation failed: it is the whole changeset's failure, never a guess
                # at one of its methods (a 412 means "duplicate" on a create but "changed since read" on an update).
                if part.content_id in methods:
                    raise _error_from(part.status, part.body, part.headers, methods[part.content_id])
                error = _error_from(part.status, part.body, part.headers, None)
                if isinstance(error, DataverseError):
                    error.message = (f"A changeset of {len(changeset)} operations failed (Dataverse did not say which "
                                     f"operation): {error.message}")
                    error.args = (error.message,)
                raise error
        if response.status_code >= 400 or len(parts) != len(changeset):
            raise PlatformUnavailable(f"Dataverse answered a $batch of {len(changeset)} operations with HTTP "
                                      f"{response.status_code} and {len(parts)} parts; the changeset may have been "
                                      "applied", status=response.status_code, request_id=_request_id(response),
                                      is_transient=True)
        by_id = {part.content_id: part for part in parts if part.content_id}
        ordered = [by_id.get(cid, parts[i]) for i, cid in enumerate(request.content_ids)]
        return [BatchResult(part.status, _id_from_entity_url(part.headers.get("odata-entityid")),
                            part.body if isinstance(part.body, dict) else None) for part in ordered]

    def read(self, reads: Sequence[Read]) -> list[Any]:
        if not reads:
            return []
        targets = []
        for read in reads:
            path, params = _get_target(read)
            url = urlsplit(self._url(path, params))
            targets.append(url.path + (f"?{url.query}" if url.query else ""))
        request = batch_format.build_read_request(targets)
        response = self._request("POST", "$batch", body=request.body, headers={"Content-Type": request.content_type},
                                 expected=None)
        content_type = response.headers.get("Content-Type", "")
        if not content_type.lower().startswith("multipart/"):
            raise _error_from(response.status_code, response.json_body, response.headers, "GET")
        parts = batch_format.parse_batch_response(content_type, response.content)
        for part in parts:
            if part.status >= 400:        # Dataverse stops at the first failure; its error is the one to raise
                raise _error_from(part.status, part.body, part.headers, "GET")
        if len(parts) != len(reads):
            raise PlatformUnavailable(f"Dataverse answered a read $batch of {len(reads)} requests with "
                                      f"{len(parts)} parts", status=response.status_code,
                                      request_id=_request_id(response), is_transient=True)
        return [(part.body or {}).get("value", []) if read.kind == "query" else
                (part.body if isinstance(part.body, dict) else {}) for read, part in zip(reads, parts)]

    def as_user(self, systemuser_id: str) -> "DataverseClient":
        acting = copy.copy(self)          # same session, token provider and settings
        acting._caller_id = systemuser_id
        return acting

    def with_headers(self, headers: Mapping[str, str]) -> "DataverseClient":
        """The same client also sending `headers` on every request (e.g. MSCRM.SolutionUniqueName on metadata
        creates, so the component lands in that solution)."""
        extended = copy.copy(self)
        extended._extra_headers = {**self._extra_headers, **headers}
        return extended

    # --- the chokepoint ----------------------------------------------------------------------------------------------

    def _request(self, method: str, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                 json_body: Mapping[str, Any] | None = None, body: bytes | None = None,
                 headers: Mapping[str, str] | None = None,
                 expected: Sequence[int] | None = (200, 201, 204)) -> "_Response":
        """Every call goes through here: auth, OData headers, timeout, retries, typed errors.

        `expected=None` returns any answer that is not retried (for $batch, whose failures are in the body).
        """
        url = self._url(path_or_url, params)
        # x-ms-client-request-id: our id of this request (kept across its retries), which Dataverse's own logs and a
        # support case can be matched on; the answer's x-ms-service-request-id is theirs. Both are logged.
        sent = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0",
                "Prefer": 'odata.include-annotations="*"', CLIENT_REQUEST_ID: str(uuid.uuid4())}
        if method == "GET":
            sent["If-None-Match"] = "null"   # Dataverse's documented way to skip cached answers on reads
        if json_body is not None:
            body = batch_format.to_json(json_body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        if self._caller_id:
            sent["MSCRMCallerID"] = self._caller_id
        for name, value in {**self._extra_headers, **(headers or {})}.items():
            if name == "Prefer":     # several preferences travel in one header
                sent[name] = f"{sent[name]},{value}" if name in sent else value
            else:
                sent[name] = value
        response = self._send(method, url, body, sent)
        wrapped = _Response(response)
        if expected is not None and response.status_code not in expected:
            raise _error_from(response.status_code, wrapped.json_body, response.headers, method)
        return wrapped

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> requests.Response:
        attempt = 0
        where = _loggable(url)
        while True:
            headers["Authorization"] = f"Bearer {self._tokens()}"
            try:
                response = self._session.request(method, url, data=body, headers=headers, timeout=self._timeout,
                                                 allow_redirects=False)
            except (requests.ConnectionError, requests.Timeout) as exc:
                resendable = method in IDEMPOTENT_METHODS or never_sent(exc)
                if resendable and attempt < self._max_retries:
                    delay = self._backoff(attempt, None)
                    log.warning("dataverse %s %s failed (%s), retry %d in %.2fs", method, where,
                                type(exc).__name__, attempt + 1, delay)
                    self._sleep(delay)
                    attempt += 1
                    continue
                outcome = "" if resendable else "; it may have been carried out"
                log.warning("dataverse %s %s failed (%s)%s", method, where, type(exc).__name__, outcome)
                raise PlatformUnavailable(f"Dataverse {method} {where} failed: {type(exc).__name__}{outcome}",
                                          is_transient=True) from None
            request_id = _request_id(response)
            status = response.status_code
            if self._observer is not None:
                self._observer(status, response.headers)
            retry_after = _retry_after(response.headers)
            # A Retry-After past max_backoff is surfaced (503 + Retry-After upstream): an earlier retry only meets
            # another 429 and spends the webhook's 60 s.
            if status in RETRYABLE_STATUSES and attempt < self._max_retries and (
                    method in IDEMPOTENT_METHODS or status in REJECTED_UNPROCESSED) and (
                    retry_after is None or retry_after <= self._max_backoff):
                delay = self._backoff(attempt, retry_after)
                log.warning("dataverse %s %s -> %d (request id %s, client request id %s), retry %d in %.2fs", method,
                            where, status, request_id, headers.get(CLIENT_REQUEST_ID), attempt + 1, delay)
                self._sleep(delay)
                attempt += 1
                continue
            log.log(logging.WARNING if status >= 400 else logging.DEBUG,
                    "dataverse %s %s -> %d (request id %s, client request id %s)", method, where, status, request_id,
                    headers.get(CLIENT_REQUEST_ID))
            return response

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(self._max_backoff, FIRST_BACKOFF * 2 ** attempt)
        return random.uniform(ceiling / 2, ceiling)

    def _url(self, path_or_url: str, params: Mapping[str, Any] | None) -> str:
        if path_or_url.startswith(("http://", "https://")):
            # @odata.nextLink is absolute; never send the bearer token anywhere but this org's Web API.
            if not path_or_url.startswith(self._api_root):
                raise DataverseError(f"refusing to follow a link outside {self._api_root}")
            url = path_or_url
        else:
            url = self._api_root + path_or_url.lstrip("/")
        query = "&".join(f"{key}={_quoted(str(value))}" for key, value in (params or {}).items() if value is not None)
        if query:
            url += ("&" if "?" in url else "?") + query
        return url


def _quoted(value: str) -> str:
    """quote(value, safe=_QUERY_SAFE), the UTF-8 bytes of each run of other characters as %XX: quote() itself walks
    every character of every value, and the query values ($select lists, $expand, $filter) are long and mostly safe."""
    return _TO_QUOTE.sub(_percent_encoded, value)


def _percent_encoded(run: re.Match) -> str:
    return "".join(f"%{byte:02X}" for byte in run.group().encode("utf-8"))


class _Response:
    """The answer with its JSON parsed the money-safe way (Decimal for fractions), once."""

    def __init__(self, response: requests.Response):
        self.status_code = response.status_code
        self.headers = response.headers
        self.content = response.content
        self.json_body: Any = None
        if response.content and "json" in response.headers.get("Content-Type", "").lower():
            try:
                self.json_body = jsonutil.loads(response.content)
            except ValueError:
                self.json_body = None


# --- helpers ---------------------------------------------------------------------------------------------------------

def _operation_path(operation: str, bound_to: tuple[str, str] | None) -> str:
    if bound_to is None:
        return operation
    name = operation if operation.startswith("Microsoft.Dynamics.CRM.") else f"Microsoft.Dynamics.CRM.{operation}"
    return f"{bound_to[0]}({bound_to[1]})/{name}"


def _get_target(read: Read) -> tuple[str, dict[str, Any]]:
    """(path, query parameters) of a GET, the same alone or inside a read $batch."""
    if read.kind == "function":
        # Parameter aliases keep values out of the path: fn(Amount=@p1)?@p1=10.50
        params = dict(read.parameters or {})
        signature = ",".join(f"{key}=@p{i}" for i, key in enumerate(params, 1))
        return (f"{_operation_path(read.target, read.bound_to)}({signature})",
                {f"@p{i}": _url_literal(value) for i, value in enumerate(params.values(), 1)})
    options = {"$select": ",".join(read.select) if read.select else None, "$expand": read.expand}
    if read.kind == "retrieve":
        return f"{read.target}({read.record_id})", options
    return read.target, {**options, "$filter": read.filter, "$orderby": read.orderby, "$top": read.top}


def _error_from(status: int, payload: Any, headers: Mapping[str, str],
                method: str | None) -> DataverseError | ConfigurationError:
    """The typed core.errors failure for a Dataverse error answer (a whole response or one $batch part)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or "")
    message = str(error.get("message") or f"Dataverse answered HTTP {status}")
    if status == 404 and code.lower() == UNKNOWN_SEGMENT_CODE:
        segment = _SEGMENT.search(message)
        named = f"'{segment.group(1)}'" if segment else "in the request's path"
        return ConfigurationError(f"Dataverse has no table, action or property {named}: is the solution installed "
                                  f"(python -m installer plan) and DATAVERSE_URL the right environment?")
    fields = dict(status=status, code=code, request_id=_request_id(headers), retry_after=_retry_after(headers))
    if code in DUPLICATE_CODES:
        return DuplicateRecord(message, **fields)
    if code in CONCURRENCY_CODES:
        return ConcurrencyConflict(message, **fields)
    if status == 412:
        # On a create, 412 is a broken alternate key; on an update or delete, an ETag that no longer matches.
        return (DuplicateRecord if method == "POST" else ConcurrencyConflict)(message, **fields)
    if status == 409 and method == "POST":
        return DuplicateRecord(message, **fields)
    if status == 404:
        return RecordNotFound(message, **fields)
    if status == 403:
        return AccessDenied(message, **fields)
    if status == 401:
        return DataverseAuthError(message, **fields)
    if status == 429 or status >= 500:
        return PlatformUnavailable(message, is_transient=True, **fields)
    return DataverseError(message, **fields)


def _request_id(source: Any) -> str | None:
    headers = getattr(source, "headers", source)
    return headers.get("x-ms-service-request-id") or headers.get("REQ_ID") or headers.get("req_id")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = (headers.get("Retry-After") or headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:                                               # the HTTP-date form
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _loggable(url: str) -> str:
    """Path and query names, never query values (a $filter can carry customer data)."""
    parts = urlsplit(url)
    names = [item.partition("=")[0] for item in parts.query.split("&") if item]
    return parts.path + ("?" + "&".join(names) if names else "")


def _url_literal(value: Any) -> str:
    """An OData URL literal for a function parameter alias."""
    if value is None or isinstance(value, (bool, str)):
        return odata.literal(value)
    if isinstance(value, (dict, list, tuple)):
        return batch_format.to_json(value)
    return batch_format.to_json(value).strip('"')                   # numbers, Decimal, UUID as bare literals


def _id_from_entity_url(url: str | None) -> str | None:
    """`https://org/api/data/v9.2/accounts(<guid>)` (the OData-EntityId header) -> the GUID."""
    match = _ENTITY_ID.search(url or "")
    return match.group(1) if match else None


def _primary_key(entity_set: str) -> str:
    from core import footprint

    try:
        return footprint.table_by_entity_set(entity_set).primary_id
    except KeyError:     # a table outside our footprint: the usual rule (set = logical name + "s", key = name + "id")
        return (entity_set[:-1] if entity_set.endswith("s") else entity_set) + "id"
