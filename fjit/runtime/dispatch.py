"""Asynchronous dispatch: a jitted call may return before its native code has run.

Each device has one worker thread running submitted calls in order (FIFO), so a call may
read the outputs of an earlier call without waiting for them.  The caller gets its output
Arrays at once, each holding a `Pending`; reading a value (or `block_until_ready`) waits for
it.  An error raised by the call is kept and raised by every wait on it, and by calls that
read its outputs, naming the Program that failed.

Small calls are not worth a thread hand-off (tens of microseconds): an executable says
whether its work estimate is large enough (`asynchronous`).  The whole mechanism is on only
with the `async_dispatch` option: on the 2-core machine it was measured on, the overlap
benchmark (bench/async_overlap.py) gained 18% with one OpenMP thread and nothing with two
(the step's threads and the host's work share the cores).
"""
from __future__ import annotations

import atexit
import os
import queue
import threading


MAX_IN_FLIGHT = 2   # calls queued or running per device: more only holds more buffers
_worker_threads: set = set()


class Pending:
    """The completion of one submitted call."""

    __slots__ = ("_done", "error", "name")

    def __init__(self, name: str):
        self._done = threading.Event()
        self.error = None
        self.name = name

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self):
        if not self._done.is_set() and threading.current_thread() in _worker_threads:
            # a finalizer run by the worker's garbage collection: the call it waits for is
            # queued behind the one running, so waiting would never end
            raise RuntimeError(f"fjit: the device worker cannot wait for {self.name}")
        self._done.wait()
        if self.error is not None:
            raise RuntimeError(f"fjit: the asynchronous call of {self.name} failed: "
                               f"{type(self.error).__name__}: {self.error}") from self.error


class _Worker:
    """One thread running calls for one device, in submission order.  At most MAX_IN_FLIGHT
    calls wait or run at a time: the host blocks in `submit` beyond that, instead of
    allocating the outputs of ever more calls ahead."""

    def __init__(self, name):
        self._queue = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        _worker_threads.add(self._thread)
        self._thread.start()

    def _run(self):
        while True:
            task = self._queue.get()
            if task is None:
                return
            fn, pending, after = task
            failed = next((p for p in after if p.error is not None), None)
            try:
                if failed is not None:
                    raise RuntimeError(f"it reads the outputs of {failed.name}, which failed")
                fn()
            except BaseException as e:  # noqa: BLE001 -- kept for the caller's next wait
                pending.error = e
            pending._done.set()
            self._slots.release()
            del task, fn, pending, after   # the call's buffers go now, not at the next call

    def submit(self, fn, name, after=()) -> Pending:
        """Run `fn()` after every call submitted before; `after`: the Pendings of calls whose
        outputs it reads (their errors become its error)."""
        self._slots.acquire()
        pending = Pending(name)
        self._queue.put((fn, pending, tuple(after)))
        return pending

    def drain(self):
        """Wait until every call submitted so far has run."""
        self.submit(lambda: None, "drain").wait()

    def stop(self):
        self.drain()
        self._queue.put(None)
        self._thread.join()


_workers: dict = {}
_lock = threading.Lock()


def worker_for(device) -> _Worker:
    with _lock:
        worker = _workers.get(device)
        if worker is None:
            worker = _workers[device] = _Worker(f"fjit-{device}")
        return worker


def _drain_all():
    for worker in list(_workers.values()):
        worker.drain()


def _stop_all():
    """At exit: finish the queued calls before the interpreter (and the BLAS library's
    threads) shut down under them."""
    while _workers:
        _, worker = _workers.popitem()
        worker.stop()


atexit.register(_stop_all)
# A forked child has the workers' objects but not their threads: drain before forking, and
# let the child start its own.
os.register_at_fork(before=_drain_all, after_in_child=_workers.clear)
