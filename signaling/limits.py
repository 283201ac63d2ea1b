"""Rate limits per client address: SDP offers and enrollments (the ``limits`` library, moving windows in memory).

``Settings.offer_rate`` limits ``POST /api/offer`` and ``POST /whip``; ``Settings.enroll_rate`` limits voice
enrollments and identifications (REST uploads and ``enroll_start`` on the data channel), both in the ``limits``
notation (``"20/minute"``, ``"100/hour;10/minute"``). Over the limit a route answers ``429 rate_limited`` with
``Retry-After`` (whole seconds until the oldest counted request leaves the window); the data channel answers an
``error`` event with code ``rate_limited``.

The address is :func:`signaling.auth.client_address` (behind the loopback proxy of ``deploy/``, the one it
forwards). Not limited: requests with the operator API key, and direct connections from loopback (no proxy
headers: the embedded one-machine default, benches, tests); the limits guard a server others can reach. The
windows are per process (one node); a restart forgets them.
"""

from __future__ import annotations

import math
import time
from typing import Literal

from aiohttp import web
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from server.errors import CallscribeError
from server.settings import Settings

from . import auth
from .errors import ApiError

Kind = Literal["offer", "enroll"]
_WHAT = {"offer": "offers", "enroll": "enrollments"}


class RateLimits:
    """The limiters of one app.

    Args:
        settings: ``offer_rate`` and ``enroll_rate``.
    Raises:
        CallscribeError: a rate that the ``limits`` notation cannot parse.
    """

    def __init__(self, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items: dict[str, list[RateLimitItem]] = {}
        for kind, text in (("offer", settings.offer_rate), ("enroll", settings.enroll_rate)):
            try:
                self._items[kind] = parse_many(text)
            except ValueError as exc:
                raise CallscribeError(f"invalid setting {kind}_rate={text!r}: {exc}") from None
        self.rates = {"offer": settings.offer_rate, "enroll": settings.enroll_rate}

    def hit(self, kind: Kind, address: str) -> float | None:
        """Count one ``kind`` from ``address``: None when allowed, else the seconds until one is allowed again
        (nothing is counted then)."""
        items = self._items[kind]
        for item in items:
            if not self._limiter.test(item, kind, address):
                reset = self._limiter.get_window_stats(item, kind, address).reset_time
                return max(1.0, reset - time.time())
        for item in items:
            self._limiter.hit(item, kind, address)
        return None

    def refuse(self, kind: Kind, wait_s: float) -> ApiError:
        """The error for a refused ``kind``: ``rate_limited`` with ``Retry-After`` (whole seconds)."""
        retry = max(1, math.ceil(wait_s))
        return ApiError("rate_limited", f"too many {_WHAT[kind]} from this address (the limit is "
                        f"{self.rates[kind]}); retry in {retry} s", headers={"Retry-After": str(retry)})


LIMITS = web.AppKey("rate_limits", RateLimits)


def install(app: web.Application, settings: Settings) -> RateLimits:
    """Put the :class:`RateLimits` of ``settings`` on ``app``."""
    app[LIMITS] = RateLimits(settings)
    return app[LIMITS]


def limited_address(request: web.Request) -> str | None:
    """The address the request counts against, or None when it is not limited (the API key, or a direct
    loopback connection)."""
    who = request.get("principal")
    if (who is not None and who.kind == "admin") or auth.direct_loopback(request):
        return None
    return auth.client_address(request)


def check(request: web.Request, kind: Kind) -> None:
    """Count one ``kind`` (``"offer"`` or ``"enroll"``) from the request's client address.

    Raises:
        ApiError: ``rate_limited`` (429) with ``Retry-After``.
    """
    address = limited_address(request)
    if address is None:
        return
    limits = request.config_dict[LIMITS]
    wait_s = limits.hit(kind, address)
    if wait_s is not None:
        raise limits.refuse(kind, wait_s)
