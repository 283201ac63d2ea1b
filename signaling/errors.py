"""One JSON error shape for every route: ``{"error": {"code", "message"}}`` with a 4xx/5xx status.

The status comes from the error's ``code`` (:class:`server.errors.CallscribeError` and its subclasses carry
one; :data:`STATUS_BY_CODE`), never from its message text. Handlers raise a ``CallscribeError`` or an
:class:`ApiError`; :func:`errors_as_json` turns raised errors (and aiohttp's own HTTP errors) into the shape.
"""

from __future__ import annotations

import logging

from aiohttp import web

from server.errors import CallscribeError

log = logging.getLogger(__name__)

STATUS_BY_CODE = {
    "bad_request": 400,
    "bad_sdp": 400,
    "not_an_offer": 400,
    "bad_audio": 400,
    "profile_error": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "name_taken": 409,
    "not_anonymous": 409,
    "invalid_name": 400,
    "not_in_room": 403,
    "too_large": 413,
    "unsupported_media_type": 415,
    "server_busy": 503,
    "store_error": 503,
    "model_unavailable": 503,
    "turn_unavailable": 503,
}
"""HTTP status of each error code; codes not listed are 500."""


class ApiError(CallscribeError):
    """An error raised by a route: ``code`` picks the status (:data:`STATUS_BY_CODE`)."""

    def __init__(self, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.headers = headers


def status_of(code: str) -> int:
    return STATUS_BY_CODE.get(code, 500)


def json_error(status: int, code: str, message: str, headers: dict | None = None) -> web.Response:
    """The one error response of the API."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def error_response(exc: CallscribeError) -> web.Response:
    """The response for a raised :class:`CallscribeError` (status from its code)."""
    return json_error(status_of(exc.code), exc.code, str(exc), getattr(exc, "headers", None))


@web.middleware
async def errors_as_json(request: web.Request, handler):
    try:
        return await handler(request)
    except CallscribeError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        return json_error(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
