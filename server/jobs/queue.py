"""The job queue: huey (https://huey.readthedocs.io), a maintained task queue with an embedded SQLite storage
(no broker process: the default on one machine) and a Redis storage (several machines share one queue).

Why huey rather than Dramatiq or Celery: both of those need a broker (RabbitMQ or Redis) even on one machine;
huey runs on a SQLite file next to the database, in-process, and the same task code moves to Redis unchanged.
What a job *is* lives in the database (:class:`server.store.jobs.JobStore`); the queue carries only job ids,
so :meth:`JobQueue.reconcile` can always rebuild it from the table (a lost or stale queue file loses nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from huey import Huey, SqliteHuey
from huey.consumer import Consumer

from ..errors import CallscribeError

log = logging.getLogger(__name__)

TASK_NAME = "callscribe.analyze"


def make_huey(target: str | Path) -> Huey:
    """The huey instance for ``target``: a ``redis://`` URL or the path of a SQLite queue file.

    Raises:
        CallscribeError: a Redis URL without the ``redis`` package, or a queue file that cannot be created.
    """
    text = str(target)
    if text.startswith(("redis://", "rediss://", "unix://")):
        try:
            from huey import RedisHuey
            return RedisHuey(name="callscribe", url=text, results=False, utc=True)
        except ImportError as exc:  # huey imports redis lazily
            raise CallscribeError(f"a Redis job queue needs the redis package: {exc}") from None
    path = Path(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CallscribeError(f"cannot create the job queue {path}: {exc}") from None
    return SqliteHuey(name="callscribe", filename=str(path), results=False, utc=True)


class _EmbeddedConsumer(Consumer):
    """huey's consumer without its process signal handlers: it runs on threads inside the server, whose event
    loop owns SIGINT/SIGTERM; the server stops it explicitly (:meth:`JobQueue.stop`)."""

    def _set_signal_handlers(self) -> None:
        pass


class JobQueue:
    """Job ids on a huey queue, run by ``run(job_id)``.

    Args:
        huey: from :func:`make_huey`.
        run: executes one job (:meth:`server.jobs.worker.JobRunner.run`); it must not raise for job errors.
    """

    def __init__(self, huey: Huey, run: Callable[[str], None]) -> None:
        self.huey = huey
        self._task = huey.task(name=TASK_NAME)(run)
        self._consumer: Consumer | None = None

    def enqueue(self, job_id: str) -> None:
        """Queue one job id (the job row must exist and be ``queued``)."""
        self._task(job_id)

    def pending(self) -> list[str]:
        """Job ids waiting in the queue, in order."""
        return [t.args[0] for t in self.huey.pending() if t.name == TASK_NAME and t.args]

    def reconcile(self, queued: Iterable[str]) -> list[str]:
        """Enqueue the ``queued`` job ids (from the database) that the queue lacks; returns them."""
        have = set(self.pending())
        missing = [j for j in queued if j not in have]
        for job_id in missing:
            self.enqueue(job_id)
        return missing

    def start(self, workers: int, *, poll_max_s: float = 1.0) -> None:
        """Run ``workers`` job-worker threads in this process (0: none — a separate ``callscribe worker`` runs
        the jobs). An idle worker polls the queue at most every ``poll_max_s`` seconds."""
        if workers <= 0 or self._consumer is not None:
            return
        self._consumer = _EmbeddedConsumer(self.huey, workers=workers, periodic=False, worker_type="thread",
                                           initial_delay=0.05, backoff=1.5, max_delay=poll_max_s,
                                           check_worker_health=False)
        self._consumer.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the workers: a running job gets ``timeout_s`` to finish, else it is left ``running`` and re-run
        after the next start (:meth:`server.store.jobs.JobStore.recover`)."""
        if self._consumer is None:
            return
        self._consumer.shutdown_timeout = timeout_s
        self._consumer.stop(graceful=True)
        self._consumer = None
