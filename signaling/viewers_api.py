"""Read-only room viewers over server-sent events (SSE, https://html.spec.whatwg.org/multipage/server-sent-events.html):
``GET /api/rooms/{room}/events``.

A room can have thousands of viewers without a WebRTC peer each: the stream carries the same JSON messages a
viewer's data channel does (docs/protocol.md) — the backlog first (each marked ``"backlog": true``), the room's
``room`` state, then every live event of the room's calls on any node — one per SSE ``data:`` line, as the default
``message`` event. A comment line every 15 s keeps proxies from closing an idle stream.

Each viewer has a bounded queue (``QUEUE``); a viewer that falls that far behind is told so (``event: error``,
``{"code": "too_slow"}``) and its stream is closed, so one slow reader never holds the room's memory; it may
reconnect (the backlog comes again). Viewers per node are capped by ``Settings.max_sse_viewers`` (``503
server_busy``). Access: a viewer or speaker token of the room, or the API key (``Authorization: Bearer``).
"""

from __future__ import annotations

import asyncio
import json
import secrets

from aiohttp import web
from aiohttp_sse import sse_response

from .apidoc import operation
from .errors import ApiError

QUEUE = 1000
"""Messages a viewer may have waiting before it is dropped as too slow."""
PING_S = 15
_COUNT = web.AppKey("sse_viewers", dict)
_ROOM = {"room": "the room's name"}


def count(app: web.Application) -> int:
    """Viewers following a room over SSE on this node now."""
    return len(app.get(_COUNT, ()))


def add_routes(app: web.Application, rooms_key, settings_key, metrics_key) -> None:
    app[_COUNT] = {}

    def admit(app: web.Application) -> None:
        """Raises: ApiError: ``server_busy`` (503) when ``max_sse_viewers`` viewers follow rooms here already."""
        viewers = app[_COUNT]
        if len(viewers) >= app[settings_key].max_sse_viewers:
            app[metrics_key].refused.labels("server_busy").inc()
            raise ApiError("server_busy", f"{len(viewers)} viewers follow rooms here; retry later",
                           headers={"Retry-After": "5"})

    @operation(summary="Follow a room: its backlog, then its live events, as server-sent events",
               content_type="text/event-stream", auth="room", path=_ROOM, errors=("unauthorized", "forbidden",
               "server_busy"), tags=["rooms"],
               description="The messages of a viewer's data channel, one JSON object per `data:` line: the backlog "
               "(marked `backlog`), the room state, then live `final`, `partial`, `speaker_relabeled`, `sentiment` "
               "and `room` messages of every call in the room, on any node. A viewer too far behind gets `event: "
               "error` with code `too_slow` and the stream ends; reconnect to resume (the backlog comes again).")
    async def events(request: web.Request) -> web.StreamResponse:
        app, name = request.app, request.match_info["room"]
        viewers, metrics = app[_COUNT], app[metrics_key]
        admit(app)
        room = await app[rooms_key].open(name)  # a new room reads its backlog in a worker thread
        admit(app)  # again: other viewers may have come in meanwhile
        queue: asyncio.Queue = asyncio.Queue(QUEUE)
        key = "sse-" + secrets.token_hex(6)
        lagging = asyncio.Event()

        def receive(message: dict) -> None:
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                lagging.set()

        viewers[key] = room.name
        metrics.sse_viewers.inc()
        try:
            async with sse_response(request, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}) \
                    as stream:
                stream.ping_interval = PING_S
                room.subscribe(key, receive, replay=True)
                while stream.is_connected():
                    if lagging.is_set():
                        metrics.sse_dropped.inc()
                        await stream.send(json.dumps({"code": "too_slow", "message": "this viewer fell "
                                                      f"{QUEUE} messages behind; reconnect"}), event="error")
                        break
                    try:
                        message = await asyncio.wait_for(queue.get(), timeout=PING_S)
                    except TimeoutError:
                        continue
                    await stream.send(json.dumps(message, ensure_ascii=False))
        finally:
            room.unsubscribe(key)
            viewers.pop(key, None)
            metrics.sse_viewers.dec()
        return stream

    app.router.add_get("/api/rooms/{room}/events", events)
