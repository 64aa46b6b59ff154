"""Governs background work (billing runs) to a share of Dataverse's service-protection ceiling.

Dataverse limits each user (every instance of this app shares one application user) to 6,000 requests in a sliding
5-minute window, 52 concurrent requests and 20 minutes of execution time per window, counted per web server; past them
it answers 429 with Retry-After (research/dataverse.md §2, "Service protection"). A run must leave room for the buttons,
pages and webhooks, so it spends at most `share` (85% by default) of the ceiling:

- before a unit of work, `acquire(cost)` waits (or tells the caller to put the message back) until its requests fit
  in the budget's share of the sliding window, and paces work at the budget's average rate (a token bucket of a few
  seconds that every request of the process spends), so a run spreads its requests evenly instead of spending a
  window's budget in a burst and then stalling;
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
BURST_SECONDS = 5.0                # the pace may run this many seconds of budget ahead
MIN_BURST = 10                     # requests, so a unit of work always fits in a full bucket
# The pace is a little under the budget: its bucket and the requests already under way may run ahead of it, and the
# window should never fill (a full window stalls every worker until its oldest requests leave it).
PACE = 0.985


class RequestBudget:
    """Thread-safe; one per process, shared by every Dataverse client of it. `now` and `sleep` are injectable (the
    benchmark compresses time)."""

    def __init__(self, *, share: float | Callable[[], float] = DEFAULT_SHARE, limit: int = LIMIT,
                 window: float = WINDOW, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._share = share                 # or a function reading the setting when a run first needs it
        self.limit, self.window = limit, window
        self._now, self._sleep = now, sleep
        self._sent: collections.deque[float] = collections.deque()    # this process's requests in the window
        self._lock = threading.Lock()
        self._blocked_until = 0.0
        self._server_used: int | None = None
        self._server_seen = -math.inf
        self._sent_since_seen = 0
        self._tokens: float | None = None   # the pace's bucket: full at first use, spent by every request
        self._filled_at = 0.0
        self._unpaced = 0                   # requests made since the bucket was last brought up to date
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
        """Every answer of this process's Dataverse clients: each request counts in the window and spends the pace,
        whoever made it (a run's charge, its emails and checks, a button), so the run's pace is what really goes out."""
        now = self._now()
        remaining = _header(headers, REMAINING_HEADER)
        with self._lock:
            self._unpaced += 1                # spent from the pace at the next `reserve` (which knows the share)
            self._sent.append(now)
            self._sent_since_seen += 1
            if remaining is not None and remaining.isdigit():
                left = int(remaining)
                self.limit = max(self.limit, left)        # a bigger server ceiling than documented: use it
                self._server_used, self._server_seen, self._sent_since_seen = self.limit - left, now, 0
            if status == 429:
                retry_after = _seconds(_header(headers, "Retry-After")) or 1.0
                self.throttled += 1
                self.throttled_seconds += retry_after
                self._blocked_until = max(self._blocked_until, now + retry_after)

    # --- what background work asks ---------------------------------------------------------------------------------

    def reserve(self, cost: int) -> float:
        """0 when `cost` more requests fit now: within the budget's share of the sliding window (this process's
        requests, or the server's count of everyone's when it told us lately) and at its pace; else the seconds
        until they may. The requests count when they are made (`observe`)."""
        now = self._now()
        with self._lock:
            while self._sent and self._sent[0] <= now - self.window:
                self._sent.popleft()
            if now < self._blocked_until:
                return self._blocked_until - now
            used = len(self._sent)
            if self._server_used is not None and now - self._server_seen <= SERVER_HINT_FRESH:
                used = max(used, self._server_used + self._sent_since_seen)
            excess = used + cost - self.budget
            if excess > 0:
                if excess <= len(self._sent):
                    return max(0.01, self._sent[excess - 1] + self.window - now)
                return max(1.0, self.window * excess / self.limit)
            self._refill(now)
            if self._tokens < cost:
                return (cost - self._tokens) / self._rate
            return 0.0

    @property
    def _rate(self) -> float:
        return self.budget * PACE / self.window

    def _refill(self, now: float) -> None:
        capacity = max(float(MIN_BURST), self._rate * BURST_SECONDS)
        if self._tokens is None:
            self._tokens = capacity
        else:
            self._tokens = min(capacity, self._tokens + (now - self._filled_at) * self._rate)
        # A debt (requests beyond the pace, e.g. a burst of buttons) is repaid, but never more than a burst's worth.
        self._tokens, self._unpaced = max(-capacity, self._tokens - self._unpaced), 0
        self._filled_at = now

    def acquire(self, cost: int, *, max_wait: float) -> float:
        """Wait (sleeping) until `cost` requests fit, for at most `max_wait` seconds in all. Returns 0 when they do,
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
