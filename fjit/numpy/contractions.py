"""matmul, dot, tensordot, einsum and friends as broadcast * mul -> reduce_sum.

Every contraction is planned as einsum over labelled axes: each operand is broadcast into a
common iteration space, the operands are multiplied, and the contracted labels are summed
away.  The Program shows exactly that; backends recognise the pattern and call a GEMM.
The functions are `jit(inline=True)`: traced into the caller under a transformation, and run
as one Program (so one fused contraction) when called eagerly.
"""
from __future__ import annotations

import string

import numpy as np

from .. import dtypes, lax
from ..api import jit
from ..lax import indexexpr as ix
from ._util import asarray, broadcast_shapes, promote_dtypes
from .ufuncs import multiply
from ..errors import FjitShapeError, FjitTypeError, FjitValueError


# --- the labelled-contraction core ------------------------------------------------------------

def _merge_orders(a_labels, b_labels):
    """A label order containing both sequences as subsequences (they agree on shared labels)."""
    shared = [l for l in a_labels if l in b_labels]
    out, i, j = [], 0, 0
    for s in shared:
        while a_labels[i] != s:
            out.append(a_labels[i])
            i += 1
        while b_labels[j] != s:
            out.append(b_labels[j])
            j += 1
        out.append(s)
        i += 1
        j += 1
    return out + list(a_labels[i:]) + list(b_labels[j:])


def _transpose_to(x, labels, new_labels):
    if list(labels) == list(new_labels):
        return x
    return lax.transpose(x, [labels.index(l) for l in new_labels])


def _sum_labels(x, labels, drop):
    """Sum the axes whose labels are in `drop`."""
    axes = tuple(k for k, l in enumerate(labels) if l in drop)
    if not axes:
        return x, list(labels)
    if all(x.shape[a] == 1 for a in axes):   # a sum of one element is that element (-0.0
        return lax.squeeze(x, axes), [l for l in labels if l not in drop]   # included)
    reduce = lax.reduce_or if dtypes.is_bool(x.dtype) else lax.reduce_sum
    return reduce(x, axes), [l for l in labels if l not in drop]


def _contract_pair(a, a_labels, b, b_labels, keep, opname):
    """Multiply a and b over the union of their labels; sum labels not in `keep`."""
    shared = [l for l in a_labels if l in b_labels]
    if [l for l in b_labels if l in shared] != shared:  # orders disagree: transpose b
        new_b = shared + [l for l in b_labels if l not in shared]
        b, b_labels = _transpose_to(b, b_labels, new_b), new_b
    space = _merge_orders(list(a_labels), list(b_labels))
    sizes = {}
    for x, labels in ((a, a_labels), (b, b_labels)):
        for l, n in zip(labels, x.shape):
            if sizes.setdefault(l, n) != n:
                raise FjitShapeError(f"{opname}: axis {l!r} has size {sizes[l]} in one operand "
                                     f"and {n} in the other (shapes {a.shape} and {b.shape})")
    shape = tuple(sizes[l] for l in space)
    a_full = lax.broadcast_in_dim(a, shape, tuple(space.index(l) for l in a_labels))
    b_full = lax.broadcast_in_dim(b, shape, tuple(space.index(l) for l in b_labels))
    product = lax.bitwise_and(a_full, b_full) if dtypes.is_bool(a.dtype) else \
        lax.mul(a_full, b_full)
    return _sum_labels(product, space, set(space) - set(keep))


def contract(operands, labels, out_labels, opname="einsum"):
    """einsum over already-labelled operands (labels: one sequence of labels per operand);
    `opname` is the user's function, for errors."""
    operands = promote_dtypes(*operands)
    labels = [list(l) for l in labels]
    out_labels = list(out_labels)
    # Sum labels that occur in one operand only and not in the output.
    for k, (x, ls) in enumerate(zip(operands, labels)):
        elsewhere = set(out_labels).union(*(set(o) for j, o in enumerate(labels) if j != k))
        operands[k], labels[k] = _sum_labels(x, ls, set(ls) - elsewhere)
    x, x_labels = operands[0], labels[0]
    for k in range(1, len(operands)):
        keep = set(out_labels).union(*(set(o) for o in labels[k + 1:]))
        x, x_labels = _contract_pair(x, x_labels, operands[k], labels[k], keep, opname)
    x, x_labels = _sum_labels(x, x_labels, set(x_labels) - set(out_labels))
    return _transpose_to(x, x_labels, out_labels)


# --- einsum -----------------------------------------------------------------------------------

def _parse_einsum(subscripts, shapes):
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        inputs, output = subscripts.split("->")
    else:
        inputs, output = subscripts, None
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise FjitValueError(f"einsum: {len(terms)} operand subscripts {subscripts!r} for "
                             f"{len(shapes)} operands of shapes {', '.join(map(str, shapes))}")
    used = set(subscripts)
    spare = [c for c in string.ascii_letters if c not in used]
    ell_rank = 0
    for term, shape in zip(terms, shapes):
        if "..." in term:
            ell_rank = max(ell_rank, len(shape) - (len(term) - 3))
    ell_labels = spare[:ell_rank]
    parsed = []
    for term, shape in zip(terms, shapes):
        if "..." in term:
            n = len(shape) - (len(term) - 3)
            term = term.replace("...", "".join(ell_labels[ell_rank - n:]))
        if len(term) != len(shape):
            raise FjitValueError(f"einsum: subscripts {term!r} do not match an operand of shape "
                                 f"{tuple(shape)} (rank {len(shape)})")
        parsed.append(list(term))
    if output is None:
        counts = {}
        for term in parsed:
            for l in term:
                counts[l] = counts.get(l, 0) + 1
        output = "".join(ell_labels) + "".join(sorted(l for l, c in counts.items()
                                                      if c == 1 and l not in ell_labels))
    else:
        output = output.replace("...", "".join(ell_labels))
    return parsed, list(output), ell_labels


def _collapse_repeats(x, labels):
    """Operand subscripts like 'ii': take the diagonal so every label occurs once."""
    unique = list(dict.fromkeys(labels))
    if len(unique) == len(labels):
        return x, labels
    sizes = {}
    for l, n in zip(labels, x.shape):
        if sizes.setdefault(l, n) != n:
            raise FjitValueError(f"einsum: repeated label {l!r} with sizes {sizes[l]} and {n}")
    index = [ix.idx(unique.index(l)) for l in labels]
    return lax.reindex(x, tuple(sizes[l] for l in unique), index), unique


def _broadcast_ellipsis(operands, labels, ell_labels):
    """Broadcast the ellipsis axes of all operands to one shape (size-1 axes stretch)."""
    sizes = {}
    for x, ls in zip(operands, labels):
        for l, n in zip(ls, x.shape):
            if l in ell_labels and n != 1:
                if sizes.setdefault(l, n) != n:
                    raise FjitValueError(f"einsum: broadcast axes have sizes {sizes[l]} and {n}")
    out = []
    for x, ls in zip(operands, labels):
        shape = tuple(sizes.get(l, n) if l in ell_labels else n for l, n in zip(ls, x.shape))
        out.append(lax.broadcast_in_dim(x, shape, tuple(range(x.ndim))) if shape != x.shape
                   else x)
    return out


@jit(static_argnums=(0,), inline=True)
def _einsum(subscripts, operands):
    parsed, output, ell_labels = _parse_einsum(subscripts, [x.shape for x in operands])
    collapsed = [_collapse_repeats(x, ls) for x, ls in zip(operands, parsed)]
    operands = [c[0] for c in collapsed]
    labels = [c[1] for c in collapsed]
    if ell_labels:
        operands = _broadcast_ellipsis(operands, labels, ell_labels)
    return contract(operands, labels, output)


def einsum(subscripts, *operands, out=None, optimize="optimal", precision=None,
           preferred_element_type=None, _dot_general=None):
    """Einstein summation, e.g. einsum('bij,bjk->bik', a, b)."""
    if not isinstance(subscripts, str):
        raise FjitTypeError("einsum: fjit supports the string form of subscripts only")
    result = _einsum(subscripts, tuple(asarray(x) for x in operands))
    if preferred_element_type is not None:
        result = asarray(result, preferred_element_type)
    return result


# --- matmul and friends -----------------------------------------------------------------------

@jit(inline=True)
def _matmul(a, b):
    a_vec, b_vec = a.ndim == 1, b.ndim == 1
    a2 = lax.reshape(a, (1,) + a.shape) if a_vec else a
    b2 = lax.reshape(b, b.shape + (1,)) if b_vec else b
    if a2.shape[-1] != b2.shape[-2]:
        raise FjitShapeError(f"matmul: contracting dimensions differ: {a.shape} @ {b.shape} "
                             f"({a2.shape[-1]} != {b2.shape[-2]})")
    batch = broadcast_shapes("matmul", a2.shape[:-2], b2.shape[:-2])
    a2 = lax.broadcast_in_dim(a2, batch + a2.shape[-2:],
                              tuple(range(len(batch) - a2.ndim + 2, len(batch) + 2)))
    b2 = lax.broadcast_in_dim(b2, batch + b2.shape[-2:],
                              tuple(range(len(batch) - b2.ndim + 2, len(batch) + 2)))
    batch_labels = list(string.ascii_lowercase[:len(batch)])
    m, k, n = "M", "K", "N"
    out = contract([a2, b2], [batch_labels + [m, k], batch_labels + [k, n]],
                   batch_labels + [m, n])
    if a_vec:
        out = lax.reshape(out, out.shape[:-2] + out.shape[-1:])
    if b_vec:
        out = lax.reshape(out, out.shape[:-1])
    return out


def matmul(a, b, *, precision=None, preferred_element_type=None):
    """Matrix product with NumPy's rules (1-D promotion, broadcast batch dims)."""
    a, b = promote_dtypes(a, b, opname="matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise FjitShapeError(f"matmul: operands must be at least 1-D, got shapes {a.shape} and "
                             f"{b.shape}; use multiply for scalars")
    out = _matmul(a, b)
    return asarray(out, preferred_element_type) if preferred_element_type else out


def _labels(n, start=0):
    return list(string.ascii_letters[start:start + n])


@jit(static_argnums=(2,), inline=True)
def _tensordot(a, b, axes):
    a_axes, b_axes = axes
    a_labels = _labels(a.ndim)
    b_labels = _labels(b.ndim, a.ndim)
    for i, j in zip(a_axes, b_axes):
        b_labels[j] = a_labels[i]
    out = [l for k, l in enumerate(a_labels) if k not in a_axes] + \
        [l for k, l in enumerate(b_labels) if k not in b_axes]
    return contract([a, b], [a_labels, b_labels], out)


def tensordot(a, b, axes=2, *, precision=None, preferred_element_type=None,
              _opname="tensordot"):
    a, b = promote_dtypes(a, b, opname=_opname)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if n > min(a.ndim, b.ndim) or n < 0:
            raise FjitShapeError(f"{_opname}: cannot contract {n} axes of shapes {a.shape}, "
                                 f"{b.shape}")
        a_axes, b_axes = tuple(range(a.ndim - n, a.ndim)), tuple(range(n))
    else:
        a_axes, b_axes = axes
        a_axes = (a_axes,) if isinstance(a_axes, (int, np.integer)) else tuple(a_axes)
        b_axes = (b_axes,) if isinstance(b_axes, (int, np.integer)) else tuple(b_axes)
        if len(a_axes) != len(b_axes):
            raise FjitShapeError(f"{_opname}: both operands need the same number of axes to "
                                 f"contract, got {a_axes} and {b_axes} for shapes {a.shape} "
                                 f"and {b.shape}")
        a_axes = tuple(int(x) % a.ndim for x in a_axes)
        b_axes = tuple(int(x) % b.ndim for x in b_axes)
    for i, j in zip(a_axes, b_axes):
        if a.shape[i] != b.shape[j]:
            raise FjitShapeError(f"{_opname}: axis {i} of {a.shape} and axis {j} of {b.shape} "
                                 f"differ in size ({a.shape[i]} != {b.shape[j]})")
    out = _tensordot(a, b, (a_axes, b_axes))
    return asarray(out, preferred_element_type) if preferred_element_type else out


def dot(a, b, *, precision=None, preferred_element_type=None):
    """NumPy's dot: products of scalars, inner products of vectors, matrix products, and for
    N-D arrays a sum over the last axis of a and the second-to-last of b."""
    a, b = promote_dtypes(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if b.ndim == 1:
        return tensordot(a, b, ((a.ndim - 1,), (0,)), _opname="dot")
    return tensordot(a, b, ((a.ndim - 1,), (b.ndim - 2,)), _opname="dot")


def vdot(a, b, *, precision=None, preferred_element_type=None):
    a, b = promote_dtypes(a, b, opname="vdot")
    shapes = a.shape, b.shape
    a, b = lax.reshape(a, (a.size,)), lax.reshape(b, (b.size,))
    if a.shape != b.shape:
        raise FjitShapeError(f"vdot: operands have {a.size} and {b.size} elements (shapes "
                             f"{shapes[0]} and {shapes[1]})")
    return tensordot(a, b, 1)


def inner(a, b, *, precision=None, preferred_element_type=None):
    a, b = promote_dtypes(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    return tensordot(a, b, ((a.ndim - 1,), (b.ndim - 1,)), _opname="inner")


def outer(a, b, out=None):
    a, b = promote_dtypes(a, b)
    a, b = lax.reshape(a, (a.size,)), lax.reshape(b, (b.size,))
    return contract([a, b], [["i"], ["j"]], ["i", "j"])


def kron(a, b):
    a, b = promote_dtypes(a, b)
    ndim = max(a.ndim, b.ndim)
    a = lax.reshape(a, (1,) * (ndim - a.ndim) + a.shape)
    b = lax.reshape(b, (1,) * (ndim - b.ndim) + b.shape)
    a_labels, b_labels = _labels(ndim), _labels(ndim, ndim)
    out_labels = [l for pair in zip(a_labels, b_labels) for l in pair]
    out = contract([a, b], [a_labels, b_labels], out_labels)
    return lax.reshape(out, tuple(x * y for x, y in zip(a.shape, b.shape)))
