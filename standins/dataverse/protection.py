"""Dataverse service protection for the stand-in, off unless asked for (the billing-run benchmark and its tests turn it
on). Per user, over a sliding 5-minute window (api-limits, research/dataverse.md §2): 6,000 requests, 20 minutes of
combined execution time, and 52 concurrent requests; past any of them, 429 with Retry-After and the error code of the
real service (0x80072322 requests, 0x80072321 execution time, 0x80072326 concurrency). Every answer carries
`x-ms-ratelimit-burst-remaining-xrm-requests` (requests left) and `x-ms-ratelimit-time-remaining-xrm-requests`
(execution seconds left, written as Dataverse writes it: "1,199.46"), as Dataverse's do.

A request's execution time is its latency when the stand-in has one (drawn per request, spent while the request
counts as in flight: the benchmark's model of the server's work), else the time it spent in the stand-in on the
stand-in's clock. It counts once the request is over, as the server can only know it then; a request is refused while
the window's sum is at the limit. `now` and `sleep` can run on a compressed clock.

The user is the caller's bearer token (every instance of the app shares one application user, whoever it
impersonates).
"""
from __future__ import annotations

import collections
import math
import random
import threading
import time
from typing import Callable

from standins.dataverse.store import ODataError

REQUESTS_CODE, TIME_CODE, CONCURRENCY_CODE = "0x80072322", "0x80072321", "0x80072326"
REMAINING_HEADER = "x-ms-ratelimit-burst-remaining-xrm-requests"
TIME_REMAINING_HEADER = "x-ms-ratelimit-time-remaining-xrm-requests"


class ServiceProtection:
    def __init__(self, *, limit: int = 6000, window: float = 300.0, concurrent: int = 52,
                 execution_limit: float = 1200.0, latency: tuple[float, float] | None = None,
                 now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 seed: int = 7):
        self.limit, self.window, self.concurrent, self.latency = limit, window, concurrent, latency
        self.execution_limit = execution_limit          # seconds of combined execution time per window
        self._now, self._sleep = now, sleep
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._recent: dict[str, collections.deque[float]] = {}
        self._in_flight: dict[str, int] = {}
        self._executed: dict[str, collections.deque[tuple[float, float]]] = {}   # (ended at, seconds) in the window
        self._executing: dict[str, float] = {}          # the sum of _executed, per user
        self.refused = 0               # 429s answered
        self.refused_by_code: collections.Counter[str] = collections.Counter()
        self.served = 0                # requests let through (each counts in its user's window)
        self.log: list[float] = []     # when each served request started (for the benchmark's peak window)
        self.executions: list[tuple[float, float]] = []    # (ended at, execution seconds) of each finished request

    def enter(self, user: str) -> tuple[int, float]:
        """Admit a request or raise the 429 Dataverse would send. Returns what the user has left in the window:
        requests, and seconds of execution time."""
        now = self._now()
        with self._lock:
            recent = self._recent.setdefault(user, collections.deque())
            while recent and recent[0] <= now - self.window:
                recent.popleft()
            executing = self._slide(user, now)
            if len(recent) >= self.limit:
                wait = recent[0] + self.window - now
                raise self._throttled(REQUESTS_CODE, f"Number of requests exceeded the limit of {self.limit} over "
                                                     f"time window of {int(self.window)} seconds.", wait)
            if executing >= self.execution_limit:
                raise self._throttled(TIME_CODE, f"Combined execution time of incoming requests exceeded limit of "
                                                 f"{int(self.execution_limit * 1000):,} milliseconds over time window "
                                                 f"of {int(self.window)} seconds. Decrease number of concurrent "
                                                 f"requests or reduce the duration of requests and try again later.",
                                      self._time_freed_at(user, executing) - now)
            if self._in_flight.get(user, 0) >= self.concurrent:
                raise self._throttled(CONCURRENCY_CODE, f"Number of concurrent requests exceeded the limit of "
                                                        f"{self.concurrent}.", 1.0)
            recent.append(now)
            self._in_flight[user] = self._in_flight.get(user, 0) + 1
            self.served += 1
            self.log.append(now)
            return self.limit - len(recent), max(0.0, self.execution_limit - executing)

    def leave(self, user: str, started: float, latency: float | None) -> None:
        """The request is over: it no longer counts as in flight, and its execution time (its latency, else its
        time on the clock since `started`) counts in the window from now."""
        now = self._now()
        seconds = latency if latency is not None else max(0.0, now - started)
        with self._lock:
            self._in_flight[user] -= 1
            self._executed.setdefault(user, collections.deque()).append((now, seconds))
            self._executing[user] = self._executing.get(user, 0.0) + seconds
            self.executions.append((now, seconds))

    def now(self) -> float:
        return self._now()

    def wait_latency(self) -> float | None:
        """Spend this request's latency (None when the stand-in has none); returns it."""
        if not self.latency:
            return None
        with self._lock:
            seconds = self._random.uniform(*self.latency)
        self._sleep(seconds)
        return seconds

    def _slide(self, user: str, now: float) -> float:
        executed = self._executed.get(user)
        total = self._executing.get(user, 0.0)
        while executed and executed[0][0] <= now - self.window:
            total -= executed.popleft()[1]
        total = max(0.0, total) if executed else 0.0       # no drift from float sums once the window is empty
        self._executing[user] = total
        return total

    def _time_freed_at(self, user: str, executing: float) -> float:
        """When enough of the window's execution time has left it for the user to be under the limit again."""
        for ended, seconds in self._executed.get(user, ()):
            executing -= seconds
            if executing < self.execution_limit:
                return ended + self.window
        return self._now() + self.window

    def _throttled(self, code: str, message: str, wait: float) -> ODataError:
        self.refused += 1
        self.refused_by_code[code] += 1
        seconds = max(1, math.ceil(wait))
        spent = {TIME_REMAINING_HEADER: time_remaining(0)} if code == TIME_CODE else {REMAINING_HEADER: "0"}
        return ODataError(429, code, message, {"Retry-After": str(seconds), **spent})


def time_remaining(seconds: float) -> str:
    """`x-ms-ratelimit-time-remaining-xrm-requests` as Dataverse writes it: seconds, grouped, two decimals."""
    return f"{seconds:,.2f}"
