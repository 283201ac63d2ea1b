"""The shared model worker pool: the only place model calls run.

A fixed number of threads take typed jobs (:mod:`server.compute.jobs`) from one priority queue (finals, then
enrollments, then partials; FIFO within a class) and hand each to the ``execute`` function the pool was built
with (the runtime's). The event loop never waits on a model: callers get a :class:`concurrent.futures.Future`
(wrap it with ``asyncio.wrap_future`` in async code).

- *required* jobs (finals, enrollments) are always accepted; ``submit(job, block=True)`` waits while
  ``max_queue`` jobs are already waiting (file mode uses this as back-pressure);
- *optional* jobs (partials) are accepted only while a worker is idle and no live job waits, so they never
  delay a final; ``submit`` returns None when one is refused;
- *background* jobs (recording analysis) run after every other class and are not counted by ``depth`` or
  ``busy``, so a queue of analysis work never makes admission control turn calls away.

An optional :class:`JobObserver` is told of every job once it has run, with its start and end times
(benchmarks and metrics attach here).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from .jobs import Job

log = logging.getLogger(__name__)

_STOP = 99  # priority of the shutdown sentinel: after every real job


class JobObserver(Protocol):
    """Told of each job's run on a worker thread (must be quick and thread-safe)."""

    def job_finished(self, job: Job, started: float, ended: float, ok: bool) -> None:
        """``started``/``ended`` are ``time.monotonic()`` seconds; ``ok`` False when the job raised."""


class WorkerPool:
    """Priority thread pool with a bounded wait queue.

    Args:
        execute: runs one job on a worker thread and returns its result (``SpeechRuntime.run``).
        workers: threads running jobs (match the model's ``num_workers``).
        max_queue: jobs that may wait; ``busy`` turns True at this depth.
        observer: optional :class:`JobObserver`.
    """

    def __init__(self, execute: Callable[[Job], Any], workers: int = 2, max_queue: int = 32, name: str = "model",
                 observer: JobObserver | None = None) -> None:
        self._execute = execute
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._counter = itertools.count()
        self._lock = threading.Condition()
        self._waiting = 0
        self._waiting_live = 0  # waiting jobs that are not background work
        self._idle = workers
        self.max_queue = max_queue
        self.workers = workers
        self.observer = observer
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    @property
    def depth(self) -> int:
        """Live jobs waiting for a worker (not counting running ones, nor background work)."""
        return self._waiting_live

    @property
    def busy(self) -> bool:
        """True when the live wait queue is full: new streams should be refused (background jobs, which wait
        behind everything, do not count)."""
        return self._waiting_live >= self.max_queue

    def submit(self, job: Job, *, block: bool = False) -> Future | None:
        """Queue ``job``. Required jobs always get a future (with ``block``, after waiting while the queue is
        full); optional jobs get None unless a worker is idle and nothing waits.

        Raises:
            RuntimeError: the pool is closed (required jobs only).
        """
        with self._lock:
            if job.optional:
                if self._closed or self._waiting_live > 0 or self._idle == 0:
                    return None
            else:
                if self._closed:
                    raise RuntimeError("worker pool is closed")
                while block and not job.background and self._waiting_live >= self.max_queue:
                    self._lock.wait()
            fut: Future = Future()
            self._waiting += 1
            self._waiting_live += not job.background
            self._queue.put((int(job.priority), next(self._counter), fut, job))
            return fut

    def _run(self) -> None:
        while True:
            priority, _, fut, job = self._queue.get()
            if priority == _STOP:
                return
            with self._lock:
                self._waiting -= 1
                self._waiting_live -= not job.background
                self._idle -= 1
                self._lock.notify_all()
            try:
                if fut.set_running_or_notify_cancel():
                    self._run_one(fut, job)
            finally:
                with self._lock:
                    self._idle += 1

    def _run_one(self, fut: Future, job: Job) -> None:
        started, ok = time.monotonic(), False
        try:
            result = self._execute(job)
            ok = True
        except BaseException as exc:  # noqa: BLE001 -- delivered to the caller through the future
            fut.set_exception(exc)
        if self.observer is not None:
            try:
                self.observer.job_finished(job, started, time.monotonic(), ok)
            except Exception:  # an observer must not break model work
                log.exception("job observer failed")
        if ok:
            fut.set_result(result)

    def close(self) -> None:
        """Stop the workers after the queued jobs; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for _ in self._threads:
            self._queue.put((_STOP, next(self._counter), None, None))
        for t in self._threads:
            t.join(timeout=30)
