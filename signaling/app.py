"""The aiohttp application: SDP offer/answer (JSON and WHIP), health, metrics, ICE settings, static pages.

Routes:

========================  ==================================================================================
``POST /api/offer``       JSON ``{"sdp", "type": "offer", "room"?, "name"?, "language"?, "transcribe"?, "token"?}``
                          → ``200 {"sdp", "type": "answer", "peer_id", "room", "session_url"}``
``DELETE /api/calls/{key}``  hang up (``session_url``: the key is the call's capability; its last utterance
                          is still finalised)
``DELETE /api/peers/{id}`` end any call by peer id (operators: admin when access control is on)
``POST /whip``            WHIP (RFC 9725): body ``application/sdp`` offer, options as query parameters, the room
                          token as bearer → ``201 Created``, the SDP answer as body, ``Location: /whip/{key}``
``DELETE /whip/{key}``    end a WHIP session (with the bearer token when access control is on)
``POST /api/tokens``      mint a room token / invite link (:mod:`signaling.auth`)
``GET /api/ice-servers``  ``{"iceServers": [...]}`` for the page's ``RTCPeerConnection``, TURN credentials minted
                          per request (time-limited, :mod:`turn.credentials`)
``/api/profiles``         voice profiles: list, get, create from an upload, add audio, rename, delete, map;
                          ``/api/identify`` (and ``/batch``): who speaks in an upload (:mod:`profiles_api`)
``/api/sessions``         past sessions: list, read, transcript in each format, recording, delete
                          (:mod:`sessions_api`)
``POST /api/export``      render finals as text, JSON, SRT, WebVTT or RTTM (:mod:`export_api`)
``/api/jobs``             recording analysis: submit, follow (server-sent events), result, export, cancel,
                          name a speaker (:mod:`jobs_api`)
``GET /openapi.json``     the OpenAPI 3.1 document, generated from the routes' models · ``GET /docs`` browse it
                          (:mod:`openapi`)
``/api/rooms/{room}/speakers``  a room's anonymous speakers; name one, optionally saving its voice
                          (:mod:`speakers_api`)
``GET /api/rooms/{room}/events``  follow a room over server-sent events (read-only viewers at scale;
                          :mod:`viewers_api`)
``GET /healthz``          process alive · ``GET /readyz`` models loaded · ``GET /metrics`` Prometheus text
``GET /``                 the pages in ``static/``
``GET /room/{name}``      the live room view (``static/room.html``)
``GET /analyze``          the recording-analysis page (``static/analyze.html``)
========================  ==================================================================================

Errors are JSON ``{"error": {"code", "message"}}`` with a 4xx/5xx status; a full server answers
``503 server_busy`` with ``Retry-After``. Who may call each route: :mod:`signaling.auth` (its middleware checks
every request); offers are rate-limited per client address (:mod:`signaling.limits`, ``429 rate_limited``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from pathlib import Path

from aiohttp import web
from aiortc import RTCSessionDescription
from pydantic import ValidationError
from yarl import URL

from server.cluster.node import ClusterNode
from server.cluster.registry import NodeInfo, cpu_load
from server.compute.runtime import SpeechRuntime
from server.jobs.service import JobService
from server.metrics import Metrics
from server.rooms.history import SessionHistory
from server.rooms.hub import RoomHub
from server.rooms.naming import SpeakerNaming
from server.settings import Settings
from server.store.sessions import SessionStore
from server.stream import events
from server.stream.processor import StreamObserver
from server.webrtc.ice import IceServers
from server.webrtc.peer import CallPeer

from . import (
    auth,
    export_api,
    jobs_api,
    limits,
    openapi,
    profiles_api,
    protocol,
    sessions_api,
    speakers_api,
    viewers_api,
)
from .apidoc import operation
from .datachannel import DataChannelSession
from .errors import ApiError, errors_as_json
from .schemas import Health, Readiness

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
MAX_SDP_BYTES = 64 * 1024
RETRY_AFTER_S = 5

RUNTIME = web.AppKey("runtime", SpeechRuntime)
SETTINGS = web.AppKey("settings", Settings)
PEERS = web.AppKey("peers", dict)
ROOMS = web.AppKey("rooms", RoomHub)
METRICS = web.AppKey("metrics", Metrics)
ICE = web.AppKey("ice", IceServers)
CHANNEL = web.AppKey("channel", DataChannelSession)
OBSERVER = web.AppKey("observer", object)
NAMING = web.AppKey("naming", SpeakerNaming)
CALLS = web.AppKey("calls", dict)
"""capability key → CallPeer: the secret part of each call's session URL."""
CALL_KEY_BYTES = 24
HISTORY = web.AppKey("history", SessionHistory)
JOBS = web.AppKey("jobs", JobService)
CLUSTER = web.AppKey("cluster", ClusterNode)
ROUTE_PARAM = "node"
"""Query parameter of a redirected offer: the node it was sent to, which then takes it without routing again."""


VIEWERS_PER_CALL = 16


def _admit(app: web.Application, listen_only: bool) -> None:
    """Admit the offer or raise ``ApiError("server_busy")`` (503 with ``Retry-After``). Callers count against
    ``max_peers``; room viewers (no audio, no model work) only against ``VIEWERS_PER_CALL × max_peers``."""
    runtime, peers, settings = app[RUNTIME], app[PEERS], app[SETTINGS]
    callers = sum(not p.listen_only for p in peers.values())
    reason = None
    if listen_only:
        if len(peers) - callers >= VIEWERS_PER_CALL * settings.max_peers:
            reason = f"{len(peers) - callers} viewers connected"
    elif callers >= settings.max_peers:
        reason = f"{callers} calls in progress (the limit is {settings.max_peers})"
    elif runtime.pool.busy:
        reason = f"{runtime.pool.depth} decodes are waiting"
    if reason is None:
        return
    app[METRICS].refused.labels("server_busy").inc()
    raise ApiError("server_busy", f"server too busy: {reason}; retry later",
                   headers={"Retry-After": str(RETRY_AFTER_S)})


def node_info(app: web.Application) -> NodeInfo:
    """This node's current load, as the registry and the routing see it (a node whose runtime has no speech
    recogniser loaded serves viewers only: it has no call slots)."""
    runtime, peers, settings, cluster = app[RUNTIME], app[PEERS], app[SETTINGS], app[CLUSTER]
    callers = sum(not p.listen_only for p in peers.values())
    rooms = app[ROOMS]
    held = rooms.held_rooms()
    slots = settings.max_peers if runtime.asr is not None else 0
    return NodeInfo(id=cluster.id, url=cluster.url, callers=callers, max_peers=slots,
                    viewers=len(peers) - callers + viewers_api.count(app), queue=runtime.pool.depth,
                    busy=runtime.pool.busy, cpu=cpu_load(), rooms=held)


def _route(request: web.Request, room: str | None, listen_only: bool, path: str) -> None:
    """In a cluster, send a call that another node should take there: ``307 Temporary Redirect`` (RFC 9725
    §4.6 for WHIP; the JSON offer the same way), the method and body kept by the client, ``?node=`` naming the
    target so that it takes the call without routing it again. Viewers stay where they are (no decode work).

    Raises:
        web.HTTPTemporaryRedirect: to the chosen node.
    """
    cluster = request.app.get(CLUSTER)
    if cluster is None or listen_only or request.query.get(ROUTE_PARAM) == cluster.id:
        return
    target = cluster.route(node_info(request.app), room)
    if target is None or target.id == cluster.id or not target.url:
        return  # nobody has room (admission answers 503) or this node should take it
    query = {k: v for k, v in request.query.items() if k != ROUTE_PARAM}
    location = URL(target.url + path).with_query({**query, ROUTE_PARAM: target.id})
    request.app[METRICS].redirected.inc()
    log.info("offer redirected", extra={"node": target.id, "room": room})
    raise web.HTTPTemporaryRedirect(location=str(location), headers={"Cache-Control": "no-store"})


def _session_path(app: web.Application, path: str) -> str:
    """A call's own URL: absolute on this node in a cluster (the client's later requests must reach the node that
    holds the call, whichever node it first asked), else a path on the server."""
    cluster = app.get(CLUSTER)
    return cluster.url + path if cluster is not None else path


def _listen_only(sdp: str) -> bool:
    """An offer without an audio m-line is a room viewer (data channel only)."""
    return "m=audio" not in sdp


async def _start_call(app: web.Application, sdp: str, sdp_type: str, options: protocol.SessionOptions, *,
                      who: auth.Principal = auth.OPEN,
                      address: str | None = None) -> tuple[CallPeer, RTCSessionDescription, str]:
    """Create a peer for an offer: the peer, its answer and the call's capability key (the secret part of its
    session URL). ``who`` decides the data-channel grants (:func:`signaling.auth.grants`); ``address`` is what the
    call's enrollments count against (None: not limited).

    Raises:
        ApiError: ``not_an_offer`` or ``bad_sdp`` (400).
    """
    if sdp_type != "offer":
        raise ApiError("not_an_offer", f"expected an SDP offer, got type {sdp_type!r}")
    if not sdp.startswith("v=0"):
        raise ApiError("bad_sdp", "the SDP does not start with 'v=0'")
    listen_only = _listen_only(sdp)
    room = await app[ROOMS].open(options.room)  # a new room reads its backlog in a worker thread
    _admit(app, listen_only=listen_only)  # again: other offers may have been admitted meanwhile
    peers, calls, channel = app[PEERS], app[CALLS], app[CHANNEL]
    key = secrets.token_urlsafe(CALL_KEY_BYTES)

    def on_closed(peer: CallPeer) -> None:
        calls.pop(key, None)
        channel.forget(peer.id)
        if peers.pop(peer.id, None) is not None:
            app[METRICS].peers.dec()

    peer = CallPeer(app[RUNTIME], room, on_closed, handler=channel, ice=app[ICE],
                    metrics=app[METRICS], settings=app[SETTINGS], language=options.language, caller=options.name,
                    transcribe=options.transcribe, listen_only=listen_only, observer=app[OBSERVER],
                    grants=auth.grants(who))
    peers[peer.id] = peer
    calls[key] = peer
    channel.register(peer.id, address)
    app[METRICS].peers.inc()
    app[METRICS].peers_total.inc()
    try:
        answer = await peer.answer(RTCSessionDescription(sdp=sdp, type="offer"))
    except Exception as exc:  # noqa: BLE001 -- aiortc raises ValueError, AttributeError, … on malformed SDP
        await peer.close("bad offer")
        raise ApiError("bad_sdp", f"cannot use this SDP offer: {exc or type(exc).__name__}") from None
    return peer, answer, key


def _authorize_offer(who: auth.Principal, options: protocol.SessionOptions,
                     listen_only: bool) -> protocol.SessionOptions:
    """The offer policy: a token's room fills in a missing ``room``; another room is refused; an offer with audio
    needs a speaker token (a viewer may only follow the room).

    Raises:
        ApiError: ``forbidden`` (403).
    """
    if who.unrestricted:
        return options
    room = options.room or who.room
    if room != who.room:
        raise ApiError("forbidden", f"this token is for room {who.room!r}, not {room!r}")
    if not listen_only and who.role != "speaker":
        raise ApiError("forbidden", "a viewer token cannot send audio: make an offer without an audio track to "
                       "follow the room, or ask for a speaker link")
    return options.model_copy(update={"room": room})


def _check_body(request: web.Request, content_type: str, what: str) -> None:
    """Raises ``ApiError``: ``unsupported_media_type`` (415) or ``too_large`` (413)."""
    if request.content_type != content_type:
        raise ApiError("unsupported_media_type", f"{what} are {content_type}")
    if (request.content_length or 0) > MAX_SDP_BYTES:
        raise ApiError("too_large", f"offers are limited to {MAX_SDP_BYTES} bytes")


_CALL_ERRORS = ("bad_request", "bad_sdp", "not_an_offer", "unauthorized", "forbidden", "too_large",
                "unsupported_media_type", "rate_limited", "server_busy")


@auth.token_in_body
@operation(summary="Make a call: a JSON SDP offer, answered with the SDP answer and the call's session URL",
           body=protocol.OfferRequest, response=protocol.OfferAnswer, auth="room", errors=_CALL_ERRORS,
           tags=["calls"], description="The token goes in `Authorization: Bearer` or in the body's `token`. An offer "
           "with an audio track needs a speaker token, one without (a room viewer) a viewer or speaker token; the "
           "token's room is the default `room`. `DELETE` the answer's `session_url` to hang up.")
async def offer(request: web.Request) -> web.Response:
    if request.get("principal") is None and request.content_type != "application/json":
        auth.principal(request)  # no header and no readable body token: 401 before anything else
    _check_body(request, "application/json", "JSON offers")
    try:
        body = json.loads(await request.text())
        if not isinstance(body, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        auth.principal(request)
        raise ApiError("bad_request", f'expected {{"sdp": str, "type": "offer", options…}}: {exc}') from None
    token = body.get("token")
    who = auth.use_token(request, token if isinstance(token, str) else None)
    try:
        parsed = protocol.OfferRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError("bad_request", f'expected {{"sdp": str, "type": "offer", options…}}: {where}: '
                       f'{first["msg"]}') from None
    fields = set(protocol.SessionOptions.model_fields)
    options = protocol.SessionOptions.model_validate(parsed.model_dump(include=fields))
    listen_only = _listen_only(parsed.sdp)
    options = _authorize_offer(who, options, listen_only)
    limits.check(request, "offer")
    _route(request, options.room, listen_only, "/api/offer")
    _admit(request.app, listen_only=listen_only)
    peer, answer, key = await _start_call(request.app, parsed.sdp, parsed.type, options, who=who,
                                          address=limits.limited_address(request))
    session_url = _session_path(request.app, f"/api/calls/{key}")
    return web.json_response(protocol.OfferAnswer(sdp=answer.sdp, peer_id=peer.id, room=peer.room.name,
                                                  session_url=session_url).model_dump())


@operation(summary="WHIP (RFC 9725): publish with an SDP offer; the answer's Location is the session URL",
           query=protocol.SessionOptions, request_type="application/sdp", content_type="application/sdp",
           status=201, auth="room", errors=_CALL_ERRORS, tags=["calls"],
           description="The room token (or the API key) is the bearer token (RFC 9725 §4.3). `DELETE` the "
           "`Location` with the same bearer token to end the session.")
async def whip(request: web.Request) -> web.Response:
    who = auth.principal(request)
    _check_body(request, "application/sdp", "WHIP offers (RFC 9725)")
    try:
        query = dict(request.query)
        if "transcribe" in query:
            query["transcribe"] = query["transcribe"].lower() not in ("0", "false", "no")
        options = protocol.SessionOptions(**query)
    except ValidationError as exc:
        raise ApiError("bad_request", f"bad query options: {exc.errors()[0]['msg']}") from None
    sdp = await request.text()
    listen_only = _listen_only(sdp)
    options = _authorize_offer(who, options, listen_only)
    limits.check(request, "offer")
    _route(request, options.room, listen_only, "/whip")
    _admit(request.app, listen_only=listen_only)
    _, answer, key = await _start_call(request.app, sdp, "offer", options, who=who,
                                       address=limits.limited_address(request))
    return web.Response(status=201, text=answer.sdp, content_type="application/sdp",
                        headers={"Location": _session_path(request.app, f"/whip/{key}")})


def _call_of(request: web.Request) -> CallPeer:
    peer = request.app[CALLS].get(request.match_info["key"])
    if peer is None:
        raise ApiError("not_found", "no such call (it has ended, or this is not its session URL)")
    return peer


@operation(summary="Hang up: end the call of this session URL (its last utterance is still finalised)",
           status=204, auth="none", errors=("not_found",), tags=["calls"],
           description="The URL's key is the credential: only whoever made the call has it.")
async def end_session(request: web.Request) -> web.Response:
    await _call_of(request).close("hung up by client")
    return web.Response(status=204)


@operation(summary="WHIP: end the session (RFC 9725 §4.2)", status=200, content_type="text/plain", auth="room",
           errors=("unauthorized", "forbidden", "not_found"), tags=["calls"],
           description="With access control on, send the bearer token of the offer (or any for the call's room).")
async def whip_delete(request: web.Request) -> web.Response:
    peer = _call_of(request)
    auth.require_room(request, peer.room.name)
    await peer.close("deleted by WHIP client")
    return web.Response(status=200)


@operation(summary="End any call by its peer id (operators; callers hang up with their session URL)", status=204,
           auth="admin", errors=("unauthorized", "forbidden", "not_found"), tags=["calls"])
async def end_call(request: web.Request) -> web.Response:
    peer = request.app[PEERS].get(request.match_info["peer_id"])
    if peer is None:
        raise ApiError("not_found", "no such call")
    await peer.close("deleted by operator")
    return web.Response(status=204)


@operation(summary="ICE servers for RTCPeerConnection (TURN credentials minted per request)",
           response=protocol.IceServersAnswer, auth="token", errors=("unauthorized",), tags=["calls"])
async def ice_servers(request: web.Request) -> web.Response:
    user = "web-" + secrets.token_hex(4)
    return web.json_response({"iceServers": request.app[ICE].for_user(user)},
                             headers={"Cache-Control": "no-store"})


@operation(summary="Liveness: the process answers", response=Health, auth="none", tags=["operations"])
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@operation(summary="Readiness: the models are loaded (503 with the same body while not)", response=Readiness,
           auth="none", tags=["operations"], extra={"responses": {"503": {
               "description": "not ready yet", "content": {"application/json": {"schema": {
                   "$ref": "#/components/schemas/Readiness"}}}}}})
async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    ready = runtime.asr is not None
    return web.json_response({"ready": ready, "peers": len(request.app[PEERS]), "queue": runtime.pool.depth},
                             status=200 if ready else 503)


@auth.open_on_loopback
@operation(summary="Prometheus metrics", content_type="text/plain", auth="admin",
           errors=("unauthorized", "forbidden"), tags=["operations"],
           description="Open to direct connections from loopback (a local Prometheus); through a proxy or from "
           "elsewhere it needs the API key.")
async def prometheus_metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), content_type="text/plain", charset="utf-8")


async def index(request: web.Request) -> web.StreamResponse:
    page = STATIC_DIR / "index.html"
    if page.is_file():
        return web.FileResponse(page)
    return web.Response(text="callscribe is running. POST an SDP offer to /api/offer or /whip.\n")


async def analyze_page(request: web.Request) -> web.StreamResponse:
    page = STATIC_DIR / "analyze.html"
    if page.is_file():
        return web.FileResponse(page)
    raise ApiError("not_found", "no analysis page is installed")


async def room_page(request: web.Request) -> web.StreamResponse:
    page = STATIC_DIR / "room.html"
    if page.is_file():
        return web.FileResponse(page)
    raise ApiError("not_found", "no room page is installed")


async def _cluster_heartbeat(app: web.Application):
    """aiohttp cleanup context: this node's heartbeat and room bus from startup to shutdown."""
    task = asyncio.get_running_loop().create_task(app[CLUSTER].run(lambda: node_info(app)))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


SHUTDOWN = events.Error(code="server_shutdown", message="this server is shutting down: call again (another node "
                        "takes the call, or this one once it is back)").model_dump(mode="json")


async def _close_all_peers(app: web.Application) -> None:
    """On shutdown: tell every connection first (the call page calls its room again when its data channel then
    closes), then close the calls (each finalises and delivers its utterance in progress)."""
    peers = list(app[PEERS].values())
    for peer in peers:
        peer.send(SHUTDOWN)
    await asyncio.gather(*(p.close("server shutdown") for p in peers), return_exceptions=True)


def build_app(runtime: SpeechRuntime, settings: Settings, *, ice: IceServers, rooms: RoomHub,
              metrics: Metrics | None = None, observer: StreamObserver | None = None,
              sessions: SessionStore, jobs: JobService | None = None,
              cluster: ClusterNode | None = None) -> web.Application:
    """The signaling application over an already loaded :class:`SpeechRuntime` and the collaborators the
    composition root (:func:`server.compose.create_app`) passes in.

    ``settings`` gives the server-side limits: peers, idle timeout, message size. ``observer`` is handed to
    every call's speech processor (benchmarks). ``jobs`` serves the analysis-job routes (none without it).
    ``cluster``: this node of a cluster (heartbeat from startup to shutdown, offers routed by load).
    """
    app = web.Application(middlewares=[errors_as_json, auth.middleware], client_max_size=MAX_SDP_BYTES)
    auth.install(app, settings)
    limits.install(app, settings)
    app[RUNTIME] = runtime
    app[SETTINGS] = settings
    app[PEERS] = {}
    app[CALLS] = {}
    app[ROOMS] = rooms
    app[ICE] = ice
    app[METRICS] = metrics or Metrics(queue_depth=lambda: runtime.pool.depth)
    app[NAMING] = SpeakerNaming(rooms, runtime)
    app[CHANNEL] = DataChannelSession(settings.max_message_bytes, app[METRICS], app[NAMING], app[limits.LIMITS])
    app[OBSERVER] = observer
    app[HISTORY] = SessionHistory(sessions)
    app.router.add_post("/api/offer", offer)
    app.router.add_delete("/api/calls/{key}", end_session)
    app.router.add_delete("/api/peers/{peer_id}", end_call)
    app.router.add_post("/whip", whip)
    app.router.add_delete("/whip/{key}", whip_delete)
    app.router.add_get("/api/ice-servers", ice_servers)
    auth.add_routes(app)
    profiles_api.add_routes(app, RUNTIME, SETTINGS)
    export_api.add_routes(app)
    speakers_api.add_routes(app, NAMING)
    sessions_api.add_routes(app, HISTORY)
    if jobs is not None:
        app[JOBS] = jobs
        jobs_api.add_routes(app, JOBS)
        app.router.add_get("/analyze", analyze_page)
    viewers_api.add_routes(app, ROOMS, SETTINGS, METRICS)
    if cluster is not None:
        app[CLUSTER] = cluster
        app.cleanup_ctx.append(_cluster_heartbeat)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus_metrics)
    app.router.add_get("/", index)
    app.router.add_get("/room/{name}", room_page)
    if STATIC_DIR.is_dir():
        app.router.add_static("/static/", STATIC_DIR)
    openapi.add_routes(app)  # /openapi.json, /docs: the document is built from every route on its first request
    app.on_shutdown.append(_close_all_peers)
    return app
