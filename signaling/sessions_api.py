"""REST API for durable sessions (every call is one; :mod:`server.rooms.durable` writes them).

====================================================  =============================================================
``GET /api/sessions?room=&limit=&offset=``            newest first, paged → :class:`SessionPage`
``GET /api/sessions/{id}``                            the session, its finals (relabels applied, each with its
                                                      ``sentiment``), per-speaker totals and sentiment counts
                                                      → :class:`SessionDetail`
``GET /api/sessions/{id}/transcript?format=F``        the transcript as ``json``, ``srt``, ``vtt``, ``txt``
                                                      (``text``) or ``rttm`` (:mod:`server.export.formats`)
``GET /api/sessions/{id}/audio``                      the call's recording (FLAC or Ogg/Opus) when it was recorded
``DELETE /api/sessions/{id}``                         the session, its transcript and its recording → ``204``
====================================================  =============================================================

Access (:mod:`signaling.auth`): the operator key sees every session; a room token only its room's (a listing
is limited to that room), and deleting needs a speaker token of the room. Errors: ``404 not_found``,
``400 bad_request``, ``401``/``403``, ``503 store_error``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from server.export.formats import FORMATS, render, sentiment_counts, speaker_totals
from server.rooms.history import SessionHistory, Transcript
from server.speaker.identity import SpeakerKind
from server.stream.events import Final

from . import auth
from .apidoc import operation, read_query
from .errors import ApiError
from .protocol import ROOM_PATTERN

AUDIO_TYPES = {".flac": "audio/flac", ".ogg": "audio/ogg", ".opus": "audio/ogg"}


class SessionQuery(BaseModel):
    room: str | None = Field(None, max_length=64, pattern=ROOM_PATTERN, description="only this room's sessions")
    limit: int = Field(20, ge=1, le=200)
    offset: int = Field(0, ge=0)


class SessionSummary(BaseModel):
    """One call. Times are Unix seconds; ``duration_s`` runs to now while the call goes on."""

    id: str
    room: str
    caller: str | None
    language: str | None
    started_at: float
    ended_at: float | None
    end_reason: str | None
    duration_s: float
    utterances: int
    speakers: list[str] = Field(description="who spoke, in order of first appearance (relabels applied)")
    has_audio: bool


class SessionPage(BaseModel):
    sessions: list[SessionSummary]
    total: int
    limit: int
    offset: int


class SentimentCounts(BaseModel):
    """How many finals with text have each sentiment; ``scored``: how many have one at all (shares are over it)."""

    positive: int
    negative: int
    neutral: int
    scored: int


class SpeakerTotal(BaseModel):
    speaker: str
    speaker_id: str | None
    speaker_kind: SpeakerKind
    talk_time_s: float = Field(description="summed length of the speaker's finals, seconds")
    turns: int
    words: int
    sentiment: SentimentCounts | None = None


class SessionDetail(BaseModel):
    session: SessionSummary
    utterances: list[Final] = Field(description="the finals as sent, with every later relabel applied and their "
                                    "`sentiment` (null when none was found)")
    speakers: list[SpeakerTotal]
    sentiment: SentimentCounts | None = Field(None, description="the session's sentiment counts")


class TranscriptQuery(BaseModel):
    format: Literal["json", "srt", "vtt", "txt", "text", "rttm"] = "json"


def _summary(t: Transcript) -> SessionSummary:
    s = t.session
    return SessionSummary(id=s.id, room=s.room, caller=s.caller, language=s.language, started_at=s.started_at,
                          ended_at=s.ended_at, end_reason=s.end_reason,
                          duration_s=round((s.ended_at or time.time()) - s.started_at, 2), utterances=s.utterances,
                          speakers=list(dict.fromkeys(f.speaker for f in t.finals)),
                          has_audio=bool(s.audio_path) and Path(s.audio_path).is_file())


def session_detail(t: Transcript) -> SessionDetail:
    """The body of ``GET /api/sessions/{id}``: the finals, per-speaker totals and the sentiment counts of the
    session and of each speaker (speakers told apart by ``speaker_id`` as in :func:`speaker_totals`)."""
    speakers = []
    for total in speaker_totals(t.finals):
        key = (total["speaker_kind"], total["speaker_id"] if total["speaker_id"] is not None else total["speaker"])
        mine = [f for f in t.finals if (f.speaker_kind, f.speaker_id if f.speaker_id is not None else f.speaker) == key]
        speakers.append({**total, "sentiment": sentiment_counts(mine)})
    return SessionDetail(session=_summary(t), utterances=t.finals, speakers=speakers,
                         sentiment=sentiment_counts(t.finals))


def add_routes(app: web.Application, history_key: web.AppKey) -> None:
    """Register the routes; ``history_key`` names the app's :class:`SessionHistory`."""

    async def load(request: web.Request, role: Literal["viewer", "speaker"] = "viewer") -> Transcript:
        history: SessionHistory = request.app[history_key]
        transcript = await asyncio.to_thread(history.transcript, request.match_info["session_id"])
        auth.require_room(request, transcript.session.room, role)
        return transcript

    @operation(summary="List past sessions, newest first", query=SessionQuery, response=SessionPage, auth="token",
               tags=["sessions"], errors=("bad_request", "unauthorized", "forbidden", "store_error"))
    async def list_sessions(request: web.Request) -> web.Response:
        query = read_query(request, SessionQuery)
        room, scope = query.room, auth.room_scope(request)
        if scope is not None:
            if room is not None and room != scope:
                raise ApiError("forbidden", f"this token is for room {scope!r}")
            room = scope
        history: SessionHistory = request.app[history_key]
        page, total = await asyncio.to_thread(history.page, room, query.limit, query.offset)
        body = SessionPage(sessions=[_summary(t) for t in page], total=total, limit=query.limit, offset=query.offset)
        return web.json_response(body.model_dump(mode="json"))

    @operation(summary="One session with its utterances and per-speaker totals", response=SessionDetail,
               auth="room", tags=["sessions"], errors=("not_found", "unauthorized", "forbidden", "store_error"))
    async def get_session(request: web.Request) -> web.Response:
        t = await load(request)
        body = session_detail(t)
        return web.json_response(body.model_dump(mode="json"))

    @operation(summary="A session's transcript as a file", query=TranscriptQuery, auth="room",
               content_type="text/plain", tags=["sessions"],
               description="`json`, `srt` (SubRip), `vtt` (WebVTT), `txt` (chat lines) or `rttm` (NIST RTTM).",
               errors=("bad_request", "not_found", "unauthorized", "forbidden", "store_error"))
    async def session_transcript(request: web.Request) -> web.Response:
        fmt = read_query(request, TranscriptQuery).format
        fmt = "text" if fmt == "txt" else fmt
        t = await load(request)
        s = t.session
        meta = {"room": s.room, "session": s.id, "caller": s.caller, "started_at": s.started_at}
        spec = FORMATS[fmt]
        name = "".join(c for c in f"{s.room}-{s.id}" if c.isalnum() or c in "-_.")
        disposition = f'attachment; filename="callscribe-{name}.{spec.extension}"'
        return web.Response(text=render(t.finals, fmt, meta), content_type=spec.mime, charset="utf-8",
                            headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})

    @operation(summary="A session's recorded audio", auth="room", content_type="audio/flac", tags=["sessions"],
               errors=("not_found", "unauthorized", "forbidden"))
    async def session_audio(request: web.Request) -> web.StreamResponse:
        t = await load(request)
        path = Path(t.session.audio_path) if t.session.audio_path else None
        if path is None or not path.is_file():
            raise ApiError("not_found", "this session has no recording")
        return web.FileResponse(path, headers={"Content-Type": AUDIO_TYPES.get(path.suffix, "application/octet-stream"),
                                               "Cache-Control": "no-store"})

    @operation(summary="Delete a session, its transcript and its recording", status=204, auth="room",
               tags=["sessions"], errors=("not_found", "unauthorized", "forbidden", "store_error"))
    async def delete_session(request: web.Request) -> web.Response:
        t = await load(request, "speaker")
        await asyncio.to_thread(request.app[history_key].delete, t.session.id)
        return web.Response(status=204)

    app.router.add_get("/api/sessions", list_sessions)
    app.router.add_get("/api/sessions/{session_id}", get_session)
    app.router.add_get("/api/sessions/{session_id}/transcript", session_transcript)
    app.router.add_get("/api/sessions/{session_id}/audio", session_audio)
    app.router.add_delete("/api/sessions/{session_id}", delete_session)
