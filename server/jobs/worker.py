"""Running one analysis job: claim it, analyse the recording with progress, store the result or the error.

A job yields to live calls in two ways: Whisper's work on its regions goes through the shared worker pool as
background jobs (:class:`server.compute.jobs.AnalysisJob`, behind every call's finals, enrollments, sentiment
and partials, and never counted as load by admission control), and the job's own thread — where decoding,
diarization, features and sentiment run — gets a lower CPU scheduling priority (``nice`` +``job_nice``; on Linux
``setpriority(2)`` applies to one thread when given its thread id), so the kernel prefers the call threads when
both want the cores.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from pydantic import ValidationError

from ..analysis.options import AnalysisOptions
from ..analysis.pipeline import analyze_file
from ..compute.runtime import SpeechRuntime
from ..errors import CallscribeError, JobCancelled, StoreError
from ..store.jobs import JobRecord, JobStore
from .callback import CallbackSender

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.5
"""Progress is written to the database at most this often (and at every stage change)."""


def job_json(record: JobRecord, *, result: bool = True) -> dict:
    """The public JSON of a job (what the REST API, server-sent events and callbacks carry)."""
    out = {
        "id": record.id, "status": record.status, "progress": record.progress, "stage": record.stage,
        "message": record.message, "filename": record.filename, "options": record.options,
        "created_at": record.created_at, "started_at": record.started_at, "finished_at": record.finished_at,
        "duration_s": record.duration_s, "runs": record.runs,
        "error": {"code": record.error_code, "message": record.error_message} if record.error_code else None,
        "callback": None if not record.callback_url else {
            "url": record.callback_url, "attempts": record.callback_attempts,
            "delivered_at": record.callback_delivered_at, "error": record.callback_error},
    }
    if result:
        out["result"] = record.result
    return out


class JobRunner:
    """Runs jobs of ``store`` on ``runtime`` (one instance per process; :meth:`run` is called by the queue's
    worker threads).

    Args:
        sentiment: a shared :class:`server.sentiment.TextSentiment` (None = the runtime's, else built on first
            use).
        callbacks: delivers progress and results to jobs' callback URLs (None = callbacks are not sent).
        worker: this process's name in ``jobs.worker`` (default ``hostname:pid``); in a cluster also its id in the
            node registry (:class:`server.jobs.liveness.JobLiveness`), by which other processes tell whether a
            job it left ``running`` is still being worked on.
        nice: added to the job thread's scheduling niceness (0 = unchanged).
    """

    def __init__(self, runtime: SpeechRuntime, store: JobStore, *, sentiment=None,
                 callbacks: CallbackSender | None = None, worker: str | None = None, nice: int = 10) -> None:
        self.runtime = runtime
        self.store = store
        self.sentiment = sentiment or getattr(runtime, "sentiment", None)  # the live path's, when it has one
        self.callbacks = callbacks
        self.worker = worker or f"{os.uname().nodename}:{os.getpid()}"
        self.nice = nice
        self._local = threading.local()
        self._lock = threading.Lock()
        self._running = 0

    @property
    def running(self) -> int:
        """Jobs running in this process now."""
        return self._running

    def _diarizer(self):
        if getattr(self._local, "diarizer", None) is None:  # one per worker thread: pyannote is not re-entrant
            from ..speaker.diarization import Diarizer

            self._local.diarizer = Diarizer(self.runtime.settings, embedder=self.runtime.embedder)
        return self._local.diarizer

    def _sentiment(self):
        with self._lock:
            if self.sentiment is None:
                from ..sentiment import TextSentiment

                self.sentiment = TextSentiment()
            return self.sentiment

    def run(self, job_id: str) -> None:
        """Claim and run one job; every outcome ends up on the job (never raises for the job's own errors)."""
        try:
            record = self.store.start(job_id, self.worker)
        except StoreError as exc:
            log.error("cannot claim a job", extra={"job": job_id, "error": str(exc)})
            return
        if record is None:  # cancelled, deleted, or claimed elsewhere
            return
        log.info("job started", extra={"job": job_id, "worker": self.worker, "run": record.runs})
        with self._lock:
            self._running += 1
        try:
            self._notify(record, "progress")
            with _lower_priority(self.nice):
                self._run(record)
        finally:
            with self._lock:
                self._running -= 1
        try:
            final = self.store.get(job_id, result=True)
        except CallscribeError:
            return
        log.info("job ended", extra={"job": job_id, "status": final.status})
        if final.finished:  # not when another worker has taken it over meanwhile
            self._notify(final, final.status)

    def _run(self, record: JobRecord) -> None:
        job_id = record.id
        state = {"stage": None, "at": 0.0}

        def progress(percent: float, stage: str, message: str) -> None:
            now = time.monotonic()
            if stage == state["stage"] and now - state["at"] < PROGRESS_EVERY_S:
                return
            changed = stage != state["stage"]
            state.update(stage=stage, at=now)
            if not self.store.update(job_id, progress=percent, stage=stage, message=message, worker=self.worker):
                raise JobCancelled(f"job {job_id} was cancelled (or taken over by another worker)")
            if changed:
                self._notify(self.store.get(job_id, result=False), "progress")

        try:
            options = AnalysisOptions.model_validate(record.options)
            path = Path(record.source_path)
            analysis = analyze_file(self.runtime, path, options, progress=progress,
                                    sentiment=self._sentiment() if options.sentiment else None,
                                    diarizer=self._diarizer() if options.diarize else None, background=True,
                                    job_id=job_id)
            if not self.store.finish(job_id, analysis.result, analysis.voices, worker=self.worker):
                log.info("job cancelled as it finished", extra={"job": job_id})
        except JobCancelled:
            log.info("job cancelled or taken over", extra={"job": job_id})
        except ValidationError as exc:
            self._fail(job_id, "bad_request", f"invalid options: {exc.errors()[0]['msg']}")
        except CallscribeError as exc:
            self._fail(job_id, exc.code, str(exc).replace(record.source_path, record.filename))
        except Exception as exc:  # a bug must fail this job, not the worker
            log.exception("job failed", extra={"job": job_id})
            self._fail(job_id, "internal_error", f"the analysis failed: {type(exc).__name__}: {exc}")

    def _fail(self, job_id: str, code: str, message: str) -> None:
        try:
            self.store.fail(job_id, code, message, worker=self.worker)
        except StoreError as exc:
            log.error("cannot record a job's failure", extra={"job": job_id, "error": str(exc)})

    def _notify(self, record: JobRecord, event: str) -> None:
        if self.callbacks is None or not record.callback_url:
            return
        final = record.finished
        self.callbacks.send(record.id, record.callback_url, event, job_json(record, result=final), final=final)


class _lower_priority:
    """Context manager: this thread's niceness + ``nice`` (Linux: per thread), restored afterwards where allowed
    (raising priority back needs ``CAP_SYS_NICE``; an unprivileged worker thread simply stays nicer)."""

    def __init__(self, nice: int) -> None:
        self.nice = nice
        self.before: int | None = None

    def __enter__(self):
        if self.nice and hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
            try:
                tid = threading.get_native_id()
                self.before = os.getpriority(os.PRIO_PROCESS, tid)
                os.setpriority(os.PRIO_PROCESS, tid, min(19, self.before + self.nice))
            except OSError:
                self.before = None
        return self

    def __exit__(self, *exc) -> None:
        if self.before is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.before)
            except OSError:
                pass
