"""Voice profiles in the callscribe database (:mod:`.database`; tables in :mod:`.schema`, DDL in migration 0001).

Schema::

    profiles(id INTEGER PK, name TEXT UNIQUE COLLATE NOCASE, model TEXT, created_at REAL, updated_at REAL)
    enrollments(id INTEGER PK, profile_id → profiles(id) ON DELETE CASCADE,
                embedding BLOB  -- float32[192], little-endian, L2-normalised
                speech_s REAL, source TEXT, created_at REAL)

Times are Unix seconds. A profile's voiceprint is the speech-duration-weighted mean of its enrollment embeddings,
L2-normalised. Every write is one transaction: an interrupted enrollment leaves nothing half-written.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, insert, select, update

from ..errors import ProfileConflict, ProfileNotFound
from ..speaker.embedding import EMBEDDING_DIM, MODEL_ID, normalise
from ..speaker.profile import VoiceProfile, check_name
from .database import Database
from .schema import enrollments, profiles


class ProfileStore:
    """CRUD on voice profiles; safe to share across threads (each call is its own pooled transaction).

    Args:
        path: the database file (or URL), opened and migrated here and closed by :meth:`close`; or an open
            :class:`Database` shared with other stores, which :meth:`close` leaves open.
        timeout_s: seconds a write waits for another writer before :class:`StoreError` (ignored for a ``Database``).
    Raises:
        StoreError: the database cannot be opened, is locked beyond ``timeout_s``, or is not ours.
        ProfileError: unknown or duplicate names (:class:`ProfileNotFound`, :class:`ProfileConflict`).
    """

    def __init__(self, path: str | Path | Database, timeout_s: float = 5.0) -> None:
        self._owns = not isinstance(path, Database)
        self._db = Database(path, timeout_s, label="profile database") if self._owns else path
        self.path: Path | None = self._db.path

    def close(self) -> None:
        if self._owns:
            self._db.close()

    # -- reads ---------------------------------------------------------------------------------
    def list(self) -> list[VoiceProfile]:
        """All profiles of the current embedding model, by name (case-insensitive).

        Raises:
            StoreError: the database cannot be read.
        """
        query = (
            select(profiles.c.id, profiles.c.name, profiles.c.created_at, profiles.c.updated_at,
                   enrollments.c.embedding, enrollments.c.speech_s)
            .join_from(profiles, enrollments, enrollments.c.profile_id == profiles.c.id)
            .where(profiles.c.model == MODEL_ID)
            .order_by(func.lower(profiles.c.name), enrollments.c.id)  # = COLLATE NOCASE: both fold ASCII only
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        grouped: dict[int, list] = {}
        for row in rows:
            grouped.setdefault(row.id, []).append(row)
        out = []
        for pid, group in grouped.items():
            embs = np.stack([np.frombuffer(r.embedding, dtype="<f4") for r in group])
            weights = np.array([r.speech_s for r in group], dtype=np.float32)
            voiceprint = normalise((embs * weights[:, None]).sum(axis=0))
            out.append(VoiceProfile(pid, group[0].name, voiceprint, float(weights.sum()), len(group),
                                    group[0].created_at, group[0].updated_at))
        return out

    def get(self, name: str) -> VoiceProfile:
        """The profile named ``name`` (case- and whitespace-insensitive).

        Raises:
            ProfileNotFound: no such profile.
        """
        for p in self.list():
            if p.name.lower() == " ".join(name.split()).lower():
                return p
        raise ProfileNotFound(f"no voice profile named {name!r}")

    # -- writes --------------------------------------------------------------------------------
    def enroll(self, name: str, embedding: np.ndarray, speech_s: float, source: str, *,
               append: bool = True) -> VoiceProfile:
        """Create profile ``name`` or, with ``append``, add an enrollment to the existing one.

        Args:
            embedding: ``float32[192]`` speaker embedding of the enrollment speech.
            speech_s: seconds of speech behind it (its weight in the voiceprint).
            source: where the audio came from (file name, ``stream``), for the record.
        Raises:
            ValueError: ``embedding`` does not have 192 values.
            ProfileError: invalid name, or ``append=False`` and the name exists (:class:`ProfileConflict`).
            StoreError: the database is busy beyond the timeout or cannot be written.
        """
        name = check_name(name)
        emb = np.asarray(embedding, dtype="<f4").reshape(-1)
        if emb.size != EMBEDDING_DIM:
            raise ValueError(f"expected float32[{EMBEDDING_DIM}], got {emb.size} values")
        now = time.time()
        with self._db.write() as conn:
            pid = conn.execute(select(profiles.c.id).where(profiles.c.name == name)).scalar()
            if pid is not None and not append:
                raise ProfileConflict(f"a voice profile named {name!r} already exists")
            if pid is not None:
                conn.execute(update(profiles).where(profiles.c.id == pid).values(updated_at=now))
            else:
                pid = conn.execute(insert(profiles).values(name=name, model=MODEL_ID, created_at=now,
                                                           updated_at=now)).inserted_primary_key[0]
            conn.execute(insert(enrollments).values(profile_id=pid, embedding=normalise(emb).astype("<f4").tobytes(),
                                                    speech_s=float(speech_s), source=source, created_at=now))
        return self.get(name)

    def rename(self, old: str, new: str) -> VoiceProfile:
        """Rename profile ``old`` to ``new`` (a change of case alone is allowed).

        Raises:
            ProfileNotFound: no profile ``old``.  ProfileConflict: another profile is named ``new``.
            ProfileError: invalid ``new``.  StoreError: busy or unwritable database.
        """
        new = check_name(new)
        with self._db.write() as conn:
            clash = conn.execute(select(profiles.c.name).where(profiles.c.name == new)).scalar()
            if clash is not None and clash.lower() != old.lower():
                raise ProfileConflict(f"a voice profile named {new!r} already exists")
            renamed = conn.execute(update(profiles).where(profiles.c.name == " ".join(old.split()))
                                   .values(name=new, updated_at=time.time())).rowcount
            if renamed == 0:
                raise ProfileNotFound(f"no voice profile named {old!r}")
        return self.get(new)

    def delete(self, name: str) -> None:
        """Delete profile ``name`` and its enrollments.

        Raises:
            ProfileNotFound: no such profile.  StoreError: busy or unwritable database.
        """
        with self._db.write() as conn:
            deleted = conn.execute(delete(profiles).where(profiles.c.name == " ".join(name.split()))).rowcount
            if deleted == 0:
                raise ProfileNotFound(f"no voice profile named {name!r}")
