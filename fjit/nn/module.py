"""Modules: PyTorch's way of writing a model, over fjit's functional core.

Parameters and state are plain pytrees (nested dicts of arrays) that the user holds and
passes in, so grad, jit, vmap and the optimizers see ordinary pytrees and nothing is hidden
in objects.  A model is written as in PyTorch: children and parameters are attributes set in
`__init__`, and `forward` calls the children on inputs alone:

    class Block(nn.Module):
        def __init__(self, c):
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(c)
            self.scale = nn.Parameter(jnp.ones(()))

        def forward(self, x):
            return nn.relu(x + self.scale * self.bn(self.conv(x)))

    block = Block(16)
    params = block.init(key)            # {"conv": {"weight"}, "bn": {...}, "scale": ...}
    state = block.init_state()          # {"bn": {"running_mean", "running_var", ...}}
    y, state = block.apply(params, x, state=state, train=True)

`init` and `init_state` are derived from the attributes, and `apply` threads the state:
while a module's `forward` runs, calling one of its children (`self.bn(x)`) runs the child on
the child's entry of the params and state, and the child's new state goes into the state
`apply` returns, so none is lost.  Names are PyTorch's dotted paths (`layer1.0.conv1.weight`,
`bn1.running_mean`), which is what makes a PyTorch state_dict load by name.

Why this design rather than flax's or equinox's: the params stay a plain pytree apart from
the module (as in flax, unlike equinox, whose modules are the pytree), and there is no
`setup`/`compact` scope to learn (unlike flax): the code is PyTorch's.  The price is that a
child must be called from its parent's `forward` (or a descendant's) during `apply`: the
child finds its params through the parent's running call.

Leaf layers (Linear, Conv2d, BatchNorm2d, ...) are `Layer`s: they compute from their params
explicitly, `forward(self, params, state, *inputs, train, key) -> (output, new_state)`.
"""
from __future__ import annotations

import inspect
import threading

from .. import random
from ..tree_util import tree_leaves, tree_structure


def split_key(key, n):
    return list(random.split(key, n)) if key is not None else [None] * n


class Parameter:
    """A module's own trainable array, declared as an attribute in `__init__`: a given
    initial value (`nn.Parameter(jnp.zeros(3))`), or a shape drawn by an initializer
    (`nn.Parameter(shape=(3, 4), init=nn.initializers.normal())`).  During the module's
    forward the attribute reads the array in the params being applied."""

    def __init__(self, value=None, *, shape=None, init=None, dtype=None):
        from .. import numpy as jnp
        if (value is None) == (init is None):
            raise TypeError("nn.Parameter: give an initial value, or a shape and an init "
                            "(an fjit.nn.initializers function)")
        if value is not None:
            value = jnp.asarray(value, dtype)
            shape, dtype = value.shape, value.dtype
        elif shape is None:
            raise TypeError("nn.Parameter(init=...) needs a shape")
        self.value, self.shape, self.init = value, tuple(shape), init
        self.dtype = dtype if dtype is not None else jnp.float32

    def initial(self, key):
        if self.value is not None:
            return self.value
        return self.init(key, self.shape, self.dtype)

    def __repr__(self):
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class _Call(threading.local):
    """The module calls running in this thread (innermost last)."""

    def __init__(self):
        self.frames = []


_calls = _Call()


class _Frame:
    """One module's running forward: its params, its state as updated so far, how it runs."""

    __slots__ = ("module", "params", "state", "train", "key", "keys_used")

    def __init__(self, module, params, state, train, key):
        self.module, self.params, self.state = module, params, dict(state)
        self.train, self.key, self.keys_used = train, key, 0

    def next_key(self):
        """A PRNG key of its own for each child call that may need one (Dropout)."""
        if self.key is None:
            return None
        self.keys_used += 1
        return random.fold_in(self.key, self.keys_used)

    def call(self, path, child, args, kwargs):
        params, state = self.params, self.state
        for name in path[:-1]:
            params, state = params.get(name, {}), state.get(name, {})
        name = path[-1]
        out, new = child._run(params.get(name, {}), state.get(name, {}), args, kwargs,
                              self.train, self.next_key())
        if new:
            self._set_state(path, new)
        return out

    def _set_state(self, path, value):
        """The state with `value` at `path`, the dicts along the way copied (the caller's
        dicts are never written)."""
        node = self.state
        for name in path[:-1]:
            node[name] = dict(node.get(name, {}))
            node = node[name]
        node[path[-1]] = value


def _running_frame(module):
    """The frame of `module`'s own running forward, if it is the innermost call."""
    frames = _calls.frames
    if frames and frames[-1].module is module:
        return frames[-1]
    return None


class Module:
    """A model or a block of one, PyTorch-style: set children (Modules, lists of them) and
    `Parameter`s as attributes in `__init__`, buffers with `register_buffer`, and compute in
    `forward(self, *inputs)`, calling children on inputs.  `init`, `init_state` and the
    state threading are derived (see the module docstring)."""

    # ---- declaring -------------------------------------------------------------------------
    def __setattr__(self, name, value):
        d = self.__dict__
        if isinstance(value, Parameter):
            d.setdefault("_parameters", {})[name] = value
            d.pop(name, None)
            return
        buffers = d.get("_buffers", {})
        if name in buffers:
            frame = _running_frame(self)
            if frame is None:
                raise AttributeError(f"{type(self).__name__}.{name} is a buffer: it takes a "
                                     "new value only inside the module's forward")
            frame.state[name] = value
            return
        if isinstance(value, (list, tuple)) and value and \
                all(isinstance(v, Module) for v in value):
            value = ModuleList(value)
        object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # only for names not found the usual way: parameters and buffers
        d = self.__dict__
        for kind, table in (("params", d.get("_parameters", {})), ("state", d.get("_buffers",
                                                                                  {}))):
            if name in table:
                frame = _running_frame(self)
                if frame is None:
                    return table[name]
                return getattr(frame, kind)[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def register_buffer(self, name, value):
        """A non-trainable array kept in the state (a running statistic, a counter) under
        `name`; the module's forward reads it as `self.<name>` and sets a new value the same
        way, which goes into the state `apply` returns."""
        from .. import numpy as jnp
        self.__dict__.setdefault("_buffers", {})[name] = jnp.asarray(value)

    def named_children(self):
        """(name, child) for each child module, in the order they were set."""
        return [(name, value) for name, value in vars(self).items()
                if isinstance(value, Module)]

    def children(self):
        return [child for _, child in self.named_children()]

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module ("") and every descendant, parents first."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def _path_to(self, module):
        """The names leading from this module to a descendant, or None."""
        for name, child in self.named_children():
            if child is module:
                return (name,)
        for name, child in self.named_children():
            below = child._path_to(module)
            if below is not None:
                return (name,) + below
        return None

    # ---- the functional core ---------------------------------------------------------------
    def init(self, key):
        """The trainable parameters: the module's own `Parameter`s, then each child's (a
        nested dict; children without parameters leave no entry)."""
        own = self.__dict__.get("_parameters", {})
        children = self.named_children()
        keys = split_key(key, len(own) + len(children))
        params = {name: p.initial(k) for (name, p), k in zip(own.items(), keys)}
        for (name, child), k in zip(children, keys[len(own):]):
            p = child.init(k)
            if p:
                params[name] = p
        return params

    def init_state(self):
        """The non-trainable state: the module's buffers, then each child's."""
        state = dict(self.__dict__.get("_buffers", {}))
        for name, child in self.named_children():
            s = child.init_state()
            if s:
                state[name] = s
        return state

    @property
    def has_state(self):
        return bool(tree_leaves(self.init_state()))

    def forward(self, *inputs, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def _run(self, params, state, inputs, kwargs, train, key):
        """(output, new state) of this module's forward on `params` and `state`."""
        frame = _Frame(self, params, state, train, key)
        _calls.frames.append(frame)
        try:
            out = self.forward(*inputs, **kwargs)
        finally:
            _calls.frames.pop()
        return out, frame.state

    @property
    def training(self):
        """Whether the running call is a training one (inside forward; else False)."""
        frames = _calls.frames
        return bool(frames) and frames[-1].train

    def apply(self, params, *inputs, state=None, train=False, key=None, **kwargs):
        """The output, or (output, new state) when `state` is given."""
        if state is None:
            initial = self.init_state()
            if tree_leaves(initial):
                raise TypeError(f"{self!r} keeps running statistics (state): call "
                                "apply(params, x, state=model.init_state(), ...) and keep the "
                                "state it returns")
            return self._run(params, initial, inputs, kwargs, train, key)[0]
        return self._run(params, state, inputs, kwargs, train, key)

    def __call__(self, *args, **kwargs):
        """Inside a running forward, a child called on inputs; otherwise `apply`."""
        frames = _calls.frames
        if frames:
            path = frames[-1].module._path_to(self)
            if path is not None:
                return frames[-1].call(path, self, args, kwargs)
        return self.apply(*args, **kwargs)

    def __repr__(self):
        children = self.named_children()
        if not children:
            return _constructor_repr(self)
        inner = "\n".join(f"  ({name}): " + repr(child).replace("\n", "\n  ")
                          for name, child in children)
        return f"{type(self).__name__}(\n{inner}\n)"


def _constructor_repr(module):
    """The constructor call, with only the arguments that differ from their defaults."""
    signature = inspect.signature(type(module).__init__).parameters
    args = []
    for name, p in signature.items():
        if name == "self" or name not in vars(module):
            continue
        value = vars(module)[name]
        if p.default is inspect.Parameter.empty:
            args.append(repr(value))
        elif value is not p.default and value != p.default:
            args.append(f"{name}={value!r}")
    return f"{type(module).__name__}({', '.join(args)})"


class Layer(Module):
    """A leaf that computes from its params explicitly: override `init`, `init_state` (if it
    keeps state) and `forward(self, params, state, *inputs, train, key) -> (output,
    new_state)`.  A new state must keep every entry of the old one: dropping one (a running
    statistic's update lost) is an error."""

    def init(self, key):
        return {}

    def init_state(self):
        return {}

    def named_children(self):
        return []

    def forward(self, params, state, *inputs, train, key, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def _run(self, params, state, inputs, kwargs, train, key):
        out, new = self.forward(params, state, *inputs, train=train, key=key, **kwargs)
        if state and tree_structure(new) != tree_structure(state):
            missing = sorted(set(_paths(state)) - set(_paths(new)))
            raise TypeError(f"{self!r}: forward returned a state "
                            + (f"without {', '.join(missing)}" if missing else
                               f"shaped {tree_structure(new)}, not "
                               f"{tree_structure(state)}")
                            + ": return the whole new state (an update dropped is lost)")
        return out, new

    def __repr__(self):
        return _constructor_repr(self)


def _paths(tree, prefix=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix


class Lambda(Layer):
    """A parameter-free function of one input (an activation, a reshape) as a layer."""

    def __init__(self, fn):
        self.fn = fn

    def forward(self, params, state, x, *, train, key):
        return self.fn(x), state

    def __repr__(self):
        return getattr(self.fn, "__name__", repr(self.fn))


class Identity(Layer):
    """Its input, unchanged (PyTorch's nn.Identity; extra constructor arguments ignored)."""

    def __init__(self, *args, **kwargs):
        pass

    def forward(self, params, state, x, *, train, key):
        return x, state


def as_module(layer):
    if isinstance(layer, Module):
        return layer
    if callable(layer):
        return Lambda(layer)
    raise TypeError(f"nn: expected a layer (nn.Module) or a function, got {layer!r}")


class ModuleList(Module):
    """Children held in a list, named by position ("0", "1", ...) as in PyTorch."""

    def __init__(self, modules=()):
        object.__setattr__(self, "_items", [as_module(m) for m in modules])

    def named_children(self):
        return [(str(i), m) for i, m in enumerate(self._items)]

    def append(self, module):
        self._items.append(as_module(module))
        return self

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ModuleList(self._items[i])
        return self._items[i]

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    def forward(self, *inputs):
        raise TypeError("a ModuleList holds children; call them from the parent's forward")


class ModuleDict(Module):
    """Children held by name, in insertion order, as in PyTorch."""

    def __init__(self, modules=None):
        object.__setattr__(self, "_items", {k: as_module(m)
                                            for k, m in dict(modules or {}).items()})

    def named_children(self):
        return list(self._items.items())

    def __getitem__(self, name):
        return self._items[name]

    def __setitem__(self, name, module):
        self._items[name] = as_module(module)

    def __len__(self):
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    def keys(self):
        return self._items.keys()

    def values(self):
        return self._items.values()

    def items(self):
        return self._items.items()

    def forward(self, *inputs):
        raise TypeError("a ModuleDict holds children; call them from the parent's forward")


class Sequential(ModuleList):
    """Layers applied in order; children are named by position like PyTorch's Sequential
    ("0", "1", ...), layers without parameters or state leave no entry."""

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        super().__init__(layers)

    @property
    def layers(self):
        return tuple(self._items)

    def forward(self, x):
        for layer in self._items:
            x = layer(x)
        return x

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Sequential(*self._items[i])
        return self._items[i]
