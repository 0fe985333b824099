"""PyTorch's tensor functions and methods, as the converter (from_torch.py) meets them in a
torch.fx graph, written over fjit.numpy with PyTorch's argument names and defaults.

`FUNCTIONS` maps the names of torch callables ("torch.flatten",
"torch.nn.functional.relu", "operator.add") and `METHODS` the names of Tensor methods
("view", "size") to implementations taking PyTorch's arguments.  Names rather than the
callables themselves keep this file free of torch.  Dropout follows the converted model's
`apply(train=...)`, like nn.Dropout, not the training flag torch.fx recorded at tracing.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from .. import lax
from .. import numpy as jnp
from . import activations as A
from . import convolution as C
from . import resize as R
from .module import _calls


def _shape_args(shape):
    """view(2, 3), view((2, 3)) and view([2, 3]) alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _dim(dim):
    return tuple(dim) if isinstance(dim, (list, tuple)) else dim


def flatten(input, start_dim=0, end_dim=-1):
    x = jnp.asarray(input)
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])


def view(self, *shape):
    return jnp.reshape(self, _shape_args(shape))


def size(self, dim=None):
    return tuple(self.shape) if dim is None else self.shape[dim]


def permute(self, *dims):
    return jnp.transpose(self, _shape_args(dims))


def transpose(input, dim0, dim1):
    return jnp.swapaxes(input, dim0, dim1)


def t(input):
    return jnp.swapaxes(input, 0, 1) if jnp.ndim(input) == 2 else jnp.asarray(input)


def _reduction(fn):
    def reduce(input, dim=None, keepdim=False, dtype=None):
        x = jnp.asarray(input)
        if dtype is not None:
            x = x.astype(to_dtype(dtype))
        return fn(x, axis=_dim(dim), keepdims=keepdim)
    return reduce


class ValuesIndices(tuple):
    """torch.max(x, dim)'s result: a (values, indices) pair with those attribute names."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])


def _extremum(fn, arg_fn, pairwise):
    """torch.max(x) is the maximum, torch.max(x, dim) is (values, indices), torch.max(x, y)
    and torch.max(x, other=y) the element-wise maximum."""
    def extremum(input, dim=None, keepdim=False, other=None):
        if other is not None:
            return pairwise(input, other)
        if dim is None:
            return fn(input)
        if not isinstance(dim, int) or isinstance(dim, bool):
            return pairwise(input, dim)
        return ValuesIndices(fn(input, axis=dim, keepdims=keepdim),
                             arg_fn(input, axis=dim, keepdims=keepdim))
    return extremum


def div(input, other, rounding_mode=None):
    if rounding_mode is None:
        return jnp.divide(input, other)
    if rounding_mode == "floor":
        return jnp.floor_divide(input, other)
    if rounding_mode == "trunc":
        q = jnp.divide(input, other)
        return jnp.trunc(q).astype(q.dtype) if jnp.issubdtype(q.dtype, jnp.floating) else q
    raise TypeError(f"from_torch: torch.div rounding_mode {rounding_mode!r} is not supported")


def adaptive_max_pool(input, output_size, return_indices=False):
    if return_indices:
        raise TypeError("from_torch: adaptive_max_pool(return_indices=True) is not supported")
    return R.adaptive_max_pool(input, output_size)


def cat(tensors, dim=0):
    return jnp.concatenate(list(tensors), axis=dim)


def stack(tensors, dim=0):
    return jnp.stack(list(tensors), axis=dim)


def chunk(input, chunks, dim=0):
    n = input.shape[dim]
    step = -(-n // chunks)
    return tuple(lax.slice_in_dim(input, s, min(s + step, n), axis=dim)
                 for s in range(0, n, step))


def split(tensor, split_size_or_sections, dim=0):
    n = tensor.shape[dim]
    if isinstance(split_size_or_sections, int):
        bounds = list(range(0, n, split_size_or_sections)) + [n]
    else:
        bounds = [0] + list(np.cumsum(split_size_or_sections))
    return tuple(lax.slice_in_dim(tensor, int(a), int(b), axis=dim)
                 for a, b in zip(bounds[:-1], bounds[1:]))


def unsqueeze(input, dim):
    return jnp.expand_dims(input, dim)


def squeeze(input, dim=None):
    x = jnp.asarray(input)
    if dim is None or x.ndim == 0:
        return jnp.squeeze(x)
    dims = tuple(d % x.ndim for d in (_dim(dim) if isinstance(dim, (list, tuple)) else (dim,))
                 if x.shape[d] == 1)
    return jnp.squeeze(x, dims) if dims else x


def expand(self, *sizes):
    sizes = _shape_args(sizes)
    lead = len(sizes) - self.ndim
    shape = tuple(s if s != -1 else self.shape[k - lead] for k, s in enumerate(sizes))
    return jnp.broadcast_to(self, shape)


_DTYPES = {"float32": "float32", "float": "float32", "float64": "float64", "double": "float64",
           "float16": "float16", "half": "float16", "bfloat16": "bfloat16", "int64": "int32",
           "long": "int32", "int32": "int32", "int": "int32", "int16": "int16",
           "int8": "int8", "uint8": "uint8", "bool": "bool"}


def to_dtype(dtype):
    """A torch dtype (or its name, or a NumPy dtype) as a NumPy dtype fjit computes in;
    64-bit integers narrow as fjit's do without x64."""
    if isinstance(dtype, np.dtype):
        return dtype
    name = str(dtype).rpartition(".")[2]
    if name not in _DTYPES:
        raise TypeError(f"from_torch: dtype {dtype} has no fjit counterpart")
    return np.dtype(getattr(jnp, _DTYPES[name]))


def to(self, *args, **kwargs):
    """Tensor.to(dtype) and Tensor.to(other) convert (the converter has turned torch dtypes
    into NumPy's); devices are ignored: the converted model runs where fjit runs it."""
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, np.dtype):
            return jnp.asarray(self).astype(a)
        if hasattr(a, "dtype") and hasattr(a, "shape"):
            return jnp.asarray(self).astype(a.dtype)
    return self


def _astype(name):
    return lambda self: jnp.asarray(self).astype(to_dtype(name))


def masked_fill(input, mask, value):
    return jnp.where(mask, jnp.asarray(value, input.dtype), input)


def clamp(input, min=None, max=None):
    return jnp.clip(input, min, max)


def _softmax_dim(x, dim):
    """PyTorch's implicit dim (deprecated there, but still what it computes)."""
    if dim is not None:
        return dim
    return 0 if x.ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    x = jnp.asarray(input) if dtype is None else jnp.asarray(input).astype(to_dtype(dtype))
    return A.softmax(x, axis=_softmax_dim(x, dim))


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    x = jnp.asarray(input) if dtype is None else jnp.asarray(input).astype(to_dtype(dtype))
    return A.log_softmax(x, axis=_softmax_dim(x, dim))


def gelu(input, approximate="none"):
    return A.gelu(input, approximate=approximate == "tanh")


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return A.leaky_relu(input, negative_slope)


def _inplace_free(fn):
    return lambda input, inplace=False: fn(input)


def elu(input, alpha=1.0, inplace=False):
    return A.elu(input, alpha)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return jnp.clip(input, min_val, max_val)


def softplus(input, beta=1.0, threshold=20.0):
    x = jnp.asarray(input)
    return jnp.where(x * beta > threshold, x, A.softplus(x * beta) / beta)


def dropout(input, p=0.5, training=True, inplace=False):
    """Drops when the traced call did (`training`, as recorded: trace a model in training
    mode, PyTorch's default) and the converted model runs with apply(train=True)."""
    frame = _calls.frames[-1] if _calls.frames else None
    if frame is None or not frame.train or not training or p == 0:
        return input
    from .layers import Dropout
    key = frame.next_key()
    if key is None:
        raise TypeError("from_torch: the model's dropout in training needs a PRNG key: "
                        "apply(..., train=True, key=key)")
    return Dropout(p).forward({}, {}, input, train=True, key=key)[0]


def linear(input, weight, bias=None):
    """F.linear: PyTorch's (out, in) weight."""
    y = jnp.asarray(input) @ jnp.swapaxes(weight, 0, 1)
    return y if bias is None else y + bias


def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    y = C.conv(input, weight, stride, padding, dilation, groups)
    return y if bias is None else y + jnp.reshape(bias, (-1,) + (1,) * (y.ndim - 2))


def max_pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             return_indices=False):
    if ceil_mode or return_indices:
        raise TypeError("from_torch: max_pool with ceil_mode or return_indices is not supported")
    return C.max_pool(input, kernel_size, stride or None, padding, dilation)


def avg_pool(input, kernel_size, stride=None, padding=0, ceil_mode=False,
             count_include_pad=True, divisor_override=None):
    if ceil_mode or divisor_override is not None:
        raise TypeError("from_torch: avg_pool with ceil_mode or divisor_override is not "
                        "supported")
    return C.avg_pool(input, kernel_size, stride or None, padding, count_include_pad)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    if antialias:
        raise TypeError("from_torch: interpolate(antialias=True) is not supported")
    return R.interpolate(input, size, scale_factor, mode, align_corners, recompute_scale_factor)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    x = jnp.asarray(input)
    axes = tuple(range(x.ndim - len(tuple(normalized_shape)), x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) * lax.rsqrt(var + eps)
    y = y if weight is None else y * weight
    return y if bias is None else y + bias


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    if enable_gqa:
        raise TypeError("from_torch: scaled_dot_product_attention(enable_gqa=True) is not "
                        "supported")
    L, S = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ jnp.swapaxes(key, -1, -2)) * scale
    neg = jnp.asarray(-jnp.inf, scores.dtype)
    if is_causal:
        scores = jnp.where(jnp.asarray(np.tril(np.ones((L, S), bool))), scores, neg)
    if attn_mask is not None:
        mask = jnp.asarray(attn_mask)
        scores = jnp.where(mask, scores, neg) if mask.dtype == jnp.bool_ else scores + mask
    weights = A.softmax(scores, axis=-1)
    return dropout(weights, dropout_p) @ value


def _getattr(obj, name):
    if isinstance(obj, ValuesIndices) and name in ("values", "indices"):
        return getattr(obj, name)
    if name in ("shape", "ndim", "T", "mT", "dtype"):
        if name == "mT":
            return jnp.swapaxes(obj, -1, -2)
        return getattr(obj, name)
    raise TypeError(f"from_torch: tensor attribute {name!r} is not supported")


def _fn(name, fn):
    return {f"torch.{name}": fn, f"torch.nn.functional.{name}": fn}


_ACTIVATIONS = {"relu": A.relu, "relu6": A.relu6, "sigmoid": A.sigmoid, "tanh": jnp.tanh,
                "silu": A.silu, "mish": lambda x: x * jnp.tanh(A.softplus(x)), "selu": A.selu,
                "hardsigmoid": A.hard_sigmoid, "hardswish": A.hard_silu}

FUNCTIONS = {
    **{f"operator.{name}": getattr(operator, name)
       for name in ("add", "sub", "mul", "truediv", "floordiv", "matmul", "neg", "pow", "mod",
                    "getitem", "pos", "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_",
                    "invert", "iadd", "imul", "isub", "itruediv")},
    "builtins.getattr": _getattr,
    "torch.flatten": flatten, "torch.cat": cat, "torch.concat": cat, "torch.stack": stack,
    "torch.chunk": chunk, "torch.split": split, "torch.functional.split": split,
    "torch.transpose": transpose,
    "torch.permute": lambda input, dims: jnp.transpose(input, tuple(dims)),
    "torch.reshape": lambda input, shape: jnp.reshape(input, tuple(shape)),
    "torch.unsqueeze": unsqueeze, "torch.squeeze": squeeze, "torch.t": t,
    "torch.matmul": jnp.matmul, "torch.bmm": jnp.matmul, "torch.mm": jnp.matmul,
    "torch.add": lambda input, other, alpha=1: input + alpha * other,
    "torch.sub": lambda input, other, alpha=1: input - alpha * other,
    "torch.mul": jnp.multiply, "torch.div": div, "torch.exp": jnp.exp,
    "torch.log": jnp.log, "torch.sqrt": jnp.sqrt, "torch.rsqrt": lax.rsqrt,
    "torch.abs": jnp.abs, "torch.clamp": clamp, "torch.where": jnp.where,
    "torch.mean": _reduction(jnp.mean), "torch.sum": _reduction(jnp.sum),
    "torch.max": _extremum(jnp.max, jnp.argmax, jnp.maximum),
    "torch.min": _extremum(jnp.min, jnp.argmin, jnp.minimum),
    "torch.maximum": jnp.maximum, "torch.minimum": jnp.minimum,
    "torch.nn.functional.gelu": gelu, "torch.nn.functional.leaky_relu": leaky_relu,
    "torch.nn.functional.elu": elu, "torch.nn.functional.hardtanh": hardtanh,
    "torch.nn.functional.softplus": softplus, "torch.nn.functional.dropout": dropout,
    "torch.nn.functional.linear": linear,
    **{f"{m}.conv{n}d": conv for n in (1, 2, 3) for m in ("torch", "torch.nn.functional")},
    **{f"{m}.max_pool{n}d": max_pool for n in (1, 2, 3)
       for m in ("torch", "torch.nn.functional")},
    **{f"{m}.avg_pool{n}d": avg_pool for n in (1, 2, 3)
       for m in ("torch", "torch.nn.functional")},
    **{f"{m}.adaptive_avg_pool{n}d": R.adaptive_avg_pool for n in (1, 2)
       for m in ("torch", "torch.nn.functional")},
    **{f"{m}.adaptive_max_pool{n}d": adaptive_max_pool for n in (1, 2)
       for m in ("torch", "torch.nn.functional")},
    "torch.nn.functional.interpolate": interpolate,
    "torch.nn.functional.layer_norm": layer_norm,
    "torch.nn.functional.scaled_dot_product_attention": scaled_dot_product_attention,
    **_fn("softmax", softmax), **_fn("log_softmax", log_softmax),
    **{k: v for name, fn in _ACTIVATIONS.items() for k, v in _fn(name, _inplace_free(fn))
       .items()},
}

METHODS = {
    "view": view, "reshape": view, "flatten": flatten, "size": size, "permute": permute,
    "transpose": transpose, "t": t, "contiguous": lambda self, *a, **k: self,
    "unsqueeze": unsqueeze, "squeeze": squeeze, "chunk": chunk, "split": split,
    "expand": expand, "masked_fill": masked_fill, "clamp": clamp, "to": to,
    "float": _astype("float32"), "double": _astype("float64"), "half": _astype("float16"),
    "long": _astype("int64"), "int": _astype("int32"), "bool": _astype("bool"),
    "type_as": lambda self, other: jnp.asarray(self).astype(other.dtype),
    "mean": _reduction(jnp.mean), "sum": _reduction(jnp.sum),
    "max": _extremum(jnp.max, jnp.argmax, jnp.maximum),
    "min": _extremum(jnp.min, jnp.argmin, jnp.minimum),
    "softmax": softmax, "log_softmax": log_softmax, "exp": jnp.exp, "log": jnp.log,
    "sqrt": jnp.sqrt, "rsqrt": lax.rsqrt, "abs": jnp.abs, "pow": jnp.power,
    "add": lambda self, other, alpha=1: self + alpha * other,
    "sub": lambda self, other, alpha=1: self - alpha * other,
    "mul": jnp.multiply, "div": div, "matmul": jnp.matmul,
    "relu": A.relu, "sigmoid": A.sigmoid, "tanh": jnp.tanh,
    "dim": lambda self: self.ndim, "numel": lambda self: int(np.prod(self.shape)),
}
