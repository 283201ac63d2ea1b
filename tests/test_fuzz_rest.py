"""Property-based fuzzing of the REST bodies (Hypothesis) against a real server on 127.0.0.1.

Every route the OpenAPI document says takes a JSON body gets arbitrary JSON (any shape), bodies and path
parameters generated from the document by Schemathesis (``positive``: what the schema allows; ``negative``: what it
does not), and bytes that are not JSON. Whatever comes in, the answer must come within a few seconds, never be a
5xx, and every 4xx must be the one error shape ``{"error": {"code", "message"}}`` with the status its code maps to
(signaling/errors.py). Routes that take a form or SDP get arbitrary JSON too and must refuse it the same way.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import urllib.parse

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from signaling.errors import STATUS_BY_CODE

TIMEOUT_S = 10.0
PATH_VALUES = {"name": "Fuzzy", "room": "fuzzroom", "speaker_id": "anon:1", "key": "nokey", "peer_id": "nopeer",
               "session_id": "nosession"}


class ServerThread:
    """The app of ``server.compose.create_app`` served by aiohttp on its own event loop in a thread, so that
    Hypothesis (synchronous) can drive it with plain HTTP."""

    def __init__(self, runtime) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = None
        self.port = asyncio.run_coroutine_threadsafe(self._start(runtime), self.loop).result(60)

    async def _start(self, runtime) -> int:
        from aiohttp import web

        from server.compose import create_app

        self.runner = web.AppRunner(create_app(runtime))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return site._server.sockets[0].getsockname()[1]

    def request(self, method: str, path: str, body: bytes, content_type: str = "application/json"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": content_type})
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type") or "", resp.read()
        finally:
            conn.close()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_cache):
    from server.compute.runtime import SpeechRuntime
    from server.settings import Settings

    rt = SpeechRuntime.from_settings(Settings(database=tmp_path_factory.mktemp("db") / "p.sqlite3",
                                              model_cache_dir=model_cache), load_asr=False)
    srv = ServerThread(rt)
    yield srv
    srv.close()
    rt.close()


@pytest.fixture(scope="module")
def document(server) -> dict:
    status, _, body = server.request("GET", "/openapi.json", b"")
    assert status == 200
    return json.loads(body)


def _resolve(node, components: dict):
    """The schema with every ``#/components/schemas/X`` reference replaced by X itself."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            return _resolve(components[node["$ref"].rsplit("/", 1)[1]], components)
        return {k: _resolve(v, components) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, components) for v in node]
    return node


def _routes(document: dict, json_only: bool) -> list[tuple[str, str, dict | None]]:
    out = []
    for path, methods in document["paths"].items():
        concrete = path
        for name, value in PATH_VALUES.items():
            concrete = concrete.replace("{" + name + "}", value)
        for method, op in methods.items():
            content = op.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if json_only and schema is None:
                continue
            if not json_only and (schema is not None or method not in ("post", "patch", "put")):
                continue
            query = "?format=json" if path == "/api/export" else ""
            out.append((method.upper(), concrete + query,
                        _resolve(schema, document["components"]["schemas"]) if schema else None))
    return out


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)


def _check(server, method: str, path: str, body: bytes) -> int:
    try:
        status, ctype, raw = server.request(method, path, body)
    except TimeoutError:
        pytest.fail(f"{method} {path} did not answer within {TIMEOUT_S} s for {body[:200]!r}")
    assert status < 500, f"{method} {path} → {status} {raw[:300]!r} for {body[:300]!r}"
    if status >= 400:
        assert ctype.startswith("application/json"), (method, path, status, ctype)
        err = json.loads(raw)
        assert list(err) == ["error"] and sorted(err["error"]) == ["code", "message"], err
        code = err["error"]["code"]
        assert isinstance(code, str) and code and isinstance(err["error"]["message"], str), err
        if code in STATUS_BY_CODE:
            assert STATUS_BY_CODE[code] == status, (method, path, status, err)
    return status


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def test_the_json_routes_are_found(document):
    found = {(m, p.split("?")[0]) for m, p, _ in _routes(document, json_only=True)}
    assert {("POST", "/api/offer"), ("PATCH", "/api/profiles/Fuzzy"), ("POST", "/api/export"),
            ("POST", "/api/rooms/fuzzroom/speakers/anon:1/name")} <= found


def test_arbitrary_json_into_every_json_route(server, document):
    for method, path, _ in _routes(document, json_only=True):
        _arbitrary_json(server, method, path)


def _arbitrary_json(server, method: str, path: str) -> None:
    @FUZZ
    @given(body=JSON)
    def fuzz(body):
        _check(server, method, path, json.dumps(body).encode())

    fuzz()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_bodies_from_the_schema_into_every_json_route(server, document, mode):
    schema = schemathesis.openapi.from_dict(document)
    for method, path, _ in _routes(document, json_only=True):
        template = next(p for p, ms in document["paths"].items() if method.lower() in ms
                        and _concrete(p) == path.split("?")[0])
        statuses = _schema_shaped(server, schema[template][method], method, mode)
        assert statuses, (method, path)
        if template == "/api/export" and mode is GenerationMode.POSITIVE:
            assert 200 in statuses  # valid bodies do come: the check is not only of refusals


def _concrete(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path


def _schema_shaped(server, operation, method: str, mode) -> list[int]:
    statuses = []

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        query = urllib.parse.urlencode(case.query or {}, doseq=True)
        path = case.formatted_path + (f"?{query}" if query else "")
        body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
        statuses.append(_check(server, method, path, body))

    fuzz()
    return statuses


def test_bytes_that_are_not_json(server, document):
    for method, path, _ in _routes(document, json_only=True):
        _not_json(server, method, path)


def _not_json(server, method: str, path: str) -> None:
    @FUZZ
    @given(body=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
    def fuzz(body):
        _check(server, method, path, body)

    fuzz()


def test_arbitrary_json_into_form_and_sdp_routes(server, document):
    routes = _routes(document, json_only=False)
    assert {p for _, p, _ in routes} >= {"/api/profiles", "/api/identify", "/api/identify/batch", "/whip"}
    for method, path, _ in routes:
        _refused_json(server, method, path)


def _refused_json(server, method: str, path: str) -> None:
    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=JSON)
    def fuzz(body):
        assert 400 <= _check(server, method, path, json.dumps(body).encode()) < 500

    fuzz()
