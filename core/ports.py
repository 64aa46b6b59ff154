"""The ports the use cases call. Adapters (dataverse/, gateway/, core/queue.py) implement them; tests use fakes.

Records are plain dicts exactly as the Dataverse Web API returns them: `@odata.etag`, lookups read as `_x_value`,
money and decimals as `Decimal` (the client parses JSON numbers with parse_float=Decimal), dates as ISO strings.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, ContextManager, Mapping, Protocol, Sequence

Record = dict[str, Any]


# --- Dataverse -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchOperation:
    """One write inside an atomic `$batch` changeset.

    `path` is relative to the Web API root: `invoices(<guid>)` or `w365_paymenttransactions`; a later operation can
    point at an earlier one's new row with `$<content_id>` (OData Content-ID referencing).
    """
    method: str                      # POST, PATCH or DELETE
    path: str
    body: Mapping[str, Any] | None = None
    etag: str | None = None          # sent as If-Match; None on PATCH means If-Match: * (update, never create)
    content_id: str | None = None

    @staticmethod
    def create(entity_set: str, body: Mapping[str, Any], content_id: str | None = None) -> "BatchOperation":
        return BatchOperation("POST", entity_set, body, content_id=content_id)

    @staticmethod
    def update(entity_set: str, record_id: str, body: Mapping[str, Any], etag: str | None = None) -> "BatchOperation":
        return BatchOperation("PATCH", f"{entity_set}({record_id})", body, etag=etag)

    @staticmethod
    def delete(entity_set: str, record_id: str) -> "BatchOperation":
        return BatchOperation("DELETE", f"{entity_set}({record_id})")


@dataclass(frozen=True)
class BatchResult:
    status: int
    record_id: str | None = None     # from OData-EntityId on a create
    body: Record | None = None


@dataclass(frozen=True)
class Read:
    """One GET of a read `$batch` (Dataverse.read): a row, a query, or a function such as RetrievePrincipalAccess.
    Several reads cost one request; the answers come back in order."""
    kind: str                        # "retrieve", "query" or "function"
    target: str                      # the entity set, or the function's name
    record_id: str | None = None
    select: tuple[str, ...] = ()
    filter: str | None = None
    expand: str | None = None
    orderby: str | None = None
    top: int | None = None
    parameters: Mapping[str, Any] | None = None
    bound_to: tuple[str, str] | None = None

    @staticmethod
    def retrieve(entity_set: str, record_id: str, *, select: Sequence[str] = (), expand: str | None = None) -> "Read":
        return Read("retrieve", entity_set, record_id, tuple(select), expand=expand)

    @staticmethod
    def query(entity_set: str, *, select: Sequence[str] = (), filter: str | None = None, expand: str | None = None,
              orderby: str | None = None, top: int | None = None) -> "Read":
        return Read("query", entity_set, select=tuple(select), filter=filter, expand=expand, orderby=orderby, top=top)

    @staticmethod
    def function(operation: str, parameters: Mapping[str, Any] | None = None, *,
                 bound_to: tuple[str, str] | None = None) -> "Read":
        return Read("function", operation, parameters=dict(parameters or {}), bound_to=bound_to)


class Dataverse(Protocol):
    """What the use cases need of the Dataverse Web API. Errors are those of core.errors."""

    def retrieve(self, entity_set: str, record_id: str, *, select: Sequence[str] = (),
                 expand: str | None = None) -> Record: ...

    def query(self, entity_set: str, *, select: Sequence[str] = (), filter: str | None = None,
              expand: str | None = None, orderby: str | None = None, top: int | None = None) -> list[Record]:
        """All pages, following @odata.nextLink (up to `top` rows when given)."""
        ...

    def create(self, entity_set: str, body: Mapping[str, Any]) -> str:
        """Returns the new row's id."""
        ...

    def update(self, entity_set: str, record_id: str, body: Mapping[str, Any], *, etag: str | None = None) -> None:
        """PATCH with If-Match: the given ETag (a mismatch raises ConcurrencyConflict) or `*` (never creates)."""
        ...

    def delete(self, entity_set: str, record_id: str) -> None: ...

    def execute(self, operation: str, parameters: Mapping[str, Any] | None = None, *,
                bound_to: tuple[str, str] | None = None, is_function: bool = False) -> Record:
        """Call an action (POST) or function (GET), unbound or bound to (entity_set, id). Returns the response body."""
        ...

    def batch(self, changeset: Sequence[BatchOperation]) -> list[BatchResult]:
        """One atomic changeset: all succeed or none does (the failing part's error is raised)."""
        ...

    def read(self, reads: Sequence[Read]) -> list[Any]:
        """Several GETs in one `$batch` request: per read, the row (retrieve), the rows (query: one page, up to
        5000) or the function's answer, in order. The first read that fails raises its error."""
        ...

    def as_user(self, systemuser_id: str) -> "Dataverse":
        """The same client acting for a person (MSCRMCallerID), so Dataverse applies that user's privileges."""
        ...


# --- Payment gateway -------------------------------------------------------------------------------------------------

class ChargeOutcome:
    APPROVED = "Approved"
    DECLINED = "Declined"
    ERROR = "Error"
    HELD_FOR_REVIEW = "Held For Review"


@dataclass(frozen=True)
class BillTo:
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    address: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""
    phone_number: str = ""


@dataclass(frozen=True)
class OpaqueData:
    """Accept.js output. `value` is a single-use nonce: never log it, store it or put it in an error."""
    descriptor: str
    value: str = field(repr=False)


@dataclass(frozen=True)
class GatewayPaymentProfile:
    customer_profile_id: str
    payment_profile_id: str
    card_type: str = ""              # "Visa"
    card_number_masked: str = ""     # "XXXX1111"
    expiration: str = ""             # as the gateway gives it: "XXXX" masked, or "2030-12" when unmasked
    bill_to: BillTo = BillTo()
    is_default: bool = False


@dataclass(frozen=True)
class ChargeResult:
    """The gateway's answer to a charge, refund or void it could read. A decline is a result, not an exception."""
    outcome: str                     # a ChargeOutcome value
    response_code: str               # "1".."4"
    reason: str                      # text for people ("This transaction has been declined.")
    trans_id: str = ""
    auth_code: str = ""
    account_number: str = ""         # masked, "XXXX1111"
    account_type: str = ""
    error_code: str = ""             # transactionResponse.errors[0].errorCode, e.g. "11" for a duplicate
    ref_id: str = ""
    # A new card charged with `createProfile` (charge_new_card): what the answer's profileResponse says the gateway
    # saved. Both ids when it made the customer and payment profiles; only the customer's when it refused to make a
    # second customer (E00039: `profile_error`, the existing customer's id taken from the text); none on a decline.
    customer_profile_id: str = ""
    payment_profile_id: str = ""
    profile_error: str = ""          # profileResponse's code when no payment profile was made (E00039, ...)


@dataclass(frozen=True)
class TransactionDetails:
    trans_id: str
    ref_id: str                      # transrefId: the refId of the request that made it
    status: str                      # gateway transactionStatus, e.g. settledSuccessfully, capturedPendingSettlement
    response_code: str
    amount: Decimal                  # authAmount
    settle_amount: Decimal
    invoice_number: str = ""
    submitted_at: dt.datetime | None = None
    customer_profile_id: str = ""
    payment_profile_id: str = ""
    auth_code: str = ""
    account_number: str = ""
    transaction_type: str = ""       # authCaptureTransaction, refundTransaction, voidTransaction
    reason: str = ""
    reason_code: str = ""            # responseReasonCode (core.declines classifies it)


@dataclass(frozen=True)
class TransactionSummary:
    trans_id: str
    status: str
    submitted_at: dt.datetime | None
    invoice_number: str
    settle_amount: Decimal
    customer_profile_id: str = ""
    payment_profile_id: str = ""


@dataclass(frozen=True)
class AccountUpdaterChange:
    """One line of the gateway's Account Updater report (getAUJobDetails): an auUpdate (a new number or expiry) or an
    auDelete (the card's account was closed). Card numbers are masked ("XXXX1111"); expiries usually too."""
    kind: str                        # "update" or "delete"
    customer_profile_id: str
    payment_profile_id: str
    reason_code: str                 # auReasonCode: NAN new number, NED new expiry, ACL closed, CCH call the holder
    reason: str = ""
    card_number_masked: str = ""     # the new card's (update) or the closed one's (delete)
    expiration: str = ""
    old_card_number_masked: str = ""
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class SettledBatch:
    batch_id: str
    settled_at: dt.datetime | None
    state: str = ""                  # settledSuccessfully, settlementError, ...


class PaymentGateway(Protocol):
    """Authorize.Net's CIM and transactions, as the use cases need them. Errors are those of core.errors."""

    def create_customer_profile(self, merchant_customer_id: str, *, description: str = "",
                                email: str = "") -> str:
        """Returns the customer profile id; a duplicate (E00039) returns the existing one."""
        ...

    def create_customer_with_card(self, merchant_customer_id: str, opaque: OpaqueData, bill_to: BillTo, *,
                                  description: str = "", email: str = "", default: bool = False) -> tuple[str, str]:
        """An account's first card in one call: (customer profile id, payment profile id)."""
        ...

    def create_payment_profile(self, customer_profile_id: str, opaque: OpaqueData, bill_to: BillTo, *,
                               default: bool = False) -> str:
        """Returns the payment profile id. A card the gateway refuses raises GatewayRefused with its text."""
        ...

    def get_customer_profile(self, customer_profile_id: str) -> list[GatewayPaymentProfile]: ...

    def get_payment_profile(self, customer_profile_id: str, payment_profile_id: str) -> GatewayPaymentProfile: ...

    def update_payment_profile(self, customer_profile_id: str, payment_profile_id: str, bill_to: BillTo, *,
                               default: bool = False, opaque: OpaqueData | None = None,
                               card_number_masked: str | None = None) -> None:
        """Replaces the payment profile (what is not sent is erased): every billing field, and the new card or the
        masked one (read first when `card_number_masked` is not given)."""
        ...

    def delete_payment_profile(self, customer_profile_id: str, payment_profile_id: str) -> None: ...

    def charge_profile(self, customer_profile_id: str, payment_profile_id: str, amount: Decimal, *, ref_id: str,
                       invoice_number: str, description: str = "") -> ChargeResult:
        """authCaptureTransaction. No answer or an unreadable one raises OutcomeUnknown; never resent here."""
        ...

    def charge_new_card(self, opaque: OpaqueData, amount: Decimal, *, ref_id: str, invoice_number: str,
                        bill_to: BillTo, merchant_customer_id: str, email: str = "", description: str = "",
                        create_profile: bool = True) -> ChargeResult:
        """authCaptureTransaction of an Accept.js nonce. `create_profile`: the gateway also saves the card, with a new
        customer profile (customer.id = `merchant_customer_id`), when the charge is approved; the result carries
        the ids. No answer raises OutcomeUnknown; never resent (the nonce is spent)."""
        ...

    def create_profile_from_transaction(self, trans_id: str, customer_profile_id: str, *,
                                        default: bool = False) -> str:
        """createCustomerProfileFromTransaction into an existing customer profile: the card of an approved
        transaction saved as a payment profile. Returns its id."""
        ...

    def find_customer_profile(self, merchant_customer_id: str) -> str | None:
        """getCustomerProfile by merchantCustomerId: the customer profile's id, None when there is none."""
        ...

    def refund(self, trans_id: str, amount: Decimal, *, card_number_masked: str, ref_id: str,
               customer_profile_id: str = "", payment_profile_id: str = "") -> ChargeResult: ...

    def void(self, trans_id: str, *, ref_id: str) -> ChargeResult: ...

    def get_transaction_details(self, trans_id: str) -> TransactionDetails: ...

    def list_customer_transactions(self, customer_profile_id: str,
                                   payment_profile_id: str = "") -> list[TransactionSummary]: ...

    def list_unsettled_transactions(self) -> list[TransactionSummary]: ...

    def list_settled_batches(self, first: dt.datetime, last: dt.datetime) -> list[SettledBatch]:
        """getSettledBatchList over any span (the adapter splits it in the API's 31-day windows)."""
        ...

    def list_batch_transactions(self, batch_id: str) -> list[TransactionSummary]:
        """getTransactionList of one settled batch, every page."""
        ...

    def public_client_key(self) -> str:
        """getMerchantDetails' publicClientKey, for Accept.js on the customer pages."""
        ...

    def account_updater_summary(self, month: str) -> dict[str, int]:
        """getAUJobSummary for `YYYY-MM`: profile count by auReasonCode."""
        ...

    def account_updater_details(self, month: str) -> list[AccountUpdaterChange]:
        """getAUJobDetails for `YYYY-MM`, every page."""
        ...


# --- Queue and clock -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeadLetter:
    """A message the broker gave up on (Service Bus: MaxDeliveryCount reached, or expired), read in peek-lock from
    the queue's dead-letter sub-queue. Our work has its `kind` and `payload`; anything else on the queue (a
    Dataverse context, an unreadable body) has kind None. The payload may carry what must never be logged."""
    message_id: str
    kind: str | None
    payload: Mapping[str, Any]
    reason: str                      # DeadLetterReason: MaxDeliveryCountExceeded, TTLExpiredException...
    delivery_count: int
    handle: Any = field(default=None, repr=False, compare=False)     # the adapter's own message, to settle it


class DeadLetterInbox(Protocol):
    """An open peek-lock receiver on the dead-letter sub-queue. A received letter stays locked (no other inbox gets
    it) until it is completed (gone for good), abandoned (dead-lettered still, for operators) or the inbox closes
    (what is unsettled then is abandoned)."""

    def receive(self, max_count: int) -> list[DeadLetter]:
        """Up to `max_count` letters that no one holds; [] when there are none (after a short wait)."""
        ...

    def complete(self, letter: DeadLetter) -> None: ...

    def abandon(self, letter: DeadLetter) -> None: ...


class WorkQueue(Protocol):
    """Queued work with at-least-once delivery. A handler for `kind` is registered with core.queue.work_handler."""

    def send(self, kind: str, payload: Mapping[str, Any], *, message_id: str, session_id: str | None = None,
             delay: dt.timedelta | None = None) -> None:
        """`message_id` is deterministic so that the broker drops a duplicate sent twice."""
        ...

    def dead_letter_inbox(self) -> ContextManager[DeadLetterInbox]:
        """The queue's dead-letter sub-queue, to show what the broker gave up on where people look for it."""
        ...


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)


# Signature of a queued-work handler: (payload, services) -> None; raising means "redeliver".
WorkHandler = Callable[[Mapping[str, Any], Any], None]
