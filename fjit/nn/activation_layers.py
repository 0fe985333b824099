"""Activation layers with PyTorch's names, constructor arguments and defaults (`nn.ReLU()`,
`nn.LeakyReLU(0.2)`, `nn.GELU()` -- exact, as PyTorch's default, where `nn.gelu` follows JAX
and uses the tanh form), for models written as PyTorch writes them.  `inplace` is accepted
and has no effect: arrays are immutable."""
from __future__ import annotations

from .. import numpy as jnp
from . import activations as A
from .module import Layer

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "ELU", "CELU", "SELU", "GELU", "Sigmoid",
           "Tanh", "SiLU", "Mish", "Hardsigmoid", "Hardswish", "Hardtanh",
           "Softplus", "Softmax", "LogSoftmax"]
ACTIVATION_LAYERS = __all__


class _Activation(Layer):
    def forward(self, params, state, x, *, train, key):
        return self.fn(jnp.asarray(x)), state


class _InPlace(_Activation):
    """An activation whose only PyTorch argument is `inplace`."""

    def __init__(self, inplace=False):
        self.inplace = inplace


class ReLU(_InPlace):
    def fn(self, x):
        return A.relu(x)


class ReLU6(_InPlace):
    def fn(self, x):
        return A.relu6(x)


class LeakyReLU(_Activation):
    def __init__(self, negative_slope=0.01, inplace=False):
        self.negative_slope, self.inplace = negative_slope, inplace

    def fn(self, x):
        return A.leaky_relu(x, self.negative_slope)


class ELU(_Activation):
    def __init__(self, alpha=1.0, inplace=False):
        self.alpha, self.inplace = alpha, inplace

    def fn(self, x):
        return A.elu(x, self.alpha)


class CELU(_Activation):
    def __init__(self, alpha=1.0, inplace=False):
        self.alpha, self.inplace = alpha, inplace

    def fn(self, x):
        return A.celu(x, self.alpha)


class SELU(_InPlace):
    def fn(self, x):
        return A.selu(x)


class GELU(_Activation):
    """approximate="none" (PyTorch's default: the erf form) or "tanh"."""

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def fn(self, x):
        return A.gelu(x, approximate=self.approximate == "tanh")


class _Plain(_Activation):
    def __init__(self):
        pass


class Sigmoid(_Plain):
    def fn(self, x):
        return A.sigmoid(x)


class Tanh(_Plain):
    def fn(self, x):
        return jnp.tanh(x)


class SiLU(_InPlace):
    def fn(self, x):
        return A.silu(x)


class Mish(_InPlace):
    def fn(self, x):
        return x * jnp.tanh(A.softplus(x))


class Hardsigmoid(_InPlace):
    def fn(self, x):
        return jnp.clip(x / 6.0 + 0.5, 0.0, 1.0)


class Hardswish(_InPlace):
    def fn(self, x):
        return x * jnp.clip(x / 6.0 + 0.5, 0.0, 1.0)


class Hardtanh(_Activation):
    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def fn(self, x):
        return jnp.clip(x, self.min_val, self.max_val)


class Softplus(_Activation):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch's)."""

    def __init__(self, beta=1.0, threshold=20.0):
        self.beta, self.threshold = beta, threshold

    def fn(self, x):
        z = x * self.beta
        return jnp.where(z > self.threshold, x, A.softplus(z) / self.beta)


def _legacy_dim(ndim):
    """PyTorch's implicit softmax dimension when none is given."""
    return 0 if ndim in (0, 1, 3) else 1


class _AlongDim(_Activation):
    def __init__(self, dim=None):
        self.dim = dim


class Softmax(_AlongDim):
    def fn(self, x):
        return A.softmax(x, axis=_legacy_dim(x.ndim) if self.dim is None else self.dim)


class LogSoftmax(_AlongDim):
    def fn(self, x):
        return A.log_softmax(x, axis=_legacy_dim(x.ndim) if self.dim is None else self.dim)

