"""$batch wire format (OData 4.0 multipart/mixed, CRLF): parse a request body, write a response body the way
Dataverse does (batchresponse_/changesetresponse_ boundaries, one `HTTP/1.1 <status>` part per operation)."""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

from standins.dataverse.store import bad_request


@dataclass
class Part:
    method: str
    url: str
    headers: dict[str, str]          # lower-case names
    body: bytes
    content_id: str | None = None


@dataclass
class Changeset:
    parts: list[Part] = field(default_factory=list)


@dataclass
class PartResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None


def _boundary(content_type: str) -> str:
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not m or not content_type.lower().startswith("multipart/mixed"):
        raise bad_request("The $batch request needs Content-Type multipart/mixed with a boundary.")
    return m.group(1)


def _split_head(text: str) -> tuple[dict[str, str], str]:
    """Headers (lower-case) and what follows the first blank line."""
    m = re.search(r"\r?\n\r?\n", text)
    head, rest = (text[:m.start()], text[m.end():]) if m else (text, "")
    headers = {}
    for line in re.split(r"\r?\n", head.strip("\r\n")):
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise bad_request(f"Malformed header line in $batch: '{line}'.")
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _parts(text: str, boundary: str) -> list[str]:
    delimiter = "--" + boundary
    chunks = text.split(delimiter)
    if len(chunks) < 2 or not chunks[-1].startswith("--"):
        raise bad_request(f"The $batch body is missing the closing boundary '{delimiter}--'.")
    return [re.sub(r"^\r?\n", "", c) for c in chunks[1:-1]]


def _http_part(text: str, content_id: str | None) -> Part:
    request_line, _, rest = text.partition("\n")
    m = re.fullmatch(r"(GET|POST|PATCH|PUT|DELETE) (\S+) HTTP/1\.1\r?", request_line)
    if not m:
        raise bad_request(f"Malformed request line in $batch: '{request_line.strip()}'.")
    headers, body = _split_head(rest) if rest.strip() else ({}, "")
    body = re.sub(r"\r?\n$", "", body)
    return Part(m.group(1), m.group(2), headers, body.encode("utf-8"), content_id or headers.get("content-id"))


def parse_batch(content_type: str, body: bytes) -> list[Part | Changeset]:
    items: list[Part | Changeset] = []
    for chunk in _parts(body.decode("utf-8"), _boundary(content_type)):
        headers, rest = _split_head(chunk)
        kind = headers.get("content-type", "").lower()
        if kind.startswith("multipart/mixed"):
            changeset = Changeset()
            for inner in _parts(rest, _boundary(headers["content-type"])):
                inner_headers, inner_rest = _split_head(inner)
                if not inner_headers.get("content-type", "").lower().startswith("application/http"):
                    raise bad_request("Every part of a changeset must be Content-Type application/http.")
                part = _http_part(inner_rest, inner_headers.get("content-id"))
                if part.method == "GET":
                    raise bad_request("GET requests are not allowed inside a changeset.")
                changeset.parts.append(part)
            items.append(changeset)
        elif kind.startswith("application/http"):
            items.append(_http_part(rest, headers.get("content-id")))
        else:
            raise bad_request(f"Unsupported Content-Type in $batch part: '{kind}'.")
    return items


def _write_part(response: PartResponse) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if response.content_id:
        lines.append(f"Content-ID: {response.content_id}")
    lines += ["", f"HTTP/1.1 {response.status} {HTTPStatus(response.status).phrase}"]
    lines += [f"{k}: {v}" for k, v in response.headers.items()]
    lines += ["", response.body.decode("utf-8")]
    return "\r\n".join(lines) + "\r\n"


def write_batch(items: list[PartResponse | list[PartResponse]]) -> tuple[str, bytes]:
    """(Content-Type, body) of a batch response; a list item is a changeset's responses."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    out = []
    for item in items:
        out.append(f"--{boundary}\r\n")
        if isinstance(item, list):
            inner = f"changesetresponse_{uuid.uuid4()}"
            out.append(f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n")
            out += [f"--{inner}\r\n{_write_part(r)}" for r in item]
            out.append(f"--{inner}--\r\n")
        else:
            out.append(_write_part(item))
    out.append(f"--{boundary}--\r\n")
    return f"multipart/mixed; boundary={boundary}", "".join(out).encode("utf-8")
