"""Access control: the operator API key, signed room tokens, and who may call which route.

Access control is **on** when ``Settings.api_key`` is set, and **off** otherwise: then every request is the
``open`` :class:`Principal` and every check here passes (the embedded default: ``serve`` refuses to run without
a key on any address but loopback unless ``--insecure-no-auth`` is given, :func:`check_exposure`).

Credentials
    ``Authorization: Bearer <API key>`` → the ``admin`` principal. ``Authorization: Bearer <room token>`` → a
    ``room`` principal limited to one room with one role, ``speaker`` (call with a microphone, enroll, name
    speakers in that room) or ``viewer`` (follow the room, read it). JSON offers may carry the token in the body
    (``"token"``) instead; WHIP takes it as the bearer token (RFC 9725 §4.3). Missing, malformed, wrong or
    expired credentials are ``401 unauthorized`` (with ``WWW-Authenticate: Bearer``); valid ones that do not
    allow the request are ``403 forbidden``.

Room tokens
    JWTs (PyJWT, HS256) with the claims ``room``, ``role``, ``iat``, ``exp``, ``jti`` and ``iss: "callscribe"``,
    signed with ``Settings.token_secret`` or, when that is None, with a key derived from the API key
    (HMAC-SHA256 of a fixed label under the key), so changing either revokes every token. They are minted by
    ``POST /api/tokens`` (:func:`add_routes`) and offline by ``callscribe token`` (:meth:`Authenticator.mint`).

Who may call what (``@operation(auth=...)`` in :mod:`signaling.apidoc`; :func:`middleware` enforces ``admin``
and ``token``, ``room``/``speaker`` for the path's ``{room}`` when it names one, and otherwise any token
(``room``) or a speaker token of any room (``speaker``); a handler whose room comes from the body or a stored
object calls :func:`require_room` itself, one that names no room and needs a speaker :func:`require_speaker`):

===============================================  ===========================================================
``POST /api/offer``, ``POST /whip``              a ``speaker`` token for an offer with audio, a ``viewer`` or
                                                 ``speaker`` token for a listen-only offer, or the key; a
                                                 token's room fills in a missing ``room``, another room is 403
``DELETE /api/calls/{key}``                      the call's capability key alone (``session_url``)
``DELETE /whip/{key}``                           the capability key and a bearer credential for the call's room
``DELETE /api/peers/{peer_id}``                  admin (peer ids are public in room events)
``GET /api/ice-servers``, ``POST /api/export``   any token, or the key
``POST /api/tokens``                             admin; or a ``speaker`` token for its own room (expiry capped
                                                 at the token's own)
``GET /api/profiles``, ``GET /api/profiles/{name}``, identify
                                                 any token, or the key
``POST /api/profiles`` (enroll)                  a ``speaker`` token, or the key
``PATCH`` / ``DELETE /api/profiles/{name}``      admin
sessions                                         admin sees all; a room token only its room (:func:`room_scope`)
``GET /api/rooms/{room}/speakers``               a token for that room (``speaker`` to ``POST …/name``)
``GET /metrics``                                 admin, or a direct connection from loopback (not one relayed by
                                                 a proxy: those carry ``X-Forwarded-For``)
``/healthz``, ``/readyz``, pages, ``/static``,   open
``/openapi.json``
any other ``/api`` or ``/whip`` route            admin only (deny by default: a route that declares no
                                                 ``@operation`` is not open to tokens)
===============================================  ===========================================================

On the data channel (:mod:`signaling.datachannel`) a connection's :func:`grants` decide: a speaker may
``enroll_start`` and ``name_speaker``, a viewer neither; admin and open connections may do everything.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlencode

import jwt
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.errors import CallscribeError
from server.settings import Settings

from .apidoc import operation, operation_of
from .errors import ApiError
from .protocol import ROOM_PATTERN

log = logging.getLogger(__name__)

Role = Literal["speaker", "viewer"]
Level = Literal["viewer", "speaker"]
ISSUER = "callscribe"
ALGORITHM = "HS256"
MIN_API_KEY_CHARS = 16
MAX_TOKEN_TTL_S = 30 * 86400
DATA_CHANNEL_GRANTS = {"speaker": frozenset({"enroll", "name_speaker"}), "viewer": frozenset()}
"""What a room token's connection may do on the data channel, by role."""
PROTECTED_PREFIXES = ("/api/", "/whip")
"""Paths under which a route without a declared operation is admin-only when access control is on."""
_DERIVE_LABEL = b"callscribe room tokens v1"


@dataclass(frozen=True)
class Principal:
    """Who is calling.

    Attributes:
        kind: ``admin`` (the API key), ``room`` (a room token) or ``open`` (access control is off).
        room: the room a room token is limited to (None for admin and open).
        role: a room token's role (None for admin and open).
        expires_at: a room token's expiry, Unix seconds (None for admin and open).
        token_id: a room token's ``jti``.
    """

    kind: Literal["admin", "room", "open"]
    room: str | None = None
    role: Role | None = None
    expires_at: float | None = None
    token_id: str | None = None

    @property
    def unrestricted(self) -> bool:
        """Admin or open: every room, every role."""
        return self.kind != "room"

    def allows(self, room: str, level: Level = "viewer") -> bool:
        """May this principal act in ``room`` at ``level`` (a speaker may do what a viewer may)?"""
        if self.unrestricted:
            return True
        return self.room == room and (level == "viewer" or self.role == "speaker")


OPEN = Principal("open")
ADMIN = Principal("admin")


@dataclass(frozen=True)
class Minted:
    """A freshly signed room token: ``expires_at`` in Unix seconds."""

    token: str
    room: str
    role: Role
    expires_at: float
    token_id: str


def _unauthorized(message: str, *, invalid: bool = False) -> ApiError:
    challenge = 'Bearer realm="callscribe"' + (', error="invalid_token"' if invalid else "")
    return ApiError("unauthorized", message, headers={"WWW-Authenticate": challenge})


class Authenticator:
    """Checks credentials and signs room tokens with the settings' key and secret.

    Args:
        settings: ``api_key`` (None: access control off), ``token_secret`` (None: derived from the key),
            ``token_ttl_s`` (default token lifetime, seconds).
    """

    def __init__(self, settings: Settings) -> None:
        self._key = settings.api_key.encode() if settings.api_key else None
        secret = settings.token_secret.encode() if settings.token_secret else None
        if secret is None and self._key is not None:
            secret = hmac.new(self._key, _DERIVE_LABEL, "sha256").digest()
        self._secret = secret
        self.default_ttl_s = settings.token_ttl_s
        self.warned_proxy = False

    @property
    def enabled(self) -> bool:
        """Access control is on (an API key is set)."""
        return self._key is not None

    @property
    def can_mint(self) -> bool:
        return self._secret is not None

    def mint(self, room: str, role: Role, ttl_s: float | None = None, *, now: float | None = None,
             not_after: float | None = None) -> Minted:
        """Sign a token for ``room`` with ``role``, valid ``ttl_s`` seconds (default ``Settings.token_ttl_s``)
        from ``now`` (Unix seconds, default the clock) and never past ``not_after``.

        Raises:
            ApiError: ``auth_disabled`` (no API key and no token secret to sign with), ``bad_request`` (a room
                name outside ``[\\w.-]{1,64}``, an unknown role, a lifetime not in 1 s … 30 days).
        """
        if self._secret is None:
            raise ApiError("auth_disabled", "no API key or token secret is configured: there is nothing to sign "
                           "tokens with (and with access control off, none are needed)")
        try:
            TokenRequest.model_validate({"room": room, "role": role})  # the same rules as the REST body
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ApiError("bad_request", f"{first['loc'][0]}: {first['msg']}") from None
        ttl_s = self.default_ttl_s if ttl_s is None else ttl_s
        if not 1 <= ttl_s <= MAX_TOKEN_TTL_S:
            raise ApiError("bad_request", f"a token lives 1 s to {MAX_TOKEN_TTL_S} s, not {ttl_s:g} s")
        issued = time.time() if now is None else now
        expires = issued + ttl_s if not_after is None else min(issued + ttl_s, not_after)
        jti = secrets.token_urlsafe(12)
        claims = {"iss": ISSUER, "room": room, "role": role, "iat": int(issued), "exp": int(expires), "jti": jti}
        return Minted(jwt.encode(claims, self._secret, algorithm=ALGORITHM), room, role, float(int(expires)), jti)

    def verify(self, credential: str) -> Principal:
        """The principal of an API key or a room token.

        Raises:
            ApiError: ``unauthorized`` — not the key and not a valid, unexpired token of this server.
        """
        if self._key is not None and hmac.compare_digest(credential.encode("utf-8", "surrogatepass"), self._key):
            return ADMIN
        if self._secret is None:
            raise _unauthorized("wrong API key", invalid=True)
        try:
            claims = jwt.decode(credential, self._secret, algorithms=[ALGORITHM], issuer=ISSUER,
                                options={"require": ["exp", "iat", "jti", "iss", "room", "role"]})
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired; ask for a new invite link", invalid=True) from None
        except jwt.InvalidTokenError:
            raise _unauthorized("neither the API key nor a valid room token of this server", invalid=True) from None
        room, role = claims.get("room"), claims.get("role")
        if not isinstance(room, str) or role not in DATA_CHANNEL_GRANTS:
            raise _unauthorized("the token names no room or role", invalid=True)
        return Principal("room", room, role, float(claims["exp"]), str(claims["jti"]))

    def authenticate(self, credential: str | None) -> Principal | None:
        """:data:`OPEN` when access control is off; None without credentials; else :meth:`verify`."""
        if not self.enabled:
            return OPEN
        if not credential:
            return None
        return self.verify(credential)


AUTH = web.AppKey("authenticator", Authenticator)


def install(app: web.Application, settings: Settings) -> Authenticator:
    """Put an :class:`Authenticator` for ``settings`` on ``app`` (the middleware and helpers find it there)."""
    app[AUTH] = Authenticator(settings)
    return app[AUTH]


# -- the request's principal -------------------------------------------------------------------------------
def bearer(request: web.Request) -> str | None:
    """The credential of ``Authorization: Bearer X``, or None without the header.

    Raises:
        ApiError: ``unauthorized`` — an ``Authorization`` header of another scheme, or an empty one.
    """
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise _unauthorized("use 'Authorization: Bearer <API key or room token>'")
    return credential.strip()


def principal(request: web.Request) -> Principal:
    """The request's principal (set by :func:`middleware`).

    Raises:
        ApiError: ``unauthorized`` — access control is on and the request has no credentials.
    """
    found = request.get("principal")
    if found is None:
        raise _unauthorized("credentials needed: 'Authorization: Bearer <API key or room token>'")
    return found


def require_admin(request: web.Request) -> Principal:
    """Raises ApiError ``unauthorized`` (no credentials) or ``forbidden`` (a room token): only the API key (or
    access control off) passes."""
    who = principal(request)
    if not who.unrestricted:
        raise ApiError("forbidden", "this needs the operator API key; a room token does not allow it")
    return who


def require_room(request: web.Request, room: str, role: Level = "viewer") -> Principal:
    """Check that the request may act in ``room`` as ``role`` (``viewer``: read/follow; ``speaker``: talk,
    enroll, name). Admin and open principals always may.

    Raises:
        ApiError: ``unauthorized`` (no credentials), ``forbidden`` (a token for another room, or a viewer token
            where a speaker is needed).
    """
    who = principal(request)
    if who.allows(room, role):
        return who
    if who.room != room:
        raise ApiError("forbidden", f"this token is for room {who.room!r}, not {room!r}")
    raise ApiError("forbidden", f"a {who.role} token cannot do this; it needs a speaker token for room {room!r}")


def require_speaker(request: web.Request) -> Principal:
    """Check that the request may act as a speaker somewhere (a speaker token of any room, the key, or access
    control off): for routes that name no room, such as enrolling a voice profile.

    Raises:
        ApiError: ``unauthorized`` (no credentials), ``forbidden`` (a viewer token).
    """
    who = principal(request)
    if who.unrestricted or who.role == "speaker":
        return who
    raise ApiError("forbidden", "a viewer token cannot do this; it needs a speaker token")


def room_scope(request: web.Request) -> str | None:
    """The one room the request's token is limited to, or None for admin and open principals (every room).

    Raises:
        ApiError: ``unauthorized`` — access control is on and the request has no credentials.
    """
    return principal(request).room


def use_token(request: web.Request, token: str | None) -> Principal:
    """For handlers that take a token in the body (:func:`token_in_body`): a header credential wins, else
    ``token`` is verified and becomes the request's principal.

    Raises:
        ApiError: ``unauthorized`` — no credentials at all, or an invalid ``token``.
    """
    if request.get("principal") is None and token:
        request["principal"] = request.config_dict[AUTH].verify(token)
    return principal(request)


def grants(who: Principal) -> frozenset[str] | None:
    """What a connection of ``who`` may do on the data channel; None = everything (admin, open)."""
    return None if who.unrestricted else DATA_CHANNEL_GRANTS[who.role]


# -- client addresses --------------------------------------------------------------------------------------
def _loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def is_loopback_host(host: str) -> bool:
    """Is ``host`` (a bind address) loopback-only? ``localhost`` and 127.0.0.0/8, ``::1`` are; ``0.0.0.0``, ``::``,
    ``""`` and every other name or address are not."""
    return host.strip("[]").lower() == "localhost" or _loopback(host.strip("[]"))


def proxied(request: web.Request) -> bool:
    """The request came through a proxy (it names an original client)."""
    return any(h in request.headers for h in ("X-Forwarded-For", "X-Real-IP", "Forwarded"))


def direct_loopback(request: web.Request) -> bool:
    """A connection from this machine that no proxy relayed (an operator's curl, a local bench)."""
    return _loopback(request.remote) and not proxied(request)


def client_address(request: web.Request) -> str:
    """The client's address for rate limits: the connection's peer, or, when that peer is a local proxy
    (loopback, e.g. the nginx of ``deploy/``), the last address it appended to ``X-Forwarded-For`` (or its
    ``X-Real-IP``). Headers from any other peer are ignored (they could be forged)."""
    remote = request.remote or "unknown"
    if _loopback(remote):
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return last
        if request.headers.get("X-Real-IP"):
            return request.headers["X-Real-IP"].strip()
    return remote


# -- declaring and enforcing the level ------------------------------------------------------------------------
def token_in_body(handler: Callable) -> Callable:
    """Mark a handler that reads a token from its body (JSON offers): the middleware lets a request without an
    ``Authorization`` header through, and the handler calls :func:`use_token`."""
    handler.__token_in_body__ = True
    return handler


def open_on_loopback(handler: Callable) -> Callable:
    """Mark a handler that a direct loopback connection (:func:`direct_loopback`) may call without credentials
    (``/metrics`` for a local Prometheus)."""
    handler.__open_on_loopback__ = True
    return handler


def _protected(path: str) -> bool:
    return path.startswith(PROTECTED_PREFIXES)


@web.middleware
async def middleware(request: web.Request, handler):
    """Authenticate the request (``request["principal"]``) and enforce its route's declared ``auth`` level.

    Raises:
        ApiError: ``unauthorized`` / ``forbidden`` (turned into JSON by :func:`signaling.errors.errors_as_json`).
    """
    authn = request.config_dict[AUTH]
    if not authn.enabled:
        if not authn.warned_proxy and proxied(request):
            authn.warned_proxy = True  # a loopback bind behind a public proxy is an open server too
            log.warning("requests arrive through a proxy but access control is off (no CALLSCRIBE_API_KEY): "
                        "whoever reaches the proxy can do everything")
        request["principal"] = OPEN
        return await handler(request)
    match = request.match_info
    route_handler = match.route.handler
    op = operation_of(route_handler)
    protected = _protected(request.path)
    if op is None and not protected:  # pages, static files, health: open
        request["principal"] = None
        return await handler(request)
    if op is not None and op.auth == "none":
        try:
            request["principal"] = authn.authenticate(bearer(request))
        except ApiError:  # credentials the route does not need are not checked
            request["principal"] = None
        return await handler(request)
    request["principal"] = authn.authenticate(bearer(request))
    if match.http_exception is not None:  # no such route (404) or method (405): say so, but only to a caller
        principal(request)
        return await handler(request)
    if getattr(route_handler, "__open_on_loopback__", False) and direct_loopback(request):
        return await handler(request)
    level = op.auth if op is not None else "admin"
    if level == "admin":
        require_admin(request)
    elif level == "token":
        principal(request)
    elif "room" in match:
        require_room(request, match["room"], "speaker" if level == "speaker" else "viewer")
    elif request["principal"] is None:
        if not getattr(route_handler, "__token_in_body__", False):
            principal(request)  # 401
    elif level == "speaker":
        require_speaker(request)  # the handler checks the room of the body or the stored object (require_room)
    return await handler(request)


# -- POST /api/tokens ---------------------------------------------------------------------------------------
class TokenRequest(BaseModel):
    """Body of ``POST /api/tokens``; ``ttl_s`` in seconds (default ``Settings.token_ttl_s``)."""

    model_config = ConfigDict(extra="forbid")
    room: str = Field(min_length=1, max_length=64, pattern=ROOM_PATTERN)
    role: Role
    ttl_s: int | None = Field(None, ge=60, le=MAX_TOKEN_TTL_S)


class TokenResponse(BaseModel):
    """A minted room token: ``expires_at`` in Unix seconds; ``url`` the invite link's path (the call page for a
    speaker, ``/room/{room}`` for a viewer), relative to the server's origin."""

    token: str
    room: str
    role: Role
    expires_at: float
    url: str


def invite_path(room: str, role: Role, token: str) -> str:
    """The page a token opens: ``/?room=R&token=T`` for a speaker, ``/room/R?token=T`` for a viewer."""
    if role == "viewer":
        return f"/room/{quote(room, safe='')}?{urlencode({'token': token})}"
    return "/?" + urlencode({"room": room, "token": token})


@operation(summary="Mint a room token (an invite link)", body=TokenRequest, response=TokenResponse, auth="token",
           errors=("bad_request", "unauthorized", "forbidden", "auth_disabled"), tags=["access"],
           description="The operator key mints tokens for any room; a speaker token mints tokens for its own room "
           "only, expiring no later than itself (so a speaker's page can copy invite links).")
async def create_token(request: web.Request) -> web.Response:
    authn = request.config_dict[AUTH]
    if not authn.enabled:
        raise ApiError("auth_disabled", "access control is off on this server (no API key): links need no token")
    try:
        body = TokenRequest.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError("bad_request", f'expected {{"room", "role", "ttl_s"?}}: {where}: {first["msg"]}') from None
    who = require_room(request, body.room, "speaker")
    minted = authn.mint(body.room, body.role, body.ttl_s, not_after=who.expires_at)
    return web.json_response(TokenResponse(token=minted.token, room=minted.room, role=minted.role,
                                           expires_at=minted.expires_at,
                                           url=invite_path(minted.room, minted.role, minted.token)).model_dump(),
                             headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/tokens", create_token)


# -- serve: refuse to expose an open server ---------------------------------------------------------------------
def check_exposure(settings: Settings) -> str | None:
    """Decide whether ``serve`` may start with these settings.

    Returns:
        None when it is safe (an API key is set, or the bind address is loopback), else the loud warning to print
        when ``insecure_no_auth`` allows an open server on another address.
    Raises:
        CallscribeError: a non-loopback bind address with neither an API key nor ``insecure_no_auth``, or an API
            key shorter than :data:`MIN_API_KEY_CHARS` characters.
    """
    if settings.api_key is not None:
        if len(settings.api_key) < MIN_API_KEY_CHARS:
            raise CallscribeError(f"the API key is too short: use at least {MIN_API_KEY_CHARS} random characters "
                                  "(e.g. openssl rand -hex 32)")
        return None
    if is_loopback_host(settings.host):
        return None
    if not settings.insecure_no_auth:
        raise CallscribeError(
            f"refusing to serve {settings.host or 'every address'} without access control: anyone who reaches the "
            "port could call, enroll and delete voices and read every transcript. Set an API key "
            "(CALLSCRIBE_API_KEY, or --api-key) and hand out room tokens (callscribe token), or pass "
            "--insecure-no-auth if this network is trusted")
    return (f"WARNING: serving {settings.host or 'every address'} with NO ACCESS CONTROL (--insecure-no-auth): "
            "anyone who can reach this port can make calls, enroll and delete voice profiles and read every "
            "room's transcript")
