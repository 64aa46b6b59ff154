"""Money as people read it: in the currency of the invoice or order it belongs to (Dataverse's transactioncurrency:
its symbol and ISO code), never a hard-coded `$`. `$12.50 USD`, `€1,234.00 EUR`; just `12.50` when the row's
currency was not read.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

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
