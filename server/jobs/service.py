"""The analysis-job service: what the REST API calls (submit, read, cancel, delete, name a speaker) and what the
composition root (or ``callscribe worker``) starts and stops (the queue's worker threads, recovery after a
restart, and in a cluster the liveness heartbeat and sweep of :mod:`server.jobs.liveness`).

One machine: the queue is a huey SQLite file and :meth:`JobService.start` re-queues every job left ``running``
(no worker of an earlier run can still be alive). A cluster (``Settings.redis_url``): the queue is huey's Redis
storage shared by every process (https://huey.readthedocs.io/en/latest/api.html#RedisHuey), a
:class:`~server.cluster.registry.NodeRegistry` is given, and only jobs whose worker has left the registry are
re-queued — at start and by a sweep every few seconds.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..analysis.options import AnalysisOptions
from ..analysis.result import rename_speaker, speaker_ids
from ..cluster.registry import ClusterError, NodeRegistry
from ..compute.runtime import SpeechRuntime
from ..errors import (
    JobNotFound,
    ProfileError,
    QueueFull,
    SpeakerNotFound,
)
from ..settings import Settings
from ..speaker.identity import SpeakerIdentity
from ..speaker.profile import check_speaker_name
from ..store.jobs import JobRecord, JobStore
from .callback import CallbackSender
from .liveness import JobLiveness, sweep_interval
from .queue import JobQueue, make_huey
from .worker import JobRunner

log = logging.getLogger(__name__)


def queue_target(settings: Settings) -> str | Path:
    """Where the queue lives: ``Settings.job_queue``; else ``Settings.redis_url`` (a cluster: one queue shared by
    every node and ``callscribe worker``); else a SQLite file beside the uploads."""
    return settings.job_queue or settings.redis_url or jobs_dir(settings) / "queue.sqlite3"


def jobs_dir(settings: Settings) -> Path:
    """Folder of uploaded recordings: ``Settings.jobs_dir``, else ``jobs`` beside a SQLite database (or in the
    data folder for a PostgreSQL one)."""
    if settings.jobs_dir is not None:
        return Path(settings.jobs_dir)
    database = str(settings.database)
    if "://" in database:
        return Path(settings.recordings_dir).parent / "jobs"
    return Path(database).expanduser().resolve().parent / "jobs"


class JobService:
    """Analysis jobs of one process.

    Args:
        runtime: the speech runtime the jobs run on (its settings configure the jobs).
        store: the job table.
        queue: a :class:`JobQueue` (None = one from :func:`make_huey` of :func:`queue_target`).
        runner: a :class:`JobRunner` (None = one over ``runtime`` and ``store`` with callbacks).
        worker: the default runner's name in ``jobs.worker`` and in the registry (None = ``hostname:pid``).
        registry: cluster mode: the node registry by which recovery tells live workers from dead ones (a job's
            ``worker`` column against the registry ids). None = one machine: every ``running`` job at start is an
            orphan.
    """

    def __init__(self, runtime: SpeechRuntime, store: JobStore, *, queue: JobQueue | None = None,
                 runner: JobRunner | None = None, registry: NodeRegistry | None = None,
                 worker: str | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.store = store
        self.callbacks = None
        if runner is None:
            self.callbacks = CallbackSender(store, timeout_s=self.settings.callback_timeout_s,
                                            retries=self.settings.callback_retries)
            runner = JobRunner(runtime, store, callbacks=self.callbacks, nice=self.settings.job_nice, worker=worker)
        self.runner = runner
        self.queue = queue or JobQueue(make_huey(queue_target(self.settings)), runner.run)
        self.uploads = jobs_dir(self.settings) / "uploads"
        self.registry = registry
        self.liveness: JobLiveness | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, *, workers: int | None = None, heartbeat: bool = False) -> None:
        """Recover (interrupted jobs re-run or failed; queued ones re-queued when the queue lost them), then start
        ``workers`` job-worker threads (None = ``Settings.job_workers``; 0 = none in this process).

        With a registry (cluster mode) only jobs whose worker is not alive in it are recovered, and a
        :class:`JobLiveness` thread then sweeps every :func:`sweep_interval` seconds, so a job whose worker was
        killed is re-run by a live one without a restart. ``heartbeat``: also heartbeat this process's
        ``runner.worker`` id in the registry (role ``worker``) — needed by every process whose job threads are
        not covered by another heartbeat under that same id (``callscribe worker`` passes it); without it,
        other processes take the jobs running here for orphans.

        Raises:
            StoreError: the database cannot be read or written.
            ClusterError: with ``heartbeat``, the first heartbeat failed (Redis cannot be reached).
        """
        workers = self.settings.job_workers if workers is None else workers
        if self.registry is None:
            again, failed = self.store.recover(self.settings.job_max_runs)
            if again or failed:
                log.warning("jobs interrupted by a restart", extra={"queued_again": again, "failed": failed})
            self.queue.reconcile(self.store.queued())
            self.queue.start(workers)
            return
        runner = self.runner
        self.liveness = JobLiveness(self.registry, runner.worker, sweep=self.sweep,
                                    jobs=(lambda: runner.running) if heartbeat else None,
                                    heartbeat_s=self.settings.heartbeat_s,
                                    sweep_s=sweep_interval(self.settings.heartbeat_s, self.settings.node_ttl_s))
        self.liveness.start()
        try:
            # jobs under this very id are an earlier run's (a restart with the same --node-id): orphans too
            self._recover(self.registry.alive() - {runner.worker})
        except ClusterError as exc:
            log.error("cannot read the node registry; recovery waits for the next sweep", extra={"error": str(exc)})
        self.queue.start(workers)

    def sweep(self) -> tuple[list[str], list[str]]:
        """Cluster mode, one sweep: jobs ``running`` on workers that are not alive in the registry are queued
        again (and enqueued, by the one process whose conditional update re-queued each) or failed
        ``interrupted``; queued jobs the queue lacks are enqueued. Returns ``(queued again, failed)`` ids.

        Raises:
            ClusterError: Redis cannot be reached.  StoreError: the database cannot be read or written.
            RuntimeError: no registry was given.
        """
        if self.registry is None:
            raise RuntimeError("JobService.sweep needs a node registry (cluster mode)")
        return self._recover(self.registry.alive())

    def _recover(self, alive: set[str]) -> tuple[list[str], list[str]]:
        again, failed = self.store.recover(self.settings.job_max_runs, alive=alive)
        for job_id in again:
            self.queue.enqueue(job_id)
        if again or failed:
            log.warning("jobs of stopped workers", extra={"queued_again": again, "failed": failed})
        self.queue.reconcile(self.store.queued())  # a duplicate is harmless: JobStore.start claims a job once
        return again, failed

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the worker threads (a running job gets ``timeout_s`` seconds to finish, else it is left
        ``running`` and recovered later), then the liveness thread: its registry entry is removed, so in a
        cluster another worker re-runs such a job at its next sweep."""
        self.queue.stop(timeout_s)
        if self.liveness is not None:
            self.liveness.stop(leave=True)
            self.liveness = None
        if self.callbacks is not None:
            self.callbacks.close()

    def _remove_upload(self, path: Path) -> None:
        """Delete an upload: its own folder under :attr:`uploads` (``uploads/u…/``), or just the file."""
        try:
            inside = path.resolve().relative_to(self.uploads.resolve())
        except ValueError:
            inside = None
        try:
            if inside is not None and len(inside.parts) > 1:
                shutil.rmtree(self.uploads / inside.parts[0])
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove a job's upload", extra={"path": str(path), "error": str(exc)})

    # -- requests ------------------------------------------------------------------------------
    def submit(self, source: Path, filename: str, options: AnalysisOptions, *, owned: bool,
               callback_url: str | None = None, duration_s: float | None = None) -> JobRecord:
        """Queue an analysis of ``source`` (``owned``: an upload, deleted with the job).

        Raises:
            QueueFull: ``Settings.max_queued_jobs`` jobs are waiting already (an owned upload is deleted).
            StoreError: the database cannot be written.
        """
        record = self.store.create(filename, str(source), options.model_dump(), owned=owned,
                                   callback_url=callback_url, max_queued=self.settings.max_queued_jobs,
                                   duration_s=duration_s)
        if record is None:
            if owned:
                self._remove_upload(source)
            raise QueueFull(f"{self.settings.max_queued_jobs} analysis jobs are waiting already; retry later")
        self.queue.enqueue(record.id)
        return record

    def get(self, job_id: str, *, result: bool = True) -> JobRecord:
        return self.store.get(job_id, result=result)

    def list(self, limit: int = 50, offset: int = 0) -> tuple[list[JobRecord], int]:
        return self.store.list(limit, offset)

    def cancel_or_delete(self, job_id: str) -> JobRecord | None:
        """Cancel a queued or running job (returned, ``cancelled``); delete a finished one and its upload
        (returns None).

        Raises:
            JobNotFound: no such job.  StoreError: the database cannot be written.
        """
        record = self.store.get(job_id, result=False)
        if not record.finished:
            record = self.store.cancel(job_id)
            if record.status == "cancelled":
                return record
        gone = self.store.delete(job_id)
        if gone.owned:
            self._remove_upload(Path(gone.source_path))
        return None

    def name_speaker(self, job_id: str, speaker_id: str, name: str, *, save: bool = False,
                     extend: bool = False) -> tuple[SpeakerIdentity, int | None]:
        """Give an anonymous (or unknown) speaker of a finished job a name; with ``save`` its diarized voice becomes
        a voice profile (``extend``: added to the profile of that name). Returns the new identity and the
        profile id when saved.

        Raises:
            JobNotFound: no such job, or it has no result yet.  SpeakerNotFound: no such speaker in it.
            NotAnonymous: the speaker is a voice profile already.  InvalidName: empty, too long or reserved.
            NameTaken: another speaker of the job has the name, or a profile has it and ``save``/``extend`` is
            off.  ProfileError: no stored voice (a job analysed without diarization) or too little speech.
            StoreError: the database cannot be written.
        """
        record = self.store.get(job_id)
        if record.result is None:
            raise JobNotFound(f"job {job_id!r} has no result yet")
        speakers = speaker_ids(record.result)
        current = speakers.get(speaker_id)
        if current is None:
            raise SpeakerNotFound(f"no speaker {speaker_id!r} in job {job_id!r}")
        identity = SpeakerIdentity(current["speaker_kind"], speaker_id, current["speaker"])
        others = {s["speaker"].lower() for sid, s in speakers.items() if sid != speaker_id}
        name = check_speaker_name(identity, name, others, "this recording", unknown_too=True)
        profile_id = None
        if save:
            voice = self.store.voice(job_id, speaker_id)
            if voice is None:
                raise ProfileError("this recording was analysed without diarization: no voice to save")
            profile = self.runtime.save_voice(name, voice[0], voice[1], f"named in recording {record.filename}",
                                              extend=extend)
            identity, profile_id = SpeakerIdentity.profile(profile.id, profile.name), profile.id
        else:
            self.runtime.check_unclaimed(name)
            identity = SpeakerIdentity("anonymous", speaker_id, name)
        self.store.set_result(job_id, rename_speaker(record.result, speaker_id, identity))
        return identity, profile_id
