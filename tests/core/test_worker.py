"""The background worker (:mod:`diffmorph.worker`): order, bounded queue, errors on the caller's thread."""

from __future__ import annotations

import threading

import pytest

from diffmorph.worker import Worker


def test_items_are_handled_in_order_on_another_thread():
    seen, threads = [], set()
    worker = Worker(lambda item: (seen.append(item), threads.add(threading.get_ident())), 2, "test")
    for k in range(50):
        worker.put(k)
    worker.finish()
    assert seen == list(range(50))
    assert threads and threading.get_ident() not in threads


def test_the_queue_is_bounded():
    release = threading.Event()
    worker = Worker(lambda item: release.wait(), 3, "test")
    assert worker.maxsize == 3
    for k in range(4):  # one being handled, three waiting
        worker.put(k)
    assert worker._queue.full()
    release.set()
    worker.finish()


def test_the_first_error_is_raised_by_put_and_finish_and_stops_the_work():
    seen = []

    def handle(item):
        if item == 2:
            raise OSError("disk full")
        seen.append(item)

    worker = Worker(handle, 1, "test")
    with pytest.raises(OSError, match="disk full"):
        for k in range(100):
            worker.put(k)
    with pytest.raises(OSError, match="disk full"):
        worker.finish()
    assert seen == [0, 1]


def test_stop_drops_the_queue_and_ends_the_thread():
    seen, release = [], threading.Event()
    worker = Worker(lambda item: (release.wait(), seen.append(item)), 5, "test")
    for k in range(5):
        worker.put(k)
    release.set()
    worker.stop()
    assert not worker._thread.is_alive()
    assert len(seen) < 5
