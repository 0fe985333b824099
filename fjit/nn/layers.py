"""Layers (see module.py for the style).  Hyperparameters follow PyTorch's constructors, data
is NCHW / (N, L, E), dense weights are (in, out) so that the forward pass is `x @ weight`;
initialization is PyTorch's default unless a `weight_init`/`bias_init` (an
`fjit.nn.initializers` function) is given."""
from __future__ import annotations

import math

from .. import lax
from .. import numpy as jnp
from .. import random
from . import convolution as _conv
from . import initializers as inits
from .module import Layer, split_key


def _pair_keys(key):
    return split_key(key, 2)


class Linear(Layer):
    """y = x @ weight + bias, weight (in_features, out_features)."""

    def __init__(self, in_features, out_features, bias=True, weight_init=None, bias_init=None,
                 dtype=jnp.float32):
        self.in_features, self.out_features, self.bias = in_features, out_features, bias
        self.weight_init, self.bias_init, self.dtype = weight_init, bias_init, dtype

    def init(self, key):
        shape = (self.in_features, self.out_features)
        default = inits.torch_default((0,))(shape)
        kw, kb = _pair_keys(key)
        params = {"weight": (self.weight_init or default)(kw, shape, self.dtype)}
        if self.bias:
            params["bias"] = (self.bias_init or default)(kb, (self.out_features,), self.dtype)
        return params

    def forward(self, params, state, x, *, train, key):
        x = jnp.asarray(x)
        if x.shape[-1:] != (self.in_features,):
            raise TypeError(f"{self!r}: input of shape {x.shape} does not end in "
                            f"{self.in_features} features")
        y = x @ params["weight"]
        if self.bias:
            y = y + params["bias"]
        return y, state


class _ConvNd(Layer):
    ndim = 2
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, output_padding=0, weight_init=None,
                 bias_init=None, dtype=jnp.float32):
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{type(self).__name__}: in_channels {in_channels} and "
                             f"out_channels {out_channels} must be divisible by groups {groups}")
        n = self.ndim
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _conv._tuple(type(self).__name__, kernel_size, n, "kernel_size")
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self.groups, self.bias, self.output_padding = groups, bias, output_padding
        self.weight_init, self.bias_init, self.dtype = weight_init, bias_init, dtype

    def weight_shape(self):
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_size

    def init(self, key):
        shape = self.weight_shape()
        # PyTorch's fan_in for both: weight.shape[1] * prod(kernel)
        default = inits.torch_default(range(1, len(shape)))(shape)
        kw, kb = _pair_keys(key)
        params = {"weight": (self.weight_init or default)(kw, shape, self.dtype)}
        if self.bias:
            params["bias"] = (self.bias_init or default)(kb, (self.out_channels,), self.dtype)
        return params

    def forward(self, params, state, x, *, train, key):
        x = jnp.asarray(x)
        if x.ndim != self.ndim + 2 or x.shape[1] != self.in_channels:
            raise TypeError(f"{self!r}: expected input (N, {self.in_channels}, "
                            f"{', '.join('*' * self.ndim)}), got {x.shape}")
        if self.transposed:
            y = _conv.conv_transpose(x, params["weight"], self.stride, self.padding,
                                     self.output_padding, self.groups, self.dilation)
        else:
            y = _conv.conv(x, params["weight"], self.stride, self.padding, self.dilation,
                           self.groups)
        if self.bias:
            y = y + params["bias"].reshape((-1,) + (1,) * self.ndim)
        return y, state


class Conv1d(_ConvNd):
    ndim = 1


class Conv2d(_ConvNd):
    ndim = 2


class Conv3d(_ConvNd):
    ndim = 3


class ConvTranspose1d(_ConvNd):
    ndim, transposed = 1, True


class ConvTranspose2d(_ConvNd):
    ndim, transposed = 2, True


class _Pool(Layer):
    ndim = 2
    kind = "max"

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.count_include_pad = count_include_pad

    def forward(self, params, state, x, *, train, key):
        x = jnp.asarray(x)
        if x.ndim != self.ndim + 2:
            raise TypeError(f"{self!r}: expected an input of rank {self.ndim + 2}, got {x.shape}")
        if self.kind == "max":
            return _conv.max_pool(x, self.kernel_size, self.stride, self.padding), state
        return _conv.avg_pool(x, self.kernel_size, self.stride, self.padding,
                              self.count_include_pad), state


class MaxPool1d(_Pool):
    ndim, kind = 1, "max"


class MaxPool2d(_Pool):
    ndim, kind = 2, "max"


class AvgPool1d(_Pool):
    ndim, kind = 1, "avg"


class AvgPool2d(_Pool):
    ndim, kind = 2, "avg"


class GlobalAvgPool(Layer):
    """Mean over all spatial dims: (N, C, *spatial) -> (N, C) (keepdims keeps them as 1s)."""

    def __init__(self, keepdims=False):
        self.keepdims = keepdims

    def forward(self, params, state, x, *, train, key):
        x = jnp.asarray(x)
        return x.mean(axis=tuple(range(2, x.ndim)), keepdims=self.keepdims), state


class GlobalMaxPool(GlobalAvgPool):
    def forward(self, params, state, x, *, train, key):
        x = jnp.asarray(x)
        return x.max(axis=tuple(range(2, x.ndim)), keepdims=self.keepdims), state


class Flatten(Layer):
    """Merges dims start_dim..end_dim (PyTorch's defaults: all but the batch dim)."""

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, params, state, x, *, train, key):
        x = jnp.asarray(x)
        s, e = self.start_dim % x.ndim, self.end_dim % x.ndim
        return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:]), state


class Dropout(Layer):
    """Zeroes each element with probability `rate` in training and scales the rest by
    1 / (1 - rate); the identity in evaluation.  Training needs a PRNG key."""

    def __init__(self, rate=0.5):
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = rate

    def forward(self, params, state, x, *, train, key):
        if not train or self.rate == 0:
            return x, state
        if key is None:
            raise TypeError(f"{self!r} in training needs a PRNG key: apply(..., train=True, "
                            "key=key)")
        x = jnp.asarray(x)
        keep = random.bernoulli(key, 1.0 - self.rate, x.shape)
        return jnp.where(keep, x / (1.0 - self.rate), jnp.zeros_like(x)), state


class Embedding(Layer):
    """Rows of `weight` (num_embeddings, embedding_dim) looked up by integer ids."""

    def __init__(self, num_embeddings, embedding_dim, weight_init=None, dtype=jnp.float32):
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight_init, self.dtype = weight_init, dtype

    def init(self, key):
        init = self.weight_init or inits.normal(1.0)
        return {"weight": init(key, (self.num_embeddings, self.embedding_dim), self.dtype)}

    def forward(self, params, state, ids, *, train, key):
        ids = jnp.asarray(ids)
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise TypeError(f"{self!r}: ids must be integers, got {ids.dtype}")
        return jnp.take(params["weight"], ids, axis=0), state


def _scale_and_shift(shape, dtype):
    """A normalization layer's affine parameters: scale 1 and shift 0 (PyTorch's names)."""
    return {"weight": jnp.ones(shape, dtype), "bias": jnp.zeros(shape, dtype)}


class _BatchNorm(Layer):
    """Normalizes each channel (dim 1) over the batch and spatial dims.  Training uses the
    batch's statistics and updates the running ones as PyTorch does: new = (1 - momentum) *
    old + momentum * batch (momentum=None: the cumulative average over the
    `num_batches_tracked` batches seen), the running variance unbiased; evaluation uses the
    running statistics.  With track_running_stats=False there is no state and the batch's
    statistics are used always."""

    ranks = (2, 3)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, weight_init=None, bias_init=None,
                 dtype=jnp.float32):
        self.num_features, self.eps, self.momentum, self.affine = (num_features, eps,
                                                                   momentum, affine)
        self.track_running_stats, self.dtype = track_running_stats, dtype
        self.weight_init, self.bias_init = weight_init, bias_init

    def init(self, key):
        if not self.affine:
            return {}
        params = _scale_and_shift((self.num_features,), self.dtype)
        kw, kb = _pair_keys(key)
        for (name, init), k in zip((("weight", self.weight_init), ("bias", self.bias_init)),
                                   (kw, kb)):
            if init is not None:
                params[name] = init(k, (self.num_features,), self.dtype)
        return params

    def init_state(self):
        if not self.track_running_stats:
            return {}
        return {"running_mean": jnp.zeros((self.num_features,), self.dtype),
                "running_var": jnp.ones((self.num_features,), self.dtype),
                "num_batches_tracked": jnp.zeros((), jnp.int32)}

    def forward(self, params, state, x, *, train, key):
        x = jnp.asarray(x)
        if x.ndim not in self.ranks or x.shape[1] != self.num_features:
            raise TypeError(f"{self!r}: expected (N, {self.num_features}, ...) of rank "
                            f"{' or '.join(map(str, self.ranks))}, got {x.shape}")
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if train or not self.track_running_stats:
            mean = x.mean(axis=axes)
            var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)
        else:
            mean, var = state["running_mean"], state["running_var"]
        if train and self.track_running_stats:
            state = self._updated(state, mean, var, math.prod(x.shape[a] for a in axes))
        y = (x - mean.reshape(shape)) * lax.rsqrt(var.reshape(shape) + self.eps)
        if self.affine:
            y = y * params["weight"].reshape(shape) + params["bias"].reshape(shape)
        return y, state

    def _updated(self, state, mean, var, count):
        batches = state["num_batches_tracked"] + 1
        m = self.momentum
        if m is None:
            m = 1.0 / batches.astype(mean.dtype)
        unbiased = var * (count / max(count - 1, 1))
        return {"running_mean": lax.stop_gradient((1 - m) * state["running_mean"] + m * mean),
                "running_var": lax.stop_gradient((1 - m) * state["running_var"]
                                                 + m * unbiased),
                "num_batches_tracked": batches}


class BatchNorm1d(_BatchNorm):
    ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    ranks = (4,)


class LayerNorm(Layer):
    """Normalizes over the trailing `normalized_shape` dims of each example."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=jnp.float32):
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps, self.elementwise_affine, self.dtype = eps, elementwise_affine, dtype

    def init(self, key):
        return (_scale_and_shift(self.normalized_shape, self.dtype)
                if self.elementwise_affine else {})

    def forward(self, params, state, x, *, train, key):
        x = jnp.asarray(x)
        n = len(self.normalized_shape)
        if x.shape[x.ndim - n:] != self.normalized_shape:
            raise TypeError(f"{self!r}: input {x.shape} does not end in "
                            f"{self.normalized_shape}")
        axes = tuple(range(x.ndim - n, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        y = (x - mean) * lax.rsqrt(var + self.eps)
        if self.elementwise_affine:
            y = y * params["weight"] + params["bias"]
        return y, state


class GroupNorm(Layer):
    """Normalizes groups of channels (dim 1) of each example over the group and spatial dims."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=jnp.float32):
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels {num_channels} must be divisible by "
                             f"num_groups {num_groups}")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                     eps, affine)
        self.dtype = dtype

    def init(self, key):
        return _scale_and_shift((self.num_channels,), self.dtype) if self.affine else {}

    def forward(self, params, state, x, *, train, key):
        x = jnp.asarray(x)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise TypeError(f"{self!r}: expected (N, {self.num_channels}, ...), got {x.shape}")
        N, G = x.shape[0], self.num_groups
        g = x.reshape((N, G, -1))
        mean = g.mean(axis=2, keepdims=True)
        var = ((g - mean) ** 2).mean(axis=2, keepdims=True)
        y = ((g - mean) * lax.rsqrt(var + self.eps)).reshape(x.shape)
        if self.affine:
            shape = (1, -1) + (1,) * (x.ndim - 2)
            y = y * params["weight"].reshape(shape) + params["bias"].reshape(shape)
        return y, state


class MultiHeadAttention(Layer):
    """Scaled dot-product attention over `num_heads` heads, inputs (N, L, E) (batch first).

        y = attn.apply(params, query)                     # self-attention
        y = attn.apply(params, query, key_value)          # cross-attention
        y = attn.apply(params, query, mask=mask)          # mask: bool, True = may attend,
                                                          # broadcastable to (N, H, Lq, Lk)

    Parameters: "query", "key", "value", "out", each {"weight": (in, out), "bias"}.
    Dropout on the attention weights (rate `dropout`) in training needs a PRNG key."""

    def __init__(self, embed_dim, num_heads, bias=True, kdim=None, vdim=None, dropout=0.0,
                 dtype=jnp.float32):
        if embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} must be divisible by "
                             f"num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.bias = embed_dim, num_heads, bias
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.dropout, self.dtype = dropout, dtype
        E = embed_dim
        self._proj = {"query": Linear(E, E, bias, dtype=dtype),
                      "key": Linear(self.kdim, E, bias, dtype=dtype),
                      "value": Linear(self.vdim, E, bias, dtype=dtype),
                      "out": Linear(E, E, bias, dtype=dtype)}

    def init(self, key):
        keys = split_key(key, 4)
        return {name: layer.init(k) for (name, layer), k in zip(self._proj.items(), keys)}

    def _heads(self, t):
        N, L, _ = t.shape
        H = self.num_heads
        return t.reshape(N, L, H, self.embed_dim // H).transpose(0, 2, 1, 3)  # N H L D

    def forward(self, params, state, query, key_value=None, *, mask=None, train, key):
        query = jnp.asarray(query)
        kv = query if key_value is None else jnp.asarray(key_value)
        if query.ndim != 3 or query.shape[-1] != self.embed_dim or kv.ndim != 3 \
                or kv.shape[0] != query.shape[0]:
            raise TypeError(f"{self!r}: expected query (N, L, {self.embed_dim}) and key_value "
                            f"(N, S, E), got {query.shape} and {kv.shape}")

        def project(name, t):
            return self._proj[name].forward(params[name], {}, t, train=train, key=None)[0]

        q = self._heads(project("query", query))
        k = self._heads(project("key", kv))
        v = self._heads(project("value", kv))
        scores = (q @ jnp.swapaxes(k, -1, -2)) * (1.0 / math.sqrt(q.shape[-1]))
        if mask is not None:
            scores = jnp.where(jnp.asarray(mask), scores, jnp.asarray(-jnp.inf, scores.dtype))
        scores = scores - lax.stop_gradient(scores.max(axis=-1, keepdims=True))
        weights = jnp.exp(scores)
        weights = weights / weights.sum(axis=-1, keepdims=True)
        if train and self.dropout:
            weights, _ = Dropout(self.dropout).forward({}, {}, weights, train=True, key=key)
        out = (weights @ v).transpose(0, 2, 1, 3).reshape(query.shape[:2] + (self.embed_dim,))
        return project("out", out), state
