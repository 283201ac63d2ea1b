"""REST API for voice profiles and for identifying recordings (the same store and rules as ``callscribe enroll``
/ ``profiles`` and as live calls).

=====================================  ==========================================================================
``GET /api/profiles``                  → :class:`~signaling.schemas.ProfileList`
``POST /api/profiles``                 multipart ``name`` + ``audio`` → ``201`` :class:`~signaling.schemas.Enrolled`;
                                       a new profile only: ``409 name_taken`` when the name exists
``GET /api/profiles/map``              → :class:`~signaling.schemas.VoiceMap` (2-D layout, close pairs)
``GET /api/profiles/{name}``           → :class:`~signaling.schemas.ProfileOne`
``POST /api/profiles/{name}/audio``    multipart ``audio`` → :class:`~signaling.schemas.Enrolled`: more speech for an
                                       existing profile (``404`` when there is none)
``PATCH /api/profiles/{name}``         JSON :class:`~signaling.schemas.RenameRequest` → ``ProfileOne``
``DELETE /api/profiles/{name}``        ``204``
``POST /api/identify``                 multipart ``audio`` → :class:`~signaling.schemas.IdentifyResult`
``POST /api/identify/batch``           multipart ``audio`` (repeated) → :class:`~signaling.schemas.BatchResult`
=====================================  ==========================================================================

Uploads (any format FFmpeg decodes) are spooled to a temporary folder, at most ``Settings.max_upload_bytes``
(``413 too_large`` past it, for a batch all files together), and decoded chunk by chunk: more than
``Settings.max_upload_s`` of audio is ``413 too_long`` (refused from the header when it says so, else as soon as
that much has been decoded), so a small, highly compressed file cannot make the server decode hours. The speech is
found with the live path's VAD and at most ``Settings.max_enroll_s`` of it is used, embedded window by window
(bounded memory). An empty file or one that is not audio is ``400 bad_audio``; a request that is not
``multipart/form-data``, or an audio part declared as another type (``text/*``, ``image/*``, JSON…), is
``415 unsupported_media_type``. Nothing is stored when an upload fails, and the temporary files are always removed.

Errors raised by the store and the profile rules (:class:`server.errors.CallscribeError`) reach the client
through :func:`signaling.errors.errors_as_json`, their status chosen by their code. Enrollments and
identifications count against ``Settings.enroll_rate`` (:mod:`signaling.limits`).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import BodyPartReader, web

from server.compute.runtime import SpeechRuntime
from server.errors import AudioDecodeError, AudioTooLong, CallscribeError
from server.settings import Settings
from server.speaker.identify import profile_map
from server.speaker.profile import check_name
from server.stream.filemode import enroll_files, identify_file

from . import limits
from .apidoc import operation, read_json
from .errors import ApiError
from .schemas import (
    BatchItem,
    BatchResult,
    Enrolled,
    ErrorBody,
    IdentifyResult,
    Profile,
    ProfileChange,
    ProfileList,
    ProfileOne,
    RenameRequest,
    VoiceMap,
)

MAX_BATCH_FILES = 16
MAX_FIELD_BYTES = 4096
FORM_OVERHEAD_BYTES = 64 * 1024
"""Multipart headers and text fields on top of the audio bytes (what ``Content-Length`` may exceed them by)."""
AUDIO_PART_TYPES = ("audio/", "video/", "application/octet-stream", "application/ogg")
"""Declared types an audio part may have (browsers send ``audio/*`` or ``video/webm``, ``curl -F`` sends
``application/octet-stream``); a part without a type is accepted too, the decoder decides."""

_UPLOAD_ERRORS = ("bad_request", "bad_audio", "too_large", "too_long", "unsupported_media_type", "rate_limited",
                  "store_error")
_NAME = "the voice profile's name (case-insensitive)"


@dataclass
class Upload:
    """A received multipart upload: its text ``fields`` and its ``files`` as ``(client filename, spooled path)``."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[tuple[str, Path]] = field(default_factory=list)


def _safe_filename(name: str | None, index: int) -> str:
    base = Path(name or "").name
    base = re.sub(r"[^\w.-]+", "_", base).strip("._")[:100]
    return base or f"upload-{index}"


async def receive_upload(request: web.Request, folder: Path, *, text_fields: tuple[str, ...] = (),
                         max_files: int = 1, max_bytes: int, file_field: str = "audio") -> Upload:
    """Read a ``multipart/form-data`` body: text ``text_fields`` and ``audio`` file parts, each file spooled to its
    own file under ``folder`` as it streams in (memory stays at one 64 KiB chunk).

    Args:
        max_files: how many ``audio`` parts may come.
        max_bytes: the limit for all audio bytes together.
        file_field: the name of the file part(s).
    Raises:
        ApiError: ``unsupported_media_type`` (415: not a form, or an audio part of another declared type),
            ``too_large`` (413), ``bad_request`` (400: a malformed form, an unknown or repeated field, too many
            files, no file).
    """
    if request.content_type != "multipart/form-data":
        raise ApiError("unsupported_media_type", f"send multipart/form-data (fields: "
                       f"{', '.join((*text_fields, file_field))}), not {request.content_type}")
    if (request.content_length or 0) > max_bytes + FORM_OVERHEAD_BYTES:
        raise ApiError("too_large", f"uploads are limited to {max_bytes} bytes of audio")
    upload = Upload()
    total = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise ApiError("bad_request", "nested multipart bodies are not accepted")
            if part.name == file_field:
                if len(upload.files) >= max_files:
                    raise ApiError("bad_request", f"at most {max_files} {file_field} file(s) per request")
                declared = (part.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                if declared and not declared.startswith(AUDIO_PART_TYPES):
                    raise ApiError("unsupported_media_type", f"the {file_field} part is declared {declared}; send an "
                                   "audio file (any format FFmpeg decodes)")
                filename = _safe_filename(part.filename, len(upload.files))
                target = folder / str(len(upload.files)) / filename
                target.parent.mkdir()
                with target.open("wb") as out:
                    while chunk := await part.read_chunk(1 << 16):
                        total += len(chunk)
                        if total > max_bytes:
                            raise ApiError("too_large", f"uploads are limited to {max_bytes} bytes of audio "
                                           f"({max_bytes / 2**20:.1f} MiB)")
                        out.write(chunk)
                upload.files.append((filename, target))  # an empty file is the decoder's to refuse (bad_audio)
            elif part.name in text_fields:
                if part.name in upload.fields:
                    raise ApiError("bad_request", f"the field {part.name!r} came twice")
                raw = bytearray()
                while chunk := await part.read_chunk(1024):
                    raw += chunk
                    if len(raw) > MAX_FIELD_BYTES:
                        raise ApiError("bad_request", f"the field {part.name!r} is over {MAX_FIELD_BYTES} bytes")
                try:
                    upload.fields[part.name] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise ApiError("bad_request", f"the field {part.name!r} is not UTF-8 text") from None
            else:
                raise ApiError("bad_request", f"unexpected form field {part.name!r} (expected: "
                               f"{', '.join((*text_fields, file_field))})")
    except (ValueError, AssertionError, KeyError) as exc:  # aiohttp's multipart reader on a malformed body
        raise ApiError("bad_request", f"malformed multipart/form-data body: {exc or type(exc).__name__}") from None
    if not upload.files:
        raise ApiError("bad_request", f"the form needs a {file_field!r} file")
    return upload


def _as_api_error(exc: AudioDecodeError, path: Path, filename: str) -> ApiError:
    """The decode error with the spooled path replaced by the client's file name."""
    message = str(exc).replace(str(path), filename)
    return ApiError("too_long" if isinstance(exc, AudioTooLong) else "bad_audio", message)


def _require_speaker(request: web.Request) -> None:
    """Enrolling needs a speaker token (of any room: profiles are global) or the key. The auth middleware checks
    that there is a credential; the role is checked here, as the path names no room.

    Raises:
        ApiError: ``forbidden`` (403) for a viewer token.
    """
    who = request.get("principal")
    if who is not None and getattr(who, "kind", None) == "room" and getattr(who, "role", None) != "speaker":
        raise ApiError("forbidden", "a viewer token cannot enroll voices; a speaker token or the API key can")


def _count_enrollment(request: web.Request) -> None:
    """Count one enrollment or identification against ``Settings.enroll_rate`` (429 ``rate_limited``)."""
    if limits.LIMITS in request.config_dict:
        limits.check(request, "enroll")


def add_routes(app: web.Application, runtime_key: web.AppKey, settings_key: web.AppKey) -> None:
    """Register the routes on ``app``; ``runtime_key`` names its :class:`SpeechRuntime`, ``settings_key`` its
    :class:`Settings` (the upload limits)."""

    def runtime(request: web.Request) -> SpeechRuntime:
        return request.app[runtime_key]

    def settings(request: web.Request) -> Settings:
        return request.app[settings_key]

    async def enroll_upload(request: web.Request, name: str | None, *, add: bool) -> Enrolled:
        rt, s = runtime(request), settings(request)
        with tempfile.TemporaryDirectory(prefix="callscribe-upload-") as tmp:
            upload = await receive_upload(request, Path(tmp), text_fields=() if add else ("name",),
                                          max_bytes=s.max_upload_bytes)
            name = name if add else upload.fields.get("name", "").strip()
            if not name:
                raise ApiError("bad_request", "the form needs 'name' and 'audio'")
            check_name(name)
            filename, path = upload.files[0]
            try:
                done = await asyncio.to_thread(enroll_files, rt, name, [path], add=add, max_s=s.max_upload_s)
            except AudioDecodeError as exc:
                raise _as_api_error(exc, path, filename) from None
        profile = await asyncio.to_thread(rt.store.get, done.name)
        return Enrolled(profile=Profile.of(profile), speech_s=round(done.speech_s, 2), similar_to=done.similar_to,
                        similarity=done.similarity)

    @operation(summary="List the voice profiles", response=ProfileList, auth="token", tags=["profiles"],
               errors=("store_error",))
    async def list_profiles(request: web.Request) -> web.Response:
        profiles = await asyncio.to_thread(runtime(request).profiles)
        return web.json_response(ProfileList(profiles=[Profile.of(p) for p in profiles]).model_dump(mode="json"))

    @operation(summary="Create a voice profile from a recording", status=201, response=Enrolled, auth="speaker",
               form={"name": "the new profile's name (1–64 characters; 'unknown' is reserved)",
                     "audio": "binary: a recording of the speaker (any format FFmpeg decodes), ≥ "
                              "Settings.min_enroll_speech_s (3 s) of speech"},
               errors=(*_UPLOAD_ERRORS, "profile_error", "name_taken", "forbidden"), tags=["profiles"],
               description="Creates a **new** profile only: a name that exists is `409 name_taken` (add speech to "
               "it with `POST /api/profiles/{name}/audio`). `similar_to` names an existing profile whose voice "
               "this already matches. The answer's `Location` is the new profile.")
    async def create_profile(request: web.Request) -> web.Response:
        _require_speaker(request)
        _count_enrollment(request)
        enrolled = await enroll_upload(request, None, add=False)
        return web.json_response(enrolled.model_dump(mode="json"), status=201,
                                 headers={"Location": f"/api/profiles/{enrolled.profile.name}"})

    @operation(summary="Add a recording's speech to an existing voice profile", response=Enrolled, auth="speaker",
               form={"audio": "binary: another recording of the profile's speaker"}, path={"name": _NAME},
               errors=(*_UPLOAD_ERRORS, "profile_error", "not_found", "forbidden"), tags=["profiles"],
               description="The profile's voiceprint becomes the speech-weighted mean of all its enrollments.")
    async def add_audio(request: web.Request) -> web.Response:
        _require_speaker(request)
        name = request.match_info["name"]
        await asyncio.to_thread(runtime(request).store.get, name)  # 404 before the upload is read
        _count_enrollment(request)
        enrolled = await enroll_upload(request, name, add=True)
        return web.json_response(enrolled.model_dump(mode="json"))

    @operation(summary="A 2-D map of the voice profiles and the pairs that are probably one voice",
               response=VoiceMap, auth="token", tags=["profiles"], errors=("store_error",),
               description="PCA (numpy) of the L2-normalised voiceprints; `close_pairs` are the pairs whose cosine "
               "similarity reaches `threshold` (server/speaker/identify.py CLOSE_PAIR_THRESHOLD: where different "
               "LibriSpeech speakers' voiceprints end and one speaker's begin, bench/identify_eval.py).")
    async def voice_map(request: web.Request) -> web.Response:
        profiles = await asyncio.to_thread(runtime(request).profiles)
        return web.json_response(VoiceMap.of(profile_map(profiles)).model_dump(mode="json"))

    @operation(summary="One voice profile", response=ProfileOne, auth="token", path={"name": _NAME},
               errors=("not_found", "store_error"), tags=["profiles"])
    async def get_profile(request: web.Request) -> web.Response:
        store = runtime(request).store
        profile = await asyncio.to_thread(store.get, request.match_info["name"])
        history = await asyncio.to_thread(store.history, profile.id)
        changes = [ProfileChange(action=e.action, name=e.name, speech_s=e.speech_s, detail=e.detail,
                                 created_at=e.created_at) for e in history]
        return web.json_response(ProfileOne(profile=Profile.of(profile), history=changes).model_dump(mode="json"))

    @operation(summary="Rename a voice profile", body=RenameRequest, response=ProfileOne, auth="admin",
               path={"name": _NAME}, errors=("bad_request", "profile_error", "not_found", "conflict", "too_large",
                                             "store_error"), tags=["profiles"],
               description="A change of case alone is allowed; another profile's name is `409 conflict`. Calls "
               "label the voice with the new name from their next utterance.")
    async def rename_profile(request: web.Request) -> web.Response:
        body = await read_json(request, RenameRequest)
        rt = runtime(request)
        profile = await asyncio.to_thread(rt.store.rename, request.match_info["name"], body.name)
        rt.invalidate_profiles()
        return web.json_response(ProfileOne(profile=Profile.of(profile)).model_dump(mode="json"))

    @operation(summary="Delete a voice profile and its enrollments", status=204, auth="admin", path={"name": _NAME},
               errors=("not_found", "store_error"), tags=["profiles"])
    async def delete_profile(request: web.Request) -> web.Response:
        rt = runtime(request)
        await asyncio.to_thread(rt.store.delete, request.match_info["name"])
        rt.invalidate_profiles()
        return web.Response(status=204)

    async def identify_one(rt: SpeechRuntime, s: Settings, filename: str, path: Path) -> IdentifyResult:
        try:
            result, audio_s = await asyncio.to_thread(identify_file, rt, path, max_s=s.max_upload_s)
        except AudioDecodeError as exc:
            raise _as_api_error(exc, path, filename) from None
        return IdentifyResult.of(result, s.speaker_threshold, audio_s)

    @operation(summary="Identify the speaker of a recording", response=IdentifyResult, auth="token",
               form={"audio": "binary: a recording of one speaker (any format FFmpeg decodes)"},
               errors=_UPLOAD_ERRORS, tags=["identify"],
               description="The recording's speech (at most Settings.max_enroll_s) becomes one voiceprint, scored "
               "against every profile: `speaker` is the best profile when its cosine similarity reaches "
               "`threshold` (Settings.speaker_threshold), else `unknown`. Nothing is stored.")
    async def identify(request: web.Request) -> web.Response:
        _count_enrollment(request)
        rt, s = runtime(request), settings(request)
        with tempfile.TemporaryDirectory(prefix="callscribe-upload-") as tmp:
            upload = await receive_upload(request, Path(tmp), max_bytes=s.max_upload_bytes)
            result = await identify_one(rt, s, *upload.files[0])
        return web.json_response(result.model_dump(mode="json"))

    @operation(summary="Identify the speakers of several recordings", response=BatchResult, auth="token",
               form={"audio": f"binary, repeated: up to {MAX_BATCH_FILES} recordings, one speaker each"},
               errors=_UPLOAD_ERRORS, tags=["identify"],
               description="Each file is identified as by `POST /api/identify`; a file that cannot be (not audio, "
               "too long) gets its own `error` and the others still get their `result`. "
               "Settings.max_upload_bytes holds for all files together; each file counts against "
               "Settings.enroll_rate.")
    async def identify_batch(request: web.Request) -> web.Response:
        _count_enrollment(request)
        rt, s = runtime(request), settings(request)
        items = []
        with tempfile.TemporaryDirectory(prefix="callscribe-upload-") as tmp:
            upload = await receive_upload(request, Path(tmp), max_files=MAX_BATCH_FILES,
                                          max_bytes=s.max_upload_bytes)
            for _ in upload.files[1:]:  # each file is an identification (429 before any is processed)
                _count_enrollment(request)
            for filename, path in upload.files:
                try:
                    items.append(BatchItem(filename=filename, result=await identify_one(rt, s, filename, path)))
                except CallscribeError as exc:
                    items.append(BatchItem(filename=filename, error=ErrorBody(code=exc.code, message=str(exc))))
        return web.json_response(BatchResult(results=items).model_dump(mode="json"))

    app.router.add_get("/api/profiles", list_profiles)
    app.router.add_post("/api/profiles", create_profile)
    app.router.add_get("/api/profiles/map", voice_map)  # before {name}: a profile named "map" is read from the list
    app.router.add_get("/api/profiles/{name}", get_profile)
    app.router.add_post("/api/profiles/{name}/audio", add_audio)
    app.router.add_patch("/api/profiles/{name}", rename_profile)
    app.router.add_delete("/api/profiles/{name}", delete_profile)
    app.router.add_post("/api/identify", identify)
    app.router.add_post("/api/identify/batch", identify_batch)
