"""Time-limited TURN credentials (the "TURN REST API" shared-secret scheme).

coturn with ``use-auth-secret`` and ``static-auth-secret=SECRET`` accepts username ``"<expiry>:<user>"``
(expiry in Unix seconds) with password ``base64(HMAC-SHA1(SECRET, username))`` until the expiry passes
(draft-uberti-behave-turn-rest-00 §2.2; coturn's turnserver.conf documentation). HMAC and base64 come from
the Python standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class TurnCredentials:
    """``username``/``credential`` for an ``RTCIceServer``; valid until ``expires_at`` (Unix seconds)."""

    username: str
    credential: str
    expires_at: int


def mint(secret: str, user: str, ttl_s: float, now: float | None = None) -> TurnCredentials:
    """Credentials for ``user`` valid ``ttl_s`` seconds from ``now`` (default: the current time).

    Raises:
        ValueError: empty secret, a ``:`` in ``user`` (it separates the expiry), or a non-positive lifetime.
    """
    if not secret:
        raise ValueError("the TURN shared secret is empty")
    if ":" in user:
        raise ValueError("a TURN user name may not contain ':'")
    if ttl_s <= 0:
        raise ValueError("the credential lifetime must be positive")
    expires_at = int((time.time() if now is None else now) + ttl_s)
    username = f"{expires_at}:{user}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return TurnCredentials(username, base64.b64encode(digest).decode("ascii"), expires_at)


def ice_servers(urls: Sequence[str], secret: str, user: str, ttl_s: float) -> list[dict]:
    """``RTCIceServer`` dicts: the STUN URLs as they are, the TURN URLs with fresh credentials."""
    stun = [u for u in urls if u.startswith("stun")]
    turn = [u for u in urls if u.startswith(("turn:", "turns:"))]
    servers: list[dict] = [{"urls": stun}] if stun else []
    if turn:
        creds = mint(secret, user, ttl_s)
        servers.append({"urls": turn, "username": creds.username, "credential": creds.credential})
    return servers
