"""`$batch` with one atomic changeset: the multipart/mixed request text and the parse of Dataverse's answer.

Pure functions, no I/O. Format: OData 4.0 §11.7 and learn.microsoft.com "Execute batch operations using the Web API":
CRLF line endings, each operation an `application/http` part with a Content-ID that later parts can reference as `$n`.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Sequence

from core import jsonutil
from core.errors import PlatformUnavailable
from core.ports import BatchOperation

MAX_OPERATIONS = 1000                                # Dataverse's limit per $batch
_CHANGESET_METHODS = ("POST", "PATCH", "DELETE")     # GET is not allowed inside a changeset
_BOUNDARY = re.compile(r'boundary="?([^";,\s]+)"?', re.IGNORECASE)
_BLANK_LINE = re.compile(r"\r?\n\r?\n")
_DELIMITER = re.compile(r"(?:\A|\r?\n)--([^\r\n]*)")


@dataclass(frozen=True)
class BatchRequest:
    content_type: str                    # multipart/mixed; boundary=batch_...
    body: bytes
    content_ids: tuple[str, ...]         # one per operation, in order


@dataclass(frozen=True)
class ResponsePart:
    """One `application/http` part of a $batch answer."""
    status: int
    headers: dict[str, str] = field(default_factory=dict)    # names lower-cased
    body: Any = None                     # parsed JSON (Decimal for fractions), the raw text if not JSON, None if empty
    content_id: str | None = None


def build_changeset_request(operations: Sequence[BatchOperation], api_path: str, *,
                            boundary_id: str | None = None) -> BatchRequest:
    """`api_path` is the Web API root's path (`/api/data/v9.2/`); an operation path starting with `$` is a Content-ID
    reference and is written as is."""
    if not operations:
        raise ValueError("a changeset needs at least one operation")
    if len(operations) > MAX_OPERATIONS:
        raise ValueError(f"a $batch holds at most {MAX_OPERATIONS} operations, got {len(operations)}")
    content_ids = _content_ids(operations)
    suffix = boundary_id or str(uuid.uuid4())
    batch, changeset = f"batch_{suffix}", f"changeset_{suffix}"
    lines = [f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
    for operation, content_id in zip(operations, content_ids):
        method = operation.method.upper()
        if method not in _CHANGESET_METHODS:
            raise ValueError(f"{operation.method} is not allowed in a changeset (only {', '.join(_CHANGESET_METHODS)})")
        target = operation.path if operation.path.startswith("$") else api_path + operation.path.lstrip("/")
        lines += [f"--{changeset}", "Content-Type: application/http", "Content-Transfer-Encoding: binary",
                  f"Content-ID: {content_id}", "", f"{method} {target} HTTP/1.1"]
        if operation.body is not None:
            lines.append("Content-Type: application/json; type=entry")
        if method == "PATCH" or operation.etag:
            # No ETag on a PATCH still means If-Match: * so that an update never silently creates the row.
            lines.append(f"If-Match: {operation.etag or '*'}")
        lines.append("")
        if operation.body is not None:
            lines.append(to_json(operation.body))
    lines += [f"--{changeset}--", f"--{batch}--", ""]
    return BatchRequest(f"multipart/mixed; boundary={batch}", "\r\n".join(lines).encode("utf-8"), content_ids)


def build_read_request(targets: Sequence[str], *, boundary_id: str | None = None) -> BatchRequest:
    """A $batch of GETs outside any changeset (reads are not transactional). `targets` are paths with their query,
    from the host's root (`/api/data/v9.2/accounts(...)?$select=name`)."""
    if not targets:
        raise ValueError("a read batch needs at least one request")
    if len(targets) > MAX_OPERATIONS:
        raise ValueError(f"a $batch holds at most {MAX_OPERATIONS} operations, got {len(targets)}")
    batch = f"batch_{boundary_id or uuid.uuid4()}"
    lines: list[str] = []
    for target in targets:
        lines += [f"--{batch}", "Content-Type: application/http", "Content-Transfer-Encoding: binary", "",
                  f"GET {target} HTTP/1.1", "Accept: application/json", ""]
    lines += [f"--{batch}--", ""]
    return BatchRequest(f"multipart/mixed; boundary={batch}", "\r\n".join(lines).encode("utf-8"), ())


def to_json(value: Any) -> str:
    """Compact JSON with Decimals as exact numbers (core.jsonutil); dates and GUIDs as their ISO/canonical text."""
    if not isinstance(value, dict) and hasattr(value, "items"):
        value = dict(value.items())
    return jsonutil.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot be sent to Dataverse as JSON")


def _content_ids(operations: Sequence[BatchOperation]) -> tuple[str, ...]:
    """The caller's Content-IDs are kept (later paths and binds refer to them); the others get unused numbers."""
    taken = {op.content_id for op in operations if op.content_id}
    if len(taken) != sum(1 for op in operations if op.content_id):
        raise ValueError("Content-IDs must be unique within a changeset")
    ids, next_number = [], 1
    for op in operations:
        if op.content_id:
            ids.append(str(op.content_id))
            continue
        while str(next_number) in taken:
            next_number += 1
        ids.append(str(next_number))
        taken.add(str(next_number))
    return tuple(ids)


def parse_batch_response(content_type: str, body: bytes | str) -> list[ResponsePart]:
    """Every `application/http` part, in order, nested changeset responses flattened.

    An answer that cannot be read raises PlatformUnavailable (transient): it came after the changeset was sent, so
    the changeset may or may not have committed, and callers must treat it as an unknown write (re-read, never
    assume it failed), exactly as for a 5xx."""
    try:
        return _parse(content_type, body)
    except ValueError as exc:                          # UnicodeDecodeError included
        raise PlatformUnavailable(f"Dataverse's answer to a $batch could not be read ({exc}); the changeset may "
                                  "have been applied", is_transient=True) from None


def _parse(content_type: str, body: bytes | str) -> list[ResponsePart]:
    boundary = _boundary(content_type)
    if boundary is None:
        raise ValueError("the $batch answer is not multipart/mixed")
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    parts: list[ResponsePart] = []
    for raw in _split(text, boundary):
        headers, payload = _headers_and_rest(raw)
        inner = headers.get("content-type", "")
        if inner.lower().startswith("multipart/"):
            parts.extend(_parse(inner, payload))
        elif inner.lower().startswith("application/http"):
            parts.append(_http_response(payload, headers.get("content-id")))
    return parts


def _boundary(content_type: str) -> str | None:
    match = _BOUNDARY.search(content_type or "")
    return match.group(1) if match else None


def _split(text: str, boundary: str) -> list[str]:
    """RFC 2046: a delimiter is "--boundary" at the start of a line (the CRLF before it belongs to the delimiter);
    "--boundary--" closes. One regex compiled at import finds every candidate line whatever the boundary."""
    parts: list[str] = []
    start: int | None = None
    for match in _DELIMITER.finditer(text):
        name = match.group(1).rstrip(" \t")
        if name not in (boundary, boundary + "--"):
            continue                     # a line that merely starts with "--" inside a part
        if start is not None:
            parts.append(text[start:match.start()])
        if name != boundary:
            break
        start = match.end() + (2 if text.startswith("\r\n", match.end()) else 1)
    return parts


def _headers_and_rest(raw: str) -> tuple[dict[str, str], str]:
    split = _BLANK_LINE.search(raw)
    if split is None:
        head, rest = raw, ""
    else:
        head, rest = raw[:split.start()], raw[split.end():]
    headers = {}
    for line in head.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _http_response(message: str, content_id: str | None) -> ResponsePart:
    status_line, _, rest = message.lstrip("\r\n").partition("\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise ValueError(f"unreadable status line in a $batch answer: {status_line.strip()[:80]!r}") from None
    if rest.startswith(("\r\n", "\n")):              # no headers at all: the blank line comes first
        headers, text = {}, rest
    else:
        headers, text = _headers_and_rest(rest)
    text = text.strip()
    body: Any = None
    if text:
        try:
            body = jsonutil.loads(text)
        except ValueError:
            body = text
    return ResponsePart(status, headers, body, content_id or headers.get("content-id"))
