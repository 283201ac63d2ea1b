"""Analysis jobs without models: the job table (real SQLite), the huey queue with embedded thread workers, callback
delivery against real HTTP servers on 127.0.0.1 (failing, then answering; hanging), background work in the pool."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest

from server.compute.jobs import AnalysisJob, FinalJob, PartialJob
from server.compute.workpool import WorkerPool
from server.errors import JobNotFound
from server.jobs.callback import CallbackSender
from server.jobs.queue import JobQueue, make_huey
from server.store.database import Database
from server.store.jobs import JobStore


@pytest.fixture
def store(tmp_path):
    db = Database(tmp_path / "jobs.sqlite3")
    yield JobStore(db)
    db.close()


def test_a_job_moves_queued_running_done_and_is_claimed_once(store):
    job = store.create("a.wav", "/x/a.wav", {"diarize": True}, owned=True)
    assert (job.status, job.stage, job.progress, job.runs) == ("queued", "queued", 0.0, 0)
    running = store.start(job.id, "w1")
    assert running.status == "running" and running.runs == 1 and running.worker == "w1"
    assert store.start(job.id, "w2") is None  # a second worker does not get it
    assert store.update(job.id, progress=40.0, stage="diarization", message="m", duration_s=30.0)
    assert store.update(job.id, progress=10.0, stage="transcription", message="m")  # never goes back
    assert store.get(job.id).progress == 40.0 and store.get(job.id).duration_s == 30.0
    voice = np.ones(192, np.float32) / np.sqrt(192)
    assert store.finish(job.id, {"segments": []}, {"anon:1": (voice, 12.5)})
    done = store.get(job.id)
    assert (done.status, done.progress, done.result) == ("done", 100.0, {"segments": []})
    embedding, speech_s = store.voice(job.id, "anon:1")
    assert np.allclose(embedding, voice) and speech_s == 12.5
    assert store.list()[0][0].result is None  # lists never carry results


def test_a_cancelled_job_stops_its_worker_and_keeps_no_result(store):
    job = store.create("a.wav", "/x/a.wav", {}, owned=False)
    store.start(job.id, "w")
    assert store.cancel(job.id).status == "cancelled"
    assert not store.update(job.id, progress=50, stage="transcription", message="m")  # the worker learns it here
    assert not store.finish(job.id, {"segments": []})
    assert store.get(job.id).result is None and store.get(job.id).status == "cancelled"
    store.delete(job.id)
    with pytest.raises(JobNotFound):
        store.get(job.id)


def test_a_bounded_queue_and_recovery_after_a_restart(store):
    a = store.create("a.wav", "/a", {}, owned=True, max_queued=2)
    b = store.create("b.wav", "/b", {}, owned=True, max_queued=2)
    assert store.create("c.wav", "/c", {}, owned=True, max_queued=2) is None  # full
    store.start(a.id, "w")  # a runs, then the process dies
    store.start(b.id, "w")
    store.update(b.id, progress=10, stage="decoding", message="m")
    with store._db.write() as conn:  # b has already been interrupted once before
        conn.exec_driver_sql("UPDATE jobs SET runs = 2 WHERE id = ?", (b.id,))
    again, failed = store.recover(max_runs=2)
    assert again == [a.id] and failed == [b.id]
    assert store.get(a.id).status == "queued" and store.get(a.id).progress == 0.0
    assert store.get(b.id).error_code == "interrupted" and store.get(b.id).status == "failed"
    assert store.queued() == [a.id]


def test_the_huey_queue_runs_jobs_on_embedded_workers_and_rebuilds_from_the_table(tmp_path):
    ran: list[str] = []
    done = threading.Event()

    def run(job_id: str) -> None:
        ran.append(job_id)
        if len(ran) == 3:
            done.set()

    queue = JobQueue(make_huey(tmp_path / "q.sqlite3"), run)
    queue.enqueue("j1")
    assert queue.pending() == ["j1"]
    assert queue.reconcile(["j1", "j2", "j3"]) == ["j2", "j3"]  # the table knows jobs the queue lost
    queue.start(1, poll_max_s=0.2)
    try:
        assert done.wait(20), ran
    finally:
        queue.stop(timeout_s=5)
    assert ran == ["j1", "j2", "j3"] and queue.pending() == []


def test_background_work_waits_behind_calls_and_is_not_load():
    order: list[str] = []
    gate, started = threading.Event(), threading.Event()

    def execute(job):
        if job.stream_id == "block":
            started.set()
            gate.wait(10)
        order.append(job.kind)
        return job.kind

    pool = WorkerPool(execute, workers=1, max_queue=1)
    try:
        audio = np.zeros(160, np.float32)
        first = pool.submit(FinalJob(audio=audio, identify=False, language=None, word_timestamps=False,
                                     stream_id="block"))
        assert started.wait(10)  # the one worker is busy now
        background = [pool.submit(AnalysisJob(audio=audio, language=None)) for _ in range(3)]
        assert not pool.busy and pool.depth == 0  # three waiting analysis regions are not load
        final = pool.submit(FinalJob(audio=audio, identify=False, language=None, word_timestamps=False))
        assert pool.busy  # one live job waiting fills max_queue=1
        gate.set()
        for f in [first, final, *background]:
            f.result(10)
        assert order == ["final", "final", "analysis", "analysis", "analysis"]  # the call's final went first
        assert isinstance(pool.submit(PartialJob(audio=audio, language=None)), Future)  # idle again: accepted
    finally:
        gate.set()
        pool.close()


@pytest.fixture
def endpoint():
    from webhook import Webhook

    hook = Webhook()
    yield hook
    hook.stop()


def test_a_final_callback_is_retried_with_back_off_until_delivered(store, endpoint):
    endpoint.statuses, url = [503, 500], endpoint.url
    job = store.create("a.wav", "/a", {}, owned=True, callback_url=url)
    sender = CallbackSender(store, timeout_s=2, retries=3, backoff_s=0.05)
    try:
        assert sender.send(job.id, url, "done", {"id": job.id}, final=True).result(20)
    finally:
        sender.close()
    assert len(endpoint.received) == 3
    record = store.get(job.id)
    assert record.callback_attempts == 3 and record.callback_delivered_at and record.callback_error is None


def test_a_hanging_callback_is_recorded_and_does_not_block(store, endpoint):
    endpoint.hang_s, url = 3.0, endpoint.url
    job = store.create("a.wav", "/a", {}, owned=True, callback_url=url)
    sender = CallbackSender(store, timeout_s=0.5, retries=1, backoff_s=0.05)
    try:
        started = time.monotonic()
        pending = sender.send(job.id, url, "done", {"id": job.id}, final=True)
        assert time.monotonic() - started < 0.2  # queued, not waited for
        assert pending.result(20) is False
    finally:
        sender.close()
    record = store.get(job.id)
    assert record.callback_delivered_at is None and "Timeout" in record.callback_error
    assert record.callback_attempts >= 2
