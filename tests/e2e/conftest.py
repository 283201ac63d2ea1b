"""Browser end-to-end harness: Debian's Chromium driven by Playwright against a real ``callscribe serve``.

Sealing: the server and Chromium run inside a private network namespace whose only interface is loopback
(``ip netns``), so WebRTC can only use 127.0.0.1 and nothing reaches this machine's LAN address or the outside.
Chromium gets a fake microphone fed from a WAV file (``--use-file-for-fake-audio-capture``). Playwright talks
to Chromium over a pipe, which crosses the namespace boundary; the test process reaches the server through
``ip netns exec`` helpers only. Never ``playwright install``: the browser is Debian's ``chromium`` package.

Skips with a reason when Chromium, Playwright or ``ip netns`` are unavailable (CI installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/lib/chromium/chromium")
ARTIFACTS = ROOT / "artifacts" / "e2e"


def _require_tools() -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("the playwright Python package is not installed")
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("browser tests need root and iproute2 ('ip netns') for a sealed loopback-only network")


class Netns:
    """A private network namespace with only ``lo`` up."""

    def __init__(self) -> None:
        self.name = f"callscribe-e2e-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"], check=True)

    def cmd(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def close(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], check=False)


@pytest.fixture(scope="session")
def netns():
    _require_tools()
    ns = Netns()
    yield ns
    ns.close()


class ServerProcess:
    """``callscribe serve`` inside the namespace; ``get(path)`` fetches from it with curl-free Python."""

    def __init__(self, ns: Netns, port: int, env: dict, *extra: str) -> None:
        self.ns, self.port = ns, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(ARTIFACTS / f"server-{port}.log", "w")
        self.proc = subprocess.Popen(
            ns.cmd(sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                   "--ice-host", "127.0.0.1", "-v", *extra),  # info logs in artifacts/e2e: why a call ended
            env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
        )

    def request(self, method: str, path: str, body: dict | None = None,
                token: str | None = None) -> tuple[int, dict | str]:
        """An HTTP request made from inside the namespace (the test process is outside it); ``token`` is sent as
        ``Authorization: Bearer`` (an API key or a room token)."""
        code = (
            "import json,sys,urllib.request as u\n"
            "h={'Content-Type':'application/json'}\n"
            "if sys.argv[4]: h['Authorization']='Bearer '+sys.argv[4]\n"
            "r=u.Request(sys.argv[1],method=sys.argv[2],data=(sys.argv[3].encode() or None),headers=h)\n"
            "try:\n  resp=u.urlopen(r,timeout=10); print(resp.status); print(resp.read().decode())\n"
            "except u.HTTPError as e: print(e.code); print(e.read().decode())\n"
        )
        out = subprocess.run(self.ns.cmd(sys.executable, "-c", code, self.url + path, method,
                                         json.dumps(body) if body is not None else "", token or ""),
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            return 0, out.stderr
        status, _, text = out.stdout.partition("\n")
        try:
            return int(status), json.loads(text)
        except json.JSONDecodeError:
            return int(status), text

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(ARTIFACTS / f'server-{self.port}.log').read_text()[-2000:]}")
            status, _ = self.request("GET", "/readyz")
            if status == 200:
                return
            time.sleep(0.5)
        raise TimeoutError("server not ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def server_env(tmp_path_factory, model_cache):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db = tmp_path_factory.mktemp("e2e-db") / "profiles.sqlite3"
    return {**os.environ, "CALLSCRIBE_DATABASE": str(db), "CALLSCRIBE_MODEL_CACHE_DIR": str(model_cache)}


@pytest.fixture(scope="session")
def server(netns, server_env):
    srv = ServerProcess(netns, 8765, server_env)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def chromium_wrapper(netns, tmp_path_factory) -> Path:
    """An executable that starts Debian's Chromium inside the namespace (Playwright's executable_path)."""
    path = tmp_path_factory.mktemp("bin") / "chromium-in-netns"
    path.write_text(f'#!/bin/sh\nexec ip netns exec {netns.name} {CHROMIUM} "$@"\n')
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def playwright_instance():
    """Per module: sync Playwright keeps its event loop marked running in this thread while it is alive, which
    would break every later pytest-asyncio test ("Runner.run() cannot be called from a running event loop")."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def chromium_args(fake_mic_wav: Path | None) -> list[str]:
    args = [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--allow-loopback-in-peer-connection",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ]
    if fake_mic_wav is not None:
        args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={fake_mic_wav}%noloop"]
    return args


@pytest.fixture
def launch(playwright_instance, chromium_wrapper, tmp_path):
    """``launch(fake_mic_wav=None, deny_mic=False)`` → a new headless Chromium; closed after the test."""
    browsers = []

    def _launch(fake_mic_wav: Path | None = None, deny_mic: bool = False):
        args = chromium_args(None if deny_mic else fake_mic_wav)
        if deny_mic:
            args += ["--use-fake-device-for-media-stream", "--deny-permission-prompts"]
        browser = playwright_instance.chromium.launch(executable_path=str(chromium_wrapper), headless=True,
                                                      args=args)
        browsers.append(browser)
        return browser

    yield _launch
    for b in browsers:
        b.close()


@pytest.fixture
def busy_server(netns, server_env):
    """A second ``callscribe serve`` (port 8766) that admits a single call (``--max-peers 1``)."""
    srv = ServerProcess(netns, 8766, server_env, "--max-peers", "1")
    try:
        srv.wait_ready()
        yield srv
    finally:
        if srv.proc.poll() is None:
            srv.stop()


API_KEY = "e2e-operator-key-0123456789abcdef"
TOKEN_SECRET = "e2e-token-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def auth_server(netns, server_env, tmp_path_factory):
    """A ``callscribe serve`` (port 8767, its own database) with access control on (``API_KEY``; tokens signed
    with ``TOKEN_SECRET``) that records each call's audio. ``auth_server.api_key`` is the operator key."""
    data = tmp_path_factory.mktemp("e2e-auth")
    env = {**server_env, "CALLSCRIBE_DATABASE": str(data / "callscribe.sqlite3"),
           "CALLSCRIBE_RECORDINGS_DIR": str(data / "recordings"), "CALLSCRIBE_RECORD_AUDIO": "true",
           "CALLSCRIBE_API_KEY": API_KEY, "CALLSCRIBE_TOKEN_SECRET": TOKEN_SECRET}
    srv = ServerProcess(netns, 8767, env)
    srv.api_key, srv.token_secret = API_KEY, TOKEN_SECRET
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def _viewer_context(browser, **kwargs):
    """A browser context for a room view (a page that never asks for the microphone).

    Chromium gathers ICE candidates on every interface only for pages with microphone/camera permission;
    other pages get candidates on the default route alone. The sealed namespace has no default route, so a
    listen-only page would gather nothing and never connect. Granting the permission (never used: the room
    page does not call getUserMedia) lets it use loopback like the call page. Real networks have a route.
    """
    return browser.new_context(permissions=["microphone"], **kwargs)


@pytest.fixture
def viewer_context():
    """``viewer_context(browser, **context_kwargs)`` → a context for the listen-only room page."""
    return _viewer_context
