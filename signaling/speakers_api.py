"""Naming anonymous speakers over REST and the data channel (the rules: :mod:`server.rooms.naming`).

==================================================  ======================================================
``GET /api/rooms/{room}/speakers``                  ``{"speakers": [{speaker_id, speaker, speaker_kind,
                                                    speech_s, utterances}]}``
``POST /api/rooms/{room}/speakers/{speaker_id}/name``  JSON ``{"name", "save"?, "extend"?}`` →
                                                    ``200 {"speaker_id", "name", "profile_id"}``
==================================================  ======================================================

Errors: ``404 not_found`` (room or speaker), ``409 name_taken`` / ``not_anonymous``, ``400 invalid_name`` /
``profile_error`` (too little speech to save) / ``bad_request``, ``503 store_error``.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.rooms.naming import SpeakerNaming

from .errors import ApiError
from .protocol import SpeakerNamed


class NameRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    save: bool = False
    extend: bool = False


async def name_speaker(naming: SpeakerNaming, room: str, speaker_id: str, name: str, *, save: bool,
                       extend: bool) -> SpeakerNamed:
    """Name the speaker off the event loop, publish the relabel to the room, return the acknowledgement.

    Raises:
        CallscribeError: see :meth:`SpeakerNaming.name`.
    """
    named = await asyncio.to_thread(naming.name, room, speaker_id, name, save=save, extend=extend)
    naming.room(room).publish(named.event, peer_id="")
    return SpeakerNamed(speaker_id=speaker_id, name=named.event.speaker, profile_id=named.profile_id)


def add_routes(app: web.Application, naming_key: web.AppKey) -> None:
    async def list_speakers(request: web.Request) -> web.Response:
        summaries = request.app[naming_key].speakers(request.match_info["room"])
        return web.json_response({"speakers": [
            {"speaker_id": s.identity.id, "speaker": s.identity.label, "speaker_kind": s.identity.kind,
             "speech_s": round(s.speech_s, 2), "utterances": s.utterances} for s in summaries]})

    async def name(request: web.Request) -> web.Response:
        try:
            body = NameRequest.model_validate(json.loads(await request.text()))
        except (ValueError, ValidationError) as exc:
            raise ApiError("bad_request", f'expected {{"name": str, "save"?: bool, "extend"?: bool}}: {exc}') from None
        ack = await name_speaker(request.app[naming_key], request.match_info["room"],
                                 request.match_info["speaker_id"], body.name, save=body.save, extend=body.extend)
        return web.json_response(ack.model_dump(exclude={"type"}))

    app.router.add_get("/api/rooms/{room}/speakers", list_speakers)
    app.router.add_post("/api/rooms/{room}/speakers/{speaker_id}/name", name)
