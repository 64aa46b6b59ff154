"""`X-ANET-Signature` on Authorize.Net webhooks: `sha512=` + upper-case hex HMAC-SHA512 of the raw body.

Published material disagrees on how the Signature Key is used: as text (research/gateway.md §4: the form that
reproduces the published digests) or hex-decoded (as for transHashSHA2). A signature made either way is accepted;
both need the key. `sign` produces the text form. Verify over the raw bytes: re-serialized JSON changes `45.00` into
`45.0` and fails.
"""
from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha512="


def _digest(key: bytes, raw_body: bytes) -> str:
    return hmac.new(key, raw_body, hashlib.sha512).hexdigest().upper()


def sign(raw_body: bytes, signature_key: str) -> str:
    """The header value Authorize.Net would send for this body (the key used as text)."""
    return PREFIX + _digest(signature_key.encode("utf-8"), raw_body)


def _key_forms(signature_key: str) -> list[bytes]:
    forms = [signature_key.encode("utf-8")]
    try:
        forms.append(bytes.fromhex(signature_key))
    except ValueError:
        pass                                    # not hex: only the text form can have made the signature
    return forms


def verify_signature(raw_body: bytes, header: str | None, signature_key: str) -> bool:
    """True only for a well-formed header whose digest matches the key as text or hex-decoded; an unset key verifies
    nothing."""
    if not header or not signature_key:
        return False
    algorithm, separator, provided = header.strip().partition("=")
    if not separator or algorithm.strip().lower() != "sha512" or len(provided) != 128:
        return False
    # Bytes, because compare_digest refuses non-ASCII str (a forged header must be False, not a TypeError).
    provided_bytes = provided.upper().encode("utf-8")
    matches = [hmac.compare_digest(provided_bytes, _digest(key, raw_body).encode("ascii"))
               for key in _key_forms(signature_key)]          # both compared, so timing says nothing of which
    return any(matches)
