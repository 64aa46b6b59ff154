"""core/dates.py is the one reader of date-times: Dataverse's columns and Authorize.Net's submitTimeUTC alike."""
from __future__ import annotations

import datetime as dt
import pathlib
import re

import pytest

from core import dates

UTC = dt.timezone.utc
ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value, expected", [
    ("2026-01-31T12:00:00Z", dt.datetime(2026, 1, 31, 12, tzinfo=UTC)),                     # Dataverse
    ("2026-01-31T12:00:00.123Z", dt.datetime(2026, 1, 31, 12, 0, 0, 123000, tzinfo=UTC)),     # gateway, with millis
    ("2026-01-31T12:00:00.1", dt.datetime(2026, 1, 31, 12, 0, 0, 100000, tzinfo=UTC)),        # gateway, no zone: UTC
    ("2026-01-31T14:00:00+02:00", dt.datetime(2026, 1, 31, 12, tzinfo=UTC)),
    (dt.datetime(2026, 1, 31, 12), dt.datetime(2026, 1, 31, 12, tzinfo=UTC)),
    ("", None), (None, None),
])
def test_parse(value, expected):
    moment = dates.parse(value)
    assert moment == expected and (moment is None or moment.tzinfo is not None)


def test_iso_round_trips_in_utc():
    moment = dt.datetime(2026, 1, 31, 14, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert dates.iso(moment) == "2026-01-31T12:00:00Z" and dates.parse(dates.iso(moment)) == moment


def test_no_other_module_parses_dates_itself():
    runtime = ("app", "core", "handlers", "dataverse", "gateway", "adapters", "standins", "installer")
    own = re.compile(r"fromisoformat\(|strptime\(")
    offenders = [str(path.relative_to(ROOT)) for folder in runtime for path in (ROOT / folder).rglob("*.py")
                 if own.search(path.read_text(encoding="utf-8")) and path != ROOT / "core" / "dates.py"]
    assert offenders == []
