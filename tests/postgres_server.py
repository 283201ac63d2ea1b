"""A real, throwaway PostgreSQL server for tests: Debian's ``postgresql`` package, a fresh data folder.

:class:`PostgresServer` runs ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/<newest>/bin`` in a new temporary
folder, listening on 127.0.0.1 (a free port) and on a unix socket inside that folder, with trust authentication for
local and loopback connections, ``fsync`` off (the data is thrown away). PostgreSQL refuses to run as root, so as
root the server runs as the ``postgres`` system user (created by the Debian package) via ``runuser``, with the
folder owned by it; as any other user it runs as that user. Every wait is bounded. :func:`start_or_skip` turns a
machine that cannot run it (no binaries, no driver, root without a ``postgres`` user or without ``runuser``,
``initdb`` failing) into ``pytest.skip`` with the reason; a server that then fails to start is a test error, with
its log. :func:`create_database` makes a fresh database per test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


class Unavailable(Exception):
    """This machine cannot run a PostgreSQL server for tests (the message says why)."""


def find_bin() -> Path:
    """The newest PostgreSQL ``bin`` folder with ``initdb`` and ``pg_ctl``; raises :class:`Unavailable`."""
    found = [p for p in Path("/").glob(BIN_GLOB.lstrip("/")) if (p / "initdb").is_file() and (p / "pg_ctl").is_file()]
    if not found:
        raise Unavailable(f"PostgreSQL binaries not found under {BIN_GLOB} (Debian: apt-get install postgresql, "
                          "or deploy/install.sh --test)")
    return max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One running server; :meth:`url` gives SQLAlchemy URLs, :func:`create_database` fresh databases on it.

    Raises (constructor):
        Unavailable: no binaries, no psycopg, root without a ``postgres`` user / ``runuser``, or ``initdb`` failed.
        RuntimeError: the server did not start (the message holds its log).
    """

    def __init__(self, database: str = "callscribe") -> None:
        try:
            import psycopg  # noqa: F401 - the driver the URLs name
        except ImportError:
            raise Unavailable("psycopg is not installed (pip install 'psycopg[binary]')") from None
        self.bin = find_bin()
        self._as: list[str] = []
        owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            try:
                owner = pwd.getpwnam(SUPERUSER)
            except KeyError:
                raise Unavailable("running as root and there is no 'postgres' system user to run PostgreSQL as "
                                  "(Debian's postgresql package creates it)") from None
            runuser = shutil.which("runuser")
            if runuser is None:
                raise Unavailable("running as root and runuser (util-linux) is missing to run PostgreSQL as postgres")
            self._as = [runuser, "-u", SUPERUSER, "--"]
        self.root = Path(tempfile.mkdtemp(prefix="callscribe-pg-"))  # under /tmp: reachable by the postgres user
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self.port = 0
        self._running = False
        try:
            for folder in (self.data, self.sockets):
                folder.mkdir(mode=0o700)
            if owner is not None:
                for path in (self.root, self.data, self.sockets):
                    os.chown(path, owner.pw_uid, owner.pw_gid)
            self._initdb()
            self._start()
            self.database = database
            self._admin(f'CREATE DATABASE "{database}"')
        except BaseException:
            self.stop()
            raise

    # -- running ---------------------------------------------------------------------------------
    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run([*self._as, *args], capture_output=True, text=True, timeout=timeout, check=False,
                              cwd=self.root, env={**os.environ, "LC_ALL": "C", "TZ": "UTC"})

    def _initdb(self) -> None:
        try:
            done = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                             "--encoding=UTF8", "--locale=C", "--no-sync", timeout=START_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"cannot run initdb: {exc}") from None
        if done.returncode != 0:  # e.g. runuser not permitted here (no CAP_SETUID), or no space for the data
            output = (done.stderr or done.stdout).strip()[-2000:]
            who = f" as {SUPERUSER}" if self._as else ""
            raise Unavailable(f"initdb{who} failed ({done.returncode}): {output}")
        with open(self.data / "pg_hba.conf", "w") as hba:  # only local and loopback, no password
            hba.write("local all all trust\nhost all all 127.0.0.1/32 trust\n")

    def _start(self) -> None:
        for _attempt in range(3):  # the free port may be taken between choosing and binding it
            self.port = free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='{self.sockets}' "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            try:
                done = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                                 "-t", str(START_TIMEOUT_S), "-o", options, "start", timeout=START_TIMEOUT_S + 10)
            except subprocess.TimeoutExpired:
                done = None
            if done is not None and done.returncode == 0:
                self._running = True
                return
            self._running = True  # it may be half up: stop() cleans up
            self.stop(remove=False)
            if "could not bind" not in self.server_log():
                break
        raise RuntimeError(f"PostgreSQL did not start; its log:\n{self.server_log()[-3000:]}")

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, *, remove: bool = True) -> None:
        """``pg_ctl stop -m fast`` (bounded), then delete the data folder. Idempotent."""
        if self._running:
            self._running = False
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                          "-t", str(STOP_TIMEOUT_S), "stop", timeout=STOP_TIMEOUT_S + 10)
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- databases -----------------------------------------------------------------------------
    def url(self, database: str | None = None) -> str:
        """``postgresql+psycopg://postgres@127.0.0.1:PORT/DATABASE`` (the server's own database by default)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database or self.database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)


def start_or_skip() -> PostgresServer:
    """A running :class:`PostgresServer`, or ``pytest.skip`` saying why this machine cannot run one."""
    try:
        return PostgresServer()
    except Unavailable as exc:
        pytest.skip(f"no PostgreSQL for tests: {exc}")


def create_database(url: str, prefix: str = "t") -> str:
    """A new, empty database on the server of ``url`` (a URL :meth:`PostgresServer.url` made); returns its URL."""
    import psycopg
    from sqlalchemy import make_url

    u = make_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname="postgres", autocommit=True,
                         connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return u.set(database=name).render_as_string(hide_password=False)
