"""Transcript export over HTTP: the pages send the finals they show and get back the file, rendered by the
one implementation of the formats (:mod:`server.export.formats`).

==============================  ===================================================================
``POST /api/export?format=F``   JSON ``{"finals": [final, …], "meta": {…}?}`` with ``F`` one of ``text``,
                                ``json``, ``srt``, ``vtt`` → ``200`` the file (``Content-Disposition``
                                names it when ``meta.room`` is given)
==============================  ===================================================================

Each final is a ``final`` event as the data channel delivered it (protocol 2); the room fields ``peer_id``
and ``caller`` are kept in the JSON export. Errors: ``400 bad_request`` (unknown format, malformed body or
final), ``413 too_large``.
"""

from __future__ import annotations

import json

from aiohttp import web
from pydantic import ValidationError

from server.export.formats import FORMATS, render
from server.stream.events import Final

from .errors import ApiError

MAX_EXPORT_BYTES = 8 * 1024 * 1024
ROOM_FIELDS = ("peer_id", "caller")
"""Fields a room adds to each final (:mod:`server.rooms.memory`), kept per utterance in the JSON export."""


def _finals(body: object) -> tuple[list[Final], list[dict], dict]:
    if not isinstance(body, dict) or not isinstance(body.get("finals"), list):
        raise ApiError("bad_request", 'expected JSON {"finals": [final, …], "meta"?: {…}}')
    meta = body.get("meta") or {}
    if not isinstance(meta, dict):
        raise ApiError("bad_request", '"meta" must be an object')
    finals, extra = [], []
    for i, item in enumerate(body["finals"]):
        if not isinstance(item, dict):
            raise ApiError("bad_request", f"finals[{i}] is not an object")
        try:
            finals.append(Final.model_validate({k: v for k, v in item.items() if k in Final.model_fields}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "final"
            raise ApiError("bad_request", f"finals[{i}].{where}: {first['msg']}") from None
        extra.append({k: item[k] for k in ROOM_FIELDS if k in item})
    return finals, extra, meta


async def export(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "")
    if fmt not in FORMATS:
        raise ApiError("bad_request", f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if (request.content_length or 0) > MAX_EXPORT_BYTES:
        raise ApiError("too_large", f"exports are limited to {MAX_EXPORT_BYTES} bytes")
    try:
        body = json.loads(await request.text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError("bad_request", f"not JSON: {exc}") from None
    finals, extra, meta = _finals(body)
    spec = FORMATS[fmt]
    text = render(finals, fmt, meta, extra=extra)
    headers = {"Cache-Control": "no-store"}
    if isinstance(meta.get("room"), str):
        name = "".join(c for c in meta["room"] if c.isalnum() or c in "-_.") or "call"
        headers["Content-Disposition"] = f'attachment; filename="callscribe-{name}.{spec.extension}"'
    return web.Response(text=text, content_type=spec.mime, charset="utf-8", headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/export", export)
