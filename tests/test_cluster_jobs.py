"""Analysis jobs in a cluster: a real Redis (huey's Redis queue and the node registry), a real PostgreSQL (the job
table shared by every process), real ``callscribe worker`` processes with the real models.

- plumbing (no models): :meth:`JobStore.recover` with the live workers leaves their jobs alone, re-queues the jobs
  of dead ones or fails them ``interrupted`` after ``job_max_runs``; concurrent recoveries re-queue a job once
  (PostgreSQL and SQLite); a worker whose heartbeat expires (Redis key TTL) loses its job;
- a job submitted through the JobService of a node that runs no job threads (``job_workers=0``) runs on a
  separate ``callscribe worker`` process and ends ``done`` with the recording's words;
- ``kill -9`` of the worker running a job: the other worker's sweep re-runs it (``runs == 2``, ``done``);
- SIGTERM stops a worker cleanly (exit 0) and it leaves the registry at once.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from server.store.database import Database
from server.store.jobs import JobStore

ROOT = Path(__file__).resolve().parents[1]
READY = re.compile(r"^callscribe: worker (\S+) running")
READY_TIMEOUT_S = 180.0
JOB_TIMEOUT_S = 180.0
HEARTBEAT_S, NODE_TTL_S = 0.3, 1.5
QUICK = {"language": "en", "diarize": False, "features": False, "sentiment": False}
"""The job options of the process tests: the live path (Whisper + CAM++) only, the quickest real analysis."""


def wait_until(check, timeout_s: float, what: str, interval_s: float = 0.05):
    """Poll ``check()`` until it returns something truthy (returned); fails after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def set_row(db: Database, job_id: str, **values) -> None:
    """Overwrite columns of one job row (a state an earlier run left)."""
    from sqlalchemy import update

    from server.store.schema import jobs

    with db.write() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))


def running_jobs(store: JobStore, worker: str, n: int) -> list[str]:
    """``n`` jobs claimed by ``worker`` (the state its death leaves behind)."""
    ids = []
    for i in range(n):
        job = store.create(f"{i}.wav", f"/x/{i}.wav", {}, owned=False)
        assert store.start(job.id, worker).worker == worker
        ids.append(job.id)
    return ids


@pytest.fixture
def pg_url(postgres_url):
    from postgres_server import create_database

    return create_database(postgres_url)


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request, tmp_path):
    """A fresh job database: on the test PostgreSQL, or a SQLite file."""
    if request.param == "postgresql":
        from postgres_server import create_database

        return create_database(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "jobs.sqlite3")


# -- plumbing: recovery by liveness ----------------------------------------------------------------
def test_recovery_leaves_live_workers_jobs_and_requeues_or_fails_dead_ones(database):
    db = Database(database)
    try:
        store = JobStore(db)
        (live,) = running_jobs(store, "host:1", 1)
        (dead,) = running_jobs(store, "host:2", 1)
        (spent,) = running_jobs(store, "host:3", 1)
        set_row(db, spent, runs=2)  # started twice already
        assert store.recover(2, alive={"host:1", "elsewhere"}) == ([dead], [spent])
        assert store.get(live).status == "running" and store.get(live).worker == "host:1"
        requeued = store.get(dead)
        assert (requeued.status, requeued.progress, requeued.runs) == ("queued", 0.0, 1)
        failed = store.get(spent)
        assert (failed.status, failed.error_code) == ("failed", "interrupted") and failed.finished_at
        assert store.recover(2, alive={"host:1"}) == ([], [])  # nothing more to do
        # the worker of a recovered job that is in fact still running learns it at its next write
        assert store.start(dead, "host:4")
        assert not store.update(dead, progress=5, stage="transcription", message="m", worker="host:2")
        assert not store.finish(dead, {"segments": []}, worker="host:2")
        assert store.update(dead, progress=5, stage="transcription", message="m", worker="host:4")
        assert store.recover(1, alive={"host:1", "host:4"}) == ([], [])
        # alive=None: the single-machine behaviour, every running job
        assert store.recover(1) == ([], [live, dead])
    finally:
        db.close()


def test_concurrent_recoveries_requeue_each_job_once(database):
    """Two processes (own connection pools) recovering at the same instant: each job re-queued by exactly one."""
    dbs = [Database(database, timeout_s=30) for _ in range(2)]
    try:
        ids = running_jobs(JobStore(dbs[0]), "gone:1", 12)
        barrier = threading.Barrier(2, timeout=30)
        results: list[tuple[list[str], list[str]]] = [([], [])] * 2

        def recover(i: int) -> None:
            barrier.wait()
            results[i] = JobStore(dbs[i]).recover(2, alive={"someone:else"})

        threads = [threading.Thread(target=recover, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        (a, fa), (b, fb) = results
        assert not fa and not fb and not set(a) & set(b) and sorted(a + b) == sorted(ids)
        assert {JobStore(dbs[1]).get(j).status for j in ids} == {"queued"}
    finally:
        for db in dbs:
            db.close()


def test_a_worker_whose_heartbeat_expires_loses_its_job(redis_server, pg_url):
    """The registry as recovery sees it: a live heartbeat protects a job; once the key expires (no more
    heartbeats: what ``kill -9`` leaves) the job is queued again, or failed ``interrupted`` with max_runs=1."""
    from server.cluster.registry import NodeInfo, NodeRegistry, connect

    registry = NodeRegistry(connect(redis_server.url), ttl_s=0.4)
    db = Database(pg_url)
    try:
        store = JobStore(db)
        again_job, fail_job = running_jobs(store, "w:short", 2)
        registry.heartbeat(NodeInfo(id="w:short", role="worker", jobs=2))
        assert "w:short" in registry.alive()
        assert store.recover(1, alive=registry.alive()) == ([], [])
        wait_until(lambda: "w:short" not in registry.alive(), 5, "the heartbeat to expire")
        set_row(db, fail_job, runs=2)  # started twice already: max_runs=2 ends it
        assert store.recover(2, alive=registry.alive()) == ([again_job], [fail_job])
        assert store.get(fail_job).error_code == "interrupted"
        store.start(again_job, "w:other")  # runs=2 now; w:other never heartbeats
        assert store.recover(2, alive=registry.alive()) == ([], [again_job])
        assert store.get(again_job).error_code == "interrupted"
        (once,) = running_jobs(store, "w:gone", 1)
        assert store.recover(1, alive=registry.alive()) == ([], [once])  # max_runs=1: one start is all it gets
        assert store.get(once).error_code == "interrupted"
    finally:
        db.close()
        registry.client.close()


# -- real worker processes -------------------------------------------------------------------------
class Worker:
    """A ``callscribe worker`` subprocess; :attr:`id` is what its ready line names (its registry id)."""

    def __init__(self, env: dict, log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", "worker", "--jobs", "1"], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=self._log_file, text=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.id: str | None = None

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_ready(self, deadline: float) -> str:
        while self.id is None:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                pytest.fail(f"callscribe worker not ready (exit {self.proc.poll()}); stderr:\n{self.stderr()}")
            match = READY.match(line)
            if match:
                self.id = match.group(1)
        return self.id

    def stderr(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        self._log_file.close()


@pytest.fixture(scope="module")
def cluster(redis_server, postgres_url, model_cache, tmp_path_factory):
    """Two ``callscribe worker`` processes (started together, ready within a bounded wait) and a node: a
    :class:`JobService` in this process with ``job_workers=0`` (the server running no job threads), on the same
    PostgreSQL and Redis. Yields ``(node service, {worker id: Worker})``."""
    from postgres_server import create_database

    from server.cluster.registry import NodeRegistry, connect
    from server.compute.runtime import SpeechRuntime
    from server.jobs.service import JobService
    from server.settings import Settings

    url = create_database(postgres_url)
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/7"  # a database of its own: no other test's keys
    tmp = tmp_path_factory.mktemp("cluster-jobs")
    env = {**os.environ, "CALLSCRIBE_MODEL_CACHE_DIR": str(model_cache), "CALLSCRIBE_DATABASE": url,
           "CALLSCRIBE_REDIS_URL": redis_url, "CALLSCRIBE_HEARTBEAT_S": str(HEARTBEAT_S),
           "CALLSCRIBE_NODE_TTL_S": str(NODE_TTL_S), "CALLSCRIBE_JOB_MAX_RUNS": "2", "CALLSCRIBE_SENTIMENT": "false",
           "CALLSCRIBE_RECORDINGS_DIR": str(tmp / "recordings"), "CALLSCRIBE_JOBS_DIR": str(tmp / "jobs"),
           "PYTHONUNBUFFERED": "1"}
    workers: list[Worker] = []
    runtime = service = None
    client = connect(redis_url)
    try:
        client.flushdb()
        workers = [Worker(env, tmp / f"worker{i}.log") for i in range(2)]
        settings = Settings(model_cache_dir=model_cache, database=url, redis_url=redis_url, job_workers=0,
                            heartbeat_s=HEARTBEAT_S, node_ttl_s=NODE_TTL_S, sentiment=False,
                            recordings_dir=tmp / "node-recordings", jobs_dir=tmp / "node-jobs")
        runtime = SpeechRuntime.from_settings(settings, load_asr=False)  # the node submits; it runs no jobs
        service = JobService(runtime, JobStore(runtime.store.database),
                             registry=NodeRegistry(client, NODE_TTL_S))
        service.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        by_id = {w.wait_ready(deadline): w for w in workers}
        assert len(by_id) == 2
        yield service, by_id
    finally:
        if service is not None:
            service.stop()
        if runtime is not None:
            runtime.close()
        for w in workers:
            w.kill()
        client.close()


def _text(record) -> str:
    return " ".join(s["text"] for s in record.result["segments"]).lower()


@pytest.mark.speech
def test_a_job_from_a_node_without_job_threads_runs_on_a_worker_process(cluster, speech):
    from server.analysis.options import AnalysisOptions

    node, workers = cluster
    job = node.submit(speech / "jfk.flac", "jfk.flac", AnalysisOptions(**QUICK), owned=False)
    record = wait_until(lambda: (r := node.get(job.id)).finished and r, JOB_TIMEOUT_S, "the job to finish", 0.1)
    assert record.status == "done", record
    assert record.worker in workers and record.runs == 1
    assert "ask not" in _text(record) and "country" in _text(record)


@pytest.mark.speech
def test_a_job_whose_worker_is_killed_mid_job_is_rerun_by_the_other(cluster, speech):
    from server.analysis.options import AnalysisOptions

    node, workers = cluster
    alive = {i: w for i, w in workers.items() if w.proc.poll() is None}
    assert len(alive) == 2, "both workers must be up"
    job = node.submit(speech / "pyannote_sample.wav", "pyannote_sample.wav", AnalysisOptions(**QUICK), owned=False)
    first = wait_until(lambda: (r := node.get(job.id, result=False)).status == "running" and r.progress > 0 and r,
                       JOB_TIMEOUT_S, "the job to run with progress")
    victim = alive[first.worker]
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait(10)
    assert node.get(job.id, result=False).status == "running"  # left behind, until its heartbeat expires
    killed_at = time.monotonic()
    rerun = wait_until(lambda: (r := node.get(job.id, result=False)).runs == 2 and r, 30, "the job to be re-run")
    print(f"re-run {time.monotonic() - killed_at:.1f} s after the kill (TTL {NODE_TTL_S} s)")
    assert rerun.worker != first.worker and rerun.worker in alive
    record = wait_until(lambda: (r := node.get(job.id)).finished and r, JOB_TIMEOUT_S, "the re-run to finish", 0.1)
    assert record.status == "done" and record.runs == 2 and record.worker == rerun.worker, record
    assert len(_text(record).split()) > 40
    assert first.worker not in node.registry.alive()


@pytest.mark.speech
def test_a_worker_stops_cleanly_on_sigterm_and_leaves_the_registry(cluster):
    node, workers = cluster
    wid, worker = next((i, w) for i, w in workers.items() if w.proc.poll() is None)
    assert wid in node.registry.alive()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(30) == 0, worker.stderr()
    assert wid not in node.registry.alive()  # left at once, not after the TTL
