"""The shared model worker pool: the only place model calls run.

A fixed number of threads take jobs from one priority queue (finals before partials, then FIFO).
The event loop never waits on a model: callers get a :class:`concurrent.futures.Future`
(wrap it with ``asyncio.wrap_future`` in async code).

Two kinds of work:
- *required* jobs (final results, enrollment) are always accepted; ``submit(..., block=True)``
  waits while ``max_queue`` jobs are already waiting (file mode uses this as back-pressure);
- *optional* jobs (partial results) are accepted only while a worker is idle and nothing waits,
  so they never delay a final. ``submit_optional`` returns None when refused.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)

PRIORITY_FINAL = 0
PRIORITY_PARTIAL = 1


class WorkerPool:
    """Priority thread pool with a bounded wait queue.

    Args:
        workers: threads running jobs (match the model's ``num_workers``).
        max_queue: jobs that may wait; ``busy`` turns True at this depth.
    """

    def __init__(self, workers: int = 2, max_queue: int = 32, name: str = "model") -> None:
        self._queue: queue.PriorityQueue = queue.PriorityQueue()
        self._counter = itertools.count()
        self._lock = threading.Condition()
        self._waiting = 0
        self._idle = workers
        self.max_queue = max_queue
        self.workers = workers
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    @property
    def depth(self) -> int:
        """Jobs waiting for a worker (not counting running ones)."""
        return self._waiting

    @property
    def busy(self) -> bool:
        """True when the wait queue is full: new streams should be refused."""
        return self._waiting >= self.max_queue

    def submit(self, fn: Callable[..., Any], *args: Any, block: bool = False, **kwargs: Any) -> Future:
        """Queue a required job (priority: final). With ``block``, wait while the queue is full."""
        with self._lock:
            if self._closed:
                raise RuntimeError("worker pool is closed")
            while block and self._waiting >= self.max_queue:
                self._lock.wait()
            return self._put(PRIORITY_FINAL, fn, args, kwargs)

    def submit_optional(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future | None:
        """Queue a job only if a worker is idle and nothing waits; else return None."""
        with self._lock:
            if self._closed or self._waiting > 0 or self._idle == 0:
                return None
            return self._put(PRIORITY_PARTIAL, fn, args, kwargs)

    def _put(self, priority: int, fn: Callable, args: tuple, kwargs: dict) -> Future:
        fut: Future = Future()
        self._waiting += 1
        self._queue.put((priority, next(self._counter), fut, fn, args, kwargs))
        return fut

    def _run(self) -> None:
        while True:
            _, _, fut, fn, args, kwargs = self._queue.get()
            if fn is None:  # shutdown sentinel, sorted after all real work
                return
            with self._lock:
                self._waiting -= 1
                self._idle -= 1
                self._lock.notify_all()
            try:
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(fn(*args, **kwargs))
                    except BaseException as exc:  # noqa: BLE001 -- delivered to the caller through the future
                        fut.set_exception(exc)
            finally:
                with self._lock:
                    self._idle += 1

    def close(self) -> None:
        """Stop the workers after the queued jobs; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for _ in self._threads:
            self._queue.put((99, next(self._counter), None, None, None, None))
        for t in self._threads:
            t.join(timeout=30)
