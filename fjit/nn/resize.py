"""Resizing feature maps as PyTorch does: `interpolate` (nearest, nearest-exact, linear,
bilinear, trilinear; align_corners) and the adaptive pools, as functions and as layers
(`Upsample`, `AdaptiveAvgPool1d/2d`, `AdaptiveMaxPool1d/2d`).

Every one of them is separable: resizing an N-d map is resizing each spatial axis in turn.
Which source positions feed an output position depends only on the sizes, so they are
computed here with NumPy at trace time; the arrays meet them as a gather (`take`) and a
weighted sum, or (the adaptive average) a small constant matrix, which autodiff and the
compilers handle like any other.
"""
from __future__ import annotations

import math

import numpy as np

from .. import numpy as jnp
from .module import Layer

__all__ = ["interpolate", "adaptive_avg_pool", "adaptive_max_pool", "Upsample",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d"]

_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact") + tuple(_LINEAR_MODES)


def _per_axis(name, value, n, what):
    if value is None:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return (value,) * n
    value = tuple(value)
    if len(value) != n:
        raise ValueError(f"{name}: {what} {value} needs one entry per spatial dim ({n})")
    return value


def _sizes_and_scales(x, size, scale_factor):
    """Output sizes and the source/destination scale per axis, as PyTorch computes them in
    float32: 1 / scale_factor when a scale factor is given, else in / out."""
    n = x.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor, got "
                         f"size={size} and scale_factor={scale_factor}")
    inputs = x.shape[2:]
    if size is not None:
        outs = tuple(int(s) for s in _per_axis("interpolate", size, n, "size"))
        scales = tuple(float(np.float32(i) / np.float32(o)) for i, o in zip(inputs, outs))
    else:
        factors = tuple(float(f) for f in _per_axis("interpolate", scale_factor, n,
                                                    "scale_factor"))
        outs = tuple(int(math.floor(i * f)) for i, f in zip(inputs, factors))
        scales = tuple(float(np.float32(1.0 / f)) for f in factors)
    if any(o < 1 for o in outs):
        raise ValueError(f"interpolate: input {x.shape} gives an empty output {outs}")
    return outs, scales


def _nearest_index(n_in, n_out, scale, exact):
    """PyTorch's source index, its float32 rounding included."""
    dst = np.arange(n_out, dtype=np.float32)
    if exact:
        src = np.floor(((dst + 0.5) * np.float64(scale)).astype(np.float32))
    else:
        src = np.floor(dst * np.float32(scale))
    return np.minimum(src.astype(np.int64), n_in - 1)


def _linear_taps(n_in, n_out, scale, align_corners):
    """(low index, high index, weight of high) per output position."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    low = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    return low, high, src - low


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """PyTorch's F.interpolate on (N, C, *spatial) for the modes above.  An axis whose size a
    scale factor leaves unchanged is copied, as PyTorch's linear kernels do; its 1-d nearest
    kernels apply the scale anyway, and so does fjit there.  (Its 2-d and 3-d nearest
    kernels do either, depending on the shape; fjit copies.)"""
    x = jnp.asarray(x)
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode {mode!r} is not supported; use one of {_MODES}")
    n = x.ndim - 2
    linear = mode in _LINEAR_MODES
    if linear and _LINEAR_MODES[mode] != n:
        raise ValueError(f"interpolate: mode {mode!r} needs {_LINEAR_MODES[mode]} spatial "
                         f"dims, input {x.shape} has {n}")
    if n < 1:
        raise ValueError(f"interpolate: input {x.shape} must be (N, C, *spatial)")
    if align_corners is not None and not linear:
        raise ValueError(f"interpolate: align_corners only goes with the linear modes, not "
                         f"{mode!r}")
    if linear and not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"interpolate: {mode} needs a floating-point input, got {x.dtype}")
    outs, scales = _sizes_and_scales(x, size, scale_factor)
    if recompute_scale_factor:   # PyTorch: the scales follow from the sizes
        outs, scales = _sizes_and_scales(x, outs, None)
    for axis, (n_in, n_out, scale) in enumerate(zip(x.shape[2:], outs, scales), start=2):
        if n_in == n_out and (linear or n > 1):
            continue   # PyTorch copies such an axis, whatever the scale (not 1-d nearest)
        if linear:
            low, high, w = _linear_taps(n_in, n_out, scale, bool(align_corners))
            shape = (n_out,) + (1,) * (x.ndim - axis - 1)
            w = jnp.asarray(w.reshape(shape), x.dtype)
            x = (jnp.take(x, jnp.asarray(low, jnp.int32), axis=axis) * (1 - w)
                 + jnp.take(x, jnp.asarray(high, jnp.int32), axis=axis) * w)
        else:
            index = _nearest_index(n_in, n_out, scale, mode == "nearest-exact")
            x = jnp.take(x, jnp.asarray(index, jnp.int32), axis=axis)
    return x


def _adaptive_bounds(n_in, n_out):
    """PyTorch's bins: output i averages input [floor(i * in / out), ceil((i+1) * in / out))."""
    i = np.arange(n_out)
    return (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)


def _output_sizes(name, x, output_size):
    n = x.ndim - 2
    if n < 1:
        raise ValueError(f"{name}: input {x.shape} must be (N, C, *spatial)")
    sizes = _per_axis(name, output_size, n, "output_size")
    # None keeps that axis's size, as in PyTorch
    return tuple(x.shape[2 + k] if s is None else int(s) for k, s in enumerate(sizes))


def adaptive_avg_pool(x, output_size):
    """Mean over PyTorch's adaptive bins: each spatial axis cut into `output_size` bins."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"adaptive_avg_pool: needs a floating-point input, got {x.dtype}")
    for axis, n_out in enumerate(_output_sizes("adaptive_avg_pool", x, output_size), start=2):
        n_in = x.shape[axis]
        if n_in == n_out:
            continue
        if n_out == 1:
            x = x.mean(axis=axis, keepdims=True)
            continue
        start, end = _adaptive_bounds(n_in, n_out)
        weights = np.zeros((n_out, n_in))
        for o, (s, e) in enumerate(zip(start, end)):
            weights[o, s:e] = 1.0 / (e - s)
        x = jnp.moveaxis(jnp.moveaxis(x, axis, -1) @ jnp.asarray(weights.T, x.dtype), -1, axis)
    return x


def adaptive_max_pool(x, output_size):
    """Max over PyTorch's adaptive bins.  A bin shorter than the longest repeats its last
    position, which leaves its maximum unchanged."""
    x = jnp.asarray(x)
    for axis, n_out in enumerate(_output_sizes("adaptive_max_pool", x, output_size), start=2):
        n_in = x.shape[axis]
        if n_in == n_out:
            continue
        start, end = _adaptive_bounds(n_in, n_out)
        width = int((end - start).max())
        index = np.minimum(start[:, None] + np.arange(width), end[:, None] - 1)
        gathered = jnp.take(x, jnp.asarray(index.reshape(-1), jnp.int32), axis=axis)
        shape = x.shape[:axis] + (n_out, width) + x.shape[axis + 1:]
        x = gathered.reshape(shape).max(axis=axis + 1)
    return x


class Upsample(Layer):
    """PyTorch's nn.Upsample: `interpolate` with a fixed size or scale factor."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        if mode not in _MODES:
            raise ValueError(f"Upsample: mode {mode!r} is not supported; use one of {_MODES}")
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, params, state, x, *, train, key):
        return interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                           self.recompute_scale_factor), state


class _Adaptive(Layer):
    ndim, pool = 2, None

    def __init__(self, output_size):
        self.output_size = output_size

    def forward(self, params, state, x, *, train, key):
        x = jnp.asarray(x)
        if x.ndim not in (self.ndim + 1, self.ndim + 2):
            raise TypeError(f"{self!r}: expected an input of rank {self.ndim + 2} (or "
                            f"{self.ndim + 1} without the batch), got {x.shape}")
        unbatched = x.ndim == self.ndim + 1
        y = type(self).pool(x[None] if unbatched else x, self.output_size)
        return (y[0] if unbatched else y), state


class AdaptiveAvgPool1d(_Adaptive):
    ndim, pool = 1, staticmethod(adaptive_avg_pool)


class AdaptiveAvgPool2d(_Adaptive):
    ndim, pool = 2, staticmethod(adaptive_avg_pool)


class AdaptiveMaxPool1d(_Adaptive):
    ndim, pool = 1, staticmethod(adaptive_max_pool)


class AdaptiveMaxPool2d(_Adaptive):
    ndim, pool = 2, staticmethod(adaptive_max_pool)
