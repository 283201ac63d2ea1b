"""REST API for voice profiles (the same store and rules as ``callscribe enroll`` / ``profiles``).

==============================  ===================================================================
``GET /api/profiles``           ``{"profiles": [{id, name, speech_s, enrollments, created_at, updated_at}]}``
``POST /api/profiles``          multipart form: ``name`` + ``audio`` (any format FFmpeg decodes, ≤ 20 MiB) →
                                ``201 {"profile": …, "speech_s": …}`` (creates, or extends an existing name)
``PATCH /api/profiles/{name}``  JSON ``{"name": new}`` → ``200 {"profile": …}``
``DELETE /api/profiles/{name}`` ``204``
==============================  ===================================================================

Errors: ``400 bad_audio`` / ``profile_error`` (too little speech, reserved name), ``404 not_found``,
``409 conflict`` (name taken), ``413 too_large``, ``503 store_error`` (database locked). Errors raised by the
store and the profile rules (:class:`server.errors.CallscribeError`) reach the client through
:func:`signaling.errors.errors_as_json`, their status chosen by their code.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp import web

from server.compute.runtime import SpeechRuntime
from server.errors import AudioDecodeError
from server.speaker.profile import VoiceProfile, check_name
from server.stream.filemode import enroll_files

from .errors import ApiError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def _json(profile: VoiceProfile) -> dict:
    return {"id": profile.id, "name": profile.name, "speech_s": round(profile.speech_s, 2),
            "enrollments": profile.enrollments, "created_at": profile.created_at, "updated_at": profile.updated_at}


def add_routes(app: web.Application, runtime_key: web.AppKey) -> None:
    """Register the routes on ``app``; ``runtime_key`` names the app's :class:`SpeechRuntime`."""

    def runtime(request: web.Request) -> SpeechRuntime:
        return request.app[runtime_key]

    async def list_profiles(request: web.Request) -> web.Response:
        profiles = await asyncio.to_thread(runtime(request).profiles)
        return web.json_response({"profiles": [_json(p) for p in profiles]})

    async def create_profile(request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            raise ApiError("unsupported_media_type", "send multipart/form-data with 'name' and 'audio'")
        name, audio_path = None, None
        with tempfile.TemporaryDirectory(prefix="callscribe-upload-") as tmp:
            reader = await request.multipart()
            async for part in reader:
                if part.name == "name":
                    name = (await part.text()).strip()
                elif part.name == "audio":
                    audio_path = Path(tmp) / "upload"
                    size = 0
                    with audio_path.open("wb") as out:
                        while chunk := await part.read_chunk(1 << 16):
                            size += len(chunk)
                            if size > MAX_UPLOAD_BYTES:
                                raise ApiError("too_large", f"uploads are limited to {MAX_UPLOAD_BYTES} bytes")
                            out.write(chunk)
            if not name or audio_path is None:
                raise ApiError("bad_request", "the form needs 'name' and 'audio'")
            try:
                check_name(name)
                done = await asyncio.to_thread(enroll_files, runtime(request), name, [audio_path])
                profile = await asyncio.to_thread(runtime(request).store.get, done.name)
            except AudioDecodeError as exc:
                raise ApiError("bad_audio", str(exc).replace(str(audio_path), "the upload")) from None
        return web.json_response({"profile": _json(profile), "speech_s": round(done.speech_s, 2)}, status=201)

    async def rename_profile(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            new = body["name"]
            if not isinstance(new, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise ApiError("bad_request", 'expected JSON {"name": "new name"}') from None
        rt = runtime(request)
        profile = await asyncio.to_thread(rt.store.rename, request.match_info["name"], new)
        rt.invalidate_profiles()
        return web.json_response({"profile": _json(profile)})

    async def delete_profile(request: web.Request) -> web.Response:
        rt = runtime(request)
        await asyncio.to_thread(rt.store.delete, request.match_info["name"])
        rt.invalidate_profiles()
        return web.Response(status=204)

    app.router.add_get("/api/profiles", list_profiles)
    app.router.add_post("/api/profiles", create_profile)
    app.router.add_patch("/api/profiles/{name}", rename_profile)
    app.router.add_delete("/api/profiles/{name}", delete_profile)
