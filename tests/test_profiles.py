"""Voice-profile store on a real SQLite file."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from server.errors import ProfileError, StoreError
from server.speaker.embedding import normalise
from server.speaker.profiles import ProfileStore


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
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices(id INTEGER)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="another program"):
        ProfileStore(path)
