"""custom_jvp and custom_vjp: functions with user-written derivative rules.

    custom_jvp_call[name, program, rule] consts args   -- evaluates `program`; under jvp the
        rule's jvp function gives the primal and tangent outputs.
    custom_vjp_call[name, program, rule] consts args   -- evaluates `program`; under jvp the
        rule's fwd runs and the tangents become custom_lin of the residuals, whose transpose
        is the rule's bwd.  custom_lin has no forward evaluation: a custom_vjp function can be
        differentiated in reverse mode only (like JAX).

The rules are small objects holding the user's functions and the pytree structures needed to
call them with flat lists.  Under vmap a rule is replaced by a batched rule that maps the
user's functions with the same machinery (`batch_flat`).
"""
from __future__ import annotations

import functools
import inspect

from . import lax
from .array import aval_of
from .core import Primitive, Tracer, evaluate_reference
from .interpreters import ad, batching
from .interpreters.partial_eval import DebugInfo, trace_to_program
from .runtime import eager
from .tree_util import tree_flatten, tree_structure, tree_unflatten


class _CallPrimitive(Primitive):
    def __init__(self, name):
        super().__init__(name, "custom", multiple_results=True)

    def abstract_eval(self, *avals, program, rule, name):
        return program.out_avals

    def impl(self, *values, program, rule, name):
        return evaluate_reference(program, *values)


custom_jvp_call_p = _CallPrimitive("custom_jvp_call")
custom_vjp_call_p = _CallPrimitive("custom_vjp_call")
eager.register_runner(custom_jvp_call_p, eager.run_call)   # eagerly: compiled, like jit
eager.register_runner(custom_vjp_call_p, eager.run_call)


class _CustomLin(Primitive):
    """The tangent map of a custom_vjp function: linear in its tangents, transposed by bwd."""

    def __init__(self):
        super().__init__("custom_lin", "custom", multiple_results=True)

    def abstract_eval(self, *avals, num_res, rule, res_tree, out_avals, name):
        return [ad.tangent_aval(a) for a in out_avals if ad.is_differentiable(a)]

    def impl(self, *values, **params):
        raise TypeError(f"can't apply forward-mode autodiff (jvp) to the custom_vjp function "
                        f"{params['name']}: it defines only a reverse-mode rule. Use "
                        "grad/vjp, or define it with custom_jvp.")


custom_lin_p = _CustomLin()


# --- shared helpers ---------------------------------------------------------------------------

def _resolve_args(fun, args, kwargs):
    """Positional arguments with keywords and defaults filled in (the rules see them all)."""
    try:
        signature = inspect.signature(fun)
    except (TypeError, ValueError):  # no introspectable signature (a builtin)
        return args
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"{getattr(fun, '__name__', 'fun')}: {err}") from None
    bound.apply_defaults()
    return bound.args



def _split_nondiff(name, args, nondiff_argnums):
    for n in nondiff_argnums:
        if isinstance(args[n], Tracer):
            raise TypeError(f"{name}: nondiff_argnums argument {n} is a traced array; pass "
                            "arrays as regular arguments (nondiff arguments are static)")
    nondiff = tuple(args[n] for n in nondiff_argnums)
    dyn = tuple(a for k, a in enumerate(args) if k not in nondiff_argnums)
    return nondiff, dyn


def _merge(nondiff, dyn, nondiff_argnums):
    """The full argument list from the nondiff (static) and the other arguments."""
    total = len(nondiff) + len(dyn)
    nondiff, dyn = iter(nondiff), iter(dyn)
    return [next(nondiff) if k in nondiff_argnums else next(dyn) for k in range(total)]


def _trace_call(fun, name, nondiff, dyn, nondiff_argnums, purpose):
    leaves, in_tree = tree_flatten(dyn)
    out_box = []

    def flat(*flat_leaves):
        out = fun(*_merge(nondiff, tree_unflatten(in_tree, flat_leaves), nondiff_argnums))
        flat_out, out_tree = tree_flatten(out)
        out_box.append(out_tree)
        return flat_out

    program, _ = trace_to_program(flat, [aval_of(x) for x in leaves], DebugInfo(purpose, fun))
    closed, consts = program.closure_convert()
    return closed, consts, leaves, in_tree, out_box[0]


def _check_outputs(name, what, values, avals):
    for k, (v, want) in enumerate(zip(values, avals)):
        got = aval_of(v)
        if got.shape != want.shape or got.dtype != want.dtype:
            raise TypeError(f"{name}: {what} {k} has type {got.str_short()}, expected "
                            f"{want.str_short()}")


def _no_tangents_for_consts(name, tangents):
    if any(not isinstance(t, ad.Zero) for t in tangents):
        raise TypeError(f"{name} closes over a value that is being differentiated; pass that "
                        "value as an argument of the custom_jvp/custom_vjp function instead")


# --- custom_jvp -------------------------------------------------------------------------------

class _JVPRule:
    """Calls the user's jvp(nondiff..., primals, tangents) with flat lists."""

    def __init__(self, jvp, nondiff, nondiff_argnums, in_tree, out_tree, out_avals, name):
        self.jvp, self.nondiff, self.nondiff_argnums = jvp, nondiff, nondiff_argnums
        self.in_tree, self.out_tree, self.out_avals, self.name = (in_tree, out_tree, out_avals,
                                                                  name)

    def __call__(self, primals, tangents):
        args = tree_unflatten(self.in_tree, primals)
        tans = tree_unflatten(self.in_tree, tangents)
        result = self.jvp(*self.nondiff, tuple(args), tuple(tans))
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"custom_jvp {self.name}: the jvp rule must return a pair "
                            "(primal_out, tangent_out)")
        out, tangent = result
        for what, value in (("primal output", out), ("tangent output", tangent)):
            if tree_structure(value) != self.out_tree:
                raise TypeError(f"custom_jvp {self.name}: the jvp rule's {what} has structure "
                                f"{tree_structure(value)}, the function returns "
                                f"{self.out_tree}")
        outs, touts = tree_flatten(out)[0], tree_flatten(tangent)[0]
        _check_outputs(f"custom_jvp {self.name}", "primal output", outs, self.out_avals)
        _check_outputs(f"custom_jvp {self.name}", "tangent output", touts,
                       [ad.tangent_aval(a) for a in self.out_avals])
        return outs, touts

    def batched(self, dims, axis_size):
        return _BatchedJVPRule(self, dims, axis_size)


class _BatchedJVPRule:
    """A jvp rule mapped over a batch axis: arguments batched at `dims`, outputs at 0."""

    def __init__(self, rule, dims, axis_size):
        self.rule, self.dims, self.axis_size = rule, list(dims), axis_size
        self.name = rule.name

    def __call__(self, primals, tangents):
        n = len(primals)

        def flat(*xs):
            outs, touts = self.rule(list(xs[:n]), list(xs[n:]))
            return outs + touts

        values, out_dims = batching.batch_flat(flat, list(primals) + list(tangents),
                                               self.dims + self.dims, self.axis_size)
        values = [batching.move_batch_dim(v, d, 0, self.axis_size)
                  for v, d in zip(values, out_dims)]
        half = len(values) // 2
        return values[:half], values[half:]

    def batched(self, dims, axis_size):
        return _BatchedJVPRule(self, dims, axis_size)


class custom_jvp:
    """A function with a custom forward-mode derivative (JAX's jax.custom_jvp).

        @fjit.custom_jvp
        def f(x): ...
        @f.defjvp
        def f_jvp(primals, tangents): ...  # returns (f(*primals), tangent_out)

    Reverse mode works too: the jvp rule is linearized and transposed like any function.
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp = None

    def defjvp(self, jvp, symbolic_zeros=False):
        self.jvp = jvp
        return jvp

    def defjvps(self, *jvps):
        """One function per argument: jvp_i(tangent_i, primal_out, *primals) -> its
        contribution to the tangent (None: no dependence on that argument)."""
        def jvp(primals, tangents):
            out = self(*primals)
            total = None
            for fn, t in zip(jvps, tangents):
                if fn is None:
                    continue
                term = fn(t, out, *primals)
                total = term if total is None else total + term
            return out, total if total is not None else out * 0
        self.defjvp(jvp)

    def __call__(self, *args, **kwargs):
        name = getattr(self.fun, "__name__", "fun")
        if self.jvp is None:
            raise AttributeError(f"no JVP defined for the custom_jvp function {name}: use "
                                 "defjvp")
        args = _resolve_args(self.fun, args, kwargs)
        nondiff, dyn = _split_nondiff(f"custom_jvp {name}", args, self.nondiff_argnums)
        program, consts, leaves, in_tree, out_tree = _trace_call(
            self.fun, name, nondiff, dyn, self.nondiff_argnums, "custom_jvp")
        rule = _JVPRule(self.jvp, nondiff, self.nondiff_argnums, in_tree, out_tree,
                        program.out_avals, name)
        outs = custom_jvp_call_p.bind(*consts, *leaves, program=program,
                                      rule=_ConstSplit(rule, len(consts)), name=name)
        return tree_unflatten(out_tree, outs)


class _ConstSplit:
    """A rule for an equation whose first `num_consts` operands are captured constants."""

    def __init__(self, rule, num_consts):
        self.rule, self.num_consts = rule, num_consts
        self.name = rule.name

    def __repr__(self):
        return f"<rule of {self.name}>"


def _custom_jvp_jvp(primals, tangents, program, rule, name):
    n = rule.num_consts
    _no_tangents_for_consts(f"custom_jvp {name}", tangents[:n])
    args = primals[n:]
    tans = [ad.instantiate(t) if ad.is_differentiable(aval_of(p)) else
            ad.float0_zeros(aval_of(p).shape) for p, t in zip(args, tangents[n:])]
    return rule.rule(args, tans)


def _custom_jvp_batch(axis_size, values, dims, program, rule, name):
    n = rule.num_consts
    if any(d is not None for d in dims[:n]):
        raise NotImplementedError(f"vmap of the custom_jvp function {name} that closes over a "
                                  "batched value; pass that value as an argument")
    batched, _ = batching.batch_program(program, dims, axis_size, all_out_at_zero=True)
    new_rule = _ConstSplit(rule.rule.batched(dims[n:], axis_size), n)
    outs = custom_jvp_call_p.bind(*values, program=batched, rule=new_rule, name=name)
    return outs, [0] * len(outs)


# --- custom_vjp -------------------------------------------------------------------------------

class _VJPRule:
    """Calls the user's fwd(*args) and bwd(nondiff..., residuals, cotangents) with flat lists."""

    def __init__(self, fwd, bwd, nondiff, nondiff_argnums, in_tree, out_tree, in_avals,
                 out_avals, name):
        self.fwd, self.bwd = fwd, bwd
        self.nondiff, self.nondiff_argnums = nondiff, nondiff_argnums
        self.in_tree, self.out_tree = in_tree, out_tree
        self.in_avals, self.out_avals, self.name = in_avals, out_avals, name

    def forward(self, args):
        """(flat outputs, flat residuals, residual tree)."""
        result = self.fwd(*_merge(self.nondiff, tree_unflatten(self.in_tree, args),
                                  self.nondiff_argnums))
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"custom_vjp {self.name}: fwd must return a pair (output, "
                            "residuals)")
        out, res = result
        if tree_structure(out) != self.out_tree:
            raise TypeError(f"custom_vjp {self.name}: fwd's output has structure "
                            f"{tree_structure(out)}, the function returns {self.out_tree}")
        outs = tree_flatten(out)[0]
        _check_outputs(f"custom_vjp {self.name}", "fwd output", outs, self.out_avals)
        res_leaves, res_tree = tree_flatten(res)
        return outs, res_leaves, res_tree

    def backward(self, residuals, res_tree, cts):
        """Cotangents of the differentiable argument leaves (flat, zeros where bwd gave
        None)."""
        res = tree_unflatten(res_tree, residuals)
        ct = tree_unflatten(self.out_tree, cts)
        result = self.bwd(*self.nondiff, res, ct)
        if not isinstance(result, (tuple, list)):
            raise TypeError(f"custom_vjp {self.name}: bwd must return a tuple with one "
                            "cotangent per (non-nondiff) argument")
        args_tree = self.in_tree
        n_args = len(args_tree.children)
        if len(result) != n_args:
            raise TypeError(f"custom_vjp {self.name}: bwd returned {len(result)} cotangents "
                            f"for {n_args} arguments")
        out = []
        for k, (child, r) in enumerate(zip(args_tree.children, result)):
            leaves_avals = self._child_avals(k)
            if r is None:
                out.extend(ad.zeros_like_aval(a) if ad.is_differentiable(a) else None
                           for a in leaves_avals)
                continue
            try:
                r_leaves = child.flatten_up_to(r)
            except ValueError:
                raise TypeError(f"custom_vjp {self.name}: bwd's cotangent {k} has structure "
                                f"{tree_structure(r)}, its argument has {child}") from None
            for leaf, aval in zip(r_leaves, leaves_avals):
                if not ad.is_differentiable(aval):
                    out.append(None)
                    continue
                got = aval_of(leaf)
                if got.shape != aval.shape:
                    raise TypeError(f"custom_vjp {self.name}: bwd's cotangent {k} has shape "
                                    f"{got.shape}, its argument {aval.shape}")
                if got.dtype != aval.dtype:
                    leaf = lax.convert_element_type(leaf, aval.dtype)
                out.append(leaf)
        return out

    def _child_avals(self, k):
        start = sum(c.num_leaves for c in self.in_tree.children[:k])
        return self.in_avals[start:start + self.in_tree.children[k].num_leaves]

    def batched(self, dims, axis_size):
        return _BatchedVJPRule(self, dims, axis_size)


class _BatchedVJPRule:
    """fwd and bwd mapped over a batch axis; everything they return is batched at 0, and
    cotangents of unbatched arguments are summed over the batch."""

    def __init__(self, rule, dims, axis_size):
        self.rule, self.dims, self.axis_size = rule, list(dims), axis_size
        self.name = rule.name
        self.in_avals = rule.in_avals
        self.out_avals = rule.out_avals

    def forward(self, args):
        boxes = []

        def flat(*xs):
            outs, res, res_tree = self.rule.forward(list(xs))
            boxes.append((len(outs), res_tree))
            return outs + res

        values, dims = batching.batch_flat(flat, list(args), self.dims, self.axis_size)
        values = [batching.move_batch_dim(v, d, 0, self.axis_size) for v, d in zip(values, dims)]
        n_out, res_tree = boxes[0]
        return values[:n_out], values[n_out:], res_tree

    def backward(self, residuals, res_tree, cts):
        n_res = len(residuals)
        shapes = []

        def flat(*xs):
            grads = self.rule.backward(list(xs[:n_res]), res_tree, list(xs[n_res:]))
            shapes.append([g is None for g in grads])
            return [g for g in grads if g is not None]

        values, out_dims = batching.batch_flat(flat, list(residuals) + list(cts),
                                               [0] * (n_res + len(cts)), self.axis_size)
        out, values = [], iter(zip(values, out_dims))
        for is_none, dim in zip(shapes[0], self.dims):
            if is_none:
                out.append(None)
                continue
            value, vdim = next(values)
            if dim is None:  # an unbatched argument: its cotangent sums over the batch
                value = lax.reduce_sum(batching.move_batch_dim(value, vdim, 0, self.axis_size),
                                       (0,)) if vdim is not None else value
            else:
                value = batching.move_batch_dim(value, vdim, dim, self.axis_size)
            out.append(value)
        return out

    def batched(self, dims, axis_size):
        return _BatchedVJPRule(self, dims, axis_size)


class custom_vjp:
    """A function with a custom reverse-mode derivative (JAX's jax.custom_vjp).

        @fjit.custom_vjp
        def f(x): ...
        def f_fwd(x): return f(x), residuals
        def f_bwd(residuals, g): return (cotangent_of_x,)
        f.defvjp(f_fwd, f_bwd)
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd, symbolic_zeros=False):
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args, **kwargs):
        name = getattr(self.fun, "__name__", "fun")
        if self.fwd is None:
            raise AttributeError(f"no VJP defined for the custom_vjp function {name}: use "
                                 "defvjp")
        args = _resolve_args(self.fun, args, kwargs)
        nondiff, dyn = _split_nondiff(f"custom_vjp {name}", args, self.nondiff_argnums)
        program, consts, leaves, in_tree, out_tree = _trace_call(
            self.fun, name, nondiff, dyn, self.nondiff_argnums, "custom_vjp")
        rule = _VJPRule(self.fwd, self.bwd, nondiff, self.nondiff_argnums, in_tree, out_tree,
                        [aval_of(x) for x in leaves], program.out_avals, name)
        outs = custom_vjp_call_p.bind(*consts, *leaves, program=program,
                                      rule=_ConstSplit(rule, len(consts)), name=name)
        return tree_unflatten(out_tree, outs)


def _custom_vjp_jvp(primals, tangents, program, rule, name):
    n = rule.num_consts
    _no_tangents_for_consts(f"custom_vjp {name}", tangents[:n])
    args = primals[n:]
    outs, residuals, res_tree = rule.rule.forward(args)
    diff = [ad.is_differentiable(aval_of(a)) for a in args]
    lin_in = [ad.instantiate(t) for t, d in zip(tangents[n:], diff) if d]
    lin_out = custom_lin_p.bind(*residuals, *lin_in, num_res=len(residuals), rule=rule.rule,
                                res_tree=res_tree, out_avals=tuple(program.out_avals),
                                name=name)
    lin_iter = iter(lin_out)
    tangents_out = [next(lin_iter) if ad.is_differentiable(a) else ad.Zero(None)
                    for a in program.out_avals]
    return outs, tangents_out


def _custom_lin_transpose(cts, *args, num_res, rule, res_tree, out_avals, name):
    residuals = args[:num_res]
    if any(ad.is_linear(r) for r in residuals):
        raise TypeError(f"custom_vjp {name}: residuals cannot be linear")
    cts_iter = iter(cts)
    full_cts = []
    for aval in out_avals:
        if ad.is_differentiable(aval):
            ct = next(cts_iter)
            full_cts.append(ad.zeros_like_aval(ad.tangent_aval(aval)) if isinstance(ct, ad.Zero)
                            else ct)
        else:
            full_cts.append(ad.float0_zeros(aval.shape))
    grads = rule.backward(list(residuals), res_tree, full_cts)
    diff_grads = [g for g, a in zip(grads, rule.in_avals) if ad.is_differentiable(a)]
    return [None] * num_res + diff_grads


def _custom_vjp_batch(axis_size, values, dims, program, rule, name):
    n = rule.num_consts
    if any(d is not None for d in dims[:n]):
        raise NotImplementedError(f"vmap of the custom_vjp function {name} that closes over a "
                                  "batched value; pass that value as an argument")
    batched, _ = batching.batch_program(program, dims, axis_size, all_out_at_zero=True)
    new_rule = _ConstSplit(rule.rule.batched(dims[n:], axis_size), n)
    outs = custom_vjp_call_p.bind(*values, program=batched, rule=new_rule, name=name)
    return outs, [0] * len(outs)


ad.jvp_rules[custom_jvp_call_p] = _custom_jvp_jvp
batching.batching_rules[custom_jvp_call_p] = _custom_jvp_batch
ad.jvp_rules[custom_vjp_call_p] = _custom_vjp_jvp
batching.batching_rules[custom_vjp_call_p] = _custom_vjp_batch
ad.transpose_rules[custom_lin_p] = _custom_lin_transpose
batching.batching_rules[custom_lin_p] = lambda axis_size, values, dims, **params: \
    custom_lin_p.impl(**params)  # forward evaluation of custom_lin is the same error
