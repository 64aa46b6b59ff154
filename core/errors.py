"""Failures the use cases reason about, raised by the adapters.

A decline is data (a result object); a failure is one of these exceptions. The tree is shallow and every error carries
fields, not a string to parse (the stripe-python habit). Use cases import only this module, never the adapters.
"""
from __future__ import annotations


class W365Error(Exception):
    """Base of every failure this service raises on purpose."""


class ConfigurationError(W365Error):
    """A setting is missing or wrong. Raised at the first call that needs it, never at import."""

    def __init__(self, message: str, *, setting: str | None = None):
        super().__init__(message)
        self.setting = setting


class BusinessRuleViolation(W365Error):
    """The request was understood and refused: it becomes a `failed` outcome with this message, not an HTTP error."""


class BadRequest(W365Error):
    """Malformed input from a caller (HTTP 400). The message is safe to show and names what is wrong."""


class ConflictInProgress(W365Error):
    """A conflicting action is running on the same record (HTTP 409)."""


# --- Dataverse -------------------------------------------------------------------------------------------------------

class DataverseError(W365Error):
    """A Web API call failed. `code` is Dataverse's error code (often empty); `request_id` is its x-ms-service-request-id."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "", request_id: str | None = None,
                 retry_after: float | None = None, is_transient: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.is_transient = is_transient


class RecordNotFound(DataverseError):
    """404: the row does not exist (or the caller cannot see it)."""


class ConcurrencyConflict(DataverseError):
    """412 on an update with If-Match: someone changed the row since we read it. Re-read and decide again."""


class DuplicateRecord(DataverseError):
    """412/409 on a create that breaks an alternate key or reuses an existing row's primary id: the row already
    exists."""


class AccessDenied(DataverseError):
    """403: the caller (or the impersonated user) lacks the privilege."""


class PlatformUnavailable(DataverseError):
    """Throttled (429) or down (5xx, connection) after the client's own retries. Maps to HTTP 503 with Retry-After."""


class DataverseAuthError(DataverseError):
    """msal could not get a token (msal returns a dict with `error`; the client turns it into this)."""


# --- Payment gateway -------------------------------------------------------------------------------------------------

class GatewayError(W365Error):
    """The gateway answered with an error we can read (resultCode Error). `code` is e.g. E00040."""

    def __init__(self, message: str, *, code: str = "", text: str = "", response_code: str = "",
                 reason_code: str = ""):
        super().__init__(message)
        self.code = code
        self.text = text or message
        # A card the gateway's validation ($0 authorization) declined: its responseCode and reason code, from the
        # validationDirectResponse (core.declines classifies them). Empty for every other error.
        self.response_code = response_code
        self.reason_code = reason_code


class GatewayAuthError(GatewayError):
    """E00007 and friends: wrong credentials or environment. A configuration problem, not the customer's."""


class GatewayRefused(GatewayError):
    """The gateway read the request and refused it (an E000xx validation answer such as E00027, E00039, E00040):
    a business refusal whose text can be shown, and nothing was done. Distinct from GatewayAuthError (our
    configuration), GatewayUnavailable (no answer, nothing sent) and OutcomeUnknown (a charge that may have happened):
    use cases catch this one to say "refused" and let the others through to the entry's error mapping."""


class GatewayNotFound(GatewayRefused):
    """E00040: the profile, payment profile or transaction is not known to the gateway."""


class InvalidNonce(GatewayRefused):
    """E00114: the Accept.js nonce is expired, used or forged."""


class GatewayUnavailable(GatewayError):
    """The request surely did not reach the gateway (connection refused before sending), or a read failed. Safe to
    retry a read; for a charge, the attempt can become Error and be made again."""


class OutcomeUnknown(GatewayError):
    """A charge was sent and no readable answer came back (timeout, reset, 5xx, bad body). It may have gone through:
    never retry blind; the attempt becomes Unknown and the reconciler settles it from the gateway's records."""
