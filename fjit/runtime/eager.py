"""Eager execution: the trace at the bottom of every stack, and how it runs each primitive.

An ordinary primitive runs its NumPy reference (`impl`).  Calls and control flow run
compiled, on the configured backend:
  * `jit`/`checkpoint` calls (and `custom_jvp`/`custom_vjp` calls, registered by
    fjit.custom_derivatives): their Program's executable;
  * a `cond` equation (bound directly, or met by the reference backend): the taken
    branch's executable (an eager `lax.cond` call runs its chosen branch op by op);
  * `scan`/`while`: one Program holding the whole loop, so the loop is native; on the
    reference backend (whose executable would come back here), a Python loop over the body's
    executable.
The reference backend runs the control flow inside its Programs with the same runners
(`run_control`), so there is one implementation of the host-driven loops.

Operands on a device other than the CPU (fjit/devices.py) run there instead: each primitive
becomes a one-equation Program built by that device's backend, and its results stay on the
device (fjit/runtime/placement.py decides where and moves operands).
"""
from __future__ import annotations

import numpy as np

from .. import core
from ..array import Array, concrete_operand
from ..config import config
from ..devices import CPU
from ..core import Eqn, Program, ShapedArray, Trace, Tracer, Var, escaped_tracer_error
from ..lax.call import checkpoint_p, jit_p
from ..lax.cond import cond_p
from ..lax.loops import scan_p
from ..lax.while_loop import while_p
from ..limits import check_fits_in_memory
from . import placement
from .backend import executable_for
from .sharing import NotData, params_key, shared


class EvalTrace(Trace):
    """Runs each primitive right away on concrete arrays."""

    evaluates_eagerly = True

    def __init__(self):
        super().__init__(None)

    def describe(self):
        return "in eager evaluation"

    def process_primitive(self, primitive, args, params):
        values, avals, arrays = [], [], []
        for x in args:
            if type(x) is not Array:
                if isinstance(x, Tracer):
                    raise escaped_tracer_error(x)
                x = concrete_operand(x, primitive.name)
            arrays.append(x)
            if x._pending is None:   # computed, on the CPU
                values.append(x._buffer)
            elif x._device is CPU:
                values.append(x._value)
            else:
                return _run_on_device(primitive, arrays + _operands(args[len(arrays):]),
                                      params)
            avals.append(x.aval)
        out_avals = _abstract_eval(primitive, avals, params)
        runner = _runners.get(primitive)
        with np.errstate(all="ignore"):  # like XLA: inf/nan results, no warnings
            if runner is not None:
                outs = runner(values, params, config.backend)
            else:
                outs = primitive.impl(*values, **params)
        if primitive.multiple_results:
            return [_wrap(primitive, o, a) for o, a in zip(outs, out_avals)]
        return _wrap(primitive, outs, out_avals)


_avals_cache: dict = {}


def _abstract_eval(primitive, avals, params):
    """primitive.abstract_eval, memoized on (primitive, operand types, params): an eager
    op on the same types (a loop in user code) skips the shape and dtype rules.  Params
    are hashable by construction; errors are never cached.  Not for higher-order
    primitives: eager control flow traces a new sub-Program per call, so their entries
    would never hit and would keep thousands of dead Programs alive (slow garbage
    collections)."""
    if any(isinstance(v, Program) or (type(v) is tuple and v and isinstance(v[0], Program))
           for v in params.values()):
        return primitive.abstract_eval(*avals, **params)
    try:
        key = (primitive, tuple(avals), tuple(params.items()), config.enable_x64)
        out = _avals_cache.get(key)
    except TypeError:   # an unhashable param: no memo
        return primitive.abstract_eval(*avals, **params)
    if out is None:
        out = primitive.abstract_eval(*avals, **params)
        for aval in (out if isinstance(out, (list, tuple)) else (out,)):
            # before NumPy starts filling it (a result it can allocate, overcommitted)
            check_fits_in_memory(aval.shape, aval.dtype, primitive.name)
        if len(_avals_cache) > 4096:
            _avals_cache.clear()
        _avals_cache[key] = out
    return out


def _operands(args):
    for x in args:
        if isinstance(x, Tracer):
            raise escaped_tracer_error(x)
    return [x if type(x) is Array else concrete_operand(x) for x in args]


def _run_on_device(primitive, arrays, params):
    """One primitive on the device its operands live on, compiled by that device's backend
    as a one-equation Program (a call primitive runs its own Program)."""
    device = placement.common_device(arrays, primitive.name)
    buffers = [placement.buffer_on(device, x) for x in arrays]
    avals = tuple(x.aval for x in arrays)
    out_avals = _abstract_eval(primitive, avals, params)
    backend = device.backend()
    if _runners.get(primitive) is run_call:
        program = params["program"]
    else:
        program = _one_equation_program(primitive, avals, params)
    outs = executable_for(program, backend)(buffers)
    if primitive.multiple_results:
        return [Array(o, a, device) for o, a in zip(outs, out_avals)]
    return Array(outs[0], out_avals, device)


def _wrap(primitive, value, aval) -> Array:
    if type(value) is not np.ndarray:
        value = np.asarray(value)
    if value.shape != aval.shape or value.dtype != aval.dtype:
        raise AssertionError(  # a bug in fjit, never the user's fault
            f"internal error: {primitive.name} produced {value.dtype}{list(value.shape)}, "
            f"its abstract evaluation said {aval.str_short()}")
    return Array(value, aval)


# --- calls and control flow -------------------------------------------------------------------

def run_call(values, params, backend):
    """A call primitive (params hold its `program`): the Program's executable."""
    return executable_for(params["program"], backend)(list(values))


def _run_cond(values, params, backend):
    index, values = values[0], values[1:]
    branches = params["branches"]
    k = min(max(int(index), 0), len(branches) - 1)
    return executable_for(shared(branches[k]), backend)(list(values))


def _run_scan(values, params, backend):
    whole = _run_as_program(scan_p, values, params, backend)
    if whole is not None:
        return whole
    program, num_consts, num_carry = params["program"], params["num_consts"], params["num_carry"]
    length, reverse = params["length"], params["reverse"]
    body = executable_for(program, backend)
    consts = [np.asarray(v) for v in values[:num_consts]]
    carry = [np.asarray(v) for v in values[num_consts:num_consts + num_carry]]
    xs = [np.asarray(v) for v in values[num_consts + num_carry:]]
    ys = [np.empty((length,) + a.shape, a.dtype) for a in program.out_avals[num_carry:]]
    for it in range(length):
        i = length - 1 - it if reverse else it
        outs = body(consts + carry + [x[i] for x in xs])
        carry = [np.asarray(c) for c in outs[:num_carry]]
        for y, value in zip(ys, outs[num_carry:]):
            y[i] = value
    return carry + ys


def _run_while(values, params, backend):
    whole = _run_as_program(while_p, values, params, backend)
    if whole is not None:   # one native loop
        return whole
    nc, nb = params["cond_nconsts"], params["body_nconsts"]
    cond_consts, body_consts = list(values[:nc]), list(values[nc:nc + nb])
    carry = list(values[nc + nb:])
    test = executable_for(params["cond_program"], backend)
    step = executable_for(params["body_program"], backend)
    while bool(test(cond_consts + carry)[0]):
        carry = step(body_consts + carry)
    return carry


def _run_as_program(primitive, values, params, backend):
    """Run one loop equation as a Program of its own on `backend`, so an eager scan or while
    loop is one native loop rather than a Python loop over native bodies.  None on the
    reference backend (whose executable would call back here)."""
    if backend == "reference":
        return None
    avals = tuple(ShapedArray(np.shape(v), np.asarray(v).dtype) for v in values)
    program = _one_equation_program(primitive, avals, params)
    return executable_for(program, backend)(list(values))


_programs_cache: dict = {}


def _one_equation_program(primitive, avals, params) -> Program:
    """A Program of one equation applying `primitive` to operands of types `avals`.
    With sub-Programs (control flow) it is cached on the first of them and shared with equal
    Programs from earlier traces (runtime/sharing.py), so a second eager loop retraces its
    body but compiles nothing; otherwise it is memoized on the operand types and params."""
    def build():
        invars = [Var(a) for a in avals]
        outs = primitive.abstract_eval(*avals, **params)
        outvars = [Var(a) for a in (outs if primitive.multiple_results else [outs])]
        return Program(invars, [], [], [Eqn(primitive, invars, params, outvars)], outvars,
                       params.get("name") or primitive.name)
    sub = next((p for v in params.values()
                for p in (v if type(v) is tuple else (v,)) if isinstance(p, Program)), None)
    if sub is not None:
        key = ("as_program", primitive.name, avals, tuple(sorted(params.items())))
        return shared(sub.cached(key, build))
    try:
        key = (primitive, tuple((a.shape, a.dtype, a.weak_type) for a in avals),
               params_key(params))
    except NotData:   # a param that is not plain data: built each time
        return build()
    program = _programs_cache.get(key)
    if program is None:
        if len(_programs_cache) > 1024:
            _programs_cache.clear()
        program = _programs_cache[key] = build()
    return program


_runners = {jit_p: run_call, checkpoint_p: run_call, cond_p: _run_cond, scan_p: _run_scan,
            while_p: _run_while}


def register_runner(primitive, runner):
    """Run `primitive` eagerly (and in the reference backend) with
    `runner(values, params, backend) -> outputs` instead of its `impl`."""
    _runners[primitive] = runner


def run_control(primitive, backend):
    """The runner of `primitive` bound to `backend`, as `fn(*values, **params)`; None for a
    primitive its `impl` runs."""
    runner = _runners.get(primitive)
    if runner is None:
        return None
    return lambda *values, **params: runner(values, params, backend)


core.install_root_trace(EvalTrace)
