"""The database layer on a real PostgreSQL server (tests/postgres_server.py): what only PostgreSQL has —
its DDL, the migration lock between concurrent openers, advisory-lock timeouts, unreachable servers.
The behaviour both dialects share is tested on both in tests/test_sessions_store.py."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psycopg
import pytest
from postgres_server import create_database, free_port
from sqlalchemy import make_url, text

from server.errors import StoreError
from server.settings import Settings
from server.speaker.embedding import normalise
from server.store.database import Database
from server.store.profiles import ProfileStore
from server.store.sessions import SessionStore


@pytest.fixture
def url(postgres_url):
    return create_database(postgres_url)


def vec(seed: int) -> np.ndarray:
    return normalise(np.random.default_rng(seed).standard_normal(192).astype(np.float32))


def test_schema_on_postgresql(url):
    db = Database(url)
    try:
        assert db.engine.dialect.name == "postgresql" and db.revision() == "0003" and db.path is None
        assert "127.0.0.1" in db.where
        tables = {r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert tables == {"alembic_version", "profiles", "enrollments", "sessions", "utterances", "relabels",
                          "profile_events", "jobs", "job_voices"}
        index = db.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'profiles_name_fold'").scalar()
        assert index is not None and "UNIQUE" in index and 'lower((name COLLATE "C"))' in index
        types = dict(db.execute("SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                                "WHERE table_schema = 'public'").all())
        assert {t for c, t in types.items() if c.endswith(("_at", "speech_s", ".start", ".end"))} == {
            "double precision"}  # PostgreSQL's REAL would keep Unix times to about 2 minutes
        cascade = db.execute("SELECT confdeltype FROM pg_constraint WHERE conrelid = 'utterances'::regclass "
                             "AND contype = 'f'").scalar()
        assert cascade == "c"
    finally:
        db.close()


def test_concurrent_openers_migrate_once(url):
    """Six processes' worth of openers on an empty database: one migrates, the others wait and find it at head."""
    barrier = threading.Barrier(6)

    def open_one(_):
        barrier.wait(timeout=30)
        db = Database(url, timeout_s=30)
        try:
            return db.revision()
        finally:
            db.close()

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(open_one, range(6))) == ["0003"] * 6
    db = Database(url)
    assert db.execute("SELECT count(*) FROM alembic_version").scalar() == 1
    db.close()


def test_a_held_profile_lock_is_busy_not_a_hang(url):
    db = Database(url)
    store = ProfileStore(Database(url, timeout_s=0.3))
    held, release = threading.Event(), threading.Event()

    def hold():
        with db.write(serialize="profiles"):
            held.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(timeout=10)
        began = time.monotonic()
        with pytest.raises(StoreError, match="busy"):
            store.enroll("Alice", vec(1), 3.0, "a")
        assert time.monotonic() - began < 5
    finally:
        release.set()
        holder.join(timeout=30)
    store.enroll("Alice", vec(1), 3.0, "a")  # free again; the failed attempt left nothing behind
    assert [(p.name, p.enrollments) for p in store.list()] == [("Alice", 1)]
    assert [e.action for e in store.history("alice")] == ["created"]
    store._db.close()
    db.close()


def test_other_writers_do_not_wait_for_the_profile_lock(url):
    db = Database(url, timeout_s=0.3)
    sessions = SessionStore(db)
    held, release = threading.Event(), threading.Event()

    def hold():
        with db.write(serialize="profiles"):
            held.set()
            release.wait(timeout=30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(timeout=10)
        sessions.start("s1", "r1")  # sessions never take the profile lock
        sessions.end("s1", "hangup")
    finally:
        release.set()
        holder.join(timeout=30)
    assert sessions.get("s1").end_reason == "hangup"
    db.close()


def test_unreachable_server_is_a_store_error():
    began = time.monotonic()
    with pytest.raises(StoreError, match="cannot open the callscribe database"):
        Database(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing", timeout_s=2)
    assert time.monotonic() - began < 30


def test_missing_database_is_a_store_error(postgres_url):
    with pytest.raises(StoreError, match="does not exist"):
        Database(postgres_url.rsplit("/", 1)[0] + "/no_such_database")


def test_another_programs_database_is_refused_untouched(url):
    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices(id integer)")
    with pytest.raises(StoreError, match="another program"):
        Database(url)
    with psycopg.connect(host=u.host, port=u.port, user=u.username, dbname=u.database, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert tables == ["invoices"]


def test_unknown_newer_revision_is_refused(url):
    Database(url).close()
    db = Database(url)
    db.execute("UPDATE alembic_version SET version_num = 'ffff_from_the_future'", write=True)
    db.close()
    with pytest.raises(StoreError, match="newer callscribe"):
        Database(url)


def test_reads_are_one_snapshot(url):
    """A read block sees the database as of its start (REPEATABLE READ), as on SQLite."""
    db = Database(url)
    sessions = SessionStore(db)
    sessions.start("s1", "r1")
    with db.read() as conn:
        before = conn.execute(text("SELECT count(*) FROM sessions")).scalar()
        sessions.start("s2", "r1")  # another connection commits meanwhile
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar() == before == 1
    with pytest.raises(StoreError, match="read-only"), db.read() as conn:
        conn.execute(text("DELETE FROM sessions"))
    assert sessions.list()[1] == 2
    db.close()


def test_settings_take_a_postgresql_url(url):
    settings = Settings(database=url)
    store = ProfileStore(settings.database)
    try:
        store.enroll("Alice", vec(1), 3.0, "a")
        assert store.path is None and [p.name for p in store.list()] == ["Alice"]
    finally:
        store.close()
