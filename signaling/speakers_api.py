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

from aiohttp import web

from server.rooms.naming import SpeakerNaming

from .apidoc import operation, read_json
from .protocol import SpeakerNamed
from .schemas import NameRequest, SpeakerList, SpeakerNamedBody, SpeakerSummary

_ROOM = "the room's name"


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
    @operation(summary="A room's speakers (anonymous voices, named or saved ones included)", response=SpeakerList,
               auth="room", path={"room": _ROOM}, errors=("not_found",), tags=["rooms"])
    async def list_speakers(request: web.Request) -> web.Response:
        summaries = request.app[naming_key].speakers(request.match_info["room"])
        return web.json_response(SpeakerList(speakers=[
            SpeakerSummary(speaker_id=s.identity.id, speaker=s.identity.label, speaker_kind=s.identity.kind,
                           speech_s=round(s.speech_s, 2), utterances=s.utterances) for s in summaries
        ]).model_dump(mode="json"))

    @operation(summary="Name a room's anonymous speaker, optionally saving the voice as a profile",
               body=NameRequest, response=SpeakerNamedBody, auth="speaker",
               path={"room": _ROOM, "speaker_id": "the speaker's id, e.g. anon:2"},
               errors=("bad_request", "invalid_name", "profile_error", "not_found", "name_taken", "not_anonymous",
                       "too_large", "store_error"), tags=["rooms"],
               description="Everyone in the room gets a `speaker_relabeled` event. With `save` the speaker's speech "
               "so far becomes a voice profile (`extend`: added to the profile of that name); a name that is a "
               "profile's is `409 name_taken` without `extend`.")
    async def name(request: web.Request) -> web.Response:
        body = await read_json(request, NameRequest)
        ack = await name_speaker(request.app[naming_key], request.match_info["room"],
                                 request.match_info["speaker_id"], body.name, save=body.save, extend=body.extend)
        return web.json_response(SpeakerNamedBody(**ack.model_dump(exclude={"type"})).model_dump(mode="json"))

    app.router.add_get("/api/rooms/{room}/speakers", list_speakers)
    app.router.add_post("/api/rooms/{room}/speakers/{speaker_id}/name", name)
