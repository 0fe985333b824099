"""The oracle: a fuzz program is run eagerly (fjit without jit: the NumPy reference
implementations) and under `jit` on every backend, in each mode; every target must agree
with eager or raise the same type of error eager raises."""
from __future__ import annotations

import dataclasses
import re
import traceback

import numpy as np

from . import harness
from .noise import rounding_noise
from .expr import FuzzProgram, as_function, op_names


@dataclasses.dataclass
class Failure:
    mode: str
    target: str
    kind: str         # "crash" | "mismatch" | "error-divergence" | "hang"
    detail: str       # the exception type, or what differs
    message: str      # the first line of the error, or the differing values
    trace: str = ""   # the innermost frames of the traceback

    def signature(self):
        """What makes two failures 'the same bug' (for dedup and for shrinking)."""
        if self.kind == "mismatch":
            return (self.mode, self.target, self.kind, self.detail)
        return (self.mode, self.target, self.kind, self.detail, _normalize(self.message))

    def describe(self):
        return f"[{self.mode} on {self.target}] {self.kind}: {self.detail}: {self.message}"


def _normalize(message):
    """An error message without the parts that vary between programs (numbers, shapes,
    names of Vars), so one bug gives one signature."""
    m = re.sub(r"<[^<>]*>", "<>", message)
    m = re.sub(r"\[[^\[\]]*\]", "[]", m)
    m = re.sub(r"\d+", "N", m)
    return m[:80]


def compiled_backends():
    """Every registered jit backend except the reference interpreter."""
    from ..runtime.backend import available_backends
    return [b for b in available_backends() if b != "reference"]


def float_argnums(prog: FuzzProgram):
    return tuple(k for k, (_, v) in enumerate(prog.inputs)
                 if v.dtype.kind == "f" or v.dtype.name == "bfloat16")


def mode_args(prog: FuzzProgram, mode):
    """The arguments a mode passes: the inputs, or for the vmap modes a batch of each."""
    values = prog.arg_values()
    if mode in ("vmap", "jit_vmap_grad"):
        return [harness.batch(v, batch_size(prog)) for v in values]
    return values


def batch_size(prog):
    return 1 + sum(len(n) for n, _ in prog.inputs) % 3


def coverage(prog: FuzzProgram):
    names = []
    for _, e in prog.stmts:
        names += op_names(e)
    for _, v in prog.inputs:
        names.append(f"dtype:{v.dtype.name}")
        if 0 in v.shape:
            names.append("shape:size0")
    return names


def _short_trace(exc):
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return "".join(traceback.format_list(frames))


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def check(prog: FuzzProgram, modes=harness.MODES, targets=None):
    """The failures of `prog` (an empty list when every target agrees with eager)."""
    import fjit
    targets = list(targets) if targets is not None else ["reference"] + compiled_backends()
    f = as_function(prog)
    argnums = float_argnums(prog)
    saved = (fjit.config.backend, fjit.config.enable_x64)
    failures = []
    try:
        fjit.config.update("enable_x64", prog.x64)
        forward = None
        for mode in modes:
            if mode in ("grad", "jit_vmap_grad"):
                if not argnums:
                    continue
                if forward is None:
                    forward = _outcome(f, "forward", prog.arg_values(), argnums, "eager")
                if isinstance(forward, BaseException) or not any(
                        np.asarray(o).dtype.kind == "f" or np.asarray(o).dtype.name == "bfloat16"
                        for o in forward):
                    continue
            args = mode_args(prog, mode)
            expected = _outcome(f, mode, args, argnums, "eager")
            mode_targets = list(targets)
            if mode in ("vmap", "jit_vmap_grad") and len(args) and len(args[0]):
                mode_targets.insert(0, "eager_loop")
            for target in mode_targets:
                got = _outcome(f, mode, args, argnums, target)
                failure = _judge(mode, target, expected, got)
                if failure is not None and failure.detail in ("value", "nan") and \
                        _within_sensitivity(expected, got, _disturbed(f, mode, args, argnums)):
                    failure = None
                if failure is not None:
                    failures.append(failure)
    finally:
        fjit.config.update("backend", saved[0])
        fjit.config.update("enable_x64", saved[1])
    return failures


def _outcome(f, mode, args, argnums, target):
    try:
        out = harness.run(f, mode, args, argnums, target)
        leaves = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(np.asarray(o) for o in leaves)
    except Exception as exc:  # noqa: BLE001 -- every error is an outcome to compare
        return exc


# --- numerically sensitive programs -------------------------------------------------------
# Two correct programs differ in the last bits: sums in another order, a vectorised libm an
# ulp from NumPy's, float16 rounded once instead of after each op.  A program that then
# cancels and amplifies (remainder by a dot product near zero, 1/x), or hits a discontinuity
# (pow of a negative base at a near-integer exponent, a float-to-int cast), turns that into
# a large difference, a NaN or another integer.  A mismatch counts only where it exceeds
# what eager itself does when disturbed the same way: float inputs moved a few ulps, or
# libm and 16-bit results moved a few ulps (noise.rounding_noise).

PERTURB_ULPS = 4
SENSITIVITY_FACTOR = 4
NOISE_SEEDS = (1, 2, 3)


def _perturbed(args):
    rng = np.random.default_rng(0)
    out = []
    for a in args:
        a = np.asarray(a)
        if a.dtype.kind == "f" or a.dtype.name == "bfloat16":
            eps = float(np.finfo(np.float32 if a.dtype.name == "bfloat16" else a.dtype).eps)
            if a.dtype.name == "bfloat16":
                eps = 2.0 ** -7
            step = 1 + PERTURB_ULPS * eps * rng.choice([-1.0, 1.0], size=a.shape)
            a = (a.astype(np.float64) * step).astype(a.dtype)
        out.append(a)
    return out


def _disturbed(f, mode, args, argnums):
    """Eager's outcomes under each disturbance: perturbed inputs, then rounding noise."""
    runs = [_outcome(f, mode, _perturbed(args), argnums, "eager")]
    for seed in NOISE_SEEDS:
        with rounding_noise(seed):
            runs.append(_outcome(f, mode, args, argnums, "eager"))
    return runs


def _within_sensitivity(expected, got, disturbed):
    """Every element where `got` differs from `expected` is one that a disturbed eager run
    (`disturbed`: a list of outcomes) also moves: a finite value by at least
    1/SENSITIVITY_FACTOR of got's difference, a NaN appearing or vanishing as in got, an
    infinity or integer by at least as much.  Structure must match exactly."""
    if isinstance(got, BaseException) or len(got) != len(expected):
        return False
    runs = [d for d in disturbed if not isinstance(d, BaseException) and len(d) == len(expected)]
    for k, (e, g) in enumerate(zip(expected, got)):
        if e.shape != g.shape or e.dtype != g.dtype:
            return False
        off = harness.mismatched(e, g)
        if not off.any():
            continue
        moves = [r[k][off].astype(np.float64) for r in runs
                 if r[k].shape == e.shape and r[k].dtype == e.dtype]
        factor = 1 if e.dtype.kind in "biu" else SENSITIVITY_FACTOR
        if not moves or not np.all(_explained(e[off].astype(np.float64),
                                              g[off].astype(np.float64), moves, factor)):
            return False
    return True


def _explained(e, g, moves, factor):
    """Per element: does some disturbed value `p` in `moves` account for g's departure (a
    finite one when it moved at least 1/factor as far)?"""
    with np.errstate(invalid="ignore"):
        change = np.abs(g - e)
        explained = np.zeros(e.shape, bool)
        for p in moves:
            nan_flip = np.isnan(g) != np.isnan(e)
            explained |= nan_flip & (np.isnan(p) == np.isnan(g))
            moved = np.where(np.isnan(p) != np.isnan(e), np.inf, np.abs(p - e))
            finite = np.isfinite(e) & np.isfinite(g)
            explained |= finite & (change <= factor * moved)
            explained |= ~nan_flip & ~finite & (p == g)
    return explained


def _judge(mode, target, expected, got):
    e_err, g_err = isinstance(expected, BaseException), isinstance(got, BaseException)
    if e_err and g_err:
        if type(expected) is type(got):
            return None
        return Failure(mode, target, "crash", type(got).__name__,
                       f"{_first_line(got)} (eager raised {type(expected).__name__}: "
                       f"{_first_line(expected)})", _short_trace(got))
    if g_err:
        return Failure(mode, target, "crash", type(got).__name__, _first_line(got),
                       _short_trace(got))
    if e_err:
        return Failure(mode, target, "error-divergence", type(expected).__name__,
                       f"eager raised {_first_line(expected)!r}; {target} returned a value")
    diff = harness.compare(expected, got)
    if diff is None:
        return None
    return Failure(mode, target, "mismatch", diff.split(":")[0], diff)
