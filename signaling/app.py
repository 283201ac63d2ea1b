"""The aiohttp application: SDP offer/answer (JSON and WHIP), health, metrics, ICE settings, static pages.

Routes:

========================  ==================================================================================
``POST /api/offer``       JSON ``{"sdp", "type": "offer", "room"?, "name"?, "language"?, "transcribe"?}``
                          → ``200 {"sdp", "type": "answer", "peer_id", "room"}``
``DELETE /api/peers/{id}`` end a call (its last utterance is still finalised)
``POST /whip``            WHIP (RFC 9725): body ``application/sdp`` offer, options as query parameters →
                          ``201 Created``, the SDP answer as body, ``Location: /whip/{id}``
``DELETE /whip/{id}``     end a WHIP session
``GET /api/ice-servers``  ``{"iceServers": [...]}`` for the page's ``RTCPeerConnection``, TURN credentials minted
                          per request (time-limited, :mod:`turn.credentials`)
``/api/profiles``         voice profiles: list, enroll from an upload, rename, delete (:mod:`profiles_api`)
``POST /api/export``      render finals as text, JSON, SRT or WebVTT (:mod:`export_api`)
``/api/rooms/{room}/speakers``  a room's anonymous speakers; name one, optionally saving its voice
                          (:mod:`speakers_api`)
``GET /healthz``          process alive · ``GET /readyz`` models loaded · ``GET /metrics`` Prometheus text
``GET /``                 the pages in ``static/``
``GET /room/{name}``      the live room view (``static/room.html``)
========================  ==================================================================================

Errors are JSON ``{"error": {"code", "message"}}`` with a 4xx/5xx status; a full server answers
``503 server_busy`` with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from pathlib import Path

from aiohttp import web
from aiortc import RTCSessionDescription
from pydantic import ValidationError

from server.compute.runtime import SpeechRuntime
from server.metrics import Metrics
from server.rooms.hub import RoomHub
from server.rooms.naming import SpeakerNaming
from server.settings import Settings
from server.stream.processor import StreamObserver
from server.webrtc.ice import IceServers
from server.webrtc.peer import CallPeer

from . import export_api, profiles_api, protocol, speakers_api
from .datachannel import DataChannelSession
from .errors import ApiError, errors_as_json

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


def _listen_only(sdp: str) -> bool:
    """An offer without an audio m-line is a room viewer (data channel only)."""
    return "m=audio" not in sdp


async def _start_call(app: web.Application, sdp: str, sdp_type: str,
                      options: protocol.SessionOptions) -> tuple[CallPeer, RTCSessionDescription]:
    """Create a peer for an offer.

    Raises:
        ApiError: ``not_an_offer`` or ``bad_sdp`` (400).
    """
    if sdp_type != "offer":
        raise ApiError("not_an_offer", f"expected an SDP offer, got type {sdp_type!r}")
    if not sdp.startswith("v=0"):
        raise ApiError("bad_sdp", "the SDP does not start with 'v=0'")
    peers = app[PEERS]

    def on_closed(peer: CallPeer) -> None:
        if peers.pop(peer.id, None) is not None:
            app[METRICS].peers.dec()

    peer = CallPeer(app[RUNTIME], app[ROOMS].get(options.room), on_closed, handler=app[CHANNEL], ice=app[ICE],
                    metrics=app[METRICS], settings=app[SETTINGS], language=options.language, caller=options.name,
                    transcribe=options.transcribe, listen_only=_listen_only(sdp), observer=app[OBSERVER])
    peers[peer.id] = peer
    app[METRICS].peers.inc()
    app[METRICS].peers_total.inc()
    try:
        answer = await peer.answer(RTCSessionDescription(sdp=sdp, type="offer"))
    except Exception as exc:  # noqa: BLE001 -- aiortc raises ValueError, AttributeError, … on malformed SDP
        await peer.close("bad offer")
        raise ApiError("bad_sdp", f"cannot use this SDP offer: {exc or type(exc).__name__}") from None
    return peer, answer


def _check_body(request: web.Request, content_type: str, what: str) -> None:
    """Raises ``ApiError``: ``unsupported_media_type`` (415) or ``too_large`` (413)."""
    if request.content_type != content_type:
        raise ApiError("unsupported_media_type", f"{what} are {content_type}")
    if (request.content_length or 0) > MAX_SDP_BYTES:
        raise ApiError("too_large", f"offers are limited to {MAX_SDP_BYTES} bytes")


async def offer(request: web.Request) -> web.Response:
    _check_body(request, "application/json", "JSON offers")
    try:
        body = json.loads(await request.text())
        if not isinstance(body, dict):
            raise ValueError("not an object")
        sdp, sdp_type = body.pop("sdp"), body.pop("type")
        if not isinstance(sdp, str) or not isinstance(sdp_type, str):
            raise ValueError("sdp and type must be strings")
        options = protocol.SessionOptions(**body)
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise ApiError("bad_request", f'expected {{"sdp": str, "type": "offer", options…}}: {exc}') from None
    _admit(request.app, listen_only=_listen_only(sdp))
    peer, answer = await _start_call(request.app, sdp, sdp_type, options)
    return web.json_response({"sdp": answer.sdp, "type": answer.type, "peer_id": peer.id, "room": peer.room.name})


async def whip(request: web.Request) -> web.Response:
    _check_body(request, "application/sdp", "WHIP offers (RFC 9725)")
    try:
        query = dict(request.query)
        if "transcribe" in query:
            query["transcribe"] = query["transcribe"].lower() not in ("0", "false", "no")
        options = protocol.SessionOptions(**query)
    except ValidationError as exc:
        raise ApiError("bad_request", f"bad query options: {exc.errors()[0]['msg']}") from None
    sdp = await request.text()
    _admit(request.app, listen_only=_listen_only(sdp))
    peer, answer = await _start_call(request.app, sdp, "offer", options)
    return web.Response(status=201, text=answer.sdp, content_type="application/sdp",
                        headers={"Location": f"/whip/{peer.id}"})


async def end_call(request: web.Request) -> web.Response:
    peer = request.app[PEERS].get(request.match_info["peer_id"])
    if peer is None:
        raise ApiError("not_found", "no such call")
    await peer.close("deleted by client")
    return web.Response(status=200 if request.path.startswith("/whip") else 204)


async def ice_servers(request: web.Request) -> web.Response:
    user = "web-" + secrets.token_hex(4)
    return web.json_response({"iceServers": request.app[ICE].for_user(user)},
                             headers={"Cache-Control": "no-store"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    ready = runtime.asr is not None
    return web.json_response({"ready": ready, "peers": len(request.app[PEERS]), "queue": runtime.pool.depth},
                             status=200 if ready else 503)


async def prometheus_metrics(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), content_type="text/plain", charset="utf-8")


async def index(request: web.Request) -> web.StreamResponse:
    page = STATIC_DIR / "index.html"
    if page.is_file():
        return web.FileResponse(page)
    return web.Response(text="callscribe is running. POST an SDP offer to /api/offer or /whip.\n")


async def room_page(request: web.Request) -> web.StreamResponse:
    page = STATIC_DIR / "room.html"
    if page.is_file():
        return web.FileResponse(page)
    raise ApiError("not_found", "no room page is installed")


async def _close_all_peers(app: web.Application) -> None:
    await asyncio.gather(*(p.close("server shutdown") for p in list(app[PEERS].values())), return_exceptions=True)


def build_app(runtime: SpeechRuntime, settings: Settings, *, ice: IceServers, rooms: RoomHub,
              metrics: Metrics | None = None, observer: StreamObserver | None = None) -> web.Application:
    """The signaling application over an already loaded :class:`SpeechRuntime` and the collaborators the
    composition root (:func:`server.compose.create_app`) passes in.

    ``settings`` gives the server-side limits: peers, idle timeout, message size. ``observer`` is handed to
    every call's speech processor (benchmarks).
    """
    app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_SDP_BYTES)
    app[RUNTIME] = runtime
    app[SETTINGS] = settings
    app[PEERS] = {}
    app[ROOMS] = rooms
    app[ICE] = ice
    app[METRICS] = metrics or Metrics(queue_depth=lambda: runtime.pool.depth)
    app[NAMING] = SpeakerNaming(rooms, runtime)
    app[CHANNEL] = DataChannelSession(settings.max_message_bytes, app[METRICS], app[NAMING])
    app[OBSERVER] = observer
    app.router.add_post("/api/offer", offer)
    app.router.add_delete("/api/peers/{peer_id}", end_call)
    app.router.add_post("/whip", whip)
    app.router.add_delete("/whip/{peer_id}", end_call)
    app.router.add_get("/api/ice-servers", ice_servers)
    profiles_api.add_routes(app, RUNTIME)
    export_api.add_routes(app)
    speakers_api.add_routes(app, NAMING)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus_metrics)
    app.router.add_get("/", index)
    app.router.add_get("/room/{name}", room_page)
    if STATIC_DIR.is_dir():
        app.router.add_static("/static/", STATIC_DIR)
    app.on_shutdown.append(_close_all_peers)
    return app
