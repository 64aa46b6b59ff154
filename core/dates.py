"""Dataverse date-times: ISO 8601 in UTC with a Z, read back as aware datetimes."""
from __future__ import annotations

import datetime as dt
from typing import Any


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: Any) -> dt.datetime | None:
    """A column's value (an ISO string, a datetime or empty) as an aware datetime; None when empty."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if not value:
        return None
    moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def parse_report_time(value: Any) -> dt.datetime | None:
    """A gateway report's time: "6/27/2017 9:24:47 AM" (UTC, Authorize.Net's Account Updater example) or ISO 8601.
    None when empty or unreadable (a report line is still worth importing without its time)."""
    if not value:
        return None
    try:
        return dt.datetime.strptime(str(value), "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        try:
            return parse(value)
        except ValueError:
            return None
