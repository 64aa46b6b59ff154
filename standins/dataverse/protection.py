"""Dataverse service protection for the stand-in, off unless asked for (the billing-run benchmark and its tests turn it
on): per user, a sliding window of 6,000 requests per 5 minutes and 52 concurrent requests; past either, 429 with
Retry-After and the error codes of the real service (api-limits: 0x80072322 requests, 0x80072326 concurrency). Every
answer carries `x-ms-ratelimit-burst-remaining-xrm-requests`, as Dataverse's do. Optional latency (seconds, drawn
per request) is spent while the request counts as in flight. `now` and `sleep` can run on a compressed clock.

The user is the caller's bearer token (every instance of the app shares one application user, whoever it
impersonates). The execution-time limit (20 minutes per window) is not modelled: at these latencies a user reaches
the request limit long before it.
"""
from __future__ import annotations

import collections
import math
import random
import threading
import time
from typing import Callable

from standins.dataverse.store import ODataError

REQUESTS_CODE, CONCURRENCY_CODE = "0x80072322", "0x80072326"
REMAINING_HEADER = "x-ms-ratelimit-burst-remaining-xrm-requests"


class ServiceProtection:
    def __init__(self, *, limit: int = 6000, window: float = 300.0, concurrent: int = 52,
                 latency: tuple[float, float] | None = None, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, seed: int = 7):
        self.limit, self.window, self.concurrent, self.latency = limit, window, concurrent, latency
        self._now, self._sleep = now, sleep
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._recent: dict[str, collections.deque[float]] = {}
        self._in_flight: dict[str, int] = {}
        self.refused = 0               # 429s answered
        self.served = 0                # requests let through (each counts in its user's window)
        self.log: list[float] = []     # when each served request started (for the benchmark's peak window)

    def enter(self, user: str) -> int:
        """Admit a request (returns what the user has left in the window) or raise the 429 Dataverse would send."""
        now = self._now()
        with self._lock:
            recent = self._recent.setdefault(user, collections.deque())
            while recent and recent[0] <= now - self.window:
                recent.popleft()
            if len(recent) >= self.limit:
                self.refused += 1
                wait = recent[0] + self.window - now
                raise self._throttled(REQUESTS_CODE, f"Number of requests exceeded the limit of {self.limit} over "
                                                     f"time window of {int(self.window)} seconds.", wait)
            if self._in_flight.get(user, 0) >= self.concurrent:
                self.refused += 1
                raise self._throttled(CONCURRENCY_CODE, f"Number of concurrent requests exceeded the limit of "
                                                        f"{self.concurrent}.", 1.0)
            recent.append(now)
            self._in_flight[user] = self._in_flight.get(user, 0) + 1
            self.served += 1
            self.log.append(now)
            return self.limit - len(recent)

    def leave(self, user: str) -> None:
        with self._lock:
            self._in_flight[user] -= 1

    def wait_latency(self) -> None:
        if self.latency:
            with self._lock:
                seconds = self._random.uniform(*self.latency)
            self._sleep(seconds)

    def _throttled(self, code: str, message: str, wait: float) -> ODataError:
        seconds = max(1, math.ceil(wait))
        return ODataError(429, code, message, {"Retry-After": str(seconds), REMAINING_HEADER: "0"})
