"""The runs' request budget (core.throttle) and the stand-in's service protection, on a clock the test moves."""
from __future__ import annotations

import threading

import pytest
import requests
import responses

from core.throttle import REMAINING_HEADER, RequestBudget
from standins.dataverse import DataverseStandIn
from standins.dataverse.protection import ServiceProtection


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
