"""The runs' request budget (core.throttle) and the stand-in's service protection, on a clock the test moves."""
from __future__ import annotations

import json
import threading

import pytest
import requests
import responses

from core.throttle import REMAINING_HEADER, RequestBudget
from standins.dataverse import DataverseStandIn
from standins.dataverse.protection import TIME_REMAINING_HEADER, ServiceProtection, time_remaining
from standins.dataverse.store import ODataError


class Clock:
    def __init__(self):
        self.t = 1000.0

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds


def spend(budget, requests):
    for _ in range(requests):
        budget.observe(200, {})


def test_the_budget_paces_work_at_its_share_of_the_ceiling():
    clock = Clock()
    budget = RequestBudget(share=0.5, limit=600, window=300, now=clock.now, sleep=clock.sleep)   # 0.985 request/s
    assert budget.reserve(3) == 0
    spend(budget, 10)                                         # a burst's worth at once (10 s at 1/s)
    assert budget.reserve(3) == pytest.approx(3 / 0.985)       # then at the pace (98.5% of the budget), whoever spent it
    clock.t += 3 / 0.985
    assert budget.reserve(3) == 0


def test_the_budget_waits_for_the_window_to_slide_when_it_is_full():
    clock = Clock()
    budget = RequestBudget(share=0.5, limit=100, window=300, now=clock.now, sleep=clock.sleep)
    for _ in range(16):
        assert budget.reserve(3) == 0                        # 48 of the 50 allowed, at the pace (3 per 18 s)
        spend(budget, 3)
        clock.t += 18
    assert budget.reserve(3) == pytest.approx(1000 + 300 - clock.t)     # until the first request leaves the window
    clock.t = 1300
    assert budget.reserve(3) == 0


def test_a_429_stops_background_work_for_its_retry_after_and_is_counted():
    clock = Clock()
    budget = RequestBudget(limit=100, now=clock.now, sleep=clock.sleep)
    budget.observe(429, {"Retry-After": "20"})
    assert budget.reserve(1) == pytest.approx(20)
    assert budget.acquire(1, max_wait=5) == pytest.approx(20)      # too long to hold: the caller reschedules
    assert budget.acquire(1, max_wait=60) == 0 and clock.t == pytest.approx(1020)
    assert (budget.throttled, budget.throttled_seconds, budget.waited_seconds) == (1, 20.0, 20.0)


def test_the_servers_remaining_count_governs_several_instances_sharing_one_user():
    clock = Clock()
    budget = RequestBudget(share=0.85, limit=6000, now=clock.now, sleep=clock.sleep)
    budget.observe(200, {REMAINING_HEADER: "800"})         # other instances used 5,200 of the 5,100 budget
    assert budget.reserve(3) > 0
    clock.t += 31                                          # an old hint says nothing any more
    assert budget.reserve(3) == 0
    budget.observe(200, {REMAINING_HEADER.upper(): "5990"})
    assert budget.reserve(3) == 0


def test_a_wrong_share_is_refused_when_first_used():
    budget = RequestBudget(share=lambda: 1.5)
    with pytest.raises(ValueError):
        budget.reserve(1)


URL = "https://contoso.crm.dynamics.com/api/data/v9.2/"


def test_the_standin_answers_429_past_the_window_and_reports_what_is_left():
    clock = Clock()
    standin = DataverseStandIn()
    standin.protect(ServiceProtection(limit=5, window=300, now=clock.now, sleep=clock.sleep))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        standin.register_with_responses(rsps)
        answers = []
        for _ in range(6):
            answers.append(requests.get(URL + "accounts?$select=name", headers={"Authorization": "Bearer a"}))
            clock.t += 10
        other = requests.get(URL + "accounts?$select=name", headers={"Authorization": "Bearer b"})
        assert [a.status_code for a in answers] == [200] * 5 + [429]
        assert [a.headers[REMAINING_HEADER] for a in answers[:5]] == ["4", "3", "2", "1", "0"]
        assert answers[5].headers["Retry-After"] == "250" and answers[5].json()["error"]["code"] == "0x80072322"
        assert other.status_code == 200                  # per user
        clock.t += 250
        assert requests.get(URL + "accounts", headers={"Authorization": "Bearer a"}).status_code == 200


def test_the_standin_refuses_requests_past_the_concurrency_limit():
    clock = Clock()
    release = threading.Event()
    entered = threading.Semaphore(0)

    def slow(seconds):
        entered.release()
        release.wait(5)

    protection = ServiceProtection(concurrent=2, latency=(0.01, 0.02), now=clock.now, sleep=slow)
    standin = DataverseStandIn()
    standin.protect(protection)
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        standin.handle("GET", URL + "accounts", {"Authorization": "Bearer a"}, None)[0])) for _ in range(2)]
    for t in threads:
        t.start()
    entered.acquire(timeout=5)
    entered.acquire(timeout=5)
    status, headers, body = standin.handle("GET", URL + "accounts", {"Authorization": "Bearer a"}, None)
    release.set()
    for t in threads:
        t.join()
    assert status == 429 and b"0x80072326" in body and headers["Retry-After"] == "1"
    assert results == [200, 200] and protection.refused == 1


def test_the_standin_refuses_requests_past_the_execution_time_limit_until_the_window_slides():
    clock = Clock()
    protection = ServiceProtection(execution_limit=10, window=300, latency=(4, 4), now=clock.now, sleep=clock.sleep)
    standin = DataverseStandIn()
    standin.protect(protection)

    def get(user="a"):
        return standin.handle("GET", URL + "accounts?$select=name", {"Authorization": f"Bearer {user}"}, None)

    answers = [get() for _ in range(3)]                   # 4 s each on the stand-in's clock: 12 s of the 10 allowed
    assert [a[0] for a in answers] == [200, 200, 200]
    assert [a[1][TIME_REMAINING_HEADER] for a in answers] == ["10.00", "6.00", "2.00"]
    status, headers, body = get()
    error = json.loads(body)["error"]
    assert status == 429 and error["code"] == "0x80072321"
    assert error["message"].startswith("Combined execution time of incoming requests exceeded limit of 10,000 "
                                       "milliseconds over time window of 300 seconds.")
    # The first request ended at 1004: once it leaves the window 8 s remain, under the limit.
    assert headers["Retry-After"] == str(int(1004 + 300 - clock.t)) and headers[TIME_REMAINING_HEADER] == "0.00"
    assert get("b")[0] == 200                              # per user
    clock.t = 1004 + 300 - 1
    assert get()[0] == 429                                 # not yet
    clock.t = 1004 + 300
    assert get()[0] == 200
    assert protection.refused_by_code == {"0x80072321": 2}


def test_without_latency_a_requests_execution_time_is_its_time_on_the_standins_clock():
    clock = Clock()
    protection = ServiceProtection(execution_limit=60, window=300, now=clock.now, sleep=clock.sleep)
    assert protection.enter("a") == (5999, 60.0)
    started = protection.now()
    clock.t += 45
    protection.leave("a", started, None)
    assert protection.enter("a") == (5998, 15.0)
    protection.leave("a", protection.now(), 20.0)          # a latency, when there is one, is the execution time
    with pytest.raises(ODataError) as refused:
        protection.enter("a")
    assert refused.value.status == 429 and refused.value.code == "0x80072321"
    assert refused.value.headers["Retry-After"] == "300"   # the first 45 s leave the window 300 s after they ended
    assert protection.executions == [(1045.0, 45.0), (1045.0, 20.0)]


def test_the_time_remaining_header_is_written_as_dataverse_writes_it():
    assert time_remaining(1200) == "1,200.00" and time_remaining(1199.456) == "1,199.46" and time_remaining(0) == "0.00"


@pytest.mark.parametrize("value, share", [(None, 0.85), ("0.5", 0.5), ("1", 1.0)])
def test_the_runs_share_comes_from_its_setting(value, share):
    from app.composition import run_request_share
    from core.settings import Settings

    assert run_request_share(Settings({} if value is None else {"W365_BILLING_RUN_SHARE": value})) == share


@pytest.mark.parametrize("value", ["0", "1.5", "85%", "nan"])
def test_a_wrong_share_setting_is_an_error_naming_it(value):
    from app.composition import run_request_share
    from core.errors import ConfigurationError
    from core.settings import Settings

    with pytest.raises(ConfigurationError, match="W365_BILLING_RUN_SHARE"):
        run_request_share(Settings({"W365_BILLING_RUN_SHARE": value}))


def test_a_wrong_share_never_breaks_the_requests_it_observes():
    budget = RequestBudget(share=lambda: 1.5)
    budget.observe(200, {REMAINING_HEADER: "5000"})            # every Dataverse answer of the process, buttons too
    budget.observe(429, {"Retry-After": "3"})
    assert budget.throttled == 1
