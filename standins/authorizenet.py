"""An Authorize.Net sandbox simulator, reached over HTTP like the real endpoint: through `responses` in tests
(`register_with_responses`), through the dev host in local mode (`wsgi_app`, mounted at `/_local/authorizenet/`).

Paths it answers (suffixes, so it works at any mount point):
  POST .../xml/v1/request.api   the JSON API (BOM-prefixed answers, as the gateway sends them)
  POST .../accept/nonce         what the Accept.js stand-in posts the card to; answers like Accept.js
  GET  .../Accept.js            the Accept.js stand-in (standins/acceptjs/Accept.js)

Triggers (research/gateway.md §5, plus simulator conventions marked *):
  billing zip 46282                 charge declined: responseCode 2, error 2; liveMode validation of a new card
                                    declines too (E00027), so a stored profile gets it by a later bill-to update
  billing zip 46299 *               charge Held For Review: responseCode 4, message 252, status FDSPendingReview;
                                    `approve_held` / `decline_held` end the review
  billing zip 46201 46203 46204 46205 46206 46207 46208 46209 46211 46214 46217
                                    avsResultCode A E G N P R S U W X Z (else Y)
  card code 900 901 902 903 904     cvvResultCode M N S U P (else M; none with a stored profile: no CVV is kept)
  billing zip 46282-NNNN *          the response reason code NNNN (ZIP+4, leading zeros ignored: 46282-0027 is
                                    reason 27), for charges on stored profiles too (set the zip by a bill-to update)
                                    and for liveMode validation of a new card. Card reasons the gateway answers with
                                    responseCode 3 (6 7 8 17 28 37 78) and gateway/processor errors (19-23, 57-63)
                                    come as responseCode 3 and are not recorded; every other code is responseCode 2,
                                    recorded as declined. So: Hard 4 6 7 8 27 44 45 65, Merchant 250 251 254, Soft
                                    e.g. 2 3, errors e.g. 19 (core/declines.py classifies them)
  card expired at charge time       responseCode 3, error 8
  same amount+invoice+card+bill-to as an earlier charge within duplicateWindow (default 120 s)
                                    responseCode 3, error 11, with the original's transId and authCode; not recorded
  nonce used, unknown or older than 15 minutes                     E00114 Invalid OTS Token.
  createTransaction with profile.createProfile and a nonce: only an approved charge (responseCode 1) saves the card,
                                    as a new customer profile (customer.id its merchantCustomerId, customer.email)
                                    whose one payment profile (the card, the billTo) is its default, answered in
                                    profileResponse; a customer.id already used: profileResponse E00039 "A duplicate
                                    record with ID n already exists." and nothing saved, the charge approved all the
                                    same; neither id nor email: E00041 there. Declined, error or held: no
                                    profileResponse. createProfile with customerProfileId (undocumented): E00003
  createCustomerProfileFromTransaction with customerProfileId: the approved charge's card (and billTo) saved into
                                    that customer; the same card there already: E00039; not an approved charge:
                                    E00099 "Customer profile creation failed. This transaction ID is invalid."
  unknown profile / payment profile / transaction                  E00040
  same merchantCustomerId                                          E00039 "A duplicate record with ID n already exists."
  same card number and expiry in one customer profile              E00039 + the existing customerPaymentProfileId
  wrong login or transaction key                                   E00007
  update without payment                                           E00029
  field longer than its XSD limit (refId, invoiceNumber, merchantCustomerId, billTo)   E00003
  void of an unknown or settled transaction: error 16; refund of an unsettled one: 54; over the charge: 55

Account Updater (`account_updater(customer, payment, reason_code, ...)`, a test helper, and in local mode
`POST .../_simulator/account-updater` with JSON customerProfileId, paymentProfileId, reasonCode, newCardNumber,
newExpiration; simulator-only, not a gateway endpoint): the card's
bank reports a change; NAN (new number) and NED (new expiry) change the stored card, ACL (account closed) marks it
closed (its charges are declined, reason 4 hard: the bank asks to keep the card, a simulator convention); each is
listed in that month's getAUJobSummary / getAUJobDetails, shaped as the API reference's example (auDetails with
auUpdate / auDelete, masked numbers and expiries).

Settlement: `settle()` closes every unsettled transaction but held ones into one batch stamped with the simulator's
clock (`getSettledBatchList` by settlement date, at most 31 days at once; `getTransactionList` per batch); the
transaction lists take `sorting` {orderBy id | submitTimeUTC, orderDescending} and `paging` {limit 1..1000, offset
from 1}. `calls` counts API requests by operation.

Fault switches (`fail_next(kind, count, operation)`), for the next `count` requests of `operation` (None: any):
  refused            nothing recorded; requests.ConnectionError (NewConnectionError) through `responses`
  lost_after_commit  processed and recorded, then requests.ReadTimeout through `responses`
  http_500           processed and recorded, then HTTP 500 with an HTML page
  malformed, no_bom, empty, html   processed, then a truncated JSON / JSON without BOM / empty / HTML 200 answer
Through `wsgi_app` (no socket to refuse), `refused` is a 502 and `lost_after_commit` a 504, both with empty bodies.
"""
from __future__ import annotations

import collections
import copy
import dataclasses
import datetime as dt
import json
import logging
import os
import secrets
import threading
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from core import dates
from core.ports import Clock, OpaqueData, SystemClock
from gateway.signature import sign
from standins import LOCAL_GATEWAY_KEY, LOCAL_GATEWAY_LOGIN, LOCAL_SIGNATURE_KEY

log = logging.getLogger(__name__)

SANDBOX_URL = "https://apitest.authorize.net/xml/v1/request.api"
# Default credentials: those local mode wires (app.composition); the simulator accepts no others.
LOGIN_ID = LOCAL_GATEWAY_LOGIN
TRANSACTION_KEY = LOCAL_GATEWAY_KEY
PUBLIC_CLIENT_KEY = "local-public-client-key"
SIGNATURE_KEY = LOCAL_SIGNATURE_KEY
ACCEPT_DESCRIPTOR = "COMMON.ACCEPT.INAPP.PAYMENT"
ACCEPT_JS = Path(__file__).with_name("acceptjs") / "Accept.js"

NONCE_LIFETIME = dt.timedelta(minutes=15)
DEFAULT_DUPLICATE_WINDOW = 120
DECLINE_ZIP = "46282"
REASON_ZIP_PREFIX = DECLINE_ZIP + "-"          # simulator-only: 46282-NNNN answers reason code NNNN
# Reason codes answered with responseCode 3 (an error) rather than 2 (declined), and their texts (Authorize.Net's
# response code list, developer.authorize.net/api/reference/responseCodes.html).
ERROR_REASONS = frozenset({"6", "7", "8", "17", "19", "20", "21", "22", "23", "28", "37", "57", "58", "59", "60",
                           "61", "62", "63", "78"})
REASON_TEXTS = {
    "2": "This transaction has been declined.", "3": "This transaction has been declined.",
    "4": "This transaction has been declined.", "6": "The credit card number is invalid.",
    "7": "Credit card expiration date is invalid.", "8": "The credit card has expired.",
    "17": "The merchant does not accept this type of credit card.",
    "19": "An error occurred during processing. Please try again in 5 minutes.",
    "27": "The transaction has been declined because of an AVS mismatch. The address provided does not match billing "
          "address of cardholder.",
    "28": "The merchant does not accept this type of credit card.", "37": "The credit card number is invalid.",
    "44": "This transaction has been declined.", "45": "This transaction has been declined.",
    "57": "An error occurred in processing. Please try again in 5 minutes.",
    "65": "This transaction has been declined.", "78": "The Card Code (CVV2/CVC2/CID) is invalid.",
    "250": "This transaction has been declined.", "251": "This transaction has been declined.",
    "254": "Your transaction has been declined.",
}
HELD_ZIP = "46299"
AVS_BY_ZIP = {"46201": "A", "46203": "E", "46204": "G", "46205": "N", "46206": "P", "46207": "R", "46208": "S",
              "46209": "U", "46211": "W", "46214": "X", "46217": "Z"}
CVV_BY_CODE = {"900": "M", "901": "N", "902": "S", "903": "U", "904": "P"}
FAULTS = ("refused", "lost_after_commit", "http_500", "malformed", "no_bom", "empty", "html")
# Element limits the simulator enforces (the XSD facets the client must respect).
_MAX_LENGTHS = {"refId": 20, "invoiceNumber": 20, "merchantCustomerId": 20, "description": 255, "email": 255,
                "firstName": 50, "lastName": 50, "company": 50, "address": 60, "city": 40, "state": 40, "zip": 20,
                "country": 60, "phoneNumber": 25}
_UNSETTLED = ("capturedPendingSettlement", "refundPendingSettlement", "FDSPendingReview")
_CENT = Decimal("0.01")
_BOM = b"\xef\xbb\xbf"


class TransportFault(Exception):
    """Raised by `handle` for a fault below HTTP; each adapter turns it into its transport's form."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


class AcceptError(ValueError):
    """Accept.js refused the card data (`code` as the real library's, e.g. E_WC_05)."""

    def __init__(self, code: str, text: str):
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


class _ApiError(Exception):
    def __init__(self, code: str, text: str, **extra: Any):
        super().__init__(code)
        self.code, self.text, self.extra = code, text, extra


@dataclass(frozen=True)
class _Card:
    number: str
    exp_year: int
    exp_month: int
    cvv: str = ""

    @property
    def masked(self) -> str:
        return "XXXX" + self.number[-4:]

    @property
    def expiration(self) -> str:
        return f"{self.exp_year:04d}-{self.exp_month:02d}"

    @property
    def card_type(self) -> str:
        n = self.number
        if n.startswith("4"):
            return "Visa"
        if n[:2] in ("34", "37"):
            return "AmericanExpress"
        if n[:1] == "5" or "2221" <= n[:4] <= "2720":
            return "MasterCard"
        if n.startswith(("6011", "65", "64")):
            return "Discover"
        if n[:2] == "35":
            return "JCB"
        if n[:2] in ("30", "36", "38"):
            return "DinersClub"
        return "Unknown"

    def expired(self, now: dt.datetime) -> bool:
        return (self.exp_year, self.exp_month) < (now.year, now.month)


def reason_for_zip(zip_code: str) -> str:
    """The reason code a 46282-NNNN billing zip asks for ("" for any other zip)."""
    if not zip_code.startswith(REASON_ZIP_PREFIX):
        return ""
    digits = zip_code[len(REASON_ZIP_PREFIX):]
    return str(int(digits)) if digits.isdigit() and int(digits) > 0 else ""


def _reason_text(reason_code: str) -> str:
    return REASON_TEXTS.get(reason_code, "This transaction has been declined.")


def luhn_valid(number: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


class AuthorizeNetSimulator:
    def __init__(self, clock: Clock | None = None, *, login_id: str = LOGIN_ID,
                 transaction_key: str = TRANSACTION_KEY, public_client_key: str = PUBLIC_CLIENT_KEY,
                 signature_key: str = SIGNATURE_KEY, storage_path: str | os.PathLike | None = None):
        """`storage_path`: a JSON file keeping profiles and transactions across dev-host restarts (local mode)."""
        self.clock = clock or SystemClock()
        self.login_id = login_id
        self.transaction_key = transaction_key
        self.public_client_key = public_client_key
        self.signature_key = signature_key
        self._lock = threading.RLock()
        self._customers: dict[str, dict[str, Any]] = {}
        self._nonces: dict[str, tuple[_Card, dt.datetime]] = {}
        self._transactions: dict[str, dict[str, Any]] = {}
        self._by_invoice: dict[str, list[dict[str, Any]]] = {}     # invoice number -> its transactions, oldest first
        self._faults: list[list[Any]] = []
        self._sink: Any = None
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        self._au_events: list[dict[str, Any]] = []
        self._batches: dict[str, dict[str, Any]] = {}
        self._next_id = {"customer": 500000001, "payment": 600000001, "transaction": 120000000001,
                         "batch": 9000001}
        self.calls: collections.Counter[str] = collections.Counter()    # API requests by operation, for tests
        self.storage_path = storage_path
        if storage_path and os.path.exists(storage_path):
            self._load(storage_path)

    # --- Test and local-mode helpers ---------------------------------------------------------------------------------

    def issue_nonce(self, card_number: str, exp_month: str | int, exp_year: str | int, cvv: str = "", *,
                    zip: str = "", full_name: str = "") -> OpaqueData:
        """What Accept.js does in the browser: validate the card and turn it into a single-use, 15-minute nonce."""
        number = str(card_number).replace(" ", "").replace("-", "")
        if not number.isdigit() or not 13 <= len(number) <= 16 or not luhn_valid(number):
            raise AcceptError("E_WC_05", "Please provide valid credit card number.")
        month = str(exp_month).strip()
        if not month.isdigit() or not 1 <= int(month) <= 12:
            raise AcceptError("E_WC_06", "Please provide valid expiration month.")
        year = str(exp_year).strip()
        if not year.isdigit() or len(year) not in (2, 4):
            raise AcceptError("E_WC_07", "Please provide valid expiration year.")
        card = _Card(number, int(year) + (2000 if len(year) == 2 else 0), int(month), str(cvv or "").strip())
        if card.expired(self.clock.now()):
            raise AcceptError("E_WC_08", "Expiration date must be in the future.")
        if card.cvv and (not card.cvv.isdigit() or len(card.cvv) != (4 if card.card_type == "AmericanExpress" else 3)):
            raise AcceptError("E_WC_15", "Please provide valid CVV.")
        if len(zip) > 20:
            raise AcceptError("E_WC_16", "Please provide valid Zip code.")
        if len(full_name) > 64:
            raise AcceptError("E_WC_17", "Please provide valid card holder name.")
        value = secrets.token_urlsafe(96)
        with self._lock:
            self._nonces[value] = (card, self.clock.now())
        return OpaqueData(ACCEPT_DESCRIPTOR, value)

    def fail_next(self, kind: str, count: int = 1, operation: str | None = "createTransaction") -> None:
        """Make the next `count` requests of `operation` (None: any API request) fail as `kind` (see FAULTS)."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")
        with self._lock:
            self._faults.append([kind, count, operation])

    AU_REASONS = {"NAN": "NewAccountNumber", "NED": "NewExpirationDate", "ACL": "AccountClosed",
                  "CCH": "ContactCardHolder"}

    def account_updater(self, customer_profile_id: str, payment_profile_id: str, reason_code: str, *,
                        new_number: str = "", new_expiration: str = "") -> None:
        """The card's bank reports a change (see the module docstring). `new_expiration`: `YYYY-MM`."""
        if reason_code not in self.AU_REASONS:
            raise ValueError(f"reason_code must be one of {sorted(self.AU_REASONS)}")
        with self._lock:
            customer = self._customer(customer_profile_id)
            profile = self._payment_profile(customer, payment_profile_id)
            old = profile["card"]
            card = old
            if reason_code == "NAN":
                card = dataclasses.replace(card, number=new_number or card.number)
            if new_expiration:
                year, _, month = new_expiration.partition("-")
                card = dataclasses.replace(card, exp_year=int(year), exp_month=int(month))
            profile["card"] = card
            if reason_code in ("ACL", "CCH"):
                profile["closed"] = True
            self._au_events.append({"kind": "delete" if reason_code in ("ACL", "CCH") else "update",
                                    "customer": customer["customerProfileId"], "payment": profile["id"],
                                    "reason": reason_code, "old": old, "new": card,
                                    "first_name": profile["billTo"].get("firstName", ""),
                                    "last_name": profile["billTo"].get("lastName", ""), "at": self.clock.now()})
            self._save()

    def transactions(self) -> list[dict[str, Any]]:
        """Every recorded transaction (charges, refunds), oldest first, without card data."""
        with self._lock:
            return [_public(tx) for tx in self._transactions.values()]

    def charges(self) -> list[dict[str, Any]]:
        """Every authCaptureTransaction the gateway recorded (approved, held or declined; duplicates are not
        recorded), so a test can prove a charge happened exactly once."""
        return [tx for tx in self.transactions() if tx["type"] == "authCaptureTransaction"]

    def settle(self) -> str | None:
        """Run the nightly batch at the simulator's clock: pending captures and refunds settle, declined and voided
        ones close with them; held ones wait for review. Every transaction leaves the unsettled list for one settled
        batch (`getSettledBatchList`, `getTransactionList`). Returns the batch id (None: nothing to settle)."""
        with self._lock:
            members = [tx for tx in self._transactions.values()
                       if not tx["batched"] and tx["status"] != "FDSPendingReview"]
            if not members:
                return None
            batch_id = self._new_id("batch")
            for tx in members:
                tx["status"] = {"capturedPendingSettlement": "settledSuccessfully",
                                "refundPendingSettlement": "refundSettledSuccessfully"}.get(tx["status"], tx["status"])
                tx["batched"] = batch_id
            self._batches[batch_id] = {"batch_id": batch_id, "settled_at": self.clock.now(),
                                       "trans_ids": [tx["trans_id"] for tx in members]}
            self._save()
            return batch_id

    def approve_held(self, trans_id: str) -> None:
        self._review(trans_id, "capturedPendingSettlement", "net.authorize.payment.fraud.approved")

    def decline_held(self, trans_id: str) -> None:
        self._review(trans_id, "declined", "net.authorize.payment.fraud.declined")

    def webhook_for(self, event_type: str, payload_entity: dict[str, Any], *,
                    signature_key: str | None = None) -> tuple[bytes, dict[str, str]]:
        """A webhook delivery as Authorize.Net sends it: (raw body, headers with X-ANET-Signature)."""
        body = _json_bytes({
            "notificationId": str(uuid.uuid4()),
            "eventType": event_type,
            "eventDate": self.clock.now().astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "webhookId": "D3D1A0E4-3F7E-4B6D-9D0A-5A6C2B1E7F00",
            "payload": payload_entity,
        })
        return body, {"Content-Type": "application/json",
                      "X-ANET-Signature": sign(body, signature_key or self.signature_key)}

    def emit_webhooks_to(self, sink: str | list | Callable[[bytes, dict[str, str]], Any] | None,
                         signature_key: str | None = None) -> None:
        """Send signed webhooks for what happens here: to a URL (POSTed from a thread, local mode), appended to a list
        as {"event_type", "body", "headers"}, or to a callable(body, headers). None stops."""
        with self._lock:
            self._sink = sink
            if signature_key:
                self.signature_key = signature_key

    # --- HTTP --------------------------------------------------------------------------------------------------------

    def handle(self, method: str, url: str, headers: dict[str, str], body: bytes | str | None
               ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP exchange. Raises TransportFault for `refused` and `lost_after_commit`."""
        path = urlsplit(url).path
        raw = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        if path.endswith("/xml/v1/request.api"):
            if method.upper() != "POST":
                return 405, {"Content-Type": "text/plain"}, b"Method Not Allowed"
            return self._api(raw)
        if path.endswith("/accept/nonce"):
            if method.upper() != "POST":
                return 405, {"Content-Type": "text/plain"}, b"Method Not Allowed"
            return 200, {"Content-Type": "application/json; charset=utf-8"}, _json_bytes(self._nonce_request(raw))
        if path.endswith("/_simulator/account-updater") and method.upper() == "POST":
            # Local mode's stand-in for a bank's report (not an Authorize.Net endpoint): JSON with customerProfileId,
            # paymentProfileId, reasonCode and optional newCardNumber / newExpiration (YYYY-MM).
            try:
                event = json.loads(raw.decode("utf-8"))
                self.account_updater(str(event["customerProfileId"]), str(event["paymentProfileId"]),
                                     str(event["reasonCode"]), new_number=str(event.get("newCardNumber") or ""),
                                     new_expiration=str(event.get("newExpiration") or ""))
            except (ValueError, KeyError, TypeError, _ApiError) as exc:
                return 400, {"Content-Type": "text/plain"}, f"not recorded: {type(exc).__name__}".encode()
            return 202, {"Content-Type": "text/plain"}, b"Accepted"
        if path.endswith("/Accept.js") and method.upper() in ("GET", "HEAD"):
            return 200, {"Content-Type": "application/javascript; charset=utf-8",
                         "Cache-Control": "no-store"}, ACCEPT_JS.read_bytes()
        return 404, {"Content-Type": "text/plain"}, b"Not Found"

    def register_with_responses(self, rsps: Any, url: str = SANDBOX_URL) -> None:
        """Answer `url` from this simulator inside a `responses.RequestsMock`."""
        import requests
        from urllib3.exceptions import MaxRetryError, NewConnectionError

        def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
            try:
                return self.handle(request.method, request.url, dict(request.headers), request.body)
            except TransportFault as fault:
                if fault.kind == "refused":
                    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] "
                                                      "Connection refused")
                    raise requests.ConnectionError(MaxRetryError(None, url, reason), request=request) from None
                raise requests.ReadTimeout("Read timed out. (simulated: the answer was lost)",
                                           request=request) from None

        rsps.add_callback("POST", url, callback=callback, content_type=None)

    def wsgi_app(self) -> Callable:
        """The simulator as a WSGI app, for the dev host to mount at /_local/authorizenet/."""
        def app(environ: dict[str, Any], start_response: Callable) -> list[bytes]:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            headers = {key[5:].replace("_", "-").title(): value
                       for key, value in environ.items() if key.startswith("HTTP_")}
            try:
                status, out_headers, out = self.handle(environ.get("REQUEST_METHOD", "GET"), path, headers, body)
            except TransportFault as fault:
                status = 502 if fault.kind == "refused" else 504
                out_headers, out = {"Content-Type": "text/plain"}, b""
            start_response(f"{status} {HTTPStatus(status).phrase}",
                           [*out_headers.items(), ("Content-Length", str(len(out)))])
            return [out]
        return app

    # --- The API -----------------------------------------------------------------------------------------------------

    def _api(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            document = json.loads(raw.decode("utf-8-sig"), parse_float=Decimal)
            (root, request), = document.items()
            operation = root[:-len("Request")] if root.endswith("Request") else ""
            handler = getattr(self, f"_op_{operation}", None) if operation else None
        except (ValueError, AttributeError):
            document, request, operation, handler = None, None, "", None
        self.calls[operation or "?"] += 1
        fault = self._take_fault(operation)
        if fault == "refused":
            raise TransportFault(fault)
        with self._lock:
            try:
                if handler is None or not isinstance(request, dict):
                    raise _ApiError("E00003", "The request is not a valid Authorize.Net API request.")
                self._authenticate(request)
                self._check_lengths(request)
                answer = handler(request)
            except _ApiError as error:
                answer = {**error.extra, "messages": _messages("Error", error.code, error.text)}
            except (ValueError, TypeError, KeyError, AttributeError):     # a shape the schema would refuse
                answer = {"messages": _messages("Error", "E00003", "The request does not match the schema.")}
            answer.setdefault("messages", _messages("Ok", "I00001", "Successful."))
            if isinstance(request, dict) and request.get("refId"):
                answer = {"refId": request["refId"], **answer}
            outbox, self._outbox = self._outbox, []
            self._save()
        self._deliver(outbox)
        body = _json_bytes(answer)
        json_headers = {"Content-Type": "application/json; charset=utf-8"}
        if fault == "lost_after_commit":
            raise TransportFault(fault)
        if fault == "http_500":
            return 500, {"Content-Type": "text/html"}, b"<html><body><h1>500 Internal Server Error</h1></body></html>"
        if fault == "malformed":
            return 200, json_headers, _BOM + body[: len(body) // 2]
        if fault == "no_bom":
            return 200, json_headers, body
        if fault == "empty":
            return 200, json_headers, b""
        if fault == "html":
            return 200, {"Content-Type": "text/html"}, b"<!DOCTYPE html><html><body>Service Unavailable</body></html>"
        return 200, json_headers, _BOM + body

    def _take_fault(self, operation: str) -> str | None:
        with self._lock:
            for fault in self._faults:
                kind, remaining, only = fault
                if only is None or only == operation:
                    fault[1] -= 1
                    if fault[1] <= 0:
                        self._faults.remove(fault)
                    return kind
        return None

    def _authenticate(self, request: dict[str, Any]) -> None:
        auth = request.get("merchantAuthentication") or {}
        if not (secrets.compare_digest(str(auth.get("name", "")), self.login_id)
                and secrets.compare_digest(str(auth.get("transactionKey", "")), self.transaction_key)):
            raise _ApiError("E00007", "User authentication failed due to invalid authentication values.")

    def _check_lengths(self, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and key in _MAX_LENGTHS and len(value) > _MAX_LENGTHS[key]:
                    raise _ApiError("E00003", f"The 'AnetApi/xml/v1/schema/AnetApiSchema.xsd:{key}' element is "
                                              "invalid - The actual length is greater than the MaxLength value.")
                self._check_lengths(value)
        elif isinstance(node, list):
            for item in node:
                self._check_lengths(item)

    # CIM

    def _op_createCustomerProfile(self, request: dict[str, Any]) -> dict[str, Any]:
        profile = request.get("profile") or {}
        fields = {k: str(profile.get(k) or "") for k in ("merchantCustomerId", "description", "email")}
        if not any(fields.values()):
            raise _ApiError("E00041", "One or more fields in the profile must contain a value.")
        for existing in self._customers.values():
            if fields["merchantCustomerId"] and existing["merchantCustomerId"] == fields["merchantCustomerId"]:
                raise _ApiError("E00039", f"A duplicate record with ID {existing['customerProfileId']} already "
                                          "exists.")
        # Payment profiles may come with the customer (one call for an account's first card). Each card is checked
        # first: a refused card fails the whole request and nothing is created, as the gateway does.
        wanted = profile.get("paymentProfiles") or []
        wanted = [wanted] if isinstance(wanted, dict) else list(wanted)
        customer_id = self._new_id("customer")
        customer = {**fields, "customerProfileId": customer_id, "payment_profiles": {}}
        cards, responses = [], []
        for item in wanted:
            card = self._card_from_payment(item.get("payment"))
            if card is None:
                raise _ApiError("E00029", "Payment information is required.")
            bill_to = dict(item.get("billTo") or {})
            extra = self._validate_card(request.get("validationMode", "none"), card, bill_to, customer)
            cards.append((item, card, bill_to))
            if extra:
                responses.append(extra["validationDirectResponse"])
        self._customers[customer_id] = customer
        ids = []
        for item, card, bill_to in cards:
            ids.append(self._store_payment_profile(customer, item, card, bill_to))
        # One event for the customer, naming its payment profiles (the published customer.created sample); no
        # paymentProfile.created for cards made with their customer.
        payload: dict[str, Any] = {"merchantCustomerId": fields["merchantCustomerId"],
                                   "description": fields["description"], "entityName": "customerProfile",
                                   "id": customer_id}
        if ids:
            payload = {"paymentProfiles": [{"id": i, "customerType": customer["payment_profiles"][i]["customerType"]}
                                           for i in ids], **payload}
        self._queue_webhook("net.authorize.customer.created", payload)
        return {"customerProfileId": customer_id, "customerPaymentProfileIdList": ids,
                "customerShippingAddressIdList": [], "validationDirectResponseList": responses}

    def _op_createCustomerPaymentProfile(self, request: dict[str, Any]) -> dict[str, Any]:
        customer = self._customer(request.get("customerProfileId"))
        wanted = request.get("paymentProfile") or {}
        card = self._card_from_payment(wanted.get("payment"))
        if card is None:
            raise _ApiError("E00029", "Payment information is required.")
        for profile in customer["payment_profiles"].values():
            if (profile["card"].number, profile["card"].expiration) == (card.number, card.expiration):
                raise _ApiError("E00039", "A duplicate customer payment profile already exists.",
                                customerProfileId=customer["customerProfileId"],
                                customerPaymentProfileId=profile["id"])
        bill_to = dict(wanted.get("billTo") or {})
        extra = self._validate_card(request.get("validationMode", "none"), card, bill_to, customer)
        profile_id = self._store_payment_profile(customer, wanted, card, bill_to)
        self._queue_webhook("net.authorize.customer.paymentProfile.created",
                            {"customerProfileId": int(customer["customerProfileId"]),
                             "entityName": "customerPaymentProfile", "id": profile_id,
                             "customerType": customer["payment_profiles"][profile_id]["customerType"]})
        return {"customerProfileId": customer["customerProfileId"], "customerPaymentProfileId": profile_id, **extra}

    def _store_payment_profile(self, customer: dict[str, Any], wanted: dict[str, Any], card: "_Card",
                               bill_to: dict[str, Any]) -> str:
        profile_id = self._new_id("payment")
        # A stored profile never keeps the CVV (so charges on it have no cvvResultCode).
        customer["payment_profiles"][profile_id] = {"id": profile_id, "card": dataclasses.replace(card, cvv=""),
                                                    "billTo": bill_to,
                                                    "customerType": wanted.get("customerType", "individual"),
                                                    "default": False}
        if wanted.get("defaultPaymentProfile") is True:
            self._make_default(customer, profile_id)
        return profile_id

    def _op_getCustomerProfile(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("merchantCustomerId") and not request.get("customerProfileId"):
            matches = [c for c in self._customers.values() if c["merchantCustomerId"] == request["merchantCustomerId"]]
            customer = matches[0] if matches else self._customer(None)
        else:
            customer = self._customer(request.get("customerProfileId"))
        unmask = request.get("unmaskExpirationDate") is True
        profile = {"paymentProfiles": [self._profile_view(p, unmask) for p in customer["payment_profiles"].values()],
                   "profileType": "regular", "customerProfileId": customer["customerProfileId"]}
        profile.update({k: customer[k] for k in ("merchantCustomerId", "description", "email") if customer[k]})
        return {"profile": profile, "subscriptionIds": []}

    def _op_getCustomerPaymentProfile(self, request: dict[str, Any]) -> dict[str, Any]:
        customer = self._customer(request.get("customerProfileId"))
        profile = self._payment_profile(customer, request.get("customerPaymentProfileId"))
        view = self._profile_view(profile, request.get("unmaskExpirationDate") is True)
        return {"paymentProfile": {"customerProfileId": customer["customerProfileId"], **view}}

    def _op_updateCustomerPaymentProfile(self, request: dict[str, Any]) -> dict[str, Any]:
        customer = self._customer(request.get("customerProfileId"))
        wanted = request.get("paymentProfile") or {}
        profile = self._payment_profile(customer, wanted.get("customerPaymentProfileId"))
        payment = wanted.get("payment") or {}
        masked = payment.get("creditCard") or {}
        if "opaqueData" in payment:
            card = self._card_from_payment(payment)
        elif str(masked.get("cardNumber", "")).startswith("XXXX"):
            if masked["cardNumber"][4:] != profile["card"].number[-4:]:
                raise _ApiError("E00013", "Card Number is invalid.")
            card = profile["card"]
            if masked.get("expirationDate", "XXXX") != "XXXX":
                year, _, month = str(masked["expirationDate"]).partition("-")
                card = _Card(card.number, int(year), int(month))
        else:
            raise _ApiError("E00029", "Payment information is required.")
        bill_to = dict(wanted.get("billTo") or {})
        extra = {}
        if card is not profile["card"]:
            extra = self._validate_card(request.get("validationMode", "none"), card, bill_to, customer)
        # The update replaces the payment profile as sent: omitted bill-to fields are cleared, as the gateway does.
        profile.update(card=dataclasses.replace(card, cvv=""), billTo=bill_to)
        if wanted.get("defaultPaymentProfile") is True:
            self._make_default(customer, profile["id"])
        self._queue_webhook("net.authorize.customer.paymentProfile.updated",
                            {"customerProfileId": int(customer["customerProfileId"]),
                             "entityName": "customerPaymentProfile", "id": profile["id"],
                             "customerType": profile["customerType"]})
        return extra

    def _op_deleteCustomerPaymentProfile(self, request: dict[str, Any]) -> dict[str, Any]:
        customer = self._customer(request.get("customerProfileId"))
        profile = self._payment_profile(customer, request.get("customerPaymentProfileId"))
        del customer["payment_profiles"][profile["id"]]
        self._queue_webhook("net.authorize.customer.paymentProfile.deleted",
                            {"customerProfileId": int(customer["customerProfileId"]),
                             "entityName": "customerPaymentProfile", "id": profile["id"],
                             "customerType": profile["customerType"]})
        return {}

    # Transactions

    def _op_createTransaction(self, request: dict[str, Any]) -> dict[str, Any]:
        tr = request.get("transactionRequest") or {}
        kind = tr.get("transactionType")
        if kind == "authCaptureTransaction":
            return self._auth_capture(request.get("refId", ""), tr)
        if kind == "voidTransaction":
            return self._void(tr)
        if kind == "refundTransaction":
            return self._refund(request.get("refId", ""), tr)
        raise _ApiError("E00003", "The simulator supports authCaptureTransaction, refundTransaction and "
                                  "voidTransaction.")

    def _auth_capture(self, ref_id: str, tr: dict[str, Any]) -> dict[str, Any]:
        amount = _amount(tr.get("amount"))
        if amount is None:
            return _tx_error("3", "5", "A valid amount is required.")
        profile_ids: dict[str, str] = {}
        create_profile = (tr.get("profile") or {}).get("createProfile") is True
        if create_profile and (tr["profile"].get("customerProfileId") or tr["profile"].get("paymentProfile")):
            raise _ApiError("E00003", "The simulator takes createProfile only with a payment (a new card), not with "
                                      "a stored profile.")
        if "profile" in tr and not create_profile:
            customer = self._customer(tr["profile"].get("customerProfileId"))
            wanted = (tr["profile"].get("paymentProfile") or {}).get("paymentProfileId")
            if wanted is None:
                defaults = [p for p in customer["payment_profiles"].values() if p["default"]]
                if not defaults:
                    raise _ApiError("E00121", "No default payment/shipping profile found.")
                wanted = defaults[0]["id"]
            profile = self._payment_profile(customer, wanted)
            card, bill_to = profile["card"], profile["billTo"]
            profile_ids = {"customerProfileId": customer["customerProfileId"], "customerPaymentProfileId": wanted}
        else:
            card = self._card_from_payment(tr.get("payment"))
            if card is None:
                raise _ApiError("E00003", "A payment or profile element is required.")
            bill_to = tr.get("billTo") or {}
        invoice = str((tr.get("order") or {}).get("invoiceNumber", ""))
        now = self.clock.now()
        window = _duplicate_window(tr)
        for earlier in reversed(self._by_invoice.get(invoice, [])):   # the duplicate check compares invoice numbers
            if (earlier["type"] == "authCaptureTransaction" and earlier["amount"] == amount
                    and earlier["invoice_number"] == invoice and earlier["card"] == card
                    and earlier["bill_to"] == bill_to
                    and (now - earlier["submitted_at"]).total_seconds() < window):
                answer = _tx_error("3", "11", "A duplicate transaction has been submitted.", earlier)
                answer["transactionResponse"]["authCode"] = earlier["auth_code"]
                return answer
        zip_code = str(bill_to.get("zip", ""))
        if card.expired(now):
            return _tx_error("3", "8", "The credit card has expired.")
        wanted_reason = reason_for_zip(zip_code)
        if profile_ids and self._payment_profile(self._customer(profile_ids["customerProfileId"]),
                                                 profile_ids["customerPaymentProfileId"]).get("closed"):
            wanted_reason = "4"                  # Account Updater closed the card's account
        if wanted_reason in ERROR_REASONS:
            return _tx_error("3", wanted_reason, _reason_text(wanted_reason))
        if wanted_reason:
            code, status, note = "2", "declined", (wanted_reason, _reason_text(wanted_reason))
        elif zip_code == DECLINE_ZIP:
            code, status, note = "2", "declined", ("2", "This transaction has been declined.")
        elif zip_code == HELD_ZIP:
            code, status, note = "4", "FDSPendingReview", ("252", "Your order has been received. Thank you for "
                                                                  "your business!")
        else:
            code, status, note = "1", "capturedPendingSettlement", ("1", "This transaction has been approved.")
        tx = self._record("authCaptureTransaction", ref_id, amount, card, bill_to, profile_ids, status=status,
                          response_code=code, reason=note[1], invoice=invoice,
                          description=str((tr.get("order") or {}).get("description", "")),
                          avs=AVS_BY_ZIP.get(zip_code, "Y"), cvv=CVV_BY_CODE.get(card.cvv, "M") if card.cvv else "")
        tx["reason_code"] = note[0]
        if code == "2":
            return _tx_error("2", note[0], note[1], tx)
        self._queue_webhook("net.authorize.payment.fraud.held" if code == "4"
                            else "net.authorize.payment.authcapture.created", _tx_payload(tx))
        answer = _tx_ok(tx, note, code)
        if create_profile and code == "1":
            answer["profileResponse"] = self._profile_from_charge(tx, tr.get("customer") or {})
        return answer

    def _profile_from_charge(self, tx: dict[str, Any], customer_data: dict[str, Any]) -> dict[str, Any]:
        """createProfile: the approved charge's card saved as a new customer profile (createProfileResponse)."""
        fields = {"merchantCustomerId": str(customer_data.get("id") or ""), "description": "",
                  "email": str(customer_data.get("email") or "")}
        refused: dict[str, Any] = {"customerPaymentProfileIdList": [], "customerShippingAddressIdList": []}
        if not fields["merchantCustomerId"] and not fields["email"]:
            return {"messages": _messages("Error", "E00041", "One or more fields in the profile must contain a "
                                                             "value."), **refused}
        for existing in self._customers.values():
            if fields["merchantCustomerId"] and existing["merchantCustomerId"] == fields["merchantCustomerId"]:
                return {"messages": _messages("Error", "E00039", f"A duplicate record with ID "
                                              f"{existing['customerProfileId']} already exists."), **refused}
        customer_id = self._new_id("customer")
        customer = {**fields, "customerProfileId": customer_id, "payment_profiles": {}}
        self._customers[customer_id] = customer
        profile_id = self._store_payment_profile(customer, {"defaultPaymentProfile": True}, tx["card"],
                                                 tx["bill_to"])
        self._queue_webhook("net.authorize.customer.created", {
            "paymentProfiles": [{"id": profile_id, "customerType": "individual"}],
            "merchantCustomerId": fields["merchantCustomerId"], "description": "", "entityName": "customerProfile",
            "id": customer_id})
        return {"messages": _messages("Ok", "I00001", "Successful."), "customerProfileId": customer_id,
                "customerPaymentProfileIdList": [profile_id], "customerShippingAddressIdList": []}

    def _op_createCustomerProfileFromTransaction(self, request: dict[str, Any]) -> dict[str, Any]:
        tx = self._transactions.get(str(request.get("transId", "")))
        if tx is None:
            raise _ApiError("E00040", "The record cannot be found.")
        if tx["type"] != "authCaptureTransaction" or tx["response_code"] != "1" or tx["status"] == "voided":
            raise _ApiError("E00099", "Customer profile creation failed. This transaction ID is invalid.")
        if not request.get("customerProfileId"):
            raise _ApiError("E00003", "The simulator saves a transaction's card into an existing customer profile "
                                      "(customerProfileId) only.")
        customer = self._customer(request.get("customerProfileId"))
        for profile in customer["payment_profiles"].values():
            if (profile["card"].number, profile["card"].expiration) == (tx["card"].number, tx["card"].expiration):
                raise _ApiError("E00039", "A duplicate customer payment profile already exists.")
        wanted = {"defaultPaymentProfile": request.get("defaultPaymentProfile") is True}
        profile_id = self._store_payment_profile(customer, wanted, tx["card"], tx["bill_to"])
        self._queue_webhook("net.authorize.customer.paymentProfile.created",
                            {"customerProfileId": int(customer["customerProfileId"]),
                             "entityName": "customerPaymentProfile", "id": profile_id, "customerType": "individual"})
        return {"customerProfileId": customer["customerProfileId"], "customerPaymentProfileIdList": [profile_id],
                "customerShippingAddressIdList": []}

    def _void(self, tr: dict[str, Any]) -> dict[str, Any]:
        tx = self._transactions.get(str(tr.get("refTransId", "")))
        if tx and tx["status"] == "voided":
            return _tx_ok(tx, ("310", "This transaction has already been voided."))
        if not tx or tx["status"] not in _UNSETTLED:
            return _tx_error("3", "16", "The transaction cannot be found.")
        tx.update(status="voided", settle_amount=Decimal("0.00"))
        self._queue_webhook("net.authorize.payment.void.created", _tx_payload(tx))
        return _tx_ok(tx, ("1", "This transaction has been approved."))

    def _refund(self, ref_id: str, tr: dict[str, Any]) -> dict[str, Any]:
        amount = _amount(tr.get("amount"))
        if amount is None:
            return _tx_error("3", "5", "A valid amount is required.")
        original = self._transactions.get(str(tr.get("refTransId", "")))
        if not original or original["type"] != "authCaptureTransaction" or original["status"] != "settledSuccessfully":
            return _tx_error("3", "54", "The referenced transaction does not meet the criteria for issuing a credit.")
        card_number = str(((tr.get("payment") or {}).get("creditCard") or {}).get("cardNumber", ""))
        if card_number[-4:] != original["card"].number[-4:]:
            return _tx_error("3", "6", "The credit card number is invalid.")
        profile = tr.get("profile")
        if profile and (str(profile.get("customerProfileId")) != original["customer_profile_id"]
                        or str((profile.get("paymentProfile") or {}).get("paymentProfileId"))
                        != original["payment_profile_id"]):
            return _tx_error("3", "54", "The referenced transaction does not meet the criteria for issuing a credit.")
        refunded = sum((t["amount"] for t in self._transactions.values()
                        if t["type"] == "refundTransaction" and t["ref_trans_id"] == original["trans_id"]
                        and t["status"] != "voided"), Decimal("0"))
        if refunded + amount > original["settle_amount"]:
            return _tx_error("3", "55", "The sum of credits against the referenced transaction would exceed original "
                                        "debit amount.")
        profile_ids = {"customerProfileId": original["customer_profile_id"],
                       "customerPaymentProfileId": original["payment_profile_id"]}
        tx = self._record("refundTransaction", ref_id, amount, original["card"], original["bill_to"], profile_ids,
                          status="refundPendingSettlement", response_code="1",
                          reason="This transaction has been approved.", invoice=original["invoice_number"],
                          ref_trans_id=original["trans_id"])
        self._queue_webhook("net.authorize.payment.refund.created", _tx_payload(tx))
        return _tx_ok(tx, ("1", "This transaction has been approved."))

    def _op_getTransactionDetails(self, request: dict[str, Any]) -> dict[str, Any]:
        tx = self._transactions.get(str(request.get("transId", "")))
        if tx is None:
            raise _ApiError("E00040", "The record cannot be found.")
        details: dict[str, Any] = {
            "transId": tx["trans_id"], "submitTimeUTC": _utc(tx["submitted_at"]),
            "submitTimeLocal": _utc(tx["submitted_at"])[:-1], "transactionType": tx["type"],
            "transactionStatus": tx["status"], "responseCode": int(tx["response_code"]),
            "responseReasonCode": int(tx.get("reason_code") or 1),
            "responseReasonDescription": tx["reason"], "authCode": tx["auth_code"], "AVSResponse": tx["avs"],
            "order": {"invoiceNumber": tx["invoice_number"], "description": tx["description"]},
            "authAmount": tx["amount"], "settleAmount": tx["settle_amount"], "taxExempt": False,
            "payment": {"creditCard": {"cardNumber": tx["card"].masked, "expirationDate": "XXXX",
                                       "cardType": tx["card"].card_type}},
            "billTo": tx["bill_to"], "recurringBilling": False, "product": "Card Not Present",
            "marketType": "eCommerce",
        }
        if tx["ref_trans_id"]:
            details["refTransId"] = tx["ref_trans_id"]
        if tx["customer_profile_id"]:
            details["profile"] = {"customerProfileId": tx["customer_profile_id"],
                                  "customerPaymentProfileId": tx["payment_profile_id"]}
        answer: dict[str, Any] = {"transaction": details}
        if tx["ref_id"]:
            answer["transrefId"] = tx["ref_id"]
        return answer

    def _op_getTransactionListForCustomer(self, request: dict[str, Any]) -> dict[str, Any]:
        customer = self._customer(request.get("customerProfileId"))
        wanted = request.get("customerPaymentProfileId")
        rows = [tx for tx in self._transactions.values() if tx["customer_profile_id"] == customer["customerProfileId"]
                and (not wanted or tx["payment_profile_id"] == str(wanted))]
        return self._transaction_page(rows, request)

    def _op_getUnsettledTransactionList(self, request: dict[str, Any]) -> dict[str, Any]:
        rows = [tx for tx in self._transactions.values() if not tx["batched"]]
        if request.get("status") == "pendingApproval":
            rows = [tx for tx in rows if tx["status"] == "FDSPendingReview"]
        return self._transaction_page(rows, request)

    def _op_getAUJobSummary(self, request: dict[str, Any]) -> dict[str, Any]:
        events = self._au_month(request)
        counts: dict[str, int] = {}
        for event in events:
            counts[event["reason"]] = counts.get(event["reason"], 0) + 1
        if not counts:
            return {"messages": _messages("Ok", "I00004", "No records found.")}
        return {"auSummary": {"auResponse": [{"auReasonCode": code, "profileCount": n,
                                              "reasonDescription": self.AU_REASONS[code]}
                                             for code, n in sorted(counts.items())]}}

    def _op_getAUJobDetails(self, request: dict[str, Any]) -> dict[str, Any]:
        events = self._au_month(request)
        wanted = request.get("modifiedTypeFilter") or "all"
        events = [e for e in events if wanted == "all" or e["kind"] == wanted]
        paging = request.get("paging") or {}
        limit, page = int(paging.get("limit", 1000)), int(paging.get("offset", 1))
        rows = events[(page - 1) * limit: page * limit]
        if not events:
            return {"messages": _messages("Ok", "I00004", "No records found.")}

        def line(event: dict[str, Any]) -> dict[str, Any]:
            return {"customerProfileID": int(event["customer"]), "customerPaymentProfileID": int(event["payment"]),
                    "firstName": event["first_name"], "lastName": event["last_name"],
                    "updateTimeUTC": event["at"].strftime("%-m/%-d/%Y %-I:%M:%S %p"),
                    "auReasonCode": event["reason"], "reasonDescription": self.AU_REASONS[event["reason"]]}

        updates = [{**line(e), "newCreditCard": {"cardNumber": e["new"].masked, "expirationDate": "XXXX"},
                    "oldCreditCard": {"cardNumber": e["old"].masked, "expirationDate": "XXXX"}}
                   for e in rows if e["kind"] == "update"]
        deletes = [{**line(e), "creditCard": {"cardNumber": e["old"].masked, "expirationDate": "XXXX"}}
                   for e in rows if e["kind"] == "delete"]
        details: dict[str, Any] = {}
        if deletes:
            details["auDelete"] = deletes
        if updates:
            details["auUpdate"] = updates
        return {"totalNumInResultSet": len(events), "auDetails": details}

    def _au_month(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        month = str(request.get("month") or "")
        if len(month) != 7:
            raise _ApiError("E00003", "The month element is invalid.")
        return [e for e in self._au_events if e["at"].strftime("%Y-%m") == month]
    def _op_getSettledBatchList(self, request: dict[str, Any]) -> dict[str, Any]:
        """Batches settled between firstSettlementDate and lastSettlementDate (both or neither: then the last 24
        hours), at most 31 days apart."""
        first, last = request.get("firstSettlementDate"), request.get("lastSettlementDate")
        if (first is None) != (last is None):
            raise _ApiError("E00003", "firstSettlementDate and lastSettlementDate go together.")
        now = self.clock.now()
        start, end = (_datetime(first), _datetime(last)) if first is not None else (now - dt.timedelta(days=1), now)
        if end < start or end - start > dt.timedelta(days=31):
            raise _ApiError("E00003", "The date range must be ascending and at most 31 days.")
        batches = [batch for batch in self._batches.values() if start <= batch["settled_at"] <= end]
        if not batches:
            return {"messages": _messages("Ok", "I00004", "No records found.")}
        listed = []
        for batch in sorted(batches, key=lambda b: b["settled_at"]):
            entry = {"batchId": batch["batch_id"], "settlementTimeUTC": _utc(batch["settled_at"]),
                     "settlementTimeLocal": _utc(batch["settled_at"])[:-1], "settlementState": "settledSuccessfully",
                     "paymentMethod": "creditCard", "marketType": "eCommerce", "product": "Card Not Present"}
            if request.get("includeStatistics") is True:
                members = [self._transactions[t] for t in batch["trans_ids"]]
                charges = [tx for tx in members if tx["type"] == "authCaptureTransaction"
                           and tx["status"] == "settledSuccessfully"]
                refunds = [tx for tx in members if tx["type"] == "refundTransaction"]
                entry["statistics"] = [{"accountType": "Visa",
                                        "chargeAmount": sum((tx["amount"] for tx in charges), Decimal("0.00")),
                                        "chargeCount": len(charges),
                                        "refundAmount": sum((tx["amount"] for tx in refunds), Decimal("0.00")),
                                        "refundCount": len(refunds),
                                        "voidCount": sum(1 for tx in members if tx["status"] == "voided"),
                                        "declineCount": sum(1 for tx in members if tx["status"] == "declined")}]
            listed.append(entry)
        return {"batchList": listed}

    def _op_getTransactionList(self, request: dict[str, Any]) -> dict[str, Any]:
        batch = self._batches.get(str(request.get("batchId") or ""))
        if batch is None:
            raise _ApiError("E00040", "The record cannot be found.")
        return self._transaction_page([self._transactions[t] for t in batch["trans_ids"]], request)

    def _op_getMerchantDetails(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"isTestMode": False, "processors": [{"name": "First Data Nashville"}],
                "merchantName": "Simulated Merchant", "gatewayId": "482610",
                "marketTypes": ["eCommerce"], "productCodes": ["CNP"],
                "paymentMethods": ["AmericanExpress", "DinersClub", "Discover", "JCB", "MasterCard", "Visa"],
                "currencies": ["USD"], "publicClientKey": self.public_client_key}

    # --- Internals ---------------------------------------------------------------------------------------------------

    def _nonce_request(self, raw: bytes) -> dict[str, Any]:
        try:
            secure = json.loads(raw.decode("utf-8-sig"))
            auth, card = secure.get("authData") or {}, secure.get("cardData") or {}
        except (ValueError, AttributeError):
            return {"messages": _messages("Error", "E_WC_19", "An error occurred during processing. Please try again.")}
        if auth.get("apiLoginID") != self.login_id or auth.get("clientKey") != self.public_client_key:
            return {"messages": _messages("Error", "E_WC_21", "User authentication failed due to invalid "
                                                              "authentication values.")}
        try:
            opaque = self.issue_nonce(str(card.get("cardNumber", "")), card.get("month", ""), card.get("year", ""),
                                      str(card.get("cardCode") or ""), zip=str(card.get("zip") or ""),
                                      full_name=str(card.get("fullName") or ""))
        except AcceptError as refusal:
            return {"messages": _messages("Error", refusal.code, refusal.text)}
        return {"opaqueData": {"dataDescriptor": opaque.descriptor, "dataValue": opaque.value},
                "messages": _messages("Ok", "I_WC_01", "Successful.")}

    def _card_from_payment(self, payment: Any) -> _Card | None:
        opaque = (payment or {}).get("opaqueData") if isinstance(payment, dict) else None
        if not opaque:
            return None
        issued = self._nonces.pop(str(opaque.get("dataValue", "")), None)   # single use, even when it fails
        if (issued is None or opaque.get("dataDescriptor") != ACCEPT_DESCRIPTOR
                or self.clock.now() - issued[1] > NONCE_LIFETIME):
            raise _ApiError("E00114", "Invalid OTS Token.")
        return issued[0]

    def _validate_card(self, mode: str, card: _Card, bill_to: dict[str, Any], customer: dict[str, Any]
                       ) -> dict[str, Any]:
        """liveMode runs a $0 authorization (which the sandbox triggers apply to); testMode only checks the format."""
        if mode not in ("liveMode", "testMode"):
            return {}
        zip_code = str(bill_to.get("zip", ""))
        declined = mode == "liveMode" and (zip_code == DECLINE_ZIP or bool(reason_for_zip(zip_code)))
        code, reason = ("2", _reason_text(reason_for_zip(zip_code) or "2")) if declined else \
            ("1", "This transaction has been approved.")
        fields = [""] * 68
        reason_code = (reason_for_zip(zip_code) or code) if declined else code
        fields[0:7] = [code, "1", reason_code, reason, "" if declined else "A1B2C3", AVS_BY_ZIP.get(zip_code, "Y"),
                       "0" if mode == "testMode" else self._new_id("transaction")]
        fields[9:12] = ["0.00", "CC", "auth_only"]
        fields[12] = customer["merchantCustomerId"]
        fields[38] = CVV_BY_CODE.get(card.cvv, "M") if card.cvv else ""
        fields[50:52] = [card.masked, card.card_type]
        direct = ",".join(fields)
        if declined:
            raise _ApiError("E00027", reason, validationDirectResponse=direct)
        return {"validationDirectResponse": direct}

    def _record(self, kind: str, ref_id: str, amount: Decimal, card: _Card, bill_to: dict[str, Any],
                profile_ids: dict[str, str], *, status: str, response_code: str, reason: str, invoice: str,
                description: str = "", avs: str = "Y", cvv: str = "", ref_trans_id: str = "") -> dict[str, Any]:
        tx = {"trans_id": self._new_id("transaction"), "ref_id": ref_id, "type": kind, "amount": amount,
              "settle_amount": amount if response_code in ("1", "4") else Decimal("0.00"), "status": status,
              "response_code": response_code, "reason": reason,
              "auth_code": secrets.token_hex(3).upper() if response_code in ("1", "4") else "",
              "avs": avs, "cvv": cvv, "invoice_number": invoice, "description": description, "card": card,
              "bill_to": dict(bill_to), "customer_profile_id": profile_ids.get("customerProfileId", ""),
              "payment_profile_id": profile_ids.get("customerPaymentProfileId", ""),
              "submitted_at": self.clock.now(), "ref_trans_id": ref_trans_id, "batched": False}
        self._transactions[tx["trans_id"]] = tx
        self._by_invoice.setdefault(invoice, []).append(tx)
        return tx

    def _review(self, trans_id: str, status: str, event_type: str) -> None:
        with self._lock:
            tx = self._transactions[trans_id]
            if tx["status"] != "FDSPendingReview":
                raise ValueError(f"transaction {trans_id} is not held for review")
            tx["status"] = status
            if status == "declined":
                tx["settle_amount"] = Decimal("0.00")
            self._queue_webhook(event_type, _tx_payload(tx))
            outbox, self._outbox = self._outbox, []
            self._save()
        self._deliver(outbox)

    def _transaction_page(self, rows: list[dict[str, Any]], request: dict[str, Any]) -> dict[str, Any]:
        """One page of a transaction list. `sorting` {orderBy: id | submitTimeUTC, orderDescending}; `paging`
        {limit: 1..1000, offset: page number from 1} (Paging's XSD facets); without paging, the first 1000."""
        sorting = request.get("sorting") or {}
        order_by = sorting.get("orderBy", "submitTimeUTC")
        if order_by not in ("id", "submitTimeUTC"):
            raise _ApiError("E00003", f"The value '{order_by}' is invalid according to its datatype "
                                      "'AnetApi/xml/v1/schema/AnetApiSchema.xsd:TransactionListOrderFieldEnum'.")
        rows = sorted(rows, key=lambda tx: (tx["submitted_at"], int(tx["trans_id"])) if order_by == "submitTimeUTC"
                      else int(tx["trans_id"]), reverse=sorting.get("orderDescending") is True)
        paging = request.get("paging") or {}
        limit, page = int(paging.get("limit", 1000)), int(paging.get("offset", 1))
        if not 1 <= limit <= 1000 or not 1 <= page <= 100000:
            raise _ApiError("E00003", "The paging limit must be 1 to 1000 and the offset 1 to 100000.")
        page_rows = rows[(page - 1) * limit: page * limit]
        summaries = [{"transId": tx["trans_id"], "submitTimeUTC": _utc(tx["submitted_at"]),
                      "submitTimeLocal": _utc(tx["submitted_at"])[:-1], "transactionStatus": tx["status"],
                      "invoiceNumber": tx["invoice_number"], "firstName": tx["bill_to"].get("firstName", ""),
                      "lastName": tx["bill_to"].get("lastName", ""), "accountType": tx["card"].card_type,
                      "accountNumber": tx["card"].masked, "settleAmount": tx["settle_amount"],
                      "marketType": "eCommerce", "product": "Card Not Present",
                      **({"profile": {"customerProfileId": tx["customer_profile_id"],
                                      "customerPaymentProfileId": tx["payment_profile_id"]}}
                         if tx["customer_profile_id"] else {})} for tx in page_rows]
        if not rows:
            return {"messages": _messages("Ok", "I00004", "No records found.")}
        return {"transactions": summaries, "totalNumInResultSet": len(rows)}

    def _customer(self, customer_profile_id: Any) -> dict[str, Any]:
        customer = self._customers.get(str(customer_profile_id or ""))
        if customer is None:
            raise _ApiError("E00040", "The record cannot be found.")
        return customer

    @staticmethod
    def _payment_profile(customer: dict[str, Any], payment_profile_id: Any) -> dict[str, Any]:
        profile = customer["payment_profiles"].get(str(payment_profile_id or ""))
        if profile is None:
            raise _ApiError("E00040", "The record cannot be found.")
        return profile

    @staticmethod
    def _make_default(customer: dict[str, Any], profile_id: str) -> None:
        for profile in customer["payment_profiles"].values():
            profile["default"] = profile["id"] == profile_id

    @staticmethod
    def _profile_view(profile: dict[str, Any], unmask: bool) -> dict[str, Any]:
        card = profile["card"]
        view: dict[str, Any] = {"customerPaymentProfileId": profile["id"], "customerType": profile["customerType"],
                                "payment": {"creditCard": {"cardNumber": card.masked,
                                                           "expirationDate": card.expiration if unmask else "XXXX",
                                                           "cardType": card.card_type}}}
        if profile["billTo"]:
            view["billTo"] = dict(profile["billTo"])
        if profile["default"]:
            view["defaultPaymentProfile"] = True
        return view

    def _save(self) -> None:
        if not self.storage_path:
            return
        def card(c: _Card) -> dict[str, Any]:
            return dataclasses.asdict(c)
        state = {
            "next_id": self._next_id,
            "customers": {cid: {**c, "payment_profiles": {pid: {**p, "card": card(p["card"])}
                                                          for pid, p in c["payment_profiles"].items()}}
                          for cid, c in self._customers.items()},
            "transactions": {tid: {**t, "card": card(t["card"]), "submitted_at": t["submitted_at"].isoformat()}
                             for tid, t in self._transactions.items()},
            "au_events": [{**e, "old": card(e["old"]), "new": card(e["new"]), "at": e["at"].isoformat()}
                          for e in self._au_events],
            "batches": {bid: {**b, "settled_at": b["settled_at"].isoformat()} for bid, b in self._batches.items()},
        }
        temporary = f"{self.storage_path}.tmp"
        with open(temporary, "wb") as file:
            file.write(_json_bytes(state))
        os.replace(temporary, self.storage_path)

    def _load(self, path: str | os.PathLike) -> None:
        with open(path, "rb") as file:
            state = json.loads(file.read().decode("utf-8"), parse_float=Decimal)
        self._next_id = {**self._next_id, **state["next_id"]}
        self._batches = {bid: {**b, "settled_at": dates.parse(b["settled_at"])}
                         for bid, b in state.get("batches", {}).items()}
        self._customers = state["customers"]
        for customer in self._customers.values():
            for profile in customer["payment_profiles"].values():
                profile["card"] = _Card(**profile["card"])
        self._au_events = [{**e, "old": _Card(**e["old"]), "new": _Card(**e["new"]),
                            "at": dates.parse(e["at"])} for e in state.get("au_events", [])]
        self._transactions = state["transactions"]
        self._by_invoice = {}
        for tx in self._transactions.values():
            tx.update(card=_Card(**tx["card"]), submitted_at=dates.parse(tx["submitted_at"]),
                      amount=Decimal(str(tx["amount"])), settle_amount=Decimal(str(tx["settle_amount"])))
            self._by_invoice.setdefault(tx["invoice_number"], []).append(tx)

    def _new_id(self, kind: str) -> str:
        value = self._next_id[kind]
        self._next_id[kind] = value + 1
        return str(value)

    def _queue_webhook(self, event_type: str, payload: dict[str, Any]) -> None:
        if self._sink is not None:
            self._outbox.append((event_type, payload))

    def _deliver(self, outbox: list[tuple[str, dict[str, Any]]]) -> None:
        sink = self._sink
        for event_type, payload in outbox:
            body, headers = self.webhook_for(event_type, payload)
            if isinstance(sink, list):
                sink.append({"event_type": event_type, "body": body, "headers": headers})
            elif callable(sink):
                sink(body, headers)
            elif isinstance(sink, str):
                # From a thread: the dev host may be single-threaded and is busy serving the request that caused it.
                threading.Thread(target=_post_webhook, args=(sink, body, headers), daemon=True).start()


def _post_webhook(url: str, body: bytes, headers: dict[str, str]) -> None:
    import requests
    try:
        requests.post(url, data=body, headers=headers, timeout=(2, 10))
    except requests.RequestException as exc:
        log.warning("simulated webhook to %s not delivered: %s", url, type(exc).__name__)


def _public(tx: dict[str, Any]) -> dict[str, Any]:
    view = {k: copy.copy(v) for k, v in tx.items() if k not in ("card", "batched")}
    view.update(account_number=tx["card"].masked, account_type=tx["card"].card_type)
    return view


def _messages(result_code: str, code: str, text: str) -> dict[str, Any]:
    return {"resultCode": result_code, "message": [{"code": code, "text": text}]}


def _tx_response(code: str, tx: dict[str, Any] | None) -> dict[str, Any]:
    return {"responseCode": code, "authCode": tx["auth_code"] if tx else "", "avsResultCode": tx["avs"] if tx else "P",
            "cvvResultCode": tx["cvv"] if tx else "", "cavvResultCode": "", "transId": tx["trans_id"] if tx else "0",
            "refTransID": tx["ref_trans_id"] if tx else "", "transHash": "", "testRequest": "0",
            "accountNumber": tx["card"].masked if tx else "", "accountType": tx["card"].card_type if tx else "",
            "transHashSha2": "", "SupplementalDataQualificationIndicator": 0}


def _tx_ok(tx: dict[str, Any], note: tuple[str, str], code: str = "1") -> dict[str, Any]:
    response = _tx_response(code, tx)
    response["messages"] = [{"code": note[0], "description": note[1]}]
    if tx["customer_profile_id"]:
        response["profile"] = {"customerProfileId": tx["customer_profile_id"],
                               "customerPaymentProfileId": tx["payment_profile_id"]}
    return {"transactionResponse": response}


def _tx_error(code: str, error_code: str, text: str, tx: dict[str, Any] | None = None) -> dict[str, Any]:
    response = _tx_response(code, tx)
    response["errors"] = [{"errorCode": error_code, "errorText": text}]
    return {"transactionResponse": response,
            "messages": _messages("Error", "E00027", "The transaction was unsuccessful.")}


def _tx_payload(tx: dict[str, Any]) -> dict[str, Any]:
    return {"responseCode": int(tx["response_code"]), "authCode": tx["auth_code"], "avsResponse": tx["avs"],
            "authAmount": tx["amount"], "merchantReferenceId": tx["ref_id"], "invoiceNumber": tx["invoice_number"],
            "entityName": "transaction", "id": tx["trans_id"]}


def _duplicate_window(tr: dict[str, Any]) -> int:
    settings = (tr.get("transactionSettings") or {}).get("setting") or []
    for setting in settings if isinstance(settings, list) else [settings]:
        if setting.get("settingName") == "duplicateWindow":
            return int(setting.get("settingValue", DEFAULT_DUPLICATE_WINDOW))
    return DEFAULT_DUPLICATE_WINDOW


def _amount(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return amount.quantize(_CENT) if amount.is_finite() and amount > 0 else None


def _datetime(value: Any) -> dt.datetime:
    """An xs:dateTime as the API takes it (`2026-11-21T09:00:00Z`, or without a zone: UTC)."""
    try:
        moment = dates.parse(str(value))
    except ValueError:
        moment = None
    if moment is None:
        raise _ApiError("E00003", f"The value '{value}' is not a valid dateTime.")
    return moment


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _json_bytes(document: Any) -> bytes:
    """JSON with Decimal written as a number with its two places (`45.00`), as the gateway writes amounts."""
    raw: dict[str, str] = {}

    def number(value: Any) -> str:
        if isinstance(value, Decimal):
            mark = f"\u0000decimal{len(raw)}\u0000"
            raw[json.dumps(mark)] = str(value.quantize(_CENT))
            return mark
        raise TypeError(f"not JSON serializable: {type(value).__name__}")

    text = json.dumps(document, default=number, ensure_ascii=False)
    for mark, literal in raw.items():
        text = text.replace(mark, literal)
    return text.encode("utf-8")
