"""The target-neutral half of compiling a Program: flatten -> contraction rewrites -> fusion
plan -> scheduled loop nests (loop passes included).  A target renders the result in its
own syntax and builds it (fjit/compiler/targets/)."""
from __future__ import annotations

import itertools
import logging

from ..config import config
from ..core import Program
from ..errors import FjitMemoryError, source_info_override
from ..limits import MEMORY_LIMIT
from . import contractions, dynamic, workspace
from .flatten import cse, flatten
from .fusion import plan_program
from .schedule import Options, first_source, fuse_rows, schedule_kernel

_log = logging.getLogger("fjit.compile")
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("fjit: %(message)s"))


def compile_log() -> logging.Logger:
    """The "fjit.compile" logger, printing to stderr while the `log` option names
    "compile" (checked at each use, so config.update("log", "compile") takes effect)."""
    wanted = "compile" in config.log
    if wanted and _handler not in _log.handlers:
        _log.addHandler(_handler)
        _log.setLevel(logging.INFO)
    elif not wanted and _handler in _log.handlers:
        _log.removeHandler(_handler)
        _log.setLevel(logging.NOTSET)
    return _log

NATIVE_CONTROL = {"scan", "while", "cond"}  # compiled as loops and switches in the kernels


class NotNative(Exception):
    """The Program holds primitives the compiler does not generate code for (yet)."""


def _hosted_primitives(flat):
    names = set()
    for e in flat.eqns:
        if e.primitive.family == "control":
            if e.primitive.name in NATIVE_CONTROL:
                for value in e.params.values():
                    for sub in value if isinstance(value, tuple) else (value,):
                        if isinstance(sub, Program):
                            names |= _hosted_primitives(flatten(sub))
            else:
                names.add(e.primitive.name)
    return names


def lower_program(program: Program, target, options: Options | None = None):
    """(flat Program, fusion plan, scheduled kernels) for `program` on `target` (a
    fjit.compiler.target.Target); raises NotNative when part of it must run as a host loop."""
    options = options or Options.from_string(config.passes)
    flat = flatten(program, merge=False)
    for other in program.sized_like():   # jit saw this function at other sizes: keep those
        generic = dynamic.generalise(flat, flatten(other, merge=False))  # out of the code
        if generic is not None:   # (dynamic.py); lined up before duplicates are merged,
            flat = generic        # as which are duplicates can depend on the sizes (a batch
            break                 # of 8 equal to a width of 8)
    flat = cse(flat)
    hosted = sorted(_hosted_primitives(flat))
    if hosted:
        raise NotNative(f"{', '.join(hosted)} run as host loops over compiled bodies")
    if target.gemm:
        flat = contractions.canonicalize(flat, target)
    plan = plan_program(flat, target)
    scheduled = []
    counter = itertools.count(1)  # statement names unique in the whole Program
    for k, kernel in enumerate(plan.kernels):
        sk = schedule_kernel(kernel, f"kernel_{k}", plan, options, target, counter)
        sk.comment = ", ".join(e.primitive.name for e in kernel.eqns)
        sk.source = first_source(kernel.eqns)
        sk.members = [k]
        scheduled.append(sk)
    return flat, plan, fuse_rows(scheduled, options)


def check_fits_in_memory(program, flat, plan, scheduled=None):
    """Refuse, before building, a Program whose outputs and temporaries together need more
    than this machine's memory: allocating them would succeed (memory is overcommitted) and
    the kernels would then page for minutes or be killed.  The error names the largest
    buffer and the user's line that made it.  With the `scheduled` kernels, temporaries are
    counted as the workspace holds them (sharing bytes where their lives do not overlap)."""
    allocated = [b for b in plan.buffers if b.role in ("output", "temp")]
    if scheduled is None:
        total = sum(b.size * b.dtype.itemsize for b in allocated)
    else:
        total = workspace.layout(plan, scheduled, 64)[1] + sum(
            b.size * b.dtype.itemsize for b in allocated if b.role == "output")
    if total <= MEMORY_LIMIT:
        return
    largest = max(allocated, key=lambda b: b.size * b.dtype.itemsize)
    where = next((e.source_info for e in flat.eqns
                  if any(getattr(v, "aval", None) is not None and v.aval.shape == largest.shape
                         and v.aval.dtype == largest.dtype for v in e.outvars)), None)
    with source_info_override(where):
        raise FjitMemoryError(
            f"jit({program.name or 'program'}): its outputs and temporaries need "
            f"{total} bytes ({total / 2**30:.1f} GiB), more than this machine's memory "
            f"({MEMORY_LIMIT} bytes); the largest is {largest.role} "
            f"{largest.dtype.name}{list(largest.shape)} of "
            f"{largest.size * largest.dtype.itemsize} bytes")
