"""The analysis-job service: what the REST API calls (submit, read, cancel, delete, name a speaker) and what the
composition root starts and stops (the queue's worker threads, recovery after a restart)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..analysis.options import AnalysisOptions
from ..analysis.result import rename_speaker, speaker_ids
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
from .queue import JobQueue, make_huey
from .worker import JobRunner

log = logging.getLogger(__name__)


def queue_target(settings: Settings) -> str | Path:
    """Where the queue lives: ``Settings.job_queue``, else a SQLite file beside the uploads."""
    return settings.job_queue or jobs_dir(settings) / "queue.sqlite3"


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
    """

    def __init__(self, runtime: SpeechRuntime, store: JobStore, *, queue: JobQueue | None = None,
                 runner: JobRunner | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.store = store
        self.callbacks = None
        if runner is None:
            self.callbacks = CallbackSender(store, timeout_s=self.settings.callback_timeout_s,
                                            retries=self.settings.callback_retries)
            runner = JobRunner(runtime, store, callbacks=self.callbacks, nice=self.settings.job_nice)
        self.runner = runner
        self.queue = queue or JobQueue(make_huey(queue_target(self.settings)), runner.run)
        self.uploads = jobs_dir(self.settings) / "uploads"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        """Recover after a restart (interrupted jobs re-run or failed; queued ones re-queued when the queue lost
        them), then start ``Settings.job_workers`` worker threads.

        Raises:
            StoreError: the database cannot be read or written.
        """
        again, failed = self.store.recover(self.settings.job_max_runs)
        if again or failed:
            log.warning("jobs interrupted by a restart", extra={"queued_again": again, "failed": failed})
        self.queue.reconcile(self.store.queued())
        self.queue.start(self.settings.job_workers)

    def stop(self) -> None:
        self.queue.stop()
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
