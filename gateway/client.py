"""Authorize.Net JSON API client: the `core.ports.PaymentGateway` port over one `requests.Session`.

Why not the `authorizenet` SDK: see ARCHITECTURE.md (no timeout, 5xx/timeouts become None, class-global environment,
Latin-1 decoding, secrets in DEBUG logs). Its XSD bindings stay the oracle, in tests only
(tests/adapters/test_gateway_schema_oracle.py): the gateway rejects JSON whose keys are not in the XSD sequence order
(E00003 "...has invalid child element..."), so every request below is an explicit dict written in that order.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import time
from decimal import Decimal
from typing import Any

import requests

from core.errors import (BadRequest, ConfigurationError, GatewayAuthError, GatewayError, GatewayNotFound,
                         GatewayRefused, GatewayUnavailable, InvalidNonce, OutcomeUnknown)
from core import dates, declines
from core.transport import never_sent
from core.ports import (AccountUpdaterChange, BillTo, ChargeOutcome, ChargeResult, GatewayPaymentProfile, OpaqueData,
                        SettledBatch, TransactionDetails, TransactionSummary)
from core.bill_to import FIELDS as BILL_TO_FIELDS

log = logging.getLogger(__name__)

ENDPOINTS = {
    "sandbox": "https://apitest.authorize.net/xml/v1/request.api",
    "production": "https://api.authorize.net/xml/v1/request.api",
}
VALIDATION_MODES = ("none", "testMode", "liveMode")
MAX_DUPLICATE_WINDOW_SECONDS = 28800   # the gateway's ceiling (support article 000001473)

# Field limits from the XSD facets (checked against the SDK bindings by the schema oracle test).
LIMITS = {"refId": 20, "invoiceNumber": 20, "orderDescription": 255, "merchantCustomerId": 20,
          "profileDescription": 255, "email": 255}

_ERROR_TYPES = {"E00007": GatewayAuthError, "E00008": GatewayAuthError, "E00124": GatewayAuthError,
                "E00040": GatewayNotFound, "E00114": InvalidNonce}
_OUTCOMES = {"1": ChargeOutcome.APPROVED, "2": ChargeOutcome.DECLINED, "3": ChargeOutcome.ERROR,
             "4": ChargeOutcome.HELD_FOR_REVIEW}
_SYSTEM_ERROR = "E00001"                # "An error occurred during processing. Please try again."
_DUPLICATE_ID = re.compile(r"ID (\d+)")
_CENT = Decimal("0.01")
_PAGE_LIMIT = 1000                      # Paging.limit's XSD maximum
_BATCH_LIST_SPAN = dt.timedelta(days=30)   # getSettledBatchList takes at most 31 days at once
_READ_ATTEMPTS = 3


class _NoAnswer(Exception):
    """No readable answer. `sent` is False only when the request surely never left (connection refused)."""

    def __init__(self, reason: str, *, sent: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


class AuthorizeNetGateway:
    """One instance per worker: it holds a pooled Session. Thread-safe as far as requests.Session is."""

    read_retry_delay = 0.25             # seconds before the 2nd read attempt (doubles, with jitter); tests set 0

    def __init__(self, login_id: str, transaction_key: str, *, environment: str = "sandbox",
                 endpoint: str | None = None, session: requests.Session | None = None,
                 timeout: tuple[float, float] = (5, 30), validation_mode: str = "liveMode",
                 duplicate_window_seconds: int = 600):
        if environment not in ENDPOINTS:
            raise ConfigurationError("AUTHORIZENET_ENVIRONMENT must be 'sandbox' or 'production'.",
                                     setting="AUTHORIZENET_ENVIRONMENT")
        if validation_mode not in VALIDATION_MODES:
            raise ConfigurationError(f"validation_mode must be one of {', '.join(VALIDATION_MODES)}.")
        if not 0 <= duplicate_window_seconds <= MAX_DUPLICATE_WINDOW_SECONDS:
            raise ConfigurationError(f"duplicate_window_seconds must be 0..{MAX_DUPLICATE_WINDOW_SECONDS}.")
        self._login_id = login_id
        self._transaction_key = transaction_key
        self.endpoint = endpoint or ENDPOINTS[environment]
        self._session = session or requests.Session()
        self._timeout = timeout
        self._validation_mode = validation_mode
        # 600 s: long enough to cover a resend after a lost answer, short enough that two deliberate identical
        # partial payments of one invoice are only briefly refused (error 11).
        self._duplicate_window = duplicate_window_seconds

    def __repr__(self) -> str:
        return f"AuthorizeNetGateway(endpoint={self.endpoint!r})"

    # --- CIM ---------------------------------------------------------------------------------------------------------

    def create_customer_profile(self, merchant_customer_id: str, *, description: str = "", email: str = "") -> str:
        profile = _drop_empty({
            "merchantCustomerId": _limited("merchantCustomerId", merchant_customer_id, LIMITS["merchantCustomerId"]),
            "description": _limited("description", description, LIMITS["profileDescription"]),
            "email": _limited("email", email, LIMITS["email"]),
        })
        if not profile:
            raise BadRequest("A customer profile needs a merchantCustomerId, description or email.")
        # Safe to retry: a resend finds the first one as a duplicate (E00039) and recovers its id.
        answer = self._call("createCustomerProfile", {"profile": profile}, retry=True, accept=("E00039",))
        if _codes(answer)[:1] == ["E00039"]:
            # The duplicate's id is only in the text: "A duplicate record with ID 123 already exists."
            match = _DUPLICATE_ID.search(_first_text(answer))
            if not match:
                raise GatewayRefused("Authorize.Net createCustomerProfile: duplicate without an id.", code="E00039")
            return match.group(1)
        return str(answer["customerProfileId"])

    def create_customer_with_card(self, merchant_customer_id: str, opaque: OpaqueData, bill_to: BillTo, *,
                                  description: str = "", email: str = "", default: bool = False) -> tuple[str, str]:
        """An account's first card: the customer profile and its payment profile in one createCustomerProfile.
        Returns (customer profile id, payment profile id). When the customer exists already (E00039, e.g. its id
        was lost on our side), the card is added to it: (its id, the new payment profile's id)."""
        profile = _drop_empty({
            "merchantCustomerId": _limited("merchantCustomerId", merchant_customer_id, LIMITS["merchantCustomerId"]),
            "description": _limited("description", description, LIMITS["profileDescription"]),
            "email": _limited("email", email, LIMITS["email"]),
            "paymentProfiles": [_drop_empty({"customerType": "individual", "billTo": _bill_to(bill_to),
                                             "payment": _opaque(opaque),
                                             "defaultPaymentProfile": True if default else None})],
        })
        answer = self._call("createCustomerProfile", {"profile": profile, "validationMode": self._validation_mode},
                            accept=("E00039",), secrets=(opaque.value,))
        if _codes(answer)[:1] == ["E00039"]:
            match = _DUPLICATE_ID.search(_first_text(answer))
            if not match:
                raise GatewayRefused("Authorize.Net createCustomerProfile: duplicate without an id.", code="E00039")
            return match.group(1), self.create_payment_profile(match.group(1), opaque, bill_to, default=default)
        ids = _strings(answer.get("customerPaymentProfileIdList"), "numericString")
        if not ids:
            raise GatewayRefused("Authorize.Net createCustomerProfile answered without the payment profile's id.")
        return str(answer["customerProfileId"]), ids[0]

    def create_payment_profile(self, customer_profile_id: str, opaque: OpaqueData, bill_to: BillTo, *,
                               default: bool = False) -> str:
        payment_profile = {"billTo": _bill_to(bill_to), "payment": _opaque(opaque),
                           "defaultPaymentProfile": True if default else None}
        answer = self._call("createCustomerPaymentProfile", {
            "customerProfileId": customer_profile_id,
            "paymentProfile": _drop_empty(payment_profile),
            "validationMode": self._validation_mode,
        }, accept=("E00039",), secrets=(opaque.value,))
        # A duplicate payment profile still names the existing one (sdk-dotnet#125).
        if answer.get("customerPaymentProfileId"):
            return str(answer["customerPaymentProfileId"])
        raise self._error("createCustomerPaymentProfile", answer, (opaque.value,))

    def get_customer_profile(self, customer_profile_id: str) -> list[GatewayPaymentProfile]:
        # unmaskExpirationDate: the expiry (not card data, CONTRACT §4) drives the expiry notices.
        answer = self._call("getCustomerProfile", {"customerProfileId": customer_profile_id,
                                                   "unmaskExpirationDate": True}, retry=True)
        profile = answer.get("profile") or {}
        return [_payment_profile(customer_profile_id, item)
                for item in _items(profile.get("paymentProfiles"), "paymentProfile")]

    def get_payment_profile(self, customer_profile_id: str, payment_profile_id: str) -> GatewayPaymentProfile:
        answer = self._call("getCustomerPaymentProfile", {"customerProfileId": customer_profile_id,
                                                          "customerPaymentProfileId": payment_profile_id,
                                                          "unmaskExpirationDate": True}, retry=True)
        return _payment_profile(customer_profile_id, answer.get("paymentProfile") or {})

    def update_payment_profile(self, customer_profile_id: str, payment_profile_id: str, bill_to: BillTo, *,
                               default: bool = False, opaque: OpaqueData | None = None,
                               card_number_masked: str | None = None) -> None:
        """The update replaces the whole payment profile: what is not sent is erased. So `bill_to` must carry every
        billing field, and the card is either new (`opaque`) or kept by resending it masked with expirationDate
        "XXXX" (the stored expiry stays; one from our rows might be stale). Without `card_number_masked` the
        masked number is read first."""
        address = _bill_to(bill_to)
        if opaque is None:
            masked = card_number_masked or self.get_payment_profile(customer_profile_id,
                                                                    payment_profile_id).card_number_masked
            payment = {"creditCard": {"cardNumber": masked, "expirationDate": "XXXX"}}
        else:
            payment = _opaque(opaque)
        fields: dict[str, Any] = {
            "customerProfileId": customer_profile_id,
            # defaultPaymentProfile only when asked: omitted leaves the default as it is; `false` would not.
            "paymentProfile": _drop_empty({"billTo": address, "payment": payment,
                                           "defaultPaymentProfile": True if default else None,
                                           "customerPaymentProfileId": payment_profile_id}),
        }
        if opaque is not None:
            fields["validationMode"] = self._validation_mode
        self._call("updateCustomerPaymentProfile", fields, secrets=(opaque.value,) if opaque else ())

    def delete_payment_profile(self, customer_profile_id: str, payment_profile_id: str) -> None:
        self._call("deleteCustomerPaymentProfile", {"customerProfileId": customer_profile_id,
                                                    "customerPaymentProfileId": payment_profile_id})

    # --- Transactions ------------------------------------------------------------------------------------------------

    def charge_profile(self, customer_profile_id: str, payment_profile_id: str, amount: Decimal, *, ref_id: str,
                       invoice_number: str, description: str = "") -> ChargeResult:
        request = {
            "transactionType": "authCaptureTransaction",
            "amount": _money(amount),
            "profile": {"customerProfileId": customer_profile_id,
                        "paymentProfile": {"paymentProfileId": payment_profile_id}},
            "order": _order(invoice_number, description),
            "transactionSettings": self._duplicate_window_setting(),
        }
        return self._transaction(_drop_empty(request), ref_id)

    def charge_new_card(self, opaque: OpaqueData, amount: Decimal, *, ref_id: str, invoice_number: str,
                        bill_to: BillTo, merchant_customer_id: str, email: str = "", description: str = "",
                        create_profile: bool = True) -> ChargeResult:
        """A card entered once (an Accept.js nonce) charged, and with `create_profile` saved by the gateway when the
        charge is approved: a new customer profile (customer.id becomes its merchantCustomerId) with the card as its
        payment profile, from the customer and billTo sent (Authorize.Net's createTransactionRequest
        `profile.createProfile`; the vendor's own test: AuthorizeNet/sdk-dotnet
        AuthorizeNETtest/Api/Controllers/Test/CreateTransactionTest.cs CreateProfileWithCreateTransactionRequestTest).
        The ids come back in `profileResponse`; a customer that exists already is refused there (E00039) while the
        charge itself stands, and the result then carries that customer's id for createCustomerProfileFromTransaction.
        No answer raises OutcomeUnknown and nothing is resent: the nonce is single-use anyway."""
        request = {
            "transactionType": "authCaptureTransaction",
            "amount": _money(amount),
            "payment": _opaque(opaque),
            # customerProfilePaymentType: createProfile alone (customerProfileId + createProfile is undocumented).
            "profile": {"createProfile": True} if create_profile else None,
            "order": _order(invoice_number, description),
            "customer": _drop_empty({
                "id": _limited("merchantCustomerId", merchant_customer_id, LIMITS["merchantCustomerId"]),
                "email": _limited("email", email, LIMITS["email"])}),
            "billTo": _bill_to(bill_to),
            "transactionSettings": self._duplicate_window_setting(),
        }
        return self._transaction(_drop_empty(request), ref_id, secrets=(opaque.value,))

    def _duplicate_window_setting(self) -> dict[str, Any]:
        # Explicit, so a resend of the identical charge inside the window is refused with error 11 and the original
        # transId instead of charging twice.
        return {"setting": [{"settingName": "duplicateWindow", "settingValue": str(self._duplicate_window)}]}

    def create_profile_from_transaction(self, trans_id: str, customer_profile_id: str, *,
                                        default: bool = False) -> str:
        """The card of an approved transaction saved into an existing customer profile (createCustomerProfile-
        FromTransactionRequest with customerProfileId, per the XSD). Not resent after a lost answer: a second one
        would be refused as a duplicate card."""
        answer = self._call("createCustomerProfileFromTransaction", _drop_empty({
            "transId": trans_id, "customerProfileId": customer_profile_id,
            "defaultPaymentProfile": True if default else None}), accept=("E00039",))
        ids = _strings(answer.get("customerPaymentProfileIdList"), "numericString")
        if ids:
            return ids[0]
        raise self._error("createCustomerProfileFromTransaction", answer, ())

    def find_customer_profile(self, merchant_customer_id: str) -> str | None:
        try:
            answer = self._call("getCustomerProfile", {"merchantCustomerId": _limited(
                "merchantCustomerId", merchant_customer_id, LIMITS["merchantCustomerId"])}, retry=True)
        except GatewayNotFound:
            return None
        return str((answer.get("profile") or {}).get("customerProfileId") or "") or None

    def refund(self, trans_id: str, amount: Decimal, *, card_number_masked: str, ref_id: str,
               customer_profile_id: str = "", payment_profile_id: str = "") -> ChargeResult:
        request: dict[str, Any] = {
            "transactionType": "refundTransaction",
            "amount": _money(amount),
            "payment": {"creditCard": {"cardNumber": card_number_masked, "expirationDate": "XXXX"}},
        }
        if customer_profile_id and payment_profile_id:
            request["profile"] = {"customerProfileId": customer_profile_id,
                                  "paymentProfile": {"paymentProfileId": payment_profile_id}}
        request["refTransId"] = trans_id
        return self._transaction(request, ref_id)

    def void(self, trans_id: str, *, ref_id: str) -> ChargeResult:
        return self._transaction({"transactionType": "voidTransaction", "refTransId": trans_id}, ref_id)

    def get_transaction_details(self, trans_id: str) -> TransactionDetails:
        answer = self._call("getTransactionDetails", {"transId": trans_id}, retry=True)
        tx = answer.get("transaction") or {}
        profile = tx.get("profile") or {}
        card = (tx.get("payment") or {}).get("creditCard") or {}
        return TransactionDetails(
            trans_id=str(tx.get("transId", trans_id)),
            ref_id=str(answer.get("transrefId") or ""),
            status=tx.get("transactionStatus", ""),
            response_code=str(tx.get("responseCode", "")),
            amount=_decimal(tx.get("authAmount")),
            settle_amount=_decimal(tx.get("settleAmount")),
            invoice_number=(tx.get("order") or {}).get("invoiceNumber", ""),
            submitted_at=dates.parse(tx.get("submitTimeUTC")),
            customer_profile_id=str(profile.get("customerProfileId", "")),
            payment_profile_id=str(profile.get("customerPaymentProfileId", "")),
            auth_code=tx.get("authCode", ""),
            account_number=card.get("cardNumber", ""),
            transaction_type=tx.get("transactionType", ""),
            reason=tx.get("responseReasonDescription", ""),
            reason_code=str(tx.get("responseReasonCode", "")),
        )

    def list_customer_transactions(self, customer_profile_id: str,
                                   payment_profile_id: str = "") -> list[TransactionSummary]:
        fields = _drop_empty({"customerProfileId": customer_profile_id,
                              "customerPaymentProfileId": payment_profile_id})
        return self._transaction_list("getTransactionListForCustomer", fields)

    def list_unsettled_transactions(self) -> list[TransactionSummary]:
        return self._transaction_list("getUnsettledTransactionList", {})

    def list_settled_batches(self, first: dt.datetime, last: dt.datetime) -> list[SettledBatch]:
        """Batches settled from `first` to `last`, asked in spans of at most 31 days (the API's limit)."""
        batches: dict[str, SettledBatch] = {}
        start = first.astimezone(dt.timezone.utc)
        end = last.astimezone(dt.timezone.utc)
        while True:
            stop = min(end, start + _BATCH_LIST_SPAN)
            answer = self._call("getSettledBatchList", {"includeStatistics": False,
                                                        "firstSettlementDate": _xs_datetime(start),
                                                        "lastSettlementDate": _xs_datetime(stop, ceil=True)},
                                retry=True)
            for row in _items(answer.get("batchList"), "batch"):
                batch = SettledBatch(str(row.get("batchId", "")), dates.parse(row.get("settlementTimeUTC")),
                                     str(row.get("settlementState", "")))
                batches[batch.batch_id] = batch
            if stop >= end:
                return sorted(batches.values(), key=lambda b: (b.settled_at is None, b.settled_at, b.batch_id))
            start = stop

    def list_batch_transactions(self, batch_id: str) -> list[TransactionSummary]:
        return self._transaction_list("getTransactionList", {"batchId": batch_id})

    def public_client_key(self) -> str:
        answer = self._call("getMerchantDetails", {}, retry=True)
        key = answer.get("publicClientKey")
        if not key:
            raise GatewayError("Authorize.Net has no public client key for this merchant: generate one in the "
                               "Merchant Interface (Account > Security Settings > Manage Public Client Key).")
        return str(key)

    # --- Account Updater (developer.authorize.net/api/reference, "Account Updater Job Summary/Details") -------------

    def account_updater_summary(self, month: str) -> dict[str, int]:
        answer = self._call("getAUJobSummary", {"month": _month(month)}, retry=True)
        return {str(row.get("auReasonCode", "")): int(row.get("profileCount") or 0)
                for row in _items(answer.get("auSummary"), "auResponse")}

    def account_updater_details(self, month: str) -> list[AccountUpdaterChange]:
        changes: list[AccountUpdaterChange] = []
        page = 1
        while True:
            answer = self._call("getAUJobDetails", {"month": _month(month), "modifiedTypeFilter": "all",
                                                    "paging": {"limit": _PAGE_LIMIT, "offset": page}}, retry=True)
            rows = parse_au_details(answer.get("auDetails"))
            changes.extend(rows)
            total = int(answer.get("totalNumInResultSet") or 0)
            if len(rows) < _PAGE_LIMIT or len(changes) >= total:
                return changes
            page += 1

    # --- Internals ---------------------------------------------------------------------------------------------------

    def _transaction(self, transaction_request: dict[str, Any], ref_id: str,
                     secrets: tuple[str, ...] = ()) -> ChargeResult:
        if not ref_id:
            raise BadRequest("refId is required: it is how a lost answer is reconciled.")
        _limited("refId", ref_id, LIMITS["refId"])
        answer = self._call("createTransaction", {"transactionRequest": transaction_request}, ref_id=ref_id,
                            money=True, secrets=secrets)
        tr = answer.get("transactionResponse")
        outcome = _OUTCOMES.get(str(tr.get("responseCode", ""))) if isinstance(tr, dict) else None
        if outcome is None:
            raise OutcomeUnknown(f"Authorize.Net createTransaction refId={ref_id}: the answer has no readable "
                                 "transactionResponse; the transaction may have gone through.")
        errors = _items(tr.get("errors"), "error")
        messages = _items(tr.get("messages"), "message")
        reason = (errors[0].get("errorText") if errors else "") or (messages[0].get("description") if messages else "")
        if outcome == ChargeOutcome.ERROR and errors and declines.classify("3", errors[0].get("errorCode")):
            outcome = ChargeOutcome.DECLINED    # an error about the card itself (8 expired, ...) is a decline
        return ChargeResult(
            outcome=outcome, response_code=str(tr["responseCode"]), reason=reason or outcome,
            trans_id=str(tr.get("transId") or ""), auth_code=str(tr.get("authCode") or ""),
            account_number=str(tr.get("accountNumber") or ""), account_type=str(tr.get("accountType") or ""),
            error_code=str(errors[0].get("errorCode", "")) if errors else "", ref_id=ref_id,
            **_profile_response(answer.get("profileResponse")),
        )

    def _transaction_list(self, operation: str, fields: dict[str, Any]) -> list[TransactionSummary]:
        summaries: list[TransactionSummary] = []
        page = 1
        while True:
            answer = self._call(operation, {**fields,
                                            "sorting": {"orderBy": "submitTimeUTC", "orderDescending": False},
                                            "paging": {"limit": _PAGE_LIMIT, "offset": page}}, retry=True)
            rows = _items(answer.get("transactions"), "transaction")
            summaries.extend(_summary(row) for row in rows)
            if len(rows) < _PAGE_LIMIT:
                return summaries
            page += 1

    def _call(self, operation: str, fields: dict[str, Any], *, ref_id: str = "", retry: bool = False,
              money: bool = False, accept: tuple[str, ...] = (), secrets: tuple[str, ...] = ()) -> dict[str, Any]:
        """The one place that talks to the gateway. `retry`: the request is safe to send again (reads).
        `money`: a createTransaction, whose readable decline or error is a result, not an exception."""
        request: dict[str, Any] = {"merchantAuthentication": {"name": self._login_id,
                                                              "transactionKey": self._transaction_key}}
        if ref_id:
            request["refId"] = ref_id
        request.update(fields)
        body = json.dumps({f"{operation}Request": request}, ensure_ascii=False).encode("utf-8")
        attempts = _READ_ATTEMPTS if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                answer = self._round_trip(body)
                break
            except _NoAnswer as failure:
                log.warning("authorizenet %s refId=%s: %s (attempt %d of %d)", operation, ref_id, failure.reason,
                            attempt, attempts)
                if not failure.sent:
                    if attempt < attempts:
                        self._pause(attempt)
                        continue
                    raise GatewayUnavailable(f"Authorize.Net {operation}: {failure.reason}; nothing was sent.")
                if not retry:
                    raise OutcomeUnknown(f"Authorize.Net {operation} refId={ref_id}: {failure.reason}; it may have "
                                         "been carried out. Not resent.")
                if attempt == attempts:
                    raise GatewayUnavailable(f"Authorize.Net {operation}: {failure.reason}.")
                self._pause(attempt)
        result_code = answer["messages"].get("resultCode")
        codes = _codes(answer)
        if money and isinstance(answer.get("transactionResponse"), dict):
            errors = _items(answer["transactionResponse"].get("errors"), "error")
            codes += [str(e.get("errorCode", "")) for e in errors]
        log.info("authorizenet %s refId=%s resultCode=%s codes=%s", operation, ref_id, result_code, ",".join(codes))
        if result_code == "Ok" or (codes and codes[0] in accept):
            return answer
        if money and isinstance(answer.get("transactionResponse"), dict):
            return answer               # a decline or a transaction error: data for the caller
        if money and codes[:1] == [_SYSTEM_ERROR]:
            # A failure inside the gateway, not a refusal of the request: the charge may have been made.
            raise OutcomeUnknown(f"Authorize.Net {operation} refId={ref_id}: {_SYSTEM_ERROR} system error; it may "
                                 "have been carried out. Not resent.")
        raise self._error(operation, answer, secrets)

    def _round_trip(self, body: bytes) -> dict[str, Any]:
        try:
            response = self._session.post(self.endpoint, data=body, timeout=self._timeout,
                                          headers={"Content-Type": "application/json"})
        except requests.ConnectionError as exc:
            if never_sent(exc):
                raise _NoAnswer("could not connect", sent=False) from None
            raise _NoAnswer("connection failed after sending") from None
        except requests.Timeout:
            raise _NoAnswer("no answer within the read timeout") from None
        except requests.RequestException as exc:
            raise _NoAnswer(f"transport error {type(exc).__name__}") from None
        if response.status_code != 200:
            raise _NoAnswer(f"HTTP {response.status_code}")
        try:
            # The gateway prefixes JSON with a UTF-8 BOM (academe/authorizenet-objects#3); utf-8-sig takes it or not.
            answer = json.loads(response.content.decode("utf-8-sig"), parse_float=Decimal)
        except ValueError:              # UnicodeDecodeError and JSONDecodeError are both ValueErrors
            raise _NoAnswer(f"unreadable body ({len(response.content)} bytes, "
                            f"{response.headers.get('Content-Type', 'no content type')})") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("messages"), dict):
            raise _NoAnswer("answer without messages")
        return answer

    def _pause(self, attempt: int) -> None:
        if self.read_retry_delay:
            time.sleep(self.read_retry_delay * 2 ** (attempt - 1) * random.uniform(0.5, 1.0))

    def _error(self, operation: str, answer: dict[str, Any], secrets: tuple[str, ...]) -> GatewayError:
        code = (_codes(answer) or [""])[0]
        text = _redact(_first_text(answer), (self._transaction_key, *secrets))
        # A readable resultCode Error is a refusal of the request, unless its code says our credentials are wrong.
        error_type = _ERROR_TYPES.get(code, GatewayRefused)
        # E00027 on a card validation carries the $0 authorization's delimited answer: 1st field the responseCode,
        # 3rd the reason code (developer.authorize.net, "validationDirectResponse").
        direct = str(answer.get("validationDirectResponse") or "").split(",")
        response_code, reason_code = (direct[0], direct[2]) if len(direct) > 2 else ("", "")
        return error_type(f"Authorize.Net {operation} failed: {code} {text}".strip(), code=code, text=text,
                          response_code=response_code, reason_code=reason_code)


# --- Request pieces ---------------------------------------------------------------------------------------------------

def _money(amount: Decimal) -> str:
    if not isinstance(amount, Decimal):
        raise TypeError("amount must be a Decimal, never a float.")
    if not amount.is_finite() or amount <= 0:
        raise BadRequest("The amount must be a positive number.")
    if amount != amount.quantize(_CENT):
        raise BadRequest("The amount has more than two decimal places.")
    return str(amount.quantize(_CENT))


def _limited(name: str, value: str, limit: int) -> str:
    value = value or ""
    if len(value) > limit:
        raise BadRequest(f"{name} is longer than {limit} characters.")
    return value


def _order(invoice_number: str, description: str) -> dict[str, str]:
    return _drop_empty({"invoiceNumber": _limited("invoiceNumber", invoice_number, LIMITS["invoiceNumber"]),
                        "description": _limited("description", description, LIMITS["orderDescription"])})


def _bill_to(bill_to: BillTo) -> dict[str, str]:
    return {field.name: _limited(field.name, getattr(bill_to, field.attribute), field.limit)
            for field in BILL_TO_FIELDS if getattr(bill_to, field.attribute)}


def _opaque(opaque: OpaqueData) -> dict[str, Any]:
    if not opaque.descriptor or not opaque.value:
        raise BadRequest("The card token (opaqueData) is missing.")
    return {"opaqueData": {"dataDescriptor": opaque.descriptor, "dataValue": opaque.value}}


def _drop_empty(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value not in ("", None, {}, [])}


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


# --- Answer pieces ----------------------------------------------------------------------------------------------------

def _items(value: Any, singular: str) -> list[dict[str, Any]]:
    """JSON lists arrive bare (`[...]`) or wrapped as in the XML (`{"message": [...]}` or one object)."""
    if isinstance(value, dict) and singular in value:
        value = value[singular]
    if isinstance(value, dict):
        return [value]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _strings(value: Any, singular: str) -> list[str]:
    """A list of ids: bare (`["86"]`, the JSON API's sample) or wrapped as in the XML (`{"numericString": [...]}`)."""
    if isinstance(value, dict):
        value = value.get(singular)
    if isinstance(value, (str, int)):
        value = [value]
    return [str(item) for item in value if isinstance(item, (str, int)) and str(item)] if isinstance(value, list) \
        else []


def _profile_response(response: Any) -> dict[str, str]:
    """createTransactionResponse.profileResponse (createProfileResponse: messages, customerProfileId,
    customerPaymentProfileIdList, customerShippingAddressIdList): the ids the gateway saved the card under, or the
    code that says why it did not (E00039 names the existing customer only in its text)."""
    if not isinstance(response, dict):
        return {}
    customer = str(response.get("customerProfileId") or "")
    payments = _strings(response.get("customerPaymentProfileIdList"), "numericString")
    messages = response.get("messages") if isinstance(response.get("messages"), dict) else {}
    refused = messages.get("resultCode") == "Error" or not payments
    code = (_codes(response) or [""])[0] if messages else ""
    if refused and code == "E00039" and not customer:
        match = _DUPLICATE_ID.search(_first_text(response))
        customer = match.group(1) if match else ""
    return {"customer_profile_id": customer, "payment_profile_id": payments[0] if payments else "",
            "profile_error": code if refused else ""}


def _codes(answer: dict[str, Any]) -> list[str]:
    return [str(m.get("code", "")) for m in _items(answer["messages"].get("message"), "message")]


def _first_text(answer: dict[str, Any]) -> str:
    messages = _items(answer["messages"].get("message"), "message")
    return str(messages[0].get("text", "")) if messages else ""


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(_CENT) if value not in (None, "") else Decimal("0.00")


def _xs_datetime(moment: dt.datetime, *, ceil: bool = False) -> str:
    """Whole seconds in UTC; `ceil` rounds up, so an upper bound never cuts off its last fraction of a second."""
    if ceil and moment.microsecond:
        moment += dt.timedelta(microseconds=1_000_000 - moment.microsecond)
    return dates.iso(moment)


def _payment_profile(customer_profile_id: str, item: dict[str, Any]) -> GatewayPaymentProfile:
    card = (item.get("payment") or {}).get("creditCard") or {}
    address = item.get("billTo") or {}
    return GatewayPaymentProfile(
        customer_profile_id=str(item.get("customerProfileId") or customer_profile_id),
        payment_profile_id=str(item.get("customerPaymentProfileId", "")),
        card_type=card.get("cardType", ""), card_number_masked=card.get("cardNumber", ""),
        expiration=card.get("expirationDate", ""),
        bill_to=BillTo(**{field.attribute: str(address.get(field.name, "")) for field in BILL_TO_FIELDS}),
        is_default=bool(item.get("defaultPaymentProfile", False)),
    )


def _month(month: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month or ""):
        raise BadRequest("The Account Updater month must be YYYY-MM.")
    return month


def parse_au_details(details: Any) -> list[AccountUpdaterChange]:
    """`auDetails` as the API reference shows it ({"auUpdate": [...], "auDelete": {...}}, one object or a list each)
    and as merchants report the live gateway sends it (one list mixing both, told apart by `newCreditCard` vs
    `creditCard`: community.developer.authorize.net thread 61484)."""
    if isinstance(details, dict) and ("auUpdate" in details or "auDelete" in details):
        tagged = [("update", r) for r in _items(details.get("auUpdate"), "auUpdate")] + \
                 [("delete", r) for r in _items(details.get("auDelete"), "auDelete")]
    else:
        rows = details if isinstance(details, list) else _items(details, "auDetail")
        tagged = [("update" if "newCreditCard" in r else "delete", r) for r in rows if isinstance(r, dict)]
    changes = []
    for kind, row in tagged:
        card = (row.get("newCreditCard") if kind == "update" else row.get("creditCard")) or {}
        old = row.get("oldCreditCard") or {}
        changes.append(AccountUpdaterChange(
            kind=kind, customer_profile_id=str(row.get("customerProfileID", "")),
            payment_profile_id=str(row.get("customerPaymentProfileID", "")),
            reason_code=str(row.get("auReasonCode", "")), reason=str(row.get("reasonDescription", "")),
            card_number_masked=str(card.get("cardNumber", "")), expiration=str(card.get("expirationDate", "")),
            old_card_number_masked=str(old.get("cardNumber", "")), updated_at=dates.parse_report_time(row.get("updateTimeUTC"))))
    return changes


def _summary(row: dict[str, Any]) -> TransactionSummary:
    profile = row.get("profile") or {}
    return TransactionSummary(
        trans_id=str(row.get("transId", "")), status=row.get("transactionStatus", ""),
        submitted_at=dates.parse(row.get("submitTimeUTC")), invoice_number=row.get("invoiceNumber", ""),
        settle_amount=_decimal(row.get("settleAmount")),
        customer_profile_id=str(profile.get("customerProfileId", "")),
        payment_profile_id=str(profile.get("customerPaymentProfileId", "")),
    )
