"""The shared worker pool: typed jobs, priority classes, optional work, back-pressure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from server.compute.jobs import Job, Priority
from server.compute.workpool import WorkerPool


@dataclass(eq=False)
class Final(Job):
    """A required job that runs ``fn`` (test stand-in for FinalJob)."""

    priority: ClassVar[Priority] = Priority.FINAL
    fn: Callable[[], Any]


@dataclass(eq=False)
class Enroll(Final):
    priority: ClassVar[Priority] = Priority.ENROLL


@dataclass(eq=False)
class Partial(Final):
    priority: ClassVar[Priority] = Priority.PARTIAL
    optional: ClassVar[bool] = True


def pool(workers=2, max_queue=32, observer=None) -> WorkerPool:
    return WorkerPool(lambda job: job.fn(), workers, max_queue, observer=observer)


def test_finals_run_before_queued_partials_and_optional_work_is_refused_when_busy():
    p = pool(workers=1, max_queue=8)
    gate = threading.Event()
    order = []
    first = p.submit(Final(lambda: gate.wait(5)))
    time.sleep(0.05)
    assert p.submit(Partial(lambda: order.append("partial"))) is None  # no idle worker
    futs = [p.submit(Final(lambda i=i: order.append(f"final{i}"))) for i in range(3)]
    assert p.depth == 3
    gate.set()
    for f in [first, *futs]:
        f.result(5)
    assert order == ["final0", "final1", "final2"]
    ok = p.submit(Partial(lambda: order.append("partial")))
    assert ok is not None
    ok.result(5)
    assert order[-1] == "partial"
    p.close()


def test_priority_classes_order_waiting_work():
    p = pool(workers=1, max_queue=8)
    gate = threading.Event()
    order = []
    p.submit(Final(lambda: gate.wait(5)))
    time.sleep(0.05)
    futs = [p.submit(Enroll(lambda: order.append("enroll"))), p.submit(Final(lambda: order.append("final")))]
    gate.set()
    for f in futs:
        f.result(5)
    assert order == ["final", "enroll"]
    p.close()


def test_busy_and_blocking_submit():
    p = pool(workers=1, max_queue=2)
    gate = threading.Event()
    p.submit(Final(lambda: gate.wait(5)))
    time.sleep(0.05)
    p.submit(Final(lambda: None))
    p.submit(Final(lambda: None))
    assert p.busy
    done = []
    t = threading.Thread(target=lambda: done.append(p.submit(Final(lambda: 42), block=True)))
    t.start()
    time.sleep(0.1)
    assert not done  # waiting for room
    gate.set()
    t.join(5)
    assert done[0].result(5) == 42
    p.close()


def test_exceptions_reach_the_caller():
    p = pool(workers=1)
    with pytest.raises(ZeroDivisionError):
        p.submit(Final(lambda: 1 / 0)).result(5)
    assert p.submit(Final(lambda: "still alive")).result(5) == "still alive"
    p.close()
    with pytest.raises(RuntimeError):
        p.submit(Final(lambda: None))


def test_observer_sees_each_job_with_its_tags_and_outcome():
    seen = []

    class Observer:
        def job_finished(self, job, started, ended, ok):
            seen.append((job.kind, job.stream_id, job.utterance_id, ok, ended >= started))

    p = pool(workers=1, observer=Observer())
    p.submit(Final(lambda: None, stream_id="s1", utterance_id=4)).result(5)
    with pytest.raises(ValueError):
        p.submit(Enroll(lambda: int("x"), stream_id="s1")).result(5)
    p.close()
    assert seen == [("final", "s1", 4, True, True), ("enroll", "s1", None, False, True)]
