"""Transcript export over HTTP: the pages send the finals they show and get back the file, rendered by the
one implementation of the formats (:mod:`server.export.formats`).

==============================  ===================================================================
``POST /api/export?format=F``   JSON :class:`~signaling.schemas.ExportRequest` ``{"finals": [final, …],
                                "meta": {…}?}`` with ``F`` one of ``text``, ``json``, ``srt``, ``vtt``,
                                ``rttm`` → ``200`` the file (``Content-Disposition`` names it when
                                ``meta.room`` is given)
==============================  ===================================================================

Each final is a ``final`` event as the data channel delivered it (protocol 3); the room fields ``peer_id``
and ``caller`` are kept in the JSON export, other unknown fields are ignored. Errors: ``400 bad_request``
(unknown format, malformed body or final; the message names the first wrong field), ``413 too_large``
(over :data:`MAX_EXPORT_BYTES`).
"""

from __future__ import annotations

from aiohttp import web

from server.export.formats import FORMATS, render
from server.stream.events import Final

from .apidoc import operation, read_json, read_query
from .schemas import ExportQuery, ExportRequest

MAX_EXPORT_BYTES = 8 * 1024 * 1024
"""An hour-long meeting's finals with word timings are about 2 MB of JSON."""
ROOM_FIELDS = ("peer_id", "caller")
"""Fields a room adds to each final (:mod:`server.rooms.memory`), kept per utterance in the JSON export."""


@operation(summary="Render finals as a transcript file (text, JSON, SRT, WebVTT, RTTM)", body=ExportRequest,
           query=ExportQuery, content_type="text/plain", auth="token", errors=("bad_request", "too_large"),
           tags=["export"], extra={"responses": {"200": {"content": {
               spec.mime: {"schema": {"type": "string"}} for spec in FORMATS.values()}}}},
           description="The same renderer as `callscribe transcribe --format`. The media type follows the format: "
           + ", ".join(f"`{name}` {spec.mime}" for name, spec in FORMATS.items()) + ".")
async def export(request: web.Request) -> web.Response:
    fmt = read_query(request, ExportQuery).format
    body = await read_json(request, ExportRequest, max_bytes=MAX_EXPORT_BYTES)
    finals = [Final.model_validate(f.model_dump(include=set(Final.model_fields))) for f in body.finals]
    extra = [f.model_dump(include=set(ROOM_FIELDS), exclude_none=True) for f in body.finals]
    spec = FORMATS[fmt]
    text = render(finals, fmt, body.meta, extra=extra)
    headers = {"Cache-Control": "no-store"}
    if isinstance(body.meta.get("room"), str):
        name = "".join(c for c in body.meta["room"] if c.isalnum() or c in "-_.") or "call"
        headers["Content-Disposition"] = f'attachment; filename="callscribe-{name}.{spec.extension}"'
    return web.Response(text=text, content_type=spec.mime, charset="utf-8", headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/export", export)
