"""User-facing autodiff: jvp, linearize, vjp, grad, value_and_grad, jacfwd, jacrev, hessian,
checkpoint.  The work happens in fjit.interpreters.ad."""
from __future__ import annotations

import functools

import numpy as np

from . import lax
from . import numpy as jnp
from .api_vmap import vmap
from .array import Array, aval_of, device_put
from .core import eval_program
from .devices import default_device
from .interpreters import ad
from .interpreters.partial_eval import DebugInfo, trace_to_program
from .lax.call import checkpoint_p, dots_saveable, everything_saveable, nothing_saveable
from .tree_util import tree_flatten, tree_map, tree_structure, tree_unflatten


def _flat_fun(fun, in_tree, out_box):
    """fun over a flat argument list, returning a flat list; records the output tree."""
    def flat(*leaves):
        args = tree_unflatten(in_tree, leaves)
        out = fun(*args)
        flat_out, out_tree = tree_flatten(out)
        out_box.append(out_tree)
        return flat_out
    return flat


def _split_aux(fun, has_aux, aux_box):
    if not has_aux:
        return fun

    def f(*args):
        out = fun(*args)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise TypeError("has_aux=True requires the function to return a pair "
                            "(output, auxiliary data)")
        aux_box.append(out[1])
        return out[0]
    return f


def _check_tangent(primal, tangent, k):
    p_aval = aval_of(primal)
    if not ad.is_differentiable(p_aval):
        return ad.Zero(ad.tangent_aval(p_aval))  # float0 or zeros: no tangent either way
    t_aval = aval_of(tangent)
    if t_aval.shape != p_aval.shape or t_aval.dtype != p_aval.dtype:
        raise TypeError(f"jvp: tangent {k} has type {t_aval.str_short()}, its primal is "
                        f"{p_aval.str_short()}; they must have the same shape and dtype")
    return tangent


def _tangent_out(primal, tangent):
    if isinstance(tangent, ad.Zero):
        aval = aval_of(primal)
        if ad.is_differentiable(aval):
            return _beside(primal, ad.zeros_like_aval(ad.tangent_aval(aval)))
        return ad.float0_zeros(aval.shape)
    return _beside(primal, tangent)


def _beside(primal, value):
    """`value` (a tangent or cotangent of `primal`) on `primal`'s device: one computed from
    default-device values only (the seed, a zero) would otherwise land there."""
    if type(primal) is Array and type(value) is Array and primal.device != value.device \
            and value.device == default_device():
        return device_put(value, primal.device)
    return value


def jvp(fun, primals, tangents, has_aux=False):
    """(fun(*primals), the directional derivative along `tangents`)."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples or lists of arguments")
    if len(primals) != len(tangents):
        raise TypeError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    flat_primals, in_tree = tree_flatten(tuple(primals))
    try:
        flat_tangents = in_tree.flatten_up_to(tuple(tangents))
    except ValueError:
        raise TypeError(f"jvp: primal and tangent trees differ: {in_tree} vs "
                        f"{tree_structure(tuple(tangents))}") from None
    flat_tangents = [_check_tangent(p, t, k) for k, (p, t) in
                     enumerate(zip(flat_primals, flat_tangents))]
    out_box, aux_box = [], []
    flat = _flat_fun(_split_aux(fun, has_aux, aux_box), in_tree, out_box)
    outs, out_tangents = ad.jvp_flat(flat, flat_primals, flat_tangents)
    out_tree = out_box[0]
    result = (tree_unflatten(out_tree, outs),
              tree_unflatten(out_tree, [_tangent_out(p, t) for p, t in zip(outs, out_tangents)]))
    return result + (ad.lower_finished(aux_box[0]),) if has_aux else result


def linearize(fun, *primals, has_aux=False):
    """(fun(*primals), f_jvp) where f_jvp(*tangents) evaluates the linear map (without
    re-running the primal computation)."""
    flat_primals, in_tree = tree_flatten(primals)
    out_box, aux_box = [], []
    flat = _flat_fun(_split_aux(fun, has_aux, aux_box), in_tree, out_box)
    outs, linear, out_nonzero, in_diff = ad.linearize_flat(flat, flat_primals)
    out_tree = out_box[0]

    def f_jvp(*tangents):
        flat_tangents = in_tree.flatten_up_to(tangents)
        args = [t for t, d in zip(flat_tangents, in_diff) if d]
        values = iter(eval_program(linear, *args))
        return tree_unflatten(out_tree, [next(values) if nz else _tangent_out(p, ad.Zero(None))
                                         for p, nz in zip(outs, out_nonzero)])

    result = (tree_unflatten(out_tree, outs), f_jvp)
    return result + (ad.lower_finished(aux_box[0]),) if has_aux else result


def vjp(fun, *primals, has_aux=False):
    """(fun(*primals), vjp_fn): vjp_fn(cotangent) returns one cotangent per primal."""
    flat_primals, in_tree = tree_flatten(primals)
    out_box, aux_box = [], []
    flat = _flat_fun(_split_aux(fun, has_aux, aux_box), in_tree, out_box)
    outs, linear, out_nonzero, in_diff = ad.linearize_flat(flat, flat_primals)
    out_tree = out_box[0]
    out_avals = [aval_of(o) for o in outs]

    def vjp_fn(cotangent):
        try:
            flat_cts = out_tree.flatten_up_to(cotangent)
        except ValueError:
            raise TypeError(f"vjp: the cotangent's structure {tree_structure(cotangent)} "
                            f"differs from the output's {out_tree}") from None
        cts = []
        for ct, aval, nz in zip(flat_cts, out_avals, out_nonzero):
            if not nz:
                continue
            ct_aval = aval_of(ct)
            if ct_aval.shape != aval.shape:
                raise TypeError(f"vjp: cotangent of shape {ct_aval.shape} for an output of "
                                f"shape {aval.shape}")
            if ct_aval.dtype != aval.dtype:
                ct = lax.convert_element_type(ct, aval.dtype)
            cts.append(ct)
        in_cts = ad.backward_pass(linear, [True] * len(linear.invars), [None] * len(
            linear.invars), cts)
        in_cts = iter(in_cts)
        results = []
        for p, d in zip(flat_primals, in_diff):
            aval = aval_of(p)
            if d:
                ct = next(in_cts)
                if isinstance(ct, ad.Zero):
                    ct = ad.zeros_like_aval(ad.tangent_aval(aval))
                elif aval_of(ct).weak_type != aval.weak_type:  # the primal's type, as in JAX
                    ct = lax.convert_element_type(ct, aval.dtype, weak_type=aval.weak_type)
                results.append(_beside(p, ct))
            else:
                results.append(ad.float0_zeros(aval.shape))
        return tree_unflatten(in_tree, results)

    result = (tree_unflatten(out_tree, outs), vjp_fn)
    return result + (ad.lower_finished(aux_box[0]),) if has_aux else result


def _argnums_tuple(argnums, nargs, name):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise ValueError(f"{name}: argnums must not be empty")
    for n in nums:
        if not -nargs <= n < nargs:
            raise TypeError(f"{name}: argnums {argnums} out of range for {nargs} positional "
                            "arguments")
    return tuple(n % nargs for n in nums)


def _partial_over(fun, args, nums, kwargs=None):
    """fun as a function of args[n] for n in nums only (the others fixed)."""
    def partial_fun(*dyn):
        full = list(args)
        for n, value in zip(nums, dyn):
            full[n] = value
        return fun(*full, **(kwargs or {}))
    return partial_fun


def _check_differentiable_inputs(name, args, allow_int):
    for leaf in tree_flatten(args)[0]:
        aval = aval_of(leaf)
        if not ad.is_differentiable(aval) and not allow_int:
            raise TypeError(f"{name} requires real-valued (floating point) inputs, but got "
                            f"{aval.dtype.name}. Use vjp, or pass allow_int=True to get "
                            "float0 cotangents for integer inputs.")


def value_and_grad(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False,
                   reduce_axes=()):
    """A function returning (fun(*args), gradient of fun with respect to args[argnums])."""
    if holomorphic:
        raise TypeError("value_and_grad: holomorphic=True needs complex numbers, which fjit "
                        "does not support yet")
    name = f"grad({getattr(fun, '__name__', 'fun')})"

    @functools.wraps(fun)
    def value_and_grad_f(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), name)
        diff_args = tuple(args[n] for n in nums)
        _check_differentiable_inputs(name, diff_args, allow_int)

        result = vjp(_partial_over(fun, args, nums, kwargs), *diff_args, has_aux=has_aux)
        out, pullback = result[0], result[1]
        out_aval = aval_of(out) if not isinstance(out, (tuple, list, dict)) else None
        if out_aval is None or out_aval.shape != ():
            shape = out_aval.shape if out_aval is not None else type(out).__name__
            raise TypeError(f"{name}: Gradient only defined for scalar-output functions. "
                            f"Output had shape: {shape}")
        if not ad.is_differentiable(out_aval):
            raise TypeError(f"{name} requires a real-valued (floating point) output, got "
                            f"{out_aval.dtype.name}")
        grads = pullback(lax.convert_element_type(1, out_aval.dtype,
                                                  weak_type=out_aval.weak_type))
        g = grads[0] if isinstance(argnums, int) else grads
        if has_aux:
            return (out, result[2]), g
        return out, g

    return value_and_grad_f


def grad(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False, reduce_axes=()):
    """The gradient of a scalar-valued `fun` with respect to args[argnums]."""
    value_and_grad_f = value_and_grad(fun, argnums, has_aux, holomorphic, allow_int)

    @functools.wraps(fun)
    def grad_f(*args, **kwargs):
        value, g = value_and_grad_f(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return grad_f


# --- Jacobians --------------------------------------------------------------------------------

def _std_basis(leaves):
    """Rows of the identity over all leaves: a list (per leaf) of arrays shaped
    (total size,) + leaf shape."""
    sizes = [int(np.prod(aval_of(x).shape, dtype=np.int64)) for x in leaves]
    total = sum(sizes)
    out, offset = [], 0
    for x, n in zip(leaves, sizes):
        aval = aval_of(x)
        eye = jnp.eye(total, n, -offset, dtype=aval.dtype)
        out.append(jnp.reshape(eye, (total,) + aval.shape))
        offset += n
    return out, sizes


def _split_jacobian(out, leading_sizes, leading_shapes, out_first):
    """A (total, ...) or (..., total) array as per-leaf blocks of shape leaf shape."""
    blocks, offset = [], 0
    for n, shape in zip(leading_sizes, leading_shapes):
        if out_first:  # out.shape = out_shape + (total,)
            piece = out[..., offset:offset + n]
            blocks.append(jnp.reshape(piece, piece.shape[:-1] + shape))
        else:
            piece = out[offset:offset + n]
            blocks.append(jnp.reshape(piece, shape + piece.shape[1:]))
        offset += n
    return blocks


def jacfwd(fun, argnums=0, has_aux=False, holomorphic=False):
    """The Jacobian by forward mode: one jvp per input element, batched with vmap.
    Output leaves have shape out.shape + in.shape."""
    @functools.wraps(fun)
    def jac(*args):
        nums = _argnums_tuple(argnums, len(args), "jacfwd")
        diff = tuple(args[n] for n in nums)
        _check_differentiable_inputs("jacfwd", diff, False)
        in_leaves, in_tree = tree_flatten(diff)
        basis, sizes = _std_basis(in_leaves)

        partial_fun = _partial_over(fun, args, nums)

        def pushfwd(*tangent_leaves):
            tangents = tree_unflatten(in_tree, tangent_leaves)
            res = jvp(partial_fun, diff, tangents, has_aux=has_aux)
            return (res[1], res[2]) if has_aux else res[1]

        batched = vmap(pushfwd, out_axes=(-1, None) if has_aux else -1)(*basis)
        tangents, aux = batched if has_aux else (batched, None)
        in_shapes = [aval_of(x).shape for x in in_leaves]

        def per_output(t):
            blocks = _split_jacobian(t, sizes, in_shapes, out_first=True)
            tree = tree_unflatten(in_tree, blocks)
            return tree[0] if isinstance(argnums, int) else tree

        result = tree_map(per_output, tangents)
        return (result, aux) if has_aux else result

    return jac


def jacrev(fun, argnums=0, has_aux=False, holomorphic=False, allow_int=False):
    """The Jacobian by reverse mode: one vjp per output element, batched with vmap.
    Output leaves have shape out.shape + in.shape."""
    @functools.wraps(fun)
    def jac(*args):
        nums = _argnums_tuple(argnums, len(args), "jacrev")
        diff = tuple(args[n] for n in nums)
        _check_differentiable_inputs("jacrev", diff, allow_int)

        result = vjp(_partial_over(fun, args, nums), *diff, has_aux=has_aux)
        out, pullback = result[0], result[1]
        out_leaves, out_tree = tree_flatten(out)
        basis, sizes = _std_basis(out_leaves)
        cts = vmap(lambda *leaves: pullback(tree_unflatten(out_tree, leaves)))(*basis)
        # cts: per input leaf, (total outputs,) + input shape.  Regroup as the output tree of
        # input trees, each leaf of shape output shape + input shape (JAX's layout).
        ct_leaves, in_tree = tree_flatten(cts)
        out_shapes = [aval_of(x).shape for x in out_leaves]
        blocks = [_split_jacobian(c, sizes, out_shapes, out_first=False) for c in ct_leaves]
        per_output = []
        for k in range(len(out_leaves)):
            tree = tree_unflatten(in_tree, [b[k] for b in blocks])
            per_output.append(tree[0] if isinstance(argnums, int) else tree)
        jac_tree = tree_unflatten(out_tree, per_output)
        return (jac_tree, result[2]) if has_aux else jac_tree

    return jac


jacobian = jacrev


def hessian(fun, argnums=0, has_aux=False, holomorphic=False):
    """Second derivatives: jacfwd of jacrev."""
    return jacfwd(jacrev(fun, argnums, has_aux), argnums, has_aux)


# --- checkpoint ------------------------------------------------------------------------------

class checkpoint_policies:
    """Which intermediate values `checkpoint` may save for the backward pass."""
    nothing_saveable = staticmethod(nothing_saveable)
    everything_saveable = staticmethod(everything_saveable)
    dots_saveable = staticmethod(dots_saveable)


def checkpoint(fun, *, prevent_cse=True, policy=None, static_argnums=()):
    """Rematerialisation: `fun`'s intermediate values are recomputed in the backward pass
    instead of being stored (except what `policy` allows to be saved)."""
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    def remat_f(*args, **kwargs):
        dyn = [a for k, a in enumerate(args) if k not in static]
        leaves, in_tree = tree_flatten((dyn, kwargs))
        out_box = []

        def flat(*flat_leaves):
            d, kw = tree_unflatten(in_tree, flat_leaves)
            d_iter = iter(d)
            full = [a if k in static else next(d_iter) for k, a in enumerate(args)]
            out = fun(*full, **kw)
            flat_out, out_tree = tree_flatten(out)
            out_box.append(out_tree)
            return flat_out

        program, _ = trace_to_program(flat, [aval_of(x) for x in leaves],
                                      DebugInfo("checkpoint", fun))
        closed, consts = program.closure_convert()
        outs = checkpoint_p.bind(*consts, *leaves, program=closed,
                                 name=getattr(fun, "__name__", "fun"), policy=policy)
        return tree_unflatten(out_box[0], outs)

    return remat_f


remat = checkpoint



