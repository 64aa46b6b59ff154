"""`X-ANET-Signature` on Authorize.Net webhooks: `sha512=` + upper-case hex HMAC-SHA512 of the raw body.

The Signature Key is used as text, not hex-decoded (research/gateway.md §4: only the text form reproduces the published
digests). Verify over the raw bytes: re-serialized JSON changes `45.00` into `45.0` and fails.
"""
from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha512="


def sign(raw_body: bytes, signature_key: str) -> str:
    """The header value Authorize.Net would send for this body."""
    digest = hmac.new(signature_key.encode("utf-8"), raw_body, hashlib.sha512).hexdigest()
    return PREFIX + digest.upper()


def verify_signature(raw_body: bytes, header: str | None, signature_key: str) -> bool:
    """True only for a well-formed header whose digest matches; an unset key verifies nothing."""
    if not header or not signature_key:
        return False
    algorithm, separator, provided = header.strip().partition("=")
    if not separator or algorithm.strip().lower() != "sha512" or len(provided) != 128:
        return False
    expected = sign(raw_body, signature_key)[len(PREFIX):]
    # Bytes, because compare_digest refuses non-ASCII str (a forged header must be False, not a TypeError).
    return hmac.compare_digest(provided.upper().encode("utf-8"), expected.encode("ascii"))
