"""REST API for recording-analysis jobs (:mod:`server.jobs`).

=====================================================  ============================================================
``POST /api/jobs``                                     multipart ``file`` (+ option fields) or JSON ``{"path", …}``
                                                       → ``202`` :class:`JobBody`, ``Location: /api/jobs/{id}``
``GET /api/jobs?limit=&offset=``                       newest first, without results → :class:`JobPage`
``GET /api/jobs/{id}``                                 the job with its result when done → :class:`JobBody`
``GET /api/jobs/{id}/events``                          server-sent events: ``progress`` (the job without result) at
                                                       every change, then one ``done`` / ``failed`` / ``cancelled``
                                                       (the whole job), then the stream ends
``GET /api/jobs/{id}/export?format=F``                 ``json`` (the whole result), ``text``/``txt``, ``srt``,
                                                       ``vtt``, ``rttm``
``DELETE /api/jobs/{id}``                              queued/running → ``200`` cancelled; finished → ``204`` deleted
                                                       with its upload
``POST /api/jobs/{id}/speakers/{speaker_id}/name``     JSON ``{"name", "save"?, "extend"?}`` → ``200``
=====================================================  ============================================================

Access (:mod:`signaling.auth`): the operator key (with access control off, on loopback, everyone). Uploads are
spooled to ``Settings.jobs_dir`` as they stream in (at most ``Settings.max_job_upload_bytes``) and checked before
the job is queued: not decodable → ``400 bad_audio``, over ``Settings.max_job_s`` → ``413 too_long``; a full queue
is ``503 queue_full``. A ``path`` is accepted only inside ``Settings.job_paths``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from aiohttp_sse import sse_response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.analysis.options import AnalysisOptions
from server.analysis.result import finals_of
from server.audio.ingest import probe
from server.errors import AudioDecodeError
from server.export.formats import FORMATS, render
from server.jobs.service import JobService
from server.jobs.worker import job_json

from .apidoc import _first_error, operation, read_json, read_query
from .errors import ApiError
from .profiles_api import receive_upload
from .schemas import NameRequest, SpeakerNamedBody

WATCH_POLL_S = 0.25
"""How often the event stream looks at the job (the database is the source: workers may be other processes)."""
MAX_WATCH_S = 12 * 3600.0
"""An event stream ends after this long even if the job has not (the client reconnects)."""
CALLBACK_PATTERN = r"^https?://[^\s]{1,2000}$"
OPTION_FIELDS = ("language", "diarize", "num_speakers", "min_speakers", "max_speakers", "features", "sentiment",
                 "callback_url")
_ID = "the job's id"


class JobError(BaseModel):
    code: str
    message: str | None


class JobCallback(BaseModel):
    url: str
    attempts: int
    delivered_at: float | None = Field(description="Unix seconds of the last delivered event")
    error: str | None = Field(description="the last delivery's error, if it failed")


class JobBody(BaseModel):
    """One analysis job. Times are Unix seconds; ``progress`` percent; ``duration_s`` the recording's length."""

    id: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float = Field(ge=0, le=100)
    stage: str = Field(description="queued, decoding, diarization, transcription, features, sentiment, done, "
                       "failed or cancelled")
    message: str | None
    filename: str
    options: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    runs: int
    error: JobError | None
    callback: JobCallback | None
    result: dict[str, Any] | None = Field(None, description="when done: see server/analysis/result.py")


class JobPage(BaseModel):
    jobs: list[JobBody]
    total: int


class JobQuery(BaseModel):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0)


class ExportQuery(BaseModel):
    format: Literal["json", "text", "txt", "srt", "vtt", "rttm"] = "json"


class PathJob(AnalysisOptions):
    """A job on a file already on the server (only inside ``Settings.job_paths``)."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096)
    callback_url: str | None = Field(None, pattern=CALLBACK_PATTERN)


class FormOptions(AnalysisOptions):
    callback_url: str | None = Field(None, pattern=CALLBACK_PATTERN)


def _form_options(fields: dict[str, str]) -> FormOptions:
    """The option fields of a form (strings) as :class:`FormOptions`; empty fields are left out.

    Raises:
        ApiError: ``bad_request`` naming the first wrong field.
    """
    data = {k: v.strip() for k, v in fields.items() if v.strip()}
    try:
        return FormOptions.model_validate(data)
    except ValidationError as exc:
        raise ApiError("bad_request", _first_error(exc, "form")) from None


def _check(path: Path, filename: str, max_s: float) -> float | None:
    """Probe an input before queueing it. Raises ApiError ``bad_audio`` / ``too_long``."""
    try:
        info = probe(path)
    except AudioDecodeError as exc:
        raise ApiError("bad_audio", str(exc).replace(str(path), filename)) from None
    if info.duration_s is not None and info.duration_s > max_s + 1.0:
        raise ApiError("too_long", f"{filename} holds {info.duration_s:.0f} s of audio; at most {max_s:.0f} s "
                       "are analysed (Settings.max_job_s)")
    return info.duration_s


def _allowed(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(Path(r).resolve()) for r in roots)


def add_routes(app: web.Application, jobs_key: web.AppKey) -> None:
    """Register the routes; ``jobs_key`` names the app's :class:`JobService`."""

    def service(request: web.Request) -> JobService:
        return request.app[jobs_key]

    def body(record, *, result: bool) -> dict:
        return JobBody.model_validate(job_json(record, result=result)).model_dump(mode="json")

    @operation(summary="Analyse a recording: diarized transcript, word timings, acoustic features, sentiment",
               status=202, response=JobBody, auth="admin", body=PathJob,
               form={"file": "binary: the recording (any audio or video container FFmpeg decodes)",
                     "language?": "ISO 639-1 code; empty = detect", "diarize?": "true (default) or false",
                     "num_speakers?": "exactly N speakers", "min_speakers?": "at least N",
                     "max_speakers?": "at most N", "features?": "true (default) or false",
                     "sentiment?": "true (default) or false",
                     "callback_url?": "http(s) URL that receives POSTed progress and the result"},
               errors=("bad_request", "bad_audio", "too_large", "too_long", "unsupported_media_type", "forbidden",
                       "queue_full", "store_error"), tags=["jobs"],
               description="Either a multipart upload (`file` plus option fields) or a JSON body naming a file on "
               "the server (`path`, only inside `CALLSCRIBE_JOB_PATHS`). Answers at once with the queued job; "
               "follow it with `GET /api/jobs/{id}/events`.")
    async def submit(request: web.Request) -> web.Response:
        jobs = service(request)
        settings = jobs.settings
        if request.content_type == "application/json":
            spec = await read_json(request, PathJob)
            path = Path(spec.path)
            if not settings.job_paths or not _allowed(path, settings.job_paths):
                raise ApiError("forbidden", "this server analyses uploads only" if not settings.job_paths else
                               "the path is outside the folders this server may read (CALLSCRIBE_JOB_PATHS)")
            if not path.is_file():
                raise ApiError("bad_request", f"no file {spec.path}")
            options = AnalysisOptions.model_validate(spec.model_dump(include=set(AnalysisOptions.model_fields)))
            duration = await asyncio.to_thread(_check, path, path.name, settings.max_job_s)
            record = await asyncio.to_thread(jobs.submit, path, path.name, options, owned=False,
                                             callback_url=spec.callback_url, duration_s=duration)
        else:
            folder = jobs.uploads / ("u" + secrets.token_hex(8))
            folder.mkdir(parents=True)
            try:
                upload = await receive_upload(request, folder, text_fields=OPTION_FIELDS, file_field="file",
                                              max_bytes=settings.max_job_upload_bytes)
                form = _form_options(upload.fields)
                filename, path = upload.files[0]
                duration = await asyncio.to_thread(_check, path, filename, settings.max_job_s)
                options = AnalysisOptions.model_validate(form.model_dump(include=set(AnalysisOptions.model_fields)))
                record = await asyncio.to_thread(jobs.submit, path, filename, options, owned=True,
                                                 callback_url=form.callback_url, duration_s=duration)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return web.json_response(body(record, result=False), status=202,
                                 headers={"Location": f"/api/jobs/{record.id}"})

    @operation(summary="Analysis jobs, newest first (without results)", query=JobQuery, response=JobPage,
               auth="admin", errors=("bad_request", "store_error"), tags=["jobs"])
    async def list_jobs(request: web.Request) -> web.Response:
        q = read_query(request, JobQuery)
        records, total = await asyncio.to_thread(service(request).list, q.limit, q.offset)
        return web.json_response({"jobs": [body(r, result=False) for r in records], "total": total})

    @operation(summary="One analysis job (its result when done)", response=JobBody, auth="admin",
               path={"job_id": _ID}, errors=("not_found", "store_error"), tags=["jobs"])
    async def get_job(request: web.Request) -> web.Response:
        record = await asyncio.to_thread(service(request).get, request.match_info["job_id"])
        return web.json_response(body(record, result=True))

    @operation(summary="Follow a job: server-sent events until it ends", content_type="text/event-stream",
               auth="admin", path={"job_id": _ID}, errors=("not_found", "store_error"), tags=["jobs"],
               description="Events: `progress` (data: the job without result) now and at every change, then one "
               "`done`, `failed` or `cancelled` (data: the whole job), then the stream closes.")
    async def events(request: web.Request) -> web.StreamResponse:
        jobs = service(request)
        job_id = request.match_info["job_id"]
        record = await asyncio.to_thread(jobs.get, job_id, result=False)  # 404 before the stream starts
        async with sse_response(request) as stream:
            stream.ping_interval = 15
            last = None
            deadline = time.monotonic() + MAX_WATCH_S
            while stream.is_connected() and time.monotonic() < deadline:
                state = (record.status, record.progress, record.stage, record.message, record.callback_attempts)
                if record.finished:
                    full = await asyncio.to_thread(jobs.get, job_id, result=True)
                    await stream.send(json.dumps(body(full, result=True)), event=full.status)
                    break
                if state != last:
                    await stream.send(json.dumps(body(record, result=False)), event="progress")
                    last = state
                await asyncio.sleep(WATCH_POLL_S)
                record = await asyncio.to_thread(jobs.get, job_id, result=False)
        return stream

    @operation(summary="A finished job's transcript as a file", query=ExportQuery, content_type="text/plain",
               auth="admin", path={"job_id": _ID}, errors=("bad_request", "not_found", "store_error"),
               tags=["jobs"], description="`json` is the whole result (words, features, sentiment); the others "
               "are rendered like `callscribe transcribe --format`.")
    async def export(request: web.Request) -> web.Response:
        fmt = read_query(request, ExportQuery).format
        record = await asyncio.to_thread(service(request).get, request.match_info["job_id"])
        if record.result is None:
            raise ApiError("not_found", f"job {record.id} has no result ({record.status})")
        stem = Path(record.filename).stem or "recording"
        fmt = "text" if fmt == "txt" else fmt
        spec = FORMATS[fmt]
        if fmt == "json":
            text = json.dumps({"job": record.id, "filename": record.filename, **record.result}, ensure_ascii=False)
        else:
            text = render(finals_of(record.result), fmt, {"file": record.filename})
        safe = "".join(c for c in stem if c.isalnum() or c in "-_.") or "recording"
        return web.Response(text=text, content_type=spec.mime, charset="utf-8", headers={
            "Content-Disposition": f'attachment; filename="{safe}.{spec.extension}"', "Cache-Control": "no-store"})

    @operation(summary="Cancel a queued or running job; delete a finished one", response=JobBody, auth="admin",
               path={"job_id": _ID}, errors=("not_found", "store_error"), tags=["jobs"],
               description="`200` with the cancelled job, or `204` when a finished job and its upload were deleted.")
    async def delete_job(request: web.Request) -> web.Response:
        record = await asyncio.to_thread(service(request).cancel_or_delete, request.match_info["job_id"])
        if record is None:
            return web.Response(status=204)
        return web.json_response(body(record, result=False))

    @operation(summary="Name an anonymous speaker of a finished job, optionally saving the voice",
               body=NameRequest, response=SpeakerNamedBody, auth="admin",
               path={"job_id": _ID, "speaker_id": "the speaker's id, e.g. anon:2"},
               errors=("bad_request", "invalid_name", "profile_error", "not_found", "name_taken", "not_anonymous",
                       "store_error"), tags=["jobs"],
               description="Like naming a room's speaker: the result's segments take the name; with `save` the "
               "speaker's diarized voice becomes a voice profile (`extend`: added to the profile of that name).")
    async def name(request: web.Request) -> web.Response:
        req = await read_json(request, NameRequest)
        identity, profile_id = await asyncio.to_thread(
            service(request).name_speaker, request.match_info["job_id"], request.match_info["speaker_id"],
            req.name, save=req.save, extend=req.extend)
        return web.json_response(SpeakerNamedBody(speaker_id=request.match_info["speaker_id"], name=identity.label,
                                                  profile_id=profile_id).model_dump(mode="json"))

    app.router.add_post("/api/jobs", submit)
    app.router.add_get("/api/jobs", list_jobs)
    app.router.add_get("/api/jobs/{job_id}", get_job)
    app.router.add_get("/api/jobs/{job_id}/events", events)
    app.router.add_get("/api/jobs/{job_id}/export", export)
    app.router.add_delete("/api/jobs/{job_id}", delete_job)
    app.router.add_post("/api/jobs/{job_id}/speakers/{speaker_id}/name", name)
