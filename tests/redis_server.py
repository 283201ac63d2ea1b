"""A real, throwaway Redis server for tests: Debian's ``redis-server`` package, a fresh folder.

:class:`RedisServer` runs ``redis-server`` on 127.0.0.1 (a free port), without persistence (no RDB, no AOF),
with its folder and log in a new temporary directory, and stops it (``SHUTDOWN NOSAVE``, then SIGKILL) at the
end. Every wait is bounded. :func:`start_or_skip` turns a machine without the binary or the ``redis`` package
into ``pytest.skip`` with the reason; a server that then fails to start is a test error, with its log.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from postgres_server import free_port

START_TIMEOUT_S = 20.0


class Unavailable(Exception):
    """This machine cannot run a Redis server for tests (the message says why)."""


class RedisServer:
    """One running server; :attr:`url` is its ``redis://127.0.0.1:PORT/0`` URL.

    Raises (constructor):
        Unavailable: no ``redis-server`` binary or no ``redis`` package.
        RuntimeError: the server did not answer PING within ``START_TIMEOUT_S`` (the message holds its log).
    """

    def __init__(self) -> None:
        try:
            import redis
        except ImportError:
            raise Unavailable("the redis package is not installed (deploy/install.sh --test)") from None
        binary = shutil.which("redis-server")
        if binary is None:
            raise Unavailable("redis-server not found (Debian: apt-get install redis-server, or "
                              "deploy/install.sh --test)")
        self.root = Path(tempfile.mkdtemp(prefix="callscribe-redis-"))
        self.log = self.root / "redis.log"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.root), "--save", "",
             "--appendonly", "no", "--logfile", str(self.log), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    pass
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start; its log:\n{self.server_log()[-3000:]}")
                time.sleep(0.05)
        finally:
            client.close()

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def flush(self) -> None:
        """Empty every database (between tests)."""
        import redis

        with contextlib.closing(redis.Redis.from_url(self.url, socket_timeout=5.0)) as client:
            client.flushall()

    def stop(self) -> None:
        """Stop the server (bounded) and delete its folder. Idempotent."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def start_or_skip() -> RedisServer:
    """A running :class:`RedisServer`, or ``pytest.skip`` saying why this machine cannot run one."""
    try:
        return RedisServer()
    except Unavailable as exc:
        pytest.skip(f"no Redis for tests: {exc}")
