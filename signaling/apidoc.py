"""What each REST route accepts and returns, declared next to its handler, so that ``/openapi.json`` is generated
from the same pydantic models that validate the bodies (never a second, hand-written description).

Usage::

    @operation(summary="List sessions", query=SessionQuery, response=SessionPage, auth="room", tags=["sessions"],
               errors=("unauthorized", "forbidden"))
    async def list_sessions(request): ...

:mod:`signaling.openapi` walks the application's router and turns every handler's :class:`Operation` into an
OpenAPI 3.1 operation (pydantic's JSON Schema generator makes the component schemas). Handlers read their
bodies with :func:`read_json` and :func:`read_query` from the same models, so what is documented is what is
checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from .errors import ApiError

M = TypeVar("M", bound=BaseModel)
MAX_JSON_BYTES = 64 * 1024

Auth = Literal["none", "admin", "token", "room", "speaker"]
"""Who may call: ``none`` (open), ``admin`` (the operator API key), ``token`` (any valid room token or the key),
``room`` (a token for the room the route names, or the key), ``speaker`` (a speaker token for that room, or the
key). With access control off (loopback, no key) every route is open."""


@dataclass(frozen=True)
class Operation:
    """The declared shape of one route.

    Attributes:
        summary: one line for the docs page.
        body: JSON request body model, or None.
        form: multipart/form-data fields, name → description. A description that starts with ``"binary"`` is a
            file field, ``"binary, repeated"`` one that may come several times; a name ending in ``"?"`` is
            optional (the ``?`` is not part of the name).
        query: model of the query parameters, or None.
        response: JSON response model (for ``status``), or None for a body-less response (204).
        status: the success status.
        content_type: response media type when it is not JSON (``text/plain``, ``application/sdp``, …).
        request_type: request media type when it is neither JSON nor a form (``application/sdp``).
        auth: who may call (:data:`Auth`).
        errors: error codes the route may answer (statuses from :data:`signaling.errors.STATUS_BY_CODE`).
        tags: grouping on the docs page.
        description: longer text (Markdown).
        path: path parameters, name → description (parameters without one are documented as plain strings).
        extra: merged into the generated OpenAPI operation object last (e.g. ``{"responses": {"503": …}}``).
    """

    summary: str
    body: type[BaseModel] | None = None
    form: dict[str, str] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    content_type: str = "application/json"
    request_type: str | None = None
    auth: Auth = "none"
    errors: tuple[str, ...] = ()
    tags: list[str] = field(default_factory=list)
    description: str = ""
    path: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def operation(**kwargs: Any) -> Callable:
    """Decorator: attach an :class:`Operation` to a handler (``handler.__operation__``)."""
    op = Operation(**kwargs)

    def attach(handler: Callable) -> Callable:
        handler.__operation__ = op
        return handler

    return attach


def operation_of(handler: Callable) -> Operation | None:
    return getattr(handler, "__operation__", None)


def _first_error(exc: ValidationError, where: str) -> str:
    """``finals[0].speaker_id: Field required`` — the first wrong field as a JSON path (``where`` when the whole
    body or query is wrong)."""
    first = exc.errors()[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
    return f"{loc or where}: {first['msg']}"


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


async def read_json(request: web.Request, model: type[M], *, max_bytes: int = MAX_JSON_BYTES) -> M:
    """The request's JSON body validated as ``model`` (read in chunks, never more than ``max_bytes``).

    Raises:
        ApiError: ``too_large`` (413) over ``max_bytes``; ``unsupported_media_type`` (415) for a form body;
            ``bad_request`` (400) for a body that is not UTF-8 JSON or not ``model`` (the message names the first
            wrong field, e.g. ``name: Field required``).
    """
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise ApiError("unsupported_media_type", "send the body as application/json")
    if (request.content_length or 0) > max_bytes:
        raise ApiError("too_large", f"JSON bodies of this route are limited to {max_bytes} bytes")
    raw = bytearray()
    while chunk := await request.content.read(1 << 16):
        raw += chunk
        if len(raw) > max_bytes:
            raise ApiError("too_large", f"JSON bodies of this route are limited to {max_bytes} bytes")
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise ApiError("bad_request", f"the body is not JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError("bad_request", _first_error(exc, "body")) from None


def read_query(request: web.Request, model: type[M]) -> M:
    """The query parameters validated as ``model`` (a parameter given twice counts once: the first).

    Raises:
        ApiError: ``bad_request`` (400) naming the first wrong parameter.
    """
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise ApiError("bad_request", _first_error(exc, "query")) from None
