"""Which gateway answers are declines, and of which kind (CONTRACT §6 "Declines"): pure data and one function.

Only `responseCode` 2 (declined), or `responseCode` 3 (error) with a reason code about the card itself, is a decline.
Every other error (the gateway or the processor failing, a refused request, a duplicate) is not: it says nothing about
the card, so dunning never counts it. The reason code is Authorize.Net's response reason code, which the JSON API puts
in `transactionResponse.errors[0].errorCode` (developer.authorize.net/api/reference/responseCodes.html).

- Hard: the card itself must change (lost/stolen, invalid number or expiry, expired, address or card-code checks).
- Merchant: the merchant's own fraud filters refused it (250 blocked IP, 251 a Fraud Detection Suite filter, 254
  declined after review): a person decides; the customer is not asked for anything.
- Soft: everything else the bank declined (2 general, 3 referral, ...): trying again later may succeed.
"""
from __future__ import annotations

from dataclasses import dataclass

SOFT, HARD, MERCHANT = "Soft", "Hard", "Merchant"

# Why the card must change, in words an admin can act on (and a customer email never shows).
HARD_REASONS = {
    "4": "the bank asked to keep the card (lost or stolen)",
    "6": "the card number is invalid",
    "7": "the expiry date is invalid",
    "8": "the card has expired",
    "27": "the billing address does not match the card (AVS)",
    "44": "the card code (CVV) was refused by the bank",
    "45": "the address and card code checks failed",
    "65": "the card code (CVV) does not match",
}
MERCHANT_REASONS = {
    "250": "the request came from an IP address the fraud filters block",
    "251": "a Fraud Detection Suite filter declined it",
    "254": "it was declined after a fraud review",
}
# Reason codes the gateway answers with responseCode 3 (error) that still speak about the card: declines all the same.
# 6/7/8 number and expiry, 17/28 card type not accepted, 37 number invalid, 78 card code invalid, 315-317 the same
# three for card-present terminals.
CARD_REASONS_ON_ERROR = frozenset({"6", "7", "8", "17", "28", "37", "78", "315", "316", "317"})

ADVICE = {
    HARD: "The card itself must change ({why}): the customer has to give a new card.",
    SOFT: "The card's bank refused it for now; trying again later may succeed.",
    MERCHANT: "Authorize.Net's fraud filters refused it ({why}): a person must review it in the Merchant Interface "
              "before this is charged again. The customer was not contacted.",
}


@dataclass(frozen=True)
class Decline:
    reason_code: str
    kind: str                        # Soft, Hard or Merchant (w365_declinetype's labels)

    @property
    def why(self) -> str:
        return HARD_REASONS.get(self.reason_code) or MERCHANT_REASONS.get(self.reason_code) or \
            f"reason code {self.reason_code or 'not given'}"

    @property
    def advice(self) -> str:
        """What an admin should know or do, for the transaction's result text."""
        return ADVICE[self.kind].format(why=self.why)


def classify(response_code: str | int | None, reason_code: str | int | None) -> Decline | None:
    """The decline an answer is, or None when it is not a decline (approved, held, or an error of the gateway)."""
    response, reason = str(response_code or "").strip(), str(reason_code or "").strip()
    if response == "3" and reason in CARD_REASONS_ON_ERROR:
        return Decline(reason, HARD if reason in HARD_REASONS else SOFT)
    if response != "2":
        return None
    if reason in MERCHANT_REASONS:
        return Decline(reason, MERCHANT)
    return Decline(reason, HARD if reason in HARD_REASONS else SOFT)
