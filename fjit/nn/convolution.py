"""Convolution and pooling as meta-ops: one reindex gathers the windows (im2col as index
expressions, with padding, stride, dilation and input dilation), then a contraction
(convolution) or a reduction (pooling) over the window axes.  Their gradients are what
autodiff makes of reindex: a reindex_reduce (scatter-add) of the same index expressions.

Layouts are PyTorch's (and Jittor's): x is (N, C, *spatial), a convolution's weight is
(O, C // groups, *kernel), a transposed convolution's weight is (C, O // groups, *kernel).
"""
from __future__ import annotations

import math

import numpy as np

from .. import lax
from .. import numpy as jnp
from ..lax import indexexpr as ix


def _tuple(name, value, n, what):
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise TypeError(f"{name}: {what} {value} needs one entry per spatial dim ({n})")
    return value


def _check_positive(name, **values):
    for what, value in values.items():
        if any(v < 1 for v in value):
            raise ValueError(f"{name}: {what} must be positive, got {value}")


def normalize_padding(name, padding, in_sizes, kernel, strides, dilation):
    """Padding as one (low, high) pair per spatial dim, from an int, ints, pairs,
    "VALID" or "SAME" (JAX's rule: output size ceil(in / stride), the odd pixel high)."""
    n = len(in_sizes)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * n
        if mode != "SAME":
            raise ValueError(f"{name}: padding must be 'VALID', 'SAME', an int or pairs, "
                             f"got {padding!r}")
        pairs = []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilation):
            out = -(-size // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            pairs.append((total // 2, total - total // 2))
        return tuple(pairs)
    if isinstance(padding, (int, np.integer)):
        return ((int(padding), int(padding)),) * n
    padding = tuple(padding)
    if len(padding) != n:
        raise TypeError(f"{name}: padding {padding} needs one entry per spatial dim ({n})")
    return tuple((int(p), int(p)) if isinstance(p, (int, np.integer))
                 else (int(p[0]), int(p[1])) for p in padding)


def _window_gather(name, x, lead_shape, lead_index, kernel, strides, padding, dilation,
                   lhs_dilation, fill, mid_shape=(), mid_index=()):
    """y[lead..., k..., mid..., o...] = x[mid_index..., lead_index...,
    o*stride + k*dilation - low] (positions in the input dilated by lhs_dilation; holes and
    padding read `fill`).  `mid` axes sit between the window and the output pixels: the
    batch, for a convolution done as one GEMM (its index then comes first in x)."""
    spatial = x.shape[2:]
    n_lead, n, n_mid = len(lead_shape), len(spatial), len(mid_shape)
    outs, positions, holes = [], [], []
    for j, (size, k, s, d, (lo, hi), ld) in enumerate(zip(spatial, kernel, strides, dilation,
                                                         padding, lhs_dilation)):
        dilated = (size - 1) * ld + 1 if size else 0
        out = (dilated + lo + hi - ((k - 1) * d + 1)) // s + 1
        if out < 1:
            raise ValueError(f"{name}: input {x.shape} is too small for kernel {kernel} with "
                             f"stride {strides}, padding {padding} and dilation {dilation}")
        outs.append(out)
        p = ix.idx(n_lead + n + n_mid + j) * s + ix.idx(n_lead + j) * d - lo
        if ld == 1:
            positions.append(p)
        else:
            positions.append(p // ld)
            holes.append(ix.ne(p % ld, 0))
    shape = tuple(lead_shape) + tuple(kernel) + tuple(mid_shape) + tuple(outs)
    index = tuple(mid_index) + tuple(lead_index) if mid_index else tuple(lead_index)
    return lax.reindex(x, shape, index + tuple(positions), fill=fill,
                       fill_if=tuple(holes)), tuple(outs)


def conv(x, w, stride=1, padding=0, dilation=1, groups=1, lhs_dilation=1):
    """N-d convolution (cross-correlation, as in PyTorch and lax.conv_general_dilated):
    x (N, C, *spatial), w (O, C // groups, *kernel) -> (N, O, *out)."""
    x, w = jnp.asarray(x), jnp.asarray(w)
    n = x.ndim - 2
    if n < 1 or w.ndim != x.ndim:
        raise TypeError(f"conv: input {x.shape} must be (N, C, *spatial) and weight "
                        f"{w.shape} (O, C // groups, *kernel) of the same rank")
    N, C = x.shape[:2]
    O, Cg = w.shape[:2]
    kernel = w.shape[2:]
    if groups < 1 or C % groups or O % groups or Cg * groups != C:
        raise TypeError(f"conv: input {x.shape} with {groups} groups needs a weight with "
                        f"{C // max(groups, 1)} input channels and output channels divisible "
                        f"by {groups}, got weight {w.shape}")
    strides = _tuple("conv", stride, n, "stride")
    dilation = _tuple("conv", dilation, n, "dilation")
    lhs_dilation = _tuple("conv", lhs_dilation, n, "lhs_dilation")
    _check_positive("conv", stride=strides, dilation=dilation, lhs_dilation=lhs_dilation)
    pads = normalize_padding("conv", padding, x.shape[2:], kernel, strides, dilation)
    G = groups
    i = ix.idx
    free = "abdefhijklmpqrstuvwxyz"  # einsum letters other than n, g, c, o
    letters, spatial = free[:n], free[n:2 * n]
    if G == 1:
        # patches (C, *kernel, N, *out): the batch beside the output pixels, so that
        # out = W (O x C*K) @ patches (C*K x N*P) is one GEMM, and so are both gradients
        # (W^T @ dout; dout @ patches^T over N*P), rather than one small GEMM per example
        patches, outs = _window_gather("conv", x, (C,), (i(0),), kernel, strides, pads,
                                       dilation, lhs_dilation, 0, mid_shape=(N,),
                                       mid_index=(i(1 + n),))
        y = jnp.einsum(f"oc{letters},c{letters}n{spatial}->on{spatial}", w, patches)
        return jnp.swapaxes(y, 0, 1)
    patches, outs = _window_gather("conv", x, (N, G, Cg), (i(0), i(1) * Cg + i(2)), kernel,
                                   strides, pads, dilation, lhs_dilation, 0)
    wg = w.reshape((G, O // G, Cg) + tuple(kernel))
    y = jnp.einsum(f"ngc{letters}{spatial},goc{letters}->ngo{spatial}", patches, wg)
    return y.reshape((N, O) + outs)


def conv_transpose(x, w, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """The gradient of `conv` with respect to its input, as a layer (PyTorch's
    ConvTranspose): x (N, C, *spatial), w (C, O // groups, *kernel) -> (N, O, *out) with
    out = (in - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1."""
    x, w = jnp.asarray(x), jnp.asarray(w)
    n = x.ndim - 2
    if n < 1 or w.ndim != x.ndim:
        raise TypeError(f"conv_transpose: input {x.shape} must be (N, C, *spatial) and "
                        f"weight {w.shape} (C, O // groups, *kernel) of the same rank")
    C, Og = w.shape[:2]
    kernel = w.shape[2:]
    if groups < 1 or x.shape[1] != C or C % groups:
        raise TypeError(f"conv_transpose: input {x.shape} and weight {w.shape} with {groups} "
                        f"groups: the weight's first dim must be the input channels, divisible "
                        "by groups")
    strides = _tuple("conv_transpose", stride, n, "stride")
    dilation = _tuple("conv_transpose", dilation, n, "dilation")
    pad = _tuple("conv_transpose", padding, n, "padding")
    out_pad = _tuple("conv_transpose", output_padding, n, "output_padding")
    _check_positive("conv_transpose", stride=strides, dilation=dilation)
    for op, s, d in zip(out_pad, strides, dilation):
        if not 0 <= op < max(s, d):
            raise ValueError(f"conv_transpose: output_padding {out_pad} must be smaller than "
                             f"stride {strides} or dilation {dilation}")
    if all(s == 1 for s in strides):
        # no holes: the convolution of the padded input with the flipped kernel
        G, Cg = groups, C // groups
        # (G, Cg, Og, *K) -> (G, Og, Cg, *K) -> (O, Cg, *K), spatially flipped.
        wt = w.reshape((G, Cg, Og) + tuple(kernel))
        wt = jnp.swapaxes(wt, 1, 2).reshape((G * Og, Cg) + tuple(kernel))
        wt = jnp.flip(wt, axis=tuple(range(2, 2 + n)))
        pads = tuple((d * (k - 1) - p, d * (k - 1) - p + op)
                     for k, p, op, d in zip(kernel, pad, out_pad, dilation))
        return conv(x, wt, 1, pads, dilation, groups)
    return _scatter_conv_transpose(x, w, strides, pad, out_pad, groups, dilation)


def _scatter_conv_transpose(x, w, strides, pad, out_pad, groups, dilation):
    """A strided transposed convolution as what it is, the adjoint of a convolution: one GEMM
    makes every input pixel's contribution to its kernel window, (O * K) x C times C x
    (N * in), and a scatter-add (reindex_reduce) sums them into the output at position
    in * stride + k * dilation - padding.  Convolving the stride-dilated input instead
    multiplies by the holes too: stride**ndim times the multiply-adds."""
    n = x.ndim - 2
    N, C = x.shape[:2]
    Og, kernel, G = w.shape[1], w.shape[2:], groups
    Cg = C // G
    outs = tuple((i - 1) * s - 2 * p + d * (k - 1) + op + 1 for i, s, p, d, k, op in
                 zip(x.shape[2:], strides, pad, dilation, kernel, out_pad))
    if any(o < 1 for o in outs):
        raise ValueError(f"conv_transpose: input {x.shape} with kernel {tuple(kernel)}, stride "
                         f"{strides} and padding {pad} gives an empty output {outs}")
    free = "abdefhijklmpqrstuvwxyz"  # einsum letters other than n, g, c, o
    ks, ins = free[:n], free[n:2 * n]
    i = ix.idx
    if G == 1:
        # cols[o, k..., n, in...] = sum_c w[c, o, k...] x[n, c, in...]: the batch beside the
        # input pixels, so that cols = W^T (O*K x C) @ x (C x N*in) is one GEMM and so are both
        # gradients, not one small GEMM per example; the weight first, so that the
        # contraction lowers to a plain GEMM (see conv)
        xt = jnp.swapaxes(x, 0, 1)
        cols = jnp.einsum(f"co{ks},cn{ins}->o{ks}n{ins}", w, xt)
        positions = tuple(i(2 + n + j) * s + i(1 + j) * d - p
                          for j, (s, d, p) in enumerate(zip(strides, dilation, pad)))
        return lax.reindex_reduce(cols, "add", (N, Og) + outs, (i(1 + n), i(0)) + positions)
    xg = x.reshape((N, G, Cg) + x.shape[2:])
    wg = w.reshape((G, Cg, Og) + tuple(kernel))
    cols = jnp.einsum(f"ngc{ins},gco{ks}->ngo{ks}{ins}", xg, wg)
    positions = tuple(i(3 + n + j) * s + i(3 + j) * d - p
                      for j, (s, d, p) in enumerate(zip(strides, dilation, pad)))
    return lax.reindex_reduce(cols, "add", (N, G * Og) + outs,
                              (i(0), i(1) * Og + i(2)) + positions)


def _pool_args(name, x, window, stride, padding, dilation=1):
    x = jnp.asarray(x)
    n = x.ndim - 2
    if n < 1:
        raise TypeError(f"{name}: input {x.shape} must be (N, C, *spatial)")
    window = _tuple(name, window, n, "window")
    strides = window if stride is None else _tuple(name, stride, n, "stride")
    dilation = _tuple(name, dilation, n, "dilation")
    _check_positive(name, window=window, stride=strides, dilation=dilation)
    pads = normalize_padding(name, padding, x.shape[2:], window, strides, dilation)
    for (lo, hi), k in zip(pads, window):
        if not isinstance(padding, str) and max(lo, hi) > k // 2:
            raise ValueError(f"{name}: padding {padding} must be at most half the window "
                             f"{window}")
    return x, n, window, strides, pads, dilation


def _windows(name, x, n, window, strides, pads, dilation, fill):
    i = ix.idx
    N, C = x.shape[:2]
    patches, _ = _window_gather(name, x, (N, C), (i(0), i(1)), window, strides, pads,
                                dilation, (1,) * n, fill)
    return patches  # (N, C, *window, *out)


def max_pool(x, window, stride=None, padding=0, dilation=1):
    """Max over windows (stride defaults to the window, like PyTorch); padding never wins."""
    x, n, window, strides, pads, dilation = _pool_args("max_pool", x, window, stride,
                                                        padding, dilation)
    lowest = -math.inf if jnp.issubdtype(x.dtype, jnp.floating) else \
        int(jnp.iinfo(x.dtype).min)
    patches = _windows("max_pool", x, n, window, strides, pads, dilation, lowest)
    return patches.max(axis=tuple(range(2, 2 + n)))


def avg_pool(x, window, stride=None, padding=0, count_include_pad=True):
    """Mean over windows; with count_include_pad=False the padding is left out of the count
    (PyTorch's option; JAX's avg_pool counts it)."""
    x, n, window, strides, pads, dilation = _pool_args("avg_pool", x, window, stride, padding)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"avg_pool: needs a floating-point input, got {x.dtype}")
    axes = tuple(range(2, 2 + n))
    sums = _windows("avg_pool", x, n, window, strides, pads, dilation, 0).sum(axis=axes)
    if count_include_pad or all(p == (0, 0) for p in pads):
        return sums / math.prod(window)
    ones = jnp.ones((1, 1) + x.shape[2:], x.dtype)
    counts = _windows("avg_pool", ones, n, window, strides, pads, dilation, 0).sum(axis=axes)
    return sums / counts
