"""The layer style: a layer object holds hyperparameters only; its parameters and state are
plain pytrees (dicts of arrays) that the user holds and passes in, so grad, jit, vmap and the
optimizers see ordinary pytrees and nothing is hidden in objects.

    model = nn.Sequential(nn.Linear(784, 512), nn.relu, nn.Linear(512, 10))
    params = model.init(key)                      # {"0": {"weight", "bias"}, "2": {...}}
    logits = model.apply(params, x)               # or model(params, x)

Layers with state (BatchNorm's running statistics) or randomness (Dropout) take them as
keywords, and return the new state next to the output when a state is passed in:

    state = model.init_state()
    logits, state = model.apply(params, x, state=state, train=True, key=dropout_key)

Names in params/state are PyTorch's ("weight", "bias", "running_mean", Sequential children by
position), which is what makes loading a PyTorch state_dict a matter of renaming.
"""
from __future__ import annotations

import inspect

from .. import random
from ..tree_util import tree_leaves


def split_key(key, n):
    return list(random.split(key, n)) if key is not None else [None] * n


class Module:
    """Base class: override `init`, `init_state` (if the layer keeps state) and `forward`."""

    def init(self, key):
        """The layer's trainable parameters (a dict; empty when it has none)."""
        return {}

    def init_state(self):
        """The layer's non-trainable state (running statistics); empty for most layers."""
        return {}

    def forward(self, params, state, *inputs, train, key, **kwargs):
        """(output, new_state): the layer's computation."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    @property
    def has_state(self):
        return bool(tree_leaves(self.init_state()))

    def apply(self, params, *inputs, state=None, train=False, key=None, **kwargs):
        """The output, or (output, new state) when `state` is given."""
        if state is None:
            if self.has_state:
                raise TypeError(f"{self!r} keeps running statistics: call apply(params, x, "
                                "state=model.init_state(), ...) and keep the state it returns")
            out, _ = self.forward(params, self.init_state(), *inputs, train=train, key=key,
                                  **kwargs)
            return out
        return self.forward(params, state, *inputs, train=train, key=key, **kwargs)

    __call__ = apply

    def __repr__(self):
        """The constructor call, with only the arguments that differ from their defaults."""
        signature = inspect.signature(type(self).__init__).parameters
        args = []
        for name, p in signature.items():
            if name == "self" or name not in vars(self):
                continue
            value = vars(self)[name]
            if p.default is inspect.Parameter.empty:
                args.append(repr(value))
            elif value is not p.default and value != p.default:
                args.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(args)})"


class Lambda(Module):
    """A parameter-free function of one input (an activation, a reshape) as a layer."""

    def __init__(self, fn):
        self.fn = fn

    def forward(self, params, state, x, *, train, key):
        return self.fn(x), state

    def __repr__(self):
        return getattr(self.fn, "__name__", repr(self.fn))


def as_module(layer):
    if isinstance(layer, Module):
        return layer
    if callable(layer):
        return Lambda(layer)
    raise TypeError(f"nn: expected a layer (nn.Module) or a function, got {layer!r}")


class Sequential(Module):
    """Layers applied in order; children are named by position like PyTorch's Sequential
    ("0", "1", ...), layers without parameters or state leave no entry."""

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        self.layers = tuple(as_module(layer) for layer in layers)

    def init(self, key):
        params = {}
        for i, (layer, k) in enumerate(zip(self.layers, split_key(key, len(self.layers)))):
            p = layer.init(k)
            if p:
                params[str(i)] = p
        return params

    def init_state(self):
        state = {}
        for i, layer in enumerate(self.layers):
            s = layer.init_state()
            if s:
                state[str(i)] = s
        return state

    def forward(self, params, state, x, *, train, key):
        new_state = dict(state)
        keys = split_key(key, len(self.layers))
        for i, (layer, k) in enumerate(zip(self.layers, keys)):
            name = str(i)
            x, s = layer.forward(params.get(name, {}), state.get(name, {}), x, train=train,
                                 key=k)
            if s:
                new_state[name] = s
        return x, new_state

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential(\n  {inner})"
