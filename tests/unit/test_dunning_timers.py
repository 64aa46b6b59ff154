"""The dunning timers: their schedules are app settings (CONTRACT: "Schedules of these timers are settings"), which
the dev host resolves as the Functions host does, with core.settings' defaults."""
from __future__ import annotations

import datetime as dt

import pytest

from standins.devhost.host import FunctionsDevHost


def _timers(monkeypatch, **env):
    import function_app
    for name in ("W365_DUNNING_SCHEDULE", "W365_ACCOUNT_UPDATER_SCHEDULE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {t.name: t for t in FunctionsDevHost(function_app.app).timers}


def test_defaults_daily_after_the_billing_run_and_monthly_on_the_second(monkeypatch):
    timers = _timers(monkeypatch)
    daily, monthly = timers["dunning_daily"].schedule, timers["account_updater_import"].schedule
    assert daily.matches(dt.datetime(2026, 11, 30, 6, 30)) and not daily.matches(dt.datetime(2026, 11, 30, 6, 0))
    assert monthly.matches(dt.datetime(2026, 12, 2, 7, 0)) and not monthly.matches(dt.datetime(2026, 12, 3, 7, 0))


def test_a_setting_moves_the_schedule(monkeypatch):
    timers = _timers(monkeypatch, W365_DUNNING_SCHEDULE="0 15 9 * * *")
    assert timers["dunning_daily"].schedule.matches(dt.datetime(2026, 11, 30, 9, 15))


def test_a_broken_schedule_is_refused(monkeypatch):
    with pytest.raises(ValueError):
        _timers(monkeypatch, W365_ACCOUNT_UPDATER_SCHEDULE="monthly")


def test_the_dev_host_runs_a_timer_on_demand_like_the_functions_admin_api():
    import io

    import azure.functions as func

    app, ran = func.FunctionApp(), []

    @app.timer_trigger(schedule="0 0 1 1 * *", arg_name="timer")
    def yearly(timer: func.TimerRequest) -> None:
        ran.append(timer.past_due)

    host = FunctionsDevHost(app)

    def call(method, path):
        status = []
        body = host({"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO()},
                    lambda s, headers: status.append(s))
        return status[0], b"".join(body)

    assert call("POST", "/admin/functions/yearly")[0].startswith("202") and ran == [False]
    assert call("POST", "/admin/functions/missing")[0].startswith("404")
    assert call("GET", "/admin/functions/yearly")[0].startswith("404") and ran == [False]
