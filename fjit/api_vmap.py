"""`fjit.vmap`: vectorise a function over an axis of its arguments."""
from __future__ import annotations

import functools

from .array import aval_of
from .interpreters.batching import batch_flat, move_batch_dim
from .tree_util import tree_flatten, tree_unflatten


def broadcast_prefix(prefix, tree, what: str, of: str = "the arguments"):
    """One entry of `prefix` (a pytree prefix of `tree`, with None as a leaf) per leaf of
    `tree`, as JAX's in_axes/out_axes work."""
    prefix_leaves, prefix_def = tree_flatten(prefix, is_leaf=lambda x: x is None)
    try:
        subtrees = prefix_def.flatten_up_to(tree)
    except ValueError as err:
        raise ValueError(f"vmap {what} must be a pytree prefix of {of}: {err}") from None
    out = []
    for axis, sub in zip(prefix_leaves, subtrees):
        out.extend([axis] * len(tree_flatten(sub)[0]))
    return out


def _check_axis(axis, what):
    if axis is not None and (not isinstance(axis, int) or isinstance(axis, bool)):
        raise TypeError(f"vmap {what} must be ints or None, got {axis!r}")
    return axis


def vmap(fun, in_axes=0, out_axes=0, axis_name=None, axis_size=None, spmd_axis_name=None):
    """Map `fun` over the axis `in_axes` of its arguments, returning results stacked along
    `out_axes`.  in_axes/out_axes are ints, None (not mapped) or pytrees of those that are
    prefixes of the arguments/results.  Keyword arguments are mapped over axis 0."""
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)

    @functools.wraps(fun)
    def batched(*args, **kwargs):
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(f"vmap in_axes has {len(in_axes)} entries for {len(args)} "
                             f"positional arguments of {getattr(fun, '__name__', 'fun')}")
        leaves, in_tree = tree_flatten((args, kwargs))
        args_axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        axes = broadcast_prefix((args_axes, 0), (args, kwargs), "in_axes")
        dims = []
        sizes = {}
        for k, (leaf, axis) in enumerate(zip(leaves, axes)):
            axis = _check_axis(axis, "in_axes")
            if axis is None:
                dims.append(None)
                continue
            ndim = aval_of(leaf).ndim
            if not -ndim <= axis < ndim:
                raise ValueError(f"vmap in_axes {axis} is out of range for an argument of "
                                 f"rank {ndim}")
            axis %= ndim
            dims.append(axis)
            sizes.setdefault(aval_of(leaf).shape[axis], []).append(k)
        if len(sizes) > 1:
            described = ", ".join(f"size {n} for argument leaves {ks}" for n, ks in
                                  sizes.items())
            raise ValueError(f"vmap got inconsistent sizes for the mapped axis: {described}")
        if sizes:
            size = next(iter(sizes))
            if axis_size is not None and axis_size != size:
                raise ValueError(f"vmap axis_size={axis_size} but the mapped axes have size "
                                 f"{size}")
        elif axis_size is None:
            raise ValueError("vmap needs at least one mapped argument, or axis_size")
        else:
            size = axis_size

        out_tree_box = []

        def flat_fun(*flat):
            a, kw = tree_unflatten(in_tree, flat)
            out = fun(*a, **kw)
            flat_out, out_tree = tree_flatten(out)
            out_tree_box.append((out, out_tree))
            return flat_out

        outs, out_dims = batch_flat(flat_fun, leaves, dims, size)
        _, out_tree = out_tree_box[0]
        shape_only = tree_unflatten(out_tree, ["*"] * out_tree.num_leaves)  # for messages
        requested = broadcast_prefix(out_axes, shape_only, "out_axes", "the results")
        moved = []
        for out, dim, want in zip(outs, out_dims, requested):
            want = _check_axis(want, "out_axes")
            if want is not None:
                ndim = aval_of(out).ndim + (0 if dim is not None else 1)
                if not -ndim <= want < ndim:
                    raise ValueError(f"vmap out_axes {want} is out of range for an output of "
                                     f"rank {ndim} (including the mapped axis)")
                want %= ndim
            moved.append(move_batch_dim(out, dim, want, size))
        return tree_unflatten(out_tree, moved)

    return batched
