"""Voice profiles in the callscribe database (:mod:`.database`; tables in :mod:`.schema`, DDL in migrations 0001
and 0002).

Schema::

    profiles(id INTEGER PK, name TEXT UNIQUE COLLATE NOCASE, model TEXT, created_at REAL, updated_at REAL)
        -- on PostgreSQL: name TEXT with a unique index on lower(name COLLATE "C"); same behaviour
    enrollments(id INTEGER PK, profile_id → profiles(id) ON DELETE CASCADE,
                embedding BLOB  -- float32[192], little-endian, L2-normalised
                speech_s REAL, source TEXT, created_at REAL)
    profile_events(id INTEGER PK, profile_id INTEGER NULL  -- no foreign key: the history outlives the profile
                   name TEXT, action TEXT  -- created | extended | renamed | deleted
                   speech_s REAL NULL, detail TEXT NULL  -- JSON
                   created_at REAL)

Times are Unix seconds. A profile's voiceprint is the speech-duration-weighted mean of its enrollment embeddings,
L2-normalised. Names compare case-insensitively (ASCII letters, as SQLite's ``NOCASE``) and with runs of whitespace
as one space. Every write is one transaction that also records its :class:`ProfileEvent`: an interrupted enrollment
leaves nothing half-written, and no change goes unrecorded. Profile writes never interleave (SQLite serialises
writers; on PostgreSQL they take the advisory lock ``serialize="profiles"``), so concurrent enrollments of one new
name from several threads or processes create one profile.

Profile ids are never reused, also not on SQLite (whose ``INTEGER PRIMARY KEY`` would hand the highest id out again
after a delete), so a deleted profile's history cannot be mistaken for a newer profile's.
"""

from __future__ import annotations

import json
import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete, func, insert, literal, select, update

from ..errors import ProfileConflict, ProfileNotFound
from ..speaker.embedding import EMBEDDING_DIM, MODEL_ID, normalise
from ..speaker.profile import VoiceProfile, check_name
from .database import Database
from .schema import enrollments, folded, profile_events, profiles

_SERIALIZE = "profiles"


@dataclass(frozen=True)
class ProfileEvent:
    """One change of a voice profile, as recorded in the same transaction as the change.

    ``name`` is the profile's name after the change (for ``deleted``: the name it had). ``action`` and ``detail``:

    * ``created`` — the first enrollment; ``speech_s`` its seconds of speech, ``detail`` ``{"source": str}``
    * ``extended`` — another enrollment added; as ``created``
    * ``renamed`` — ``speech_s`` ``None``, ``detail`` ``{"from": old name, "to": new name}``
    * ``deleted`` — ``speech_s`` the profile's total seconds of speech, ``detail`` ``{"enrollments": int}``

    ``created_at`` is Unix seconds; ``profile_id`` stays set after the profile is gone.
    """

    id: int
    profile_id: int | None
    name: str
    action: str
    speech_s: float | None
    detail: dict[str, Any] | None
    created_at: float


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _fold(name: str) -> str:
    """What names compare as: whitespace runs as one space, ASCII letters lower-cased (SQLite's ``NOCASE``)."""
    return " ".join(name.split()).translate(_ASCII_LOWER)


def _same_name(name: str):
    return folded(profiles.c.name) == folded(literal(" ".join(name.split())))


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

    @property
    def database(self) -> Database:
        """The open database the profiles live in (other stores may share it; :meth:`close` of this store closes
        it only when the store opened it)."""
        return self._db

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
            .order_by(folded(profiles.c.name), enrollments.c.id)  # = COLLATE NOCASE: both fold ASCII only
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
        """The profile named ``name`` (case- and whitespace-insensitive, as every lookup here: ASCII letters fold).

        Raises:
            ProfileNotFound: no such profile.
        """
        wanted = _fold(name)
        for p in self.list():
            if _fold(p.name) == wanted:
                return p
        raise ProfileNotFound(f"no voice profile named {name!r}")

    def history(self, profile: str | int) -> list[ProfileEvent]:
        """What happened to a profile, oldest first; also after it was deleted.

        Args:
            profile: a profile id, or a name: the profile that has it now, else every profile that ever had it
                (a deleted one, or one renamed since), by any of the names it had (case-insensitively).
        Returns:
            the events by time; ``[]`` for a profile enrolled before the history existed (revision 0002).
        Raises:
            ProfileNotFound: no such profile now and no event of one.  StoreError: the database cannot be read.
        """
        with self._db.read() as conn:
            by_id = isinstance(profile, int)
            current = conn.execute(select(profiles.c.id).where(
                profiles.c.id == profile if by_id else _same_name(profile))).scalar()
            if by_id or current is not None:
                which = profile_events.c.profile_id == (profile if by_id else current)
            else:
                which = profile_events.c.profile_id.in_(
                    select(profile_events.c.profile_id)
                    .where(folded(profile_events.c.name) == folded(literal(" ".join(profile.split())))))
            rows = conn.execute(select(profile_events).where(which).order_by(profile_events.c.id)).all()
        if not rows and current is None:
            raise ProfileNotFound(f"no voice profile {profile!r}, now or in the history")
        return [ProfileEvent(r.id, r.profile_id, r.name, r.action, r.speech_s,
                             json.loads(r.detail) if r.detail is not None else None, r.created_at) for r in rows]

    # -- writes --------------------------------------------------------------------------------
    def enroll(self, name: str, embedding: np.ndarray, speech_s: float, source: str, *,
               append: bool = True) -> VoiceProfile:
        """Create profile ``name`` or, with ``append``, add an enrollment to the existing one.

        Records a ``created`` or ``extended`` :class:`ProfileEvent`.

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
        with self._db.write(serialize=_SERIALIZE) as conn:
            row = conn.execute(select(profiles.c.id, profiles.c.name).where(_same_name(name))).first()
            if row is not None and not append:
                raise ProfileConflict(f"a voice profile named {name!r} already exists")
            if row is not None:
                pid, name, action = row.id, row.name, "extended"
                conn.execute(update(profiles).where(profiles.c.id == pid).values(updated_at=now))
            else:
                action = "created"
                values = {"name": name, "model": MODEL_ID, "created_at": now, "updated_at": now}
                if conn.dialect.name == "sqlite":  # never reuse a deleted profile's id (PostgreSQL's sequence doesn't)
                    values["id"] = _next_id(conn)
                pid = conn.execute(insert(profiles).values(**values)).inserted_primary_key[0]
            conn.execute(insert(enrollments).values(profile_id=pid, embedding=normalise(emb).astype("<f4").tobytes(),
                                                    speech_s=float(speech_s), source=source, created_at=now))
            _record(conn, pid, name, action, now, speech_s=float(speech_s), detail={"source": source})
        return self.get(name)

    def rename(self, old: str, new: str) -> VoiceProfile:
        """Rename profile ``old`` to ``new`` (a change of case alone is allowed); records a ``renamed`` event.

        Raises:
            ProfileNotFound: no profile ``old``.  ProfileConflict: another profile is named ``new``.
            ProfileError: invalid ``new``.  StoreError: busy or unwritable database.
        """
        new = check_name(new)
        now = time.time()
        with self._db.write(serialize=_SERIALIZE) as conn:
            target = conn.execute(select(profiles.c.id, profiles.c.name).where(_same_name(old))).first()
            if target is None:
                raise ProfileNotFound(f"no voice profile named {old!r}")
            clash = conn.execute(select(profiles.c.id).where(_same_name(new), profiles.c.id != target.id)).first()
            if clash is not None:
                raise ProfileConflict(f"a voice profile named {new!r} already exists")
            conn.execute(update(profiles).where(profiles.c.id == target.id).values(name=new, updated_at=now))
            _record(conn, target.id, new, "renamed", now, detail={"from": target.name, "to": new})
        return self.get(new)

    def delete(self, name: str) -> None:
        """Delete profile ``name`` and its enrollments; records a ``deleted`` event (the history stays).

        Raises:
            ProfileNotFound: no such profile.  StoreError: busy or unwritable database.
        """
        now = time.time()
        with self._db.write(serialize=_SERIALIZE) as conn:
            target = conn.execute(select(profiles.c.id, profiles.c.name).where(_same_name(name))).first()
            if target is None:
                raise ProfileNotFound(f"no voice profile named {name!r}")
            count, total = conn.execute(select(func.count(), func.coalesce(func.sum(enrollments.c.speech_s), 0.0))
                                        .where(enrollments.c.profile_id == target.id)).one()
            conn.execute(delete(profiles).where(profiles.c.id == target.id))
            _record(conn, target.id, target.name, "deleted", now, speech_s=float(total), detail={"enrollments": count})


def _record(conn: Connection, profile_id: int, name: str, action: str, now: float, *,
            speech_s: float | None = None, detail: dict[str, Any] | None = None) -> None:
    conn.execute(insert(profile_events).values(profile_id=profile_id, name=name, action=action, speech_s=speech_s,
                                               detail=json.dumps(detail, ensure_ascii=False), created_at=now))


def _next_id(conn: Connection) -> int:
    """One more than any profile id in use or in the history (run inside the serialised write)."""
    highest = select(func.max(profiles.c.id).label("m")).union_all(
        select(func.max(profile_events.c.profile_id).label("m"))).subquery()
    return (conn.execute(select(func.max(highest.c.m))).scalar() or 0) + 1
