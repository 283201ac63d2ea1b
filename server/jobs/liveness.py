"""Which job workers are alive, in a cluster: a heartbeat in the node registry and a periodic sweep.

Every process that runs job workers on the shared queue heartbeats a :class:`~server.cluster.registry.NodeInfo`
under its :attr:`JobRunner.worker <server.jobs.worker.JobRunner.worker>` name — the very string
:meth:`JobStore.start <server.store.jobs.JobStore.start>` writes into the job row's ``worker`` column — so any
process can tell whether the worker of a ``running`` job is still there. The key expires ``Settings.node_ttl_s``
after the last heartbeat (Redis ``SET … PX``, https://redis.io/docs/latest/commands/set/), so a worker that is
``kill -9``\\ ed simply drops out.

Every ``sweep_s`` each process also runs a sweep (:meth:`server.jobs.service.JobService.sweep`): jobs ``running``
on a worker that is not alive are queued again (or failed ``interrupted`` after ``Settings.job_max_runs``
starts). A worker killed mid-job therefore has its job re-run by another live worker within about
``node_ttl_s + sweep_s`` seconds, with nobody restarting anything.

Redis unreachable: the heartbeat and the sweep are skipped (logged once per outage) — an unreadable registry is
never taken to mean that every worker is dead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..cluster.registry import NodeInfo, NodeRegistry, cpu_load
from ..errors import CallscribeError

log = logging.getLogger(__name__)

MAX_SWEEP_S = 5.0
"""Longest pause between two sweeps, seconds."""


def sweep_interval(heartbeat_s: float, node_ttl_s: float) -> float:
    """Seconds between sweeps: half the registry TTL, at least one heartbeat, at most :data:`MAX_SWEEP_S`."""
    return max(heartbeat_s, min(node_ttl_s / 2, MAX_SWEEP_S))


class JobLiveness:
    """A background thread that heartbeats ``worker`` (when ``jobs`` is given) and calls ``sweep`` periodically.

    Args:
        registry: the node registry (:class:`~server.cluster.registry.NodeRegistry`).
        worker: the id to heartbeat under: the runner's ``worker`` name.
        sweep: called every ``sweep_s`` seconds with no argument; re-queues the jobs of dead workers. What it
            raises is logged, not raised: a :class:`~server.errors.CallscribeError` (Redis or the database
            unreachable) once per outage, anything else (a bug) every time — neither stops the heartbeats.
        jobs: the number of jobs running here now (heartbeat payload); None = no heartbeat from this object
            (the caller already heartbeats under ``worker``).
        role: the registry role of the heartbeat (``"worker"`` for ``callscribe worker``).
        heartbeat_s, sweep_s: periods in seconds.
    """

    def __init__(self, registry: NodeRegistry, worker: str, *, sweep: Callable[[], object],
                 jobs: Callable[[], int] | None = None, role: str = "worker", heartbeat_s: float = 1.0,
                 sweep_s: float = 2.5) -> None:
        self.registry = registry
        self.worker = worker
        self.sweep = sweep
        self.jobs = jobs
        self.role = role
        self.heartbeat_s = heartbeat_s
        self.sweep_s = sweep_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reachable = True

    def beat(self) -> None:
        """One heartbeat now (nothing without ``jobs``).

        Raises:
            ClusterError: Redis cannot be reached.
        """
        if self.jobs is not None:
            self.registry.heartbeat(NodeInfo(id=self.worker, role=self.role, jobs=self.jobs(), cpu=cpu_load()))

    def start(self) -> None:
        """Heartbeat once (so this worker is alive before it takes a job), then start the thread.

        Raises:
            ClusterError: the first heartbeat failed (Redis cannot be reached).
        """
        if self._thread is not None:
            return
        self.beat()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="job-liveness", daemon=True)
        self._thread.start()

    def stop(self, *, leave: bool = True, timeout_s: float = 5.0) -> None:
        """Stop the thread (waits at most ``timeout_s`` seconds); with ``leave`` and a heartbeat, remove the
        registry entry at once, so the others re-queue what this worker left running without waiting for the TTL.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        if leave and self.jobs is not None:
            self.registry.leave(self.worker)

    def _loop(self) -> None:
        tick = min(self.heartbeat_s, self.sweep_s)
        since_sweep = 0.0
        while not self._stop.wait(tick):
            since_sweep += tick
            try:
                self.beat()
                if since_sweep >= self.sweep_s:
                    since_sweep = 0.0
                    self.sweep()
                if not self._reachable:
                    log.info("job liveness: the registry answers again", extra={"worker": self.worker})
                self._reachable = True
            except CallscribeError as exc:  # ClusterError (Redis) or StoreError (database): retried next tick
                if self._reachable:
                    log.error("job liveness: the registry or the database is unreachable; retrying",
                              extra={"worker": self.worker, "error": str(exc)})
                self._reachable = False
            except Exception:  # a bug in one sweep must not end the heartbeats
                log.exception("job liveness: sweep failed", extra={"worker": self.worker})
