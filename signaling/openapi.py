"""The OpenAPI 3.1 document of the REST API, generated from the routes themselves, and a docs page to browse it.

==============================  ===================================================================================
``GET /openapi.json``           the document: every route whose handler declares an :class:`~signaling.apidoc.Operation`
                                (``@operation``), its bodies, query and path parameters, responses and errors
``GET /docs``                   Swagger UI over ``/openapi.json``, its assets served from the installed
                                ``swagger-ui-py`` wheel under ``/docs/assets/`` (no CDN: the page makes requests
                                to this server only, and its Content-Security-Policy forbids any other)
==============================  ===================================================================================

How the document is made (:func:`build_document`): the app's router is walked; each handler's ``Operation`` becomes
an OpenAPI operation. Component schemas come from pydantic's JSON Schema generator
(:func:`pydantic.json_schema.models_json_schema`, request models in validation mode, responses in serialization
mode, ``$ref`` to ``#/components/schemas/{model}``), so the document is generated from the same classes that
validate the bodies. Every error response references the one ``Error`` schema (:class:`signaling.schemas.Error`),
under the status :data:`signaling.errors.STATUS_BY_CODE` gives each declared code. Routes that need credentials
(``auth`` other than ``none``) carry the ``bearer`` security scheme (the API key or a room token) and the
``x-callscribe-auth`` extension with their level. The document is built on the first request, after every route
is registered, and kept.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .apidoc import Operation, operation, operation_of
from .errors import STATUS_BY_CODE, status_of
from .schemas import Error

OPENAPI_VERSION = "3.1.0"
SECURITY_SCHEME = "bearer"
REF_TEMPLATE = "#/components/schemas/{model}"

AUTH_TEXT = {
    "none": "open to everyone",
    "token": "any valid room token, or the API key",
    "room": "a room token for the room the request names (viewer or speaker), or the API key",
    "speaker": "a speaker room token, or the API key",
    "admin": "the operator API key",
}
"""What each ``auth`` level asks for, in the docs (enforced by :mod:`signaling.auth` when access control is on)."""

_PATH_PARAM = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")
_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content"}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}

DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>callscribe REST API</title>
  <link rel="icon" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""

DOCS_JS = """window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
"""

DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; font-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
"""The docs page may load and fetch from this server only."""


def swagger_ui_assets() -> Path:
    """The folder of Swagger UI's built files in the installed ``swagger-ui-py`` wheel (found without importing it).

    Raises:
        RuntimeError: the package is not installed.
    """
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed (it carries the docs page's assets)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _version() -> str:
    try:
        return importlib.metadata.version("callscribe")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def documented_routes(app: web.Application) -> list[tuple[str, str, Any, Operation]]:
    """``(METHOD, path, handler, Operation)`` of every route that declares an operation, in registration order
    (``HEAD`` routes that ``add_get`` adds are left out)."""
    out = []
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):
            continue
        op = operation_of(route.handler)
        if op is None:
            continue
        out.append((route.method, route.resource.canonical, route.handler, op))
    return out


def _error_codes(op: Operation) -> list[str]:
    codes = list(op.errors)
    if op.auth != "none":
        codes.append("unauthorized")
    if op.auth in ("admin", "room", "speaker"):
        codes.append("forbidden")
    return list(dict.fromkeys(codes))


def _form_schema(form: dict[str, str]) -> dict:
    properties, required = {}, []
    for raw_name, description in form.items():
        name = raw_name.rstrip("?")
        if description.startswith("binary"):
            file = {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
            repeated = description.startswith("binary, repeated")
            text = description.split(":", 1)[1].strip() if ":" in description else description
            schema = {"type": "array", "items": file} if repeated else dict(file)
            schema["description"] = text
        else:
            schema = {"type": "string", "description": description}
        properties[name] = schema
        if not raw_name.endswith("?"):
            required.append(name)
    return {"type": "object", "properties": properties, "required": required}


def _body_schema_for(content_type: str) -> dict:
    if content_type.startswith(("text/", "application/sdp", "application/x-subrip")):
        return {"type": "string"}
    return {"type": "string", "format": "binary"}


def _merge(into: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


class _Models:
    """Collects the models an operation uses and resolves them into component schemas in one pass."""

    def __init__(self) -> None:
        self.pairs: list[tuple[type[BaseModel], str]] = []

    def use(self, model: type[BaseModel], mode: str) -> tuple[type[BaseModel], str]:
        pair = (model, mode)
        if pair not in self.pairs:
            self.pairs.append(pair)
        return pair

    def resolve(self) -> tuple[dict, dict]:
        refs, top = models_json_schema(self.pairs, ref_template=REF_TEMPLATE)
        return refs, top.get("$defs", {})


def build_document(app: web.Application, *, title: str = "callscribe", description: str | None = None) -> dict:
    """The OpenAPI 3.1 document (a JSON-ready dict) of every documented route of ``app``."""
    models = _Models()
    error_pair = models.use(Error, "serialization")
    pending: list[tuple[str, str, dict, dict]] = []  # (path, method, operation object, pairs to fill in)
    used_ids: set[str] = set()
    tags: list[str] = []
    for method, path, handler, op in documented_routes(app):
        wants: dict[str, Any] = {}
        if op.body is not None:
            wants["body"] = models.use(op.body, "validation")
        if op.query is not None:
            wants["query"] = models.use(op.query, "validation")
        if op.response is not None:
            wants["response"] = models.use(op.response, "serialization")
        op_id = handler.__name__
        if op_id in used_ids:
            op_id = f"{op_id}_{method.lower()}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}"
        used_ids.add(op_id)
        for tag in op.tags:
            if tag not in tags:
                tags.append(tag)
        access = f"**Access:** {AUTH_TEXT.get(op.auth, op.auth)}."
        obj: dict[str, Any] = {
            "operationId": op_id,
            "summary": op.summary,
            "description": f"{op.description}\n\n{access}" if op.description else access,
            "tags": list(op.tags),
            "x-callscribe-auth": op.auth,
            "security": [] if op.auth == "none" else [{SECURITY_SCHEME: []}],
        }
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"},
                   **({"description": op.path[name]} if name in op.path else {})}
                  for name in _PATH_PARAM.findall(path)]
        if params:
            obj["parameters"] = params
        if op.form is not None:
            obj["requestBody"] = {"required": True,
                                  "content": {"multipart/form-data": {"schema": _form_schema(op.form)}}}
        elif op.request_type is not None:
            obj["requestBody"] = {"required": True,
                                  "content": {op.request_type: {"schema": _body_schema_for(op.request_type)}}}
        pending.append((path, method.lower(), obj, wants, op))

    refs, schemas = models.resolve()
    paths: dict[str, dict] = {}
    for path, method, obj, wants, op in pending:
        if "body" in wants:  # beside a form when the route takes either (POST /api/jobs)
            obj.setdefault("requestBody", {"required": True, "content": {}})["content"]["application/json"] = {
                "schema": refs[wants["body"]]}
        if "query" in wants:
            query_schema = _component(schemas, refs[wants["query"]])
            required = set(query_schema.get("required", []))
            obj.setdefault("parameters", []).extend(
                {"name": name, "in": "query", "required": name in required, "schema": prop,
                 **({"description": prop["description"]} if "description" in prop else {})}
                for name, prop in query_schema.get("properties", {}).items())
        obj["responses"] = _responses(op, refs.get(wants.get("response")), refs[error_pair])
        paths.setdefault(path, {})[method] = _merge(obj, op.extra)
    for name in _query_only(refs, [w for *_, w, _ in pending]):
        schemas.pop(name, None)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": _version(), "description": description or _DESCRIPTION},
        "tags": [{"name": t} for t in tags],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {SECURITY_SCHEME: {
                "type": "http", "scheme": "bearer",
                "description": "`Authorization: Bearer <API key or room token>`. The operator API key "
                "(`Settings.api_key`) may do everything; room tokens (JWT from `POST /api/tokens`) are limited to "
                "one room and one role (`speaker` or `viewer`). With access control off (no API key, loopback) "
                "every route is open."}},
        },
    }


def _component(schemas: dict, ref: dict) -> dict:
    return schemas[ref["$ref"].rsplit("/", 1)[1]]


def _query_only(refs: dict, wants: Iterable[dict]) -> set[str]:
    """Components of query models that nothing else uses (their fields became parameters)."""
    wants = list(wants)
    name = lambda pair: refs[pair]["$ref"].rsplit("/", 1)[1]  # noqa: E731
    query = {name(w["query"]) for w in wants if "query" in w}
    other = {name(w[k]) for w in wants for k in ("body", "response") if k in w}
    return query - other


def _responses(op: Operation, response_ref: dict | None, error_ref: dict) -> dict:
    ok: dict[str, Any] = {"description": _REASONS.get(op.status, "Success")}
    if response_ref is not None:
        ok["content"] = {op.content_type: {"schema": response_ref}}
    elif op.status != 204 and op.content_type != "application/json":
        ok["content"] = {op.content_type: {"schema": _body_schema_for(op.content_type)}}
    responses: dict[str, Any] = {str(op.status): ok}
    by_status: dict[int, list[str]] = {}
    for code in _error_codes(op):
        by_status.setdefault(status_of(code), []).append(code)
    for status, codes in sorted(by_status.items()):
        entry: dict[str, Any] = {
            "description": "Error: " + ", ".join(f"`{c}`" for c in codes),
            "content": {"application/json": {"schema": error_ref,
                                             "examples": {c: {"value": {"error": {"code": c, "message": "…"}}}
                                                          for c in codes}}},
        }
        if status in (429, 503):
            entry["headers"] = dict(_RETRY_AFTER)
        responses[str(status)] = entry
    return responses


_DESCRIPTION = (
    "The REST API of callscribe, a realtime speech server. Calls themselves are WebRTC (an SDP offer here, "
    "results on a data channel: docs/protocol.md).\n\n"
    "**Errors** have one shape everywhere, `{\"error\": {\"code\", \"message\"}}`; the status follows from the "
    "code: " + ", ".join(f"`{c}` {s}" for c, s in STATUS_BY_CODE.items()) + ".\n\n"
    "**Units:** seconds (`*_s`), Unix seconds (`*_at`), cosine similarity (`score`, `similarity`)."
)


def add_routes(app: web.Application) -> None:
    """Register ``/openapi.json``, ``/docs``, ``/docs/init.js`` and ``/docs/assets/`` (add these last or first:
    the document is built on its first request, from every route registered by then).

    Raises:
        RuntimeError: the swagger-ui-py package (the docs page's assets) is not installed.
    """
    cache: dict[str, dict] = {}
    assets = swagger_ui_assets()

    @operation(summary="This API's OpenAPI 3.1 document", auth="none", tags=["docs"])
    async def openapi_document(request: web.Request) -> web.Response:
        if "doc" not in cache:
            cache["doc"] = build_document(request.app)
        return web.json_response(cache["doc"], headers={"Cache-Control": "no-cache"})

    @operation(summary="The API docs page (Swagger UI, served from this server)", content_type="text/html",
               auth="none", tags=["docs"])
    async def docs_page(request: web.Request) -> web.Response:
        return web.Response(text=DOCS_HTML, content_type="text/html", headers={"Content-Security-Policy": DOCS_CSP})

    async def docs_init(request: web.Request) -> web.Response:
        return web.Response(text=DOCS_JS, content_type="text/javascript")

    app.router.add_get("/openapi.json", openapi_document)
    app.router.add_get("/docs", docs_page)
    app.router.add_get("/docs/init.js", docs_init)
    app.router.add_static("/docs/assets/", assets)
