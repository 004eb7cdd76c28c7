"""fnpgrade.utils.threaded_map and fnpgrade.config.frame_threads: per-frame models on threads, results in order."""

import threading
import time

import numpy as np
import pytest

from fnpgrade.config import MAX_FRAME_THREADS, frame_threads
from fnpgrade.utils import threaded_map


def test_results_come_in_the_order_of_the_items_whatever_finishes_first():
    def slow_for_evens(worker, item):
        time.sleep(0.02 if item % 2 == 0 else 0.0)
        return item * 10

    assert list(threaded_map(slow_for_evens, range(12), ["a", "b", "c"])) == [i * 10 for i in range(12)]


def test_no_worker_is_used_by_two_calls_at_once_and_every_worker_is_used():
    busy, used, clash = set(), set(), []
    lock = threading.Lock()

    def work(worker, item):
        with lock:
            if worker in busy:
                clash.append((worker, item))
            busy.add(worker)
            used.add(worker)
        time.sleep(0.005)
        with lock:
            busy.discard(worker)
        return item

    assert list(threaded_map(work, range(40), ["m0", "m1"])) == list(range(40))
    assert not clash and used == {"m0", "m1"}


def test_items_are_drawn_only_a_few_ahead_of_the_results_taken():
    drawn = []

    def items():
        for i in range(100):
            drawn.append(i)
            yield i

    results = threaded_map(lambda worker, item: item, items(), ["a", "b"], max_pending=3)
    assert next(results) == 0
    assert len(drawn) <= 4  # a long video's frames are never all read ahead
    assert list(results) == list(range(1, 100))


def test_an_error_in_a_call_reaches_the_caller():
    def fail_on_five(worker, item):
        if item == 5:
            raise ValueError("frame 5 is broken")
        return item

    with pytest.raises(ValueError, match="frame 5 is broken"):
        list(threaded_map(fail_on_five, range(10), ["a", "b"]))


def test_one_worker_runs_on_the_calling_thread():
    threads = list(threaded_map(lambda worker, item: threading.get_ident(), range(3), ["only"]))
    assert threads == [threading.get_ident()] * 3


def test_frame_threads_default_and_environment(monkeypatch):
    import joblib

    monkeypatch.delenv("FNPGRADE_FRAME_THREADS", raising=False)
    for cpus, expected in ((1, 1), (2, 2), (3, 3), (64, MAX_FRAME_THREADS)):
        monkeypatch.setattr(joblib, "cpu_count", lambda cpus=cpus: cpus)  # the CPUs this process may use
        assert frame_threads() == expected
    monkeypatch.setenv("FNPGRADE_FRAME_THREADS", "3")
    assert frame_threads() == 3
    monkeypatch.setenv("FNPGRADE_FRAME_THREADS", "0")
    assert frame_threads() == 1
    monkeypatch.setenv("FNPGRADE_FRAME_THREADS", "two")
    with pytest.raises(ValueError, match=r"FNPGRADE_FRAME_THREADS must be a whole number.*'two'"):
        frame_threads()
