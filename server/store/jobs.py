"""Recording-analysis jobs in the one database (migration 0003): their state, options, result and callback.

The queue that hands jobs to workers is :mod:`server.jobs` (huey); this table is the record of truth for what a
job is, so that the REST API, the server-sent progress events, a restarted server and a worker on another machine
all read the same thing. Status moves ``queued → running → done | failed``, or to ``cancelled`` from queued or
running; :meth:`JobStore.start` and :meth:`JobStore.update` are conditional ``UPDATE``\\ s, so a job is started by
one worker only and a cancelled job's worker learns it at its next progress report. :meth:`JobStore.recover`
re-queues jobs whose worker died (all running ones after a restart, or, in a cluster, those whose worker has left
the node registry), one conditional ``UPDATE`` per job so that concurrent recoveries re-queue it once.

Schema (:mod:`.schema`)::

    jobs(id TEXT PK, status TEXT, stage TEXT, progress REAL, message TEXT NULL, filename TEXT, source_path TEXT,
         owned BOOLEAN, options TEXT -- JSON, created_at REAL, started_at REAL NULL, finished_at REAL NULL,
         duration_s REAL NULL, runs INTEGER, worker TEXT NULL, error_code TEXT NULL, error_message TEXT NULL,
         result TEXT NULL -- JSON, callback_url TEXT NULL, callback_attempts INTEGER,
         callback_delivered_at REAL NULL, callback_error TEXT NULL)
    job_voices(job_id → jobs(id) ON DELETE CASCADE, speaker_id TEXT, embedding BLOB -- float32[192], speech_s REAL)

Times are Unix seconds; ``progress`` is percent (0–100); ``duration_s`` the recording's length in seconds.
Errors: :class:`JobNotFound` where a method names a job that does not exist, :class:`StoreError` when the
database is busy, unreachable or refuses the write.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, func, insert, select, update

from ..errors import JobNotFound
from .database import Database
from .schema import job_voices, jobs

ACTIVE = ("queued", "running")
TERMINAL = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class JobRecord:
    """One analysis job as stored (see the module docstring for the fields and units); ``result`` is ``None``
    unless asked for and finished."""

    id: str
    status: str
    stage: str
    progress: float
    message: str | None
    filename: str
    source_path: str
    owned: bool
    options: dict
    created_at: float
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    runs: int
    worker: str | None
    error_code: str | None
    error_message: str | None
    callback_url: str | None
    callback_attempts: int
    callback_delivered_at: float | None
    callback_error: str | None
    result: dict | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


_SUMMARY = [c for c in jobs.c if c.name != "result"]


class JobStore:
    """Analysis jobs in ``db`` (an open :class:`Database`, shared; never closed here). Thread-safe: every method
    is one short transaction on its own pooled connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- writes --------------------------------------------------------------------------------
    def create(self, filename: str, source_path: str, options: dict, *, owned: bool,
               callback_url: str | None = None, max_queued: int | None = None,
               duration_s: float | None = None) -> JobRecord | None:
        """Record a new queued job (``duration_s``: the recording's length as its header says, if known). With
        ``max_queued``, refuses (returns ``None``) when that many jobs are queued already; the count and the
        insert are one serialised transaction.

        Raises:
            StoreError: busy or unwritable database.
        """
        job_id = "j" + secrets.token_hex(8)
        with self._db.write(serialize="jobs") as conn:
            if max_queued is not None:
                waiting = conn.execute(select(func.count()).where(jobs.c.status == "queued")).scalar()
                if waiting >= max_queued:
                    return None
            conn.execute(insert(jobs).values(
                id=job_id, status="queued", stage="queued", progress=0.0, message="Waiting for a worker",
                filename=filename, source_path=str(source_path), owned=owned,
                options=json.dumps(options, ensure_ascii=False), created_at=time.time(), runs=0,
                callback_url=callback_url, callback_attempts=0,
                duration_s=None if duration_s is None else float(duration_s)))
        return self.get(job_id)

    def start(self, job_id: str, worker: str) -> JobRecord | None:
        """Claim a queued job for ``worker``: ``running``, ``runs`` + 1. Returns ``None`` when the job is not
        queued any more (cancelled, deleted, or claimed by another worker).

        Raises:
            StoreError: busy or unwritable database.
        """
        with self._db.write() as conn:
            claimed = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == "queued").values(
                status="running", stage="decoding", message="Decoding", started_at=time.time(), worker=worker,
                runs=jobs.c.runs + 1, error_code=None, error_message=None)).rowcount
        return self.get(job_id, result=False) if claimed else None

    def update(self, job_id: str, *, progress: float, stage: str, message: str,
               duration_s: float | None = None, worker: str | None = None) -> bool:
        """Report progress of a running job (``progress`` percent, clamped to 0–100 and never decreasing).
        Returns False when the job is no longer running (cancelled or deleted) — or, with ``worker``, no longer
        running *on that worker* (recovered and claimed by another one meanwhile): its worker should stop.

        Raises:
            StoreError: busy or unwritable database.
        """
        values: dict[str, Any] = {"progress": func.max(jobs.c.progress, round(min(100.0, max(0.0, progress)), 1))
                                  if self._db.engine.dialect.name == "sqlite"
                                  else func.greatest(jobs.c.progress, round(min(100.0, max(0.0, progress)), 1)),
                                  "stage": stage, "message": message}
        if duration_s is not None:
            values["duration_s"] = float(duration_s)
        with self._db.write() as conn:
            return conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == "running",
                                                   *_on(worker)).values(values)).rowcount == 1

    def finish(self, job_id: str, result: dict, voices: dict[str, tuple[np.ndarray, float]] | None = None, *,
               worker: str | None = None) -> bool:
        """Store the result of a running job (``done``, 100 %) and its speakers' voices (``speaker_id →
        (float32[192], speech seconds)``). Returns False when the job was cancelled meanwhile (nothing stored),
        or, with ``worker``, is no longer running on that worker.

        Raises:
            StoreError: busy or unwritable database.
        """
        with self._db.write() as conn:
            done = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == "running",
                                                   *_on(worker)).values(
                status="done", stage="done", progress=100.0, message="Done", finished_at=time.time(),
                duration_s=result.get("duration_s"), result=json.dumps(result, ensure_ascii=False))).rowcount == 1
            if done and voices:
                conn.execute(insert(job_voices), [
                    {"job_id": job_id, "speaker_id": sid, "embedding": np.asarray(e, "<f4").tobytes(),
                     "speech_s": float(s)} for sid, (e, s) in voices.items()])
        return done

    def fail(self, job_id: str, code: str, message: str, *, worker: str | None = None) -> bool:
        """Mark a queued or running job ``failed`` with an error code and message. False when it was not active
        (with ``worker``: not running on that worker).

        Raises:
            StoreError: busy or unwritable database.
        """
        with self._db.write() as conn:
            active = (jobs.c.status == "running", jobs.c.worker == worker) if worker else (jobs.c.status.in_(ACTIVE),)
            return conn.execute(update(jobs).where(jobs.c.id == job_id, *active).values(
                status="failed", stage="failed", message=message, error_code=code, error_message=message,
                finished_at=time.time())).rowcount == 1

    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued or running job (a finished one is returned unchanged).

        Raises:
            JobNotFound: no such job.  StoreError: busy or unwritable database.
        """
        with self._db.write() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE)).values(
                status="cancelled", stage="cancelled", message="Cancelled", finished_at=time.time()))
        return self.get(job_id, result=False)

    def delete(self, job_id: str) -> JobRecord:
        """Delete a job and its voices; returns what it was (the caller removes an owned upload from disk).

        Raises:
            JobNotFound: no such job.  StoreError: busy or unwritable database.
        """
        record = self.get(job_id, result=False)
        with self._db.write() as conn:
            conn.execute(delete(job_voices).where(job_voices.c.job_id == job_id))
            conn.execute(delete(jobs).where(jobs.c.id == job_id))
        return record

    def recover(self, max_runs: int, alive: set[str] | None = None) -> tuple[list[str], list[str]]:
        """Jobs left ``running`` by a dead worker are queued again when they have been started fewer than
        ``max_runs`` times, else failed (``interrupted``). Returns ``(queued again, failed)`` ids, oldest first.

        Args:
            max_runs: ``Settings.job_max_runs``.
            alive: the ids of the workers that are alive (cluster mode: the node registry); only jobs whose
                ``worker`` is not among them are touched. None = every running job (one machine, after a
                restart: no worker of an earlier run is alive).
        Each job is changed by its own conditional ``UPDATE`` (still ``running``, same ``worker``, same
        ``runs``), so when several processes recover at once each job is queued again by exactly one of them:
        the one whose id it returns, which must enqueue it.

        Raises:
            StoreError: busy or unwritable database.
        """
        with self._db.read() as conn:
            rows = conn.execute(select(jobs.c.id, jobs.c.runs, jobs.c.worker).where(jobs.c.status == "running")
                                .order_by(jobs.c.created_at, jobs.c.id)).all()
        if alive is not None:
            rows = [r for r in rows if r.worker not in alive]
        again: list[str] = []
        failed: list[str] = []
        message = f"interrupted {max_runs} times (the server or worker stopped while it ran)"
        again_message = "Queued again after a restart" if alive is None else "Queued again: its worker stopped"
        for r in rows:
            same = update(jobs).where(jobs.c.id == r.id, jobs.c.status == "running", jobs.c.runs == r.runs,
                                      jobs.c.worker.is_(None) if r.worker is None else jobs.c.worker == r.worker)
            if r.runs < max_runs:
                values = {"status": "queued", "stage": "queued", "progress": 0.0, "message": again_message}
            else:
                values = {"status": "failed", "stage": "failed", "message": message, "error_code": "interrupted",
                          "error_message": message, "finished_at": time.time()}
            with self._db.write() as conn:
                if conn.execute(same.values(values)).rowcount == 1:
                    (again if r.runs < max_runs else failed).append(r.id)
        return again, failed

    def callback_report(self, job_id: str, *, attempts: int, delivered: bool, error: str | None) -> None:
        """Record a callback delivery: ``attempts`` more tries, delivered now or not, the last error.

        Raises:
            StoreError: busy or unwritable database.
        """
        values: dict[str, Any] = {"callback_attempts": jobs.c.callback_attempts + attempts, "callback_error": error}
        if delivered:
            values["callback_delivered_at"] = time.time()
        with self._db.write() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id).values(values))

    def set_result(self, job_id: str, result: dict) -> None:
        """Replace a finished job's result (a speaker named afterwards).

        Raises:
            JobNotFound: no such job.  StoreError: busy or unwritable database.
        """
        with self._db.write() as conn:
            if conn.execute(update(jobs).where(jobs.c.id == job_id).values(
                    result=json.dumps(result, ensure_ascii=False))).rowcount == 0:
                raise JobNotFound(f"no job {job_id!r}")

    # -- reads ---------------------------------------------------------------------------------
    def get(self, job_id: str, *, result: bool = True) -> JobRecord:
        """One job (with its result when ``result`` and it has one).

        Raises:
            JobNotFound: no such job.  StoreError: the database cannot be read.
        """
        columns = list(jobs.c) if result else _SUMMARY
        with self._db.read() as conn:
            row = conn.execute(select(*columns).where(jobs.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(f"no job {job_id!r}")
        return _record(row)

    def list(self, limit: int = 50, offset: int = 0) -> tuple[list[JobRecord], int]:
        """Jobs newest first (without results) and how many there are.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._db.read() as conn:
            rows = conn.execute(select(*_SUMMARY).order_by(jobs.c.created_at.desc(), jobs.c.id)
                                .limit(limit).offset(offset)).all()
            total = conn.execute(select(func.count()).select_from(jobs)).scalar()
        return [_record(r) for r in rows], total

    def queued(self) -> list[str]:
        """Ids of the queued jobs, oldest first.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._db.read() as conn:
            return list(conn.execute(select(jobs.c.id).where(jobs.c.status == "queued")
                                     .order_by(jobs.c.created_at)).scalars())

    def voice(self, job_id: str, speaker_id: str) -> tuple[np.ndarray, float] | None:
        """The stored voice of one speaker of a finished job: ``(float32[192], speech seconds)``, or None.

        Raises:
            StoreError: the database cannot be read.
        """
        with self._db.read() as conn:
            row = conn.execute(select(job_voices.c.embedding, job_voices.c.speech_s).where(
                job_voices.c.job_id == job_id, job_voices.c.speaker_id == speaker_id)).first()
        if row is None:
            return None
        return np.frombuffer(row.embedding, "<f4").astype(np.float32), float(row.speech_s)


def _on(worker: str | None) -> tuple:
    """The extra ``WHERE`` of a write by ``worker`` (none when None)."""
    return () if worker is None else (jobs.c.worker == worker,)


def _record(row: Any) -> JobRecord:
    m = row._mapping
    result = m.get("result")
    return JobRecord(
        id=m["id"], status=m["status"], stage=m["stage"], progress=float(m["progress"]), message=m["message"],
        filename=m["filename"], source_path=m["source_path"], owned=bool(m["owned"]),
        options=json.loads(m["options"]), created_at=m["created_at"], started_at=m["started_at"],
        finished_at=m["finished_at"], duration_s=m["duration_s"], runs=m["runs"], worker=m["worker"],
        error_code=m["error_code"], error_message=m["error_message"], callback_url=m["callback_url"],
        callback_attempts=m["callback_attempts"], callback_delivered_at=m["callback_delivered_at"],
        callback_error=m["callback_error"], result=None if result is None else json.loads(result))
