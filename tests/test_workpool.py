"""The shared worker pool: priorities, optional work, back-pressure."""

from __future__ import annotations

import threading
import time

import pytest

from server.workpool import WorkerPool


def test_finals_run_before_queued_partials_and_optional_work_is_refused_when_busy():
    pool = WorkerPool(workers=1, max_queue=8)
    gate = threading.Event()
    order = []
    first = pool.submit(gate.wait, 5)
    time.sleep(0.05)
    assert pool.submit_optional(order.append, "partial") is None  # no idle worker
    futs = [pool.submit(order.append, f"final{i}") for i in range(3)]
    assert pool.depth == 3
    gate.set()
    for f in [first, *futs]:
        f.result(5)
    assert order == ["final0", "final1", "final2"]
    ok = pool.submit_optional(order.append, "partial")
    assert ok is not None
    ok.result(5)
    assert order[-1] == "partial"
    pool.close()


def test_busy_and_blocking_submit():
    pool = WorkerPool(workers=1, max_queue=2)
    gate = threading.Event()
    pool.submit(gate.wait, 5)
    time.sleep(0.05)
    pool.submit(lambda: None)
    pool.submit(lambda: None)
    assert pool.busy
    done = []
    t = threading.Thread(target=lambda: done.append(pool.submit(lambda: 42, block=True)))
    t.start()
    time.sleep(0.1)
    assert not done  # waiting for room
    gate.set()
    t.join(5)
    assert done[0].result(5) == 42
    pool.close()


def test_exceptions_reach_the_caller():
    pool = WorkerPool(workers=1)
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(5)
    assert pool.submit(lambda: "still alive").result(5) == "still alive"
    pool.close()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)
