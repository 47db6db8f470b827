"""Requests per client address (issue 10's hardening): a token bucket per address, refilled
at ``DOTHI_RATE_LIMIT`` requests a second up to ``DOTHI_RATE_BURST``; past it, 429 Too
Many Requests with Retry-After, before any work is done.

The address is the one uvicorn gives: the peer's, or behind a reverse proxy on the same
machine the client's from X-Forwarded-For (uvicorn trusts 127.0.0.1's by default).
Addresses in ``DOTHI_RATE_EXEMPT`` (by default the machine itself: its tools, gateways
and benchmarks) are not limited. Each server process keeps its own buckets, so N workers
allow up to N times the rate.
"""

from __future__ import annotations

import math
import threading
import time

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from dothi.auth.signin import client_address
from dothi.errors import TooManyRequests

# Buckets of addresses idle long enough to be full again are dropped when the table has
# grown past this many, so that a scan from many addresses cannot fill the memory.
_PRUNE_AT = 50_000


class Buckets:
    """Token buckets by key, refilled at ``rate`` a second up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, now: float) -> float:
        """Take one token for ``key``: 0 if there was one, else the seconds until there
        will be."""
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > _PRUNE_AT:
                self._prune(now)
            return 0.0

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {a: (t, at) for a, (t, at) in self._buckets.items()
                         if now - at < full_after}


class RateLimit:
    def __init__(self, app: ASGIApp, rate: float, burst: int, exempt: frozenset[str]) -> None:
        self.app = app
        self.rate = rate
        self.exempt = exempt
        self.buckets = Buckets(rate, burst) if rate > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.buckets is None:
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        wait = 0.0 if address in self.exempt else self.buckets.take(address, time.monotonic())
        if wait > 0:
            await _refuse(send, wait, self.rate)
            return
        await self.app(scope, receive, send)


async def _refuse(send: Send, wait: float, rate: float) -> None:
    error = TooManyRequests(f"More than {rate:g} requests a second from one address: "
                            f"wait {math.ceil(wait)} s")
    body = orjson.dumps(error.to_problem())
    await send({"type": "http.response.start", "status": 429, "headers": [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(math.ceil(wait)).encode())]})
    await send({"type": "http.response.body", "body": body})
