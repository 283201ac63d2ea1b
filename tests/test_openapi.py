"""The OpenAPI document (``GET /openapi.json``) of a real server: it validates as OpenAPI 3.1, covers every API
route, is generated from the handlers' pydantic models, and declares the access level of each route; the docs
page (``GET /docs``) and its assets are served by the server itself."""

from __future__ import annotations

import re

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer
from openapi_spec_validator import validate

from signaling import schemas
from signaling.errors import STATUS_BY_CODE

pytestmark = pytest.mark.asyncio(loop_scope="module")

UNDOCUMENTED = {"/", "/room/{name}", "/analyze", "/docs/init.js"}
"""Pages and the docs page's script: not API (static file folders are skipped by kind)."""


@pytest.fixture(scope="module")
def runtime(tmp_path_factory, model_cache):
    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings

    rt = SpeechRuntime.from_settings(Settings(database=tmp_path_factory.mktemp("db") / "p.sqlite3",
                                              model_cache_dir=model_cache), load_asr=False)
    yield rt
    rt.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(runtime):
    from server.compose import create_app

    app = create_app(runtime)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/openapi.json") as r:
            assert r.status == 200 and r.content_type == "application/json"
            doc = await r.json()
        yield app, http, url, doc
    await server.close()


async def test_the_document_validates_as_openapi_3_1(served):
    *_, doc = served
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # openapi-spec-validator: raises on any schema error


async def test_the_validator_would_catch_a_broken_document(served):
    import copy

    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    *_, doc = served
    broken = copy.deepcopy(doc)
    broken["paths"]["/api/profiles"]["get"]["responses"]["200"] = {"content": {}}  # a response needs a description
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


async def test_every_api_route_is_documented(served):
    app, _, _, doc = served
    from aiohttp.web_urldispatcher import StaticResource

    missing = []
    for route in app.router.routes():
        if route.method == "HEAD" or isinstance(route.resource, StaticResource):
            continue
        path = route.resource.canonical
        if path in UNDOCUMENTED:
            continue
        if route.method.lower() not in doc["paths"].get(path, {}):
            missing.append(f"{route.method} {path}")
    assert missing == []
    for path in ("/api/offer", "/whip", "/api/ice-servers", "/healthz", "/readyz", "/metrics",
                 "/api/rooms/{room}/speakers", "/api/rooms/{room}/speakers/{speaker_id}/name", "/api/profiles",
                 "/api/profiles/{name}", "/api/profiles/{name}/audio", "/api/profiles/map", "/api/identify",
                 "/api/identify/batch", "/api/export"):
        assert path in doc["paths"], path


def _op(doc, method, path) -> dict:
    return doc["paths"][path][method]


async def test_access_levels_are_declared(served):
    *_, doc = served
    expected = {
        ("get", "/api/profiles"): "token", ("get", "/api/profiles/{name}"): "token",
        ("get", "/api/profiles/map"): "token", ("post", "/api/identify"): "token",
        ("post", "/api/identify/batch"): "token", ("post", "/api/profiles"): "speaker",
        ("post", "/api/profiles/{name}/audio"): "speaker", ("patch", "/api/profiles/{name}"): "admin",
        ("delete", "/api/profiles/{name}"): "admin", ("post", "/api/export"): "token",
        ("get", "/api/rooms/{room}/speakers"): "room", ("post", "/api/rooms/{room}/speakers/{speaker_id}/name"):
        "speaker", ("get", "/api/ice-servers"): "token", ("get", "/healthz"): "none", ("get", "/readyz"): "none",
        ("get", "/metrics"): "admin",
    }
    for (method, path), level in expected.items():
        op = _op(doc, method, path)
        assert op["x-callscribe-auth"] == level, (method, path)
        assert op["security"] == ([] if level == "none" else [{"bearer": []}]), (method, path)
        if level != "none":
            assert "401" in op["responses"], (method, path)
    assert doc["components"]["securitySchemes"]["bearer"] == {**doc["components"]["securitySchemes"]["bearer"],
                                                              "type": "http", "scheme": "bearer"}


async def test_schemas_are_the_handlers_pydantic_models(served):
    """Components are pydantic's own JSON Schema of the models the handlers validate and answer with."""
    *_, doc = served
    components = doc["components"]["schemas"]
    for model in (schemas.IdentifyResult, schemas.VoiceMap, schemas.Enrolled, schemas.RenameRequest):
        mine = model.model_json_schema(ref_template="#/components/schemas/{model}")
        mine.pop("$defs", None)
        assert components[model.__name__] == mine, model.__name__
    ident = _op(doc, "post", "/api/identify")
    assert ident["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/IdentifyResult"}
    form = ident["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["audio"]["format"] == "binary" and form["required"] == ["audio"]
    batch = _op(doc, "post", "/api/identify/batch")["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert batch["properties"]["audio"]["type"] == "array"
    create = _op(doc, "post", "/api/profiles")
    assert sorted(create["requestBody"]["content"]["multipart/form-data"]["schema"]["required"]) == ["audio", "name"]
    assert "201" in create["responses"] and "409" in create["responses"]
    rename = _op(doc, "patch", "/api/profiles/{name}")
    assert rename["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RenameRequest"}
    assert [p["name"] for p in rename["parameters"]] == ["name"] and rename["parameters"][0]["in"] == "path"
    export = _op(doc, "post", "/api/export")
    fmt = next(p for p in export["parameters"] if p["name"] == "format")
    assert fmt["in"] == "query" and fmt["required"] and set(fmt["schema"]["enum"]) == {"text", "json", "srt", "vtt",
                                                                                          "rttm"}
    assert "ExportQuery" not in components  # spread into parameters
    assert {"text/vtt", "application/x-subrip"} <= set(export["responses"]["200"]["content"])


async def test_errors_reference_the_one_error_schema_with_known_codes(served):
    *_, doc = served
    seen_codes = set()
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            for status, response in op["responses"].items():
                if int(status) < 400:
                    continue
                content = response["content"]["application/json"]
                if path == "/readyz" and status == "503":
                    continue  # not ready: the readiness body itself
                assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (method, path, status)
                for code in re.findall(r"`(\w+)`", response["description"]):
                    assert STATUS_BY_CODE.get(code) == int(status), (method, path, code)  # no 500 by a typo
                    seen_codes.add(code)
    assert {"name_taken", "too_long", "too_large", "unsupported_media_type", "bad_audio", "not_found"} <= seen_codes
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]


async def test_operation_ids_are_unique(served):
    *_, doc = served
    ids = [op["operationId"] for methods in doc["paths"].values() for op in methods.values()]
    assert len(ids) == len(set(ids))


async def test_docs_page_and_assets_are_served_locally(served):
    _, http, url, _ = served
    async with http.get(f"{url}/docs") as r:
        assert r.status == 200 and r.content_type == "text/html"
        html = await r.text()
        csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(ref.startswith("/") and not ref.startswith("//") for ref in refs), refs
    for ref in refs:
        async with http.get(url + ref) as r:
            assert r.status == 200, ref
    async with http.get(f"{url}/docs/assets/swagger-ui-bundle.js") as r:
        assert r.status == 200 and len(await r.read()) > 100_000
