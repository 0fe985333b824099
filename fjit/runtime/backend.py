"""The pluggable execution engine behind `jit`.

A backend turns a closed Program (no constvars) into an executable: a callable from a list of
buffers (one per invar) to a list of buffers (one per outvar), on the device platform it
serves (NumPy arrays on the CPU; fjit/devices.py).  On the CPU `config.backend` picks one;
another platform names its own.  The C and CUDA compilers register themselves here.
"""
from __future__ import annotations

import threading
import warnings
import time

from ..config import config

_factories: dict = {}
_lowerings: dict = {}
_usable: dict = {}   # name -> whether it can run Programs here now (default: yes)


def register_backend(name: str, compile_program, lower=None, usable=None):
    """`compile_program(program) -> executable`; executables are cached on the Program.
    A compiled backend also gives `lower(program) -> compiled form` (plan, kernels, source)
    for `jit(f).lower(...)`, and one that can run only under some condition gives
    `usable() -> bool` (the cuda backend: only with its emulator, until it has a GPU
    runtime); selected when not usable, it raises saying why."""
    _factories[name] = compile_program
    if lower is not None:
        _lowerings[name] = lower
    if usable is not None:
        _usable[name] = usable


def unregister_backend(name: str):
    """Forget `name` (a backend registered for a while, as in a test).  Programs keep the
    executables they already built for it."""
    _factories.pop(name, None)
    _lowerings.pop(name, None)
    _usable.pop(name, None)


def lowering_for(name: str):
    """`name`'s lower(), or, for a backend registered without one (the reference), the
    first registered backend's that has one (the C target's)."""
    if name in _lowerings:
        return _lowerings[name]
    if not _lowerings:
        raise RuntimeError("no compiled backend is registered: jit(f).lower() has nothing "
                           "to show")
    return next(iter(_lowerings.values()))


def available_backends() -> list[str]:
    """The backends that can run Programs here now."""
    return sorted(name for name in _factories if _usable.get(name, lambda: True)())


def executable_for(program, backend: str | None = None):
    """The executable of `program` on `backend` (default: config.backend), built once; in
    check_mode, its checked form (fjit/compiler/checked.py)."""
    name = backend or config.backend
    if config.check_mode:
        return _checked_executable_for(program, name)
    if config.profile:
        return _profiled_executable_for(program, name)
    return _executable_for(program, name)


def _executable_for(program, name: str):
    exe = program.cache.get(name)
    if exe is None:
        factory = _factories.get(name)
        if factory is None:
            raise ValueError(f"unknown fjit backend {name!r}; available: "
                             f"{available_backends()}")
        exe = program.cache[name] = factory(program)
    return exe


def _checked_executable_for(program, name: str):
    """The executable's `checked(program)`: the same native code, run kernel by kernel
    against the reference interpreter."""
    key = (name, "checked")
    exe = program.cache.get(key)
    if exe is None:
        checked = getattr(_executable_for(program, name), "checked", None)
        if checked is None:
            raise NotImplementedError(f"backend {name!r} cannot run in check_mode: its "
                                      "executables have no checked(program)")
        exe = program.cache[key] = checked(program)
    return exe


def _profiled_executable_for(program, name: str):
    """The executable's `profiled(program)` (fjit/runtime/profile.py), or the executable
    itself for a backend that cannot time its kernels (said once)."""
    key = (name, "profiled")
    exe = program.cache.get(key)
    if exe is None:
        base = _executable_for(program, name)
        profiled = getattr(base, "profiled", None)
        if profiled is None:
            if not _unprofiled:
                warnings.warn(f"FJIT_PROFILE: backend {name!r} does not time its kernels; "
                              "its calls are not profiled", RuntimeWarning, stacklevel=4)
                _unprofiled.append(name)
            return base
        exe = program.cache[key] = profiled(program)
        _report_at_exit()
    return exe


_unprofiled: list = []


def _report_at_exit():
    from . import profile
    if not getattr(_report_at_exit, "done", False):
        import atexit
        atexit.register(profile.print_at_exit)
        _report_at_exit.done = True


# Work a backend does on threads of its own that a caller may want finished: the C target's
# optimised builds (tiered compilation).
_background: list = []
_background_lock = threading.Lock()


def note_background_work(thread):
    """Start `thread` and remember it for block_until_compiled()."""
    with _background_lock:
        _background[:] = [t for t in _background if t.is_alive()]
        _background.append(thread)
        thread.start()


def block_until_compiled(timeout: float | None = None) -> bool:
    """Wait until every optimised build started so far has finished (the executables
    running the quick tier have switched); True unless `timeout` seconds passed first.
    Benchmarks call it before timing steady-state steps."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _background_lock:
        threads = list(_background)
    for thread in threads:
        thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            return False
    return True
