"""The one database layer: a SQLAlchemy Core engine whose schema Alembic migrates to head on open.

Shapes and units: :class:`Database` takes a path (a SQLite file; parent folders are created) or a SQLAlchemy URL:
``sqlite:///…`` or ``postgresql+psycopg://user[:password]@host[:port]/dbname`` (``postgresql://`` means the same
driver, psycopg 3), and ``timeout_s``, seconds a write waits for another writer's lock before :class:`StoreError`
(on PostgreSQL also the connect timeout, at least 2 s). Both dialects are supported by every revision and behave
the same through the stores (profile names unique case-insensitively, times as 8-byte floats); other dialects are
untested.

* SQLite runs in WAL mode with foreign keys ON; reads are ``BEGIN`` (a snapshot that never blocks on writers),
  writes ``BEGIN IMMEDIATE`` (take the write lock up front, so writers run one at a time), via SQLAlchemy's pysqlite
  recipe (``isolation_level=None`` on the DBAPI connection + a ``begin`` event).
* PostgreSQL: reads are ``REPEATABLE READ READ ONLY`` (one snapshot per block, like SQLite's), writes ``READ
  COMMITTED``; ``lock_timeout`` is ``timeout_s``. Writers run concurrently, so a write that must not interleave
  with others of its kind (read, decide, write) passes ``serialize=`` to :meth:`Database.write`, which takes a
  transaction-level advisory lock (``pg_advisory_xact_lock``) named by it; SQLite needs nothing for that.

Each :meth:`Database.read` / :meth:`Database.write` block is one transaction on its own pooled connection, so one
``Database`` is safe to share across threads.

Migration policy:

* The migrations in ``migrations/versions/`` are the source of truth for DDL; :mod:`.schema` mirrors them as
  Table objects for queries. Revisions only go forward at run time (``downgrade()`` is for developers).
* Opening checks the revision in a read transaction and, when behind, upgrades to head in one write transaction
  (lock, check, stamp, upgrade, commit — all or nothing; concurrent openers wait for each other, and the one that
  comes second finds the database at head). The lock is ``BEGIN IMMEDIATE`` on SQLite and
  ``pg_advisory_xact_lock`` on PostgreSQL (whose DDL is transactional too). On SQLite foreign keys are switched
  off for that transaction (SQLite's documented procedure for table rebuilds, so an Alembic batch "move and copy"
  of ``profiles`` cannot cascade-delete ``enrollments``) and ``PRAGMA foreign_key_check`` must be clean before
  commit.
* SQLite databases written before Alembic (``PRAGMA user_version = 1`` with ``profiles`` and ``enrollments``, no
  ``alembic_version``) are stamped at ``0001`` without touching their tables, then upgraded.
* A database whose ``alembic_version`` names a revision this code doesn't know, or with ``user_version > 1`` and no
  ``alembic_version``, was written by a newer callscribe: refused, never modified. Migrated databases get
  ``user_version = 2`` so that callscribe from before Alembic refuses them the same way.
* A database with tables but neither ``alembic_version`` nor the legacy marker is another program's: refused.
  Tables created by callscribe's own later migrations are expected and fine.

Adding a migration (no ``alembic revision`` or alembic.ini needed): write ``migrations/versions/NNNN_what.py``
with ``revision = "NNNN"``, ``down_revision = "<previous head>"``, ``upgrade()`` / ``downgrade()`` using
``alembic.op`` (``op.batch_alter_table`` for SQLite column changes; ``render_as_batch`` is on), mirror the change
in :mod:`.schema`, and add a test that opens a database at the previous revision.

Alembic runs programmatically on our own connection as in Alembic's Cookbook recipe "Sharing a Connection with a
Series of Migration Commands and Environments" (``config.attributes["connection"]``); its INFO logging is
silenced unless the application configures the ``alembic`` logger itself.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

# before importing alembic, which logs "setup plugin …" at INFO on import; "Running upgrade …" must not reach
# CLI stderr either. An application that configures the "alembic" logger itself keeps its choice.
if logging.getLogger("alembic").level == logging.NOTSET:
    logging.getLogger("alembic").setLevel(logging.WARNING)

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import URL, Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.engine import Result
from sqlalchemy.exc import ArgumentError, DBAPIError

from ..errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
LEGACY_REVISION = "0001"  # the schema callscribe wrote itself, marked by PRAGMA user_version = 1
_LEGACY_USER_VERSION = 1
_LEGACY_TABLES = frozenset({"profiles", "enrollments"})
_MIGRATED_USER_VERSION = 2  # callscribe before Alembic refuses user_version > 1 as "newer"
_READ_ONLY = "callscribe_read_only"  # execution option: BEGIN (deferred) instead of BEGIN IMMEDIATE
_MIGRATION_LOCK = "migrations"  # the advisory lock PostgreSQL openers migrate under
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for lock_timeout


class Database:
    """An open, migrated callscribe database.

    Args:
        target: a file path (SQLite), or a SQLAlchemy URL string / :class:`sqlalchemy.URL`.
        timeout_s: seconds to wait for a lock held by another connection (SQLite busy timeout, PostgreSQL
            ``lock_timeout``; also the PostgreSQL connect timeout, at least 2 s).
        label: how error messages name the database (e.g. ``"profile database"``).
        migrations: the Alembic script folder; the packaged one unless a test brings its own.
    Raises:
        StoreError: cannot create or open the file, cannot reach the server, no driver for the URL, not a
            database, locked beyond ``timeout_s`` while migrating, written by a newer callscribe, or another
            program's database.
    """

    def __init__(self, target: str | Path | URL, timeout_s: float = 5.0, *, label: str = "callscribe database",
                 migrations: Path = MIGRATIONS) -> None:
        self.url = _url(target)
        self.label = label
        self.path: Path | None = _sqlite_file(self.url)
        self.where = str(self.path) if self.path else self.url.render_as_string(hide_password=True)
        self._closed = False
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the {label} {self.where}: {exc}") from None
        self.engine = _engine(self.url, timeout_s, label, self.where)
        self._alembic = Config(stdout=io.StringIO())
        self._alembic.set_main_option("script_location", str(migrations).replace("%", "%%"))
        try:
            self._migrate()
        except BaseException:
            self.engine.dispose()
            raise

    # -- transactions ------------------------------------------------------------------------
    def read(self) -> AbstractContextManager[Connection]:
        """``with db.read() as conn``: one read transaction (a consistent snapshot).

        Raises:
            StoreError: the database cannot be read.
        """
        return self._transaction(write=False)

    def write(self, *, serialize: str | None = None) -> AbstractContextManager[Connection]:
        """``with db.write() as conn``: one write transaction, committed at the end, rolled back on any exception.

        Args:
            serialize: a name: write blocks passing the same name never overlap (PostgreSQL: an advisory lock held
                until commit; SQLite serialises all writes anyway). For read-decide-write transactions.
        Raises:
            StoreError: locked by another writer beyond the timeout, read-only, or the write failed.
        """
        return self._transaction(write=True, serialize=serialize)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None, *, write: bool = False) -> Result:
        """Run one textual statement (``:name`` parameters) in its own transaction; rows come back buffered."""
        with self._transaction(write=write) as conn:
            result = conn.execute(text(sql), dict(params or {}))
            return result.freeze()() if result.returns_rows else result

    def revision(self) -> str | None:
        """The Alembic revision the database is at (``None`` before any migration)."""
        with self.read() as conn:
            heads = MigrationContext.configure(conn).get_current_heads()
        return heads[0] if len(heads) == 1 else None

    def close(self) -> None:
        """Close all pooled connections; later transactions raise :class:`StoreError`. Idempotent."""
        self._closed = True
        self.engine.dispose()

    @contextmanager
    def _transaction(self, *, write: bool, migrating: bool = False,
                     serialize: str | None = None) -> Iterator[Connection]:
        if self._closed:
            raise StoreError(f"the {self.label} {self.where} is closed")
        verb = "write" if write else "read"
        try:
            conn = self.engine.connect()
        except DBAPIError as exc:
            raise StoreError(f"cannot open the {self.label} {self.where}: {_reason(exc)}") from None
        with conn:
            foreign_keys_off = migrating and conn.dialect.name == "sqlite"
            if foreign_keys_off:  # only takes effect outside a transaction, hence on the DBAPI connection
                conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=OFF")
            postgresql = conn.dialect.name == "postgresql"
            if not write:
                conn.execution_options(**{_READ_ONLY: True})
                if postgresql:  # one snapshot for the whole block, as on SQLite
                    conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            try:
                try:
                    tx = conn.begin()
                except DBAPIError as exc:
                    raise StoreError(f"the {self.label} {self.where} is busy or read-only: {_reason(exc)}") from None
                try:
                    if serialize is not None and postgresql:
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(serialize)})
                    yield conn
                    if foreign_keys_off and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                        raise StoreError(f"a migration left dangling references in {self.where}; nothing changed")
                    tx.commit()
                except DBAPIError as exc:
                    tx.rollback()
                    if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                        raise StoreError(f"the {self.label} {self.where} is busy: {_reason(exc)}") from None
                    raise StoreError(f"cannot {verb} the {self.label} {self.where}: {_reason(exc)}") from None
                except BaseException:
                    tx.rollback()
                    raise
            finally:
                if foreign_keys_off:
                    conn.connection.dbapi_connection.execute("PRAGMA foreign_keys=ON")

    # -- migrations --------------------------------------------------------------------------
    def _migrate(self) -> None:
        script = ScriptDirectory.from_config(self._alembic)
        known = {s.revision for s in script.walk_revisions()}
        with self.read() as conn:
            if self._plan(conn, known, set(script.get_heads())) is None:
                return
        with self._transaction(write=True, migrating=True, serialize=_MIGRATION_LOCK) as conn:
            plan = self._plan(conn, known, set(script.get_heads()))  # again, under the write lock
            if plan == "adopt":
                self._command(conn, command.stamp, LEGACY_REVISION)
            if plan is not None:
                self._command(conn, command.upgrade, "head")
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql(f"PRAGMA user_version={_MIGRATED_USER_VERSION}")

    def _plan(self, conn: Connection, known: set[str], heads: set[str]) -> str | None:
        """``None`` (at head), ``"upgrade"``, or ``"adopt"`` (legacy: stamp, then upgrade); raises if not ours."""
        tables = set(inspect(conn).get_table_names())
        current = set(MigrationContext.configure(conn).get_current_heads()) if "alembic_version" in tables else set()
        if current:
            if current - known:
                raise StoreError(f"{self.where}: written by a newer callscribe (revision {', '.join(sorted(current))})")
            return None if current == heads else "upgrade"
        user_version = conn.exec_driver_sql("PRAGMA user_version").scalar() if conn.dialect.name == "sqlite" else 0
        if user_version > _LEGACY_USER_VERSION:
            raise StoreError(f"{self.where}: written by a newer callscribe (schema {user_version})")
        if user_version == _LEGACY_USER_VERSION and _LEGACY_TABLES <= tables:
            return "adopt"
        if tables - {"alembic_version"}:
            raise StoreError(f"{self.where} is another program's database, not callscribe's")
        return "upgrade"

    def _command(self, conn: Connection, fn, revision: str) -> None:
        self._alembic.attributes["connection"] = conn
        try:
            fn(self._alembic, revision)
        except CommandError as exc:
            raise StoreError(f"cannot migrate the {self.label} {self.where}: {exc}") from None
        finally:
            del self._alembic.attributes["connection"]


def _url(target: str | Path | URL) -> URL:
    if isinstance(target, URL):
        return target
    if isinstance(target, str) and "://" in target:
        return make_url(target)
    return URL.create("sqlite", database=str(Path(target).expanduser()))


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return None if url.database.startswith("file:") else Path(url.database)


def _engine(url: URL, timeout_s: float, label: str, where: str) -> Engine:
    backend = url.get_backend_name()
    try:
        if backend == "postgresql":
            return _postgresql_engine(url, timeout_s)
        if backend != "sqlite":
            return create_engine(url, pool_pre_ping=True)
        engine = create_engine(url, connect_args={"timeout": timeout_s, "check_same_thread": False})
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot open the {label} {where}: {exc}") from None

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        dbapi_connection.execute("PRAGMA foreign_keys=ON")
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


def _postgresql_engine(url: URL, timeout_s: float) -> Engine:
    # connect_timeout: whole seconds, and libpq treats values below 2 as 2
    engine = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": max(2, math.ceil(timeout_s))})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:  # session-wide, so the pool's later rollbacks keep it
            cursor.execute(f"SET SESSION lock_timeout = {max(1, round(timeout_s * 1000))}")
        dbapi_connection.commit()

    return engine


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (callscribe's namespace)."""
    digest = hashlib.blake2b(f"callscribe:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig) if exc.orig is not None else str(exc)
