"""Voice profiles in an embedded SQLite database (WAL mode).

Schema (version 1)::

    profiles(id INTEGER PK, name TEXT UNIQUE COLLATE NOCASE, model TEXT, created_at REAL, updated_at REAL)
    enrollments(id INTEGER PK, profile_id → profiles(id) ON DELETE CASCADE,
                embedding BLOB  -- float32[192], little-endian, L2-normalised
                speech_s REAL, source TEXT, created_at REAL)

A profile's voiceprint is the speech-duration-weighted mean of its enrollment embeddings, L2-normalised.
Every write is one transaction: an interrupted enrollment leaves nothing half-written.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ProfileError, StoreError
from .embedding import EMBEDDING_DIM, MODEL_ID, normalise

SCHEMA_VERSION = 1
_SCHEMA = """
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


@dataclass(frozen=True)
class VoiceProfile:
    """An enrolled speaker: ``embedding`` is ``float32[192]``, L2-normalised; ``speech_s`` in seconds."""

    id: int
    name: str
    embedding: np.ndarray
    speech_s: float
    enrollments: int
    created_at: float
    updated_at: float


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > 64:
        raise ProfileError("a profile name must have 1 to 64 characters")
    if name.lower() == "unknown":
        raise ProfileError("'unknown' is reserved for speakers that match no profile")
    return name


class ProfileStore:
    """CRUD on voice profiles. One connection per store; safe to share across threads (serialised).

    Raises:
        StoreError: the database cannot be opened, is locked beyond ``timeout_s``, or is not ours.
        ProfileError: unknown or duplicate names.
    """

    def __init__(self, path: str | Path, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()  # one sqlite3 connection shared by threads: serialise its use
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA journal_mode=WAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: written by a newer callscribe (schema {version})")
            if version == 0:
                tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if tables - {"profiles", "enrollments"}:
                    raise StoreError(f"{self.path} is another program's database, not callscribe's")
                with self._tx():
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the profile database {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create the profile database {self.path}: {exc}") from None

    def _tx(self):
        return _Transaction(self._db, self.path, self._lock)

    def close(self) -> None:
        self._db.close()

    # -- reads ---------------------------------------------------------------------------------
    def list(self) -> list[VoiceProfile]:
        """All profiles of the current embedding model, by name."""
        try:
            with self._lock:
                rows = self._db.execute(
                "SELECT p.id, p.name, p.created_at, p.updated_at, e.embedding, e.speech_s FROM profiles p "
                    "JOIN enrollments e ON e.profile_id = p.id WHERE p.model = ? ORDER BY p.name COLLATE NOCASE, e.id",
                    (MODEL_ID,),
                ).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from None
        grouped: dict[int, list] = {}
        for row in rows:
            grouped.setdefault(row[0], []).append(row)
        out = []
        for pid, group in grouped.items():
            embs = np.stack([np.frombuffer(r[4], dtype="<f4") for r in group])
            weights = np.array([r[5] for r in group], dtype=np.float32)
            voiceprint = normalise((embs * weights[:, None]).sum(axis=0))
            out.append(VoiceProfile(pid, group[0][1], voiceprint, float(weights.sum()), len(group),
                                    group[0][2], group[0][3]))
        return out

    def get(self, name: str) -> VoiceProfile:
        for p in self.list():
            if p.name.lower() == " ".join(name.split()).lower():
                return p
        raise ProfileError(f"no voice profile named {name!r}")

    # -- writes --------------------------------------------------------------------------------
    def enroll(self, name: str, embedding: np.ndarray, speech_s: float, source: str, *,
               append: bool = True) -> VoiceProfile:
        """Create profile ``name`` or, with ``append``, add an enrollment to the existing one.

        Args:
            embedding: ``float32[192]`` speaker embedding of the enrollment speech.
            speech_s: seconds of speech behind it (its weight in the voiceprint).
            source: where the audio came from (file name, ``stream``), for the record.
        Raises:
            ProfileError: ``append=False`` and the name exists.
        """
        name = check_name(name)
        emb = np.asarray(embedding, dtype="<f4").reshape(-1)
        if emb.size != EMBEDDING_DIM:
            raise ValueError(f"expected float32[{EMBEDDING_DIM}], got {emb.size} values")
        now = time.time()
        with self._tx():
            row = self._db.execute("SELECT id FROM profiles WHERE name = ?", (name,)).fetchone()
            if row and not append:
                raise ProfileError(f"a voice profile named {name!r} already exists")
            if row:
                pid = row[0]
                self._db.execute("UPDATE profiles SET updated_at = ? WHERE id = ?", (now, pid))
            else:
                pid = self._db.execute(
                    "INSERT INTO profiles(name, model, created_at, updated_at) VALUES (?, ?, ?, ?)",
                    (name, MODEL_ID, now, now),
                ).lastrowid
            self._db.execute(
                "INSERT INTO enrollments(profile_id, embedding, speech_s, source, created_at) VALUES (?, ?, ?, ?, ?)",
                (pid, normalise(emb).astype("<f4").tobytes(), float(speech_s), source, now),
            )
        return self.get(name)

    def rename(self, old: str, new: str) -> VoiceProfile:
        new = check_name(new)
        with self._tx():
            clash = self._db.execute("SELECT name FROM profiles WHERE name = ?", (new,)).fetchone()
            if clash and clash[0].lower() != old.lower():
                raise ProfileError(f"a voice profile named {new!r} already exists")
            cur = self._db.execute("UPDATE profiles SET name = ?, updated_at = ? WHERE name = ?",
                                   (new, time.time(), " ".join(old.split())))
            if cur.rowcount == 0:
                raise ProfileError(f"no voice profile named {old!r}")
        return self.get(new)

    def delete(self, name: str) -> None:
        with self._tx():
            cur = self._db.execute("DELETE FROM profiles WHERE name = ?", (" ".join(name.split()),))
            if cur.rowcount == 0:
                raise ProfileError(f"no voice profile named {name!r}")


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``/``ROLLBACK``; maps SQLite errors to :class:`StoreError`."""

    def __init__(self, db: sqlite3.Connection, path: Path, lock: threading.RLock) -> None:
        self.db, self.path, self.lock = db, path, lock

    def __enter__(self):
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            self.lock.release()
            raise StoreError(f"the profile database {self.path} is busy or read-only: {exc}") from None
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            return self._finish(exc_type, exc)
        finally:
            self.lock.release()

    def _finish(self, exc_type, exc) -> bool:
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                return False
            except sqlite3.DatabaseError as err:
                self.db.execute("ROLLBACK")
                raise StoreError(f"cannot write the profile database {self.path}: {err}") from None
        self.db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.DatabaseError):
            raise StoreError(f"cannot write the profile database {self.path}: {exc}") from None
        return False
