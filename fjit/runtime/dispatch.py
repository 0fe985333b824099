"""Asynchronous dispatch: a jitted call may return before its native code has run.

Each device has one worker thread running submitted calls in order (FIFO), so a call may
read the outputs of an earlier call without waiting for them.  The caller gets its output
Arrays at once, each holding a `Pending`; reading a value (or `block_until_ready`) waits for
it.  An error raised by the call is kept and raised by every wait on it, and by calls that
read its outputs, naming the Program that failed.

Small calls are not worth a thread hand-off (tens of microseconds): an executable says
whether its work estimate is large enough (`asynchronous`).  The whole mechanism is on only
with the `async_dispatch` option: on a 2-core machine the worker's OpenMP threads and the
host's own work compete for the cores, and the overlap benchmark (bench/async_overlap.py)
got slower, not faster.
"""
from __future__ import annotations

import queue
import threading


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
        self._done.wait()
        if self.error is not None:
            raise RuntimeError(f"fjit: the asynchronous call of {self.name} failed: "
                               f"{type(self.error).__name__}: {self.error}") from self.error


class _Worker:
    """One thread running calls for one device, in submission order."""

    def __init__(self, name):
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            fn, pending, after = self._queue.get()
            failed = next((p for p in after if p.error is not None), None)
            try:
                if failed is not None:
                    raise RuntimeError(f"it reads the outputs of {failed.name}, which failed")
                fn()
            except BaseException as e:  # noqa: BLE001 -- kept for the caller's next wait
                pending.error = e
            pending._done.set()

    def submit(self, fn, name, after=()) -> Pending:
        """Run `fn()` after every call submitted before; `after`: the Pendings of calls whose
        outputs it reads (their errors become its error)."""
        pending = Pending(name)
        self._queue.put((fn, pending, tuple(after)))
        return pending


_workers: dict = {}
_lock = threading.Lock()


def worker_for(device) -> _Worker:
    with _lock:
        worker = _workers.get(device)
        if worker is None:
            worker = _workers[device] = _Worker(f"fjit-{device}")
        return worker
