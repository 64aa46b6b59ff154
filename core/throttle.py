"""Governs background work (billing runs) to a share of Dataverse's service-protection ceiling.

Dataverse limits each user (every instance of this app shares one application user) to 6,000 requests in a sliding
5-minute window, 52 concurrent requests and 20 minutes of execution time per window, counted per web server; past them
it answers 429 with Retry-After (research/dataverse.md §2, "Service protection"). A run must leave room for the buttons,
pages and webhooks, so it spends at most `share` (85% by default) of the ceiling:

- before a unit of work, `acquire(cost)` books its requests in this instance's sliding window and waits (or tells the
  caller to put the message back) until they fit in the budget;
- every Dataverse response is `observe`d: `x-ms-ratelimit-burst-remaining-xrm-requests` says what the server has
  left for the user across every instance, so several instances together stay within one budget without talking to
  each other; a 429's Retry-After stops all background work of the instance until it has passed.
Buttons and webhooks never wait here: the budget's headroom is theirs.
"""
from __future__ import annotations

import collections
import math
import threading
import time
from typing import Callable, Mapping

LIMIT = 6000                       # requests per user per window (api-limits: "6000 within the 5 minute window")
WINDOW = 300.0                     # seconds
DEFAULT_SHARE = 0.85
REMAINING_HEADER = "x-ms-ratelimit-burst-remaining-xrm-requests"
SERVER_HINT_FRESH = 30.0           # seconds a server's "remaining" stays a usable estimate


class RequestBudget:
    """Thread-safe; one per process, shared by every Dataverse client of it. `now` and `sleep` are injectable (the
    benchmark compresses time)."""

    def __init__(self, *, share: float | Callable[[], float] = DEFAULT_SHARE, limit: int = LIMIT,
                 window: float = WINDOW, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._share = share                 # or a function reading the setting when a run first needs it
        self.limit, self.window = limit, window
        self._now, self._sleep = now, sleep
        self._booked: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._blocked_until = 0.0
        self._server_used: int | None = None
        self._server_seen = -math.inf
        self._booked_since_seen = 0
        self.throttled = 0                  # 429s seen
        self.throttled_seconds = 0.0        # Retry-After seconds they asked for
        self.waited_seconds = 0.0           # time background work waited for the budget

    @property
    def share(self) -> float:
        if callable(self._share):
            self._share = self._share()
        if not 0 < self._share <= 1:
            raise ValueError("share must be in (0, 1]")
        return self._share

    @property
    def budget(self) -> int:
        return int(self.limit * self.share)

    # --- what the Dataverse client reports ---------------------------------------------------------------------------

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        now = self._now()
        remaining = _header(headers, REMAINING_HEADER)
        with self._lock:
            if remaining is not None and remaining.isdigit():
                left = int(remaining)
                self.limit = max(self.limit, left)        # a bigger server ceiling than documented: use it
                self._server_used, self._server_seen, self._booked_since_seen = self.limit - left, now, 0
            if status == 429:
                retry_after = _seconds(_header(headers, "Retry-After")) or 1.0
                self.throttled += 1
                self.throttled_seconds += retry_after
                self._blocked_until = max(self._blocked_until, now + retry_after)

    # --- what background work asks ---------------------------------------------------------------------------------

    def reserve(self, cost: int) -> float:
        """Books `cost` requests and returns 0 when they fit in the budget now; else books nothing and returns the
        seconds until they may."""
        now = self._now()
        with self._lock:
            while self._booked and self._booked[0] <= now - self.window:
                self._booked.popleft()
            if now < self._blocked_until:
                return self._blocked_until - now
            used = len(self._booked)
            if self._server_used is not None and now - self._server_seen <= SERVER_HINT_FRESH:
                used = max(used, self._server_used + self._booked_since_seen)
            excess = used + cost - self.budget
            if excess <= 0:
                self._booked.extend([now] * cost)
                self._booked_since_seen += cost
                return 0.0
            if excess <= len(self._booked):
                return max(0.01, self._booked[excess - 1] + self.window - now)
            return max(1.0, self.window * excess / self.limit)

    def acquire(self, cost: int, *, max_wait: float) -> float:
        """Wait (sleeping) until `cost` requests fit, for at most `max_wait` seconds in all. Returns 0 once booked,
        else the seconds still to wait: the caller puts its message back for that long instead of holding it."""
        waited = 0.0
        while True:
            wait = self.reserve(cost)
            if wait <= 0:
                return 0.0
            if waited + wait > max_wait:
                return wait
            self._sleep(wait)
            waited += wait
            with self._lock:
                self.waited_seconds += wait


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value.strip() if isinstance(value, str) else None


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None
