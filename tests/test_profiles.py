"""Voice-profile store on a real SQLite file."""

from __future__ import annotations

import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from alembic.script import ScriptDirectory

from server.errors import ProfileError, StoreError
from server.speaker.embedding import MODEL_ID, normalise
from server.store.database import MIGRATIONS, Database
from server.store.profiles import ProfileStore


def run_sql(path, *statements):
    """Run statements on the file with plain sqlite3 (another program's or an older callscribe's writes)."""
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def vec(seed: int) -> np.ndarray:
    return normalise(np.random.default_rng(seed).standard_normal(192).astype(np.float32))


@pytest.fixture
def store(tmp_path):
    s = ProfileStore(tmp_path / "p.sqlite3")
    yield s
    s.close()


def test_enroll_list_rename_delete(store, tmp_path):
    a = store.enroll("Alice", vec(1), 5.0, "a.wav")
    store.enroll("bob", vec(2), 4.0, "b.wav")
    assert [p.name for p in store.list()] == ["Alice", "bob"]
    assert a.enrollments == 1 and a.speech_s == 5.0
    assert np.allclose(store.get("alice").embedding, vec(1), atol=1e-6)
    store.rename("alice", "Alicia")
    assert store.get("Alicia").id == a.id
    store.delete("bob")
    assert [p.name for p in store.list()] == ["Alicia"]
    # persisted in the file, WAL mode
    store.close()
    reopened = ProfileStore(tmp_path / "p.sqlite3")
    assert [p.name for p in reopened.list()] == ["Alicia"]
    assert reopened._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened.close()


def test_append_weights_voiceprint_by_speech_duration(store):
    store.enroll("Alice", vec(1), 3.0, "a")
    p = store.enroll("Alice", vec(2), 1.0, "b")
    assert p.enrollments == 2 and p.speech_s == 4.0
    expected = normalise(3 * vec(1) + vec(2))
    assert np.allclose(p.embedding, expected, atol=1e-6)


def test_name_rules(store):
    store.enroll("Alice", vec(1), 3.0, "a")
    with pytest.raises(ProfileError, match="already exists"):
        store.enroll("ALICE", vec(2), 3.0, "b", append=False)
    with pytest.raises(ProfileError, match="reserved"):
        store.enroll("Unknown", vec(2), 3.0, "b")
    with pytest.raises(ProfileError):
        store.enroll("   ", vec(2), 3.0, "b")
    store.enroll("Bob", vec(2), 3.0, "b")
    with pytest.raises(ProfileError, match="already exists"):
        store.rename("Bob", "alice")
    with pytest.raises(ProfileError, match="no voice profile"):
        store.rename("Carol", "Dave")
    with pytest.raises(ProfileError, match="no voice profile"):
        store.delete("Carol")
    assert [p.name for p in store.list()] == ["Alice", "Bob"]


def test_wrong_embedding_size_stores_nothing(store):
    with pytest.raises(ValueError):
        store.enroll("Alice", np.zeros(10, np.float32), 3.0, "a")
    assert store.list() == []


def test_locked_database_is_a_clear_error_and_loses_nothing(tmp_path):
    path = tmp_path / "p.sqlite3"
    store = ProfileStore(path, timeout_s=0.2)
    store.enroll("Alice", vec(1), 3.0, "a")
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="busy"):
            store.enroll("Bob", vec(2), 3.0, "b")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert [p.name for p in store.list()] == ["Alice"]
    store.close()


def test_not_a_database(tmp_path):
    path = tmp_path / "notes.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        ProfileStore(path)


def test_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    run_sql(path, "CREATE TABLE invoices(id INTEGER)")
    with pytest.raises(StoreError, match="another program"):
        ProfileStore(path)


# -- the database layer: Alembic migrations, adoption of pre-Alembic files, refusals ------------------------------
_LEGACY_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    model TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS enrollments (
    id INTEGER PRIMARY KEY,
    profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    speech_s REAL NOT NULL,
    source TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS enrollments_profile ON enrollments(profile_id);
"""


def heads():
    return ScriptDirectory(str(MIGRATIONS)).get_heads()


def migrations_upto(tmp_path, last):
    """A copy of the packaged migrations holding revisions up to ``last`` (to add or leave out revisions)."""
    dest = tmp_path / f"migrations_{last}"
    shutil.copytree(MIGRATIONS, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for script in (dest / "versions").glob("[0-9]*.py"):
        if script.name.split("_")[0] > last:
            script.unlink()
    return dest


def legacy_database(path, name="Alice"):
    """A file exactly as callscribe wrote it before Alembic: schema version 1 via PRAGMA user_version."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN IMMEDIATE")
    for statement in filter(str.strip, _LEGACY_SCHEMA.split(";")):
        db.execute(statement)
    db.execute("PRAGMA user_version=1")
    db.execute("INSERT INTO profiles(name, model, created_at, updated_at) VALUES (?, ?, 1.0, 2.0)", (name, MODEL_ID))
    db.execute("INSERT INTO enrollments(profile_id, embedding, speech_s, source, created_at) "
               "VALUES (1, ?, 3.0, 'a', 1.0)", (vec(1).astype("<f4").tobytes(),))
    db.execute("COMMIT")
    db.close()


def shape(path):
    """Columns, indexes (with collations) and foreign keys of the two profile tables, as SQLite reports them."""
    db = sqlite3.connect(path)
    out = {}
    for table in ("profiles", "enrollments"):
        cols = db.execute(f"PRAGMA table_info({table})").fetchall()
        fks = db.execute(f"PRAGMA foreign_key_list({table})").fetchall()
        indexes = []
        for _, name, unique, origin, _ in db.execute(f"PRAGMA index_list({table})").fetchall():
            keys = [(r[2], r[4]) for r in db.execute(f"PRAGMA index_xinfo({name})").fetchall() if r[5]]
            indexes.append((name if origin == "c" else origin, unique, keys))
        out[table] = ([(c[1], c[2], c[3], c[5]) for c in cols], [f[2:] for f in fks], sorted(indexes))
    db.close()
    return out


def test_fresh_database_is_at_head(tmp_path):
    path = tmp_path / "new" / "p.sqlite3"  # parent folders are created
    ProfileStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(heads()[0],)]
    assert db.execute("PRAGMA user_version").fetchone()[0] > 1  # callscribe from before Alembic refuses it
    db.close()


def test_revision_0001_is_the_pre_alembic_schema(tmp_path):
    legacy_database(tmp_path / "old.sqlite3")
    Database(tmp_path / "new.sqlite3", migrations=migrations_upto(tmp_path, "0001")).close()
    assert shape(tmp_path / "new.sqlite3") == shape(tmp_path / "old.sqlite3")


def test_legacy_database_is_adopted_not_recreated(tmp_path):
    path = tmp_path / "p.sqlite3"
    legacy_database(path)
    store = ProfileStore(path)
    [alice] = store.list()
    assert (alice.id, alice.name, alice.enrollments, alice.speech_s) == (1, "Alice", 1, 3.0)
    assert np.allclose(alice.embedding, vec(1), atol=1e-6)
    assert store._db.revision() == heads()[0]
    store.enroll("Bob", vec(2), 4.0, "b")
    store.delete("Alice")  # ON DELETE CASCADE still works on the adopted tables
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM enrollments").fetchone()[0] == 1
    db.close()
    assert [p.name for p in ProfileStore(path).list()] == ["Bob"]


def test_unknown_newer_revision_is_refused_untouched(tmp_path):
    path = tmp_path / "p.sqlite3"
    ProfileStore(path).close()
    run_sql(path, "UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
    with pytest.raises(StoreError, match="newer callscribe"):
        ProfileStore(path)
    db = sqlite3.connect(path)
    assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("ffff_from_the_future",)]
    db.close()


def test_newer_pre_alembic_schema_is_refused(tmp_path):
    path = tmp_path / "p.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE profiles(id INTEGER PRIMARY KEY)")
    db.execute("PRAGMA user_version=7")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer callscribe"):
        ProfileStore(path)


def test_tables_of_later_migrations_are_fine(tmp_path):
    path = tmp_path / "p.sqlite3"
    store = ProfileStore(path)
    store.enroll("Alice", vec(1), 3.0, "a")
    store._db.execute("CREATE TABLE from_a_later_release(id INTEGER PRIMARY KEY)", write=True)
    store.close()
    assert [p.name for p in ProfileStore(path).list()] == ["Alice"]


def test_a_later_migration_upgrades_and_older_code_refuses(tmp_path):
    path = tmp_path / "p.sqlite3"
    legacy_database(path)
    scripts = migrations_upto(tmp_path, "0001")
    (scripts / "versions" / "0002_jobs.py").write_text(
        'import sqlalchemy as sa\nfrom alembic import op\n\nrevision = "0002"\ndown_revision = "0001"\n'
        'branch_labels = None\ndepends_on = None\n\n\n'
        'def upgrade():\n    op.create_table("jobs", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    with op.batch_alter_table("profiles") as batch:  # a table rebuild must not cascade-delete\n'
        '        batch.add_column(sa.Column("note", sa.Text, nullable=True))\n'
        '        batch.create_check_constraint("name_not_empty", "name != \'\'")\n\n\n'
        'def downgrade():\n    op.drop_table("jobs")\n')
    db = Database(path, migrations=scripts)
    assert db.revision() == "0002"
    assert db.execute("SELECT count(*) FROM enrollments").fetchone()[0] == 1
    db.close()
    with pytest.raises(StoreError, match="newer callscribe"):  # this code knows no 0002 when 0002 isn't packaged
        Database(path, migrations=migrations_upto(tmp_path / "other", "0001"))
    shared = Database(path, migrations=scripts)
    assert [p.name for p in ProfileStore(shared).list()] == ["Alice"]
    ProfileStore(shared).close()  # a store leaves a Database it was given open
    assert shared.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    shared.close()


def test_clear_errors_for_unusable_files(tmp_path):
    (tmp_path / "notes.sqlite3").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="file is not a database"):
        ProfileStore(tmp_path / "notes.sqlite3")
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(StoreError, match="cannot open the profile database"):
        ProfileStore(tmp_path / "dir.sqlite3")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create the profile database"):
        ProfileStore(tmp_path / "file" / "p.sqlite3")


def test_shared_across_threads(store):
    def work(i):
        store.enroll(f"speaker {i % 4}", vec(i), 1.0, f"{i}.wav")
        return len(store.list())

    with ThreadPoolExecutor(8) as pool:
        assert all(n >= 1 for n in pool.map(work, range(40)))
    assert sorted((p.name, p.enrollments) for p in store.list()) == [(f"speaker {i}", 10) for i in range(4)]
