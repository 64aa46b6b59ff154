"""Money as people read it: in the currency of the invoice or order it belongs to (Dataverse's transactioncurrency:
its symbol and ISO code), never a hard-coded `$`. `$12.50 USD`, `€1,234.00 EUR`; just `12.50` when the row's
currency was not read.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from core.errors import BusinessRuleViolation

DEFAULT_MERCHANT_CURRENCY = "USD"
# What an invoice, order or transaction read adds to its $expand to know its currency.
CURRENCY_EXPAND = "transactioncurrencyid($select=isocurrencycode,currencysymbol)"


@dataclass(frozen=True)
class Currency:
    symbol: str = ""
    code: str = ""


def currency_of(row: Mapping[str, Any] | None) -> Currency | None:
    """The currency of a row read with CURRENCY_EXPAND; None when it was not read (or the row has none)."""
    expanded = (row or {}).get("transactioncurrencyid")
    if not isinstance(expanded, Mapping):
        return None
    return Currency(expanded.get("currencysymbol") or "", expanded.get("isocurrencycode") or "")


def format_money(amount: Decimal, currency: Currency | None, *, code: bool = True) -> str:
    """`$1,234.50 USD`; `code=False` for a column of amounts under a total that names it."""
    text = f"{amount:,.2f}"
    if currency is None:
        return text
    return f"{currency.symbol}{text}" + (f" {currency.code}" if code and currency.code else "")


def merchant_currency(settings: Any) -> str:
    """The ISO code of the currency the Authorize.Net merchant account settles in (AUTHORIZENET_CURRENCY, CONTRACT §1):
    the gateway's API takes no currency, so every charge is in it."""
    return (settings.get("AUTHORIZENET_CURRENCY") or DEFAULT_MERCHANT_CURRENCY).strip().upper()


def require_merchant_currency(settings: Any, currency: Currency | None, what: str) -> None:
    """Refuse, before any attempt, to charge a record kept in another currency: the gateway would take the same
    number in the merchant's currency. A record whose currency was not read is not refused here (every invoice and
    order has one, and the callers read it)."""
    if currency is None or not currency.code:
        return
    merchant = merchant_currency(settings)
    if currency.code.strip().upper() != merchant:
        raise BusinessRuleViolation(f"{what} is in {currency.code}, but the payment account charges in {merchant} "
                                    f"(AUTHORIZENET_CURRENCY), so it cannot be paid here. Nothing was charged.")
