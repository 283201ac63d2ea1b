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
    "auth_disabled": 409,
    "not_found": 404,
    "conflict": 409,
    "name_taken": 409,
    "not_anonymous": 409,
    "invalid_name": 400,
    "not_in_room": 403,
    "too_large": 413,
    "too_long": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "server_busy": 503,
    "queue_full": 503,
    "store_error": 503,
    "model_unavailable": 503,
    "turn_unavailable": 503,
}
"""HTTP status of each error code; codes not listed are 500.

``unauthorized`` (401): credentials missing, malformed, wrong or expired (the response carries
``WWW-Authenticate: Bearer``); ``forbidden`` (403): valid credentials that do not allow this (another room, a
viewer where a speaker is needed, a room token on an operator route); ``auth_disabled``: minting tokens on a
server without access control; ``rate_limited`` (429): too many offers or enrollments from one client address,
``Retry-After`` says when to retry; ``too_large`` (413): a body over the route's limit; ``too_long`` (413): an
upload with more audio than ``Settings.max_upload_s``."""

_CODE_BY_HTTP_STATUS = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type"}
"""Codes for aiohttp's own HTTP errors (e.g. a body over ``client_max_size`` is 413 ``too_large``)."""


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
        code = _CODE_BY_HTTP_STATUS.get(exc.status) or exc.reason.lower().replace(" ", "_")
        return json_error(exc.status, code, exc.text or exc.reason, _kept_headers(exc))


def _kept_headers(exc: web.HTTPException) -> dict | None:
    """Headers of an aiohttp error worth keeping on its JSON form (``Allow`` of a 405)."""
    kept = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After", "WWW-Authenticate")}
    return kept or None
