"""PyTorch state_dicts both ways: `load_torch_state_dict` (a state_dict as NumPy arrays, a
.pt file or an .npz: no torch needed) into an fjit.nn model's params and state, and
`to_torch_state_dict` back, for any module tree.

Names match by construction (children by attribute name or position, "weight", "bias",
"running_mean", "num_batches_tracked", ...); what differs is layout, converted here:
- Linear: PyTorch keeps weight as (out, in), fjit as (in, out) so the forward is x @ weight:
  transposed both ways;
- MultiHeadAttention: PyTorch packs the query/key/value projections into in_proj_weight
  (3E, E) and in_proj_bias, and names the output projection out_proj: split and transposed
  (packed again on the way back);
- convolutions, BatchNorm, Embedding, LayerNorm and GroupNorm have the same layout.  A state
  dict from before PyTorch 0.4.1 has no num_batches_tracked: it starts at 0.
"""
from __future__ import annotations

import numpy as np

from .. import numpy as jnp
from .. import random
from ..api import eval_shape
from ..serialization import load_state_dict
from . import layers as L
from .module import Layer


class StateDictError(ValueError):
    """A state_dict that does not fit the model: missing, unexpected or mis-shaped entries."""


class _Reader:
    """Takes a model's arrays out of a state_dict by dotted name, noting every problem (a
    missing entry, a shape that does not fit) so that all are reported at once."""

    def __init__(self, state_dict):
        self.sd, self.used, self.problems = state_dict, set(), []

    def take(self, name, like, transpose=False, default=None):
        """The entry `name` shaped and typed like the model's array `like` (PyTorch's
        load_state_dict also copies into the parameter's dtype), or shaped `like` when it
        is a shape."""
        shape = like if isinstance(like, tuple) else np.shape(like)
        if name not in self.sd and default is not None:
            return default
        if name not in self.sd:
            self.problems.append(f"missing {name!r} (shape {tuple(shape)})")
            return None
        self.used.add(name)
        value = np.asarray(self.sd[name])
        if transpose:
            value = value.T
        if value.shape != tuple(shape):
            self.problems.append(
                f"{name!r} has shape {np.shape(self.sd[name])}, the model expects "
                f"{tuple(shape)}" + (" (after transposing PyTorch's (out, in))"
                                     if transpose else ""))
            return None
        dtype = getattr(like, "dtype", None)
        return jnp.asarray(value if dtype is None else value.astype(dtype))


def _convert(module, prefix, params, state, reader):
    """(params, state) of `module` with every array taken from the state_dict: a composite
    module's own parameters and buffers and its children's, by dotted name; a leaf layer's
    arrays converted from PyTorch's layout where it differs."""
    if not isinstance(module, Layer):
        children = dict(module.named_children())
        new_p, new_s = {}, {}
        for tree, new in ((params, new_p), (state, new_s)):
            for name, value in tree.items():
                if name not in children:
                    new[name] = reader.take(prefix + name, value)
        for name, child in children.items():
            p, s = _convert(child, f"{prefix}{name}.", params.get(name, {}),
                            state.get(name, {}), reader)
            if p:
                new_p[name] = p
            if s:
                new_s[name] = s
        return new_p, new_s
    if isinstance(module, L.MultiHeadAttention):
        E = module.embed_dim
        new_p = {}
        packed = f"{prefix}in_proj_weight" in reader.sd
        for k, part in enumerate(("query", "key", "value")):
            width = {"query": E, "key": module.kdim, "value": module.vdim}[part]
            if packed:
                w = reader.take(f"{prefix}in_proj_weight", (3 * E, E))
                w = None if w is None else w[k * E:(k + 1) * E]
            else:
                w = reader.take(f"{prefix}{part[0]}_proj_weight", (E, width))
            entry = {"weight": None if w is None else w.T}
            if module.bias:
                bias = reader.take(f"{prefix}in_proj_bias", (3 * E,))
                entry["bias"] = None if bias is None else bias[k * E:(k + 1) * E]
            new_p[part] = entry
        out = {"weight": reader.take(f"{prefix}out_proj.weight", (E, E), transpose=True)}
        if module.bias:
            out["bias"] = reader.take(f"{prefix}out_proj.bias", (E,))
        new_p["out"] = out
        return new_p, {}
    transpose = isinstance(module, L.Linear)
    new_p = {name: reader.take(prefix + name, value,
                               transpose=transpose and name == "weight")
             for name, value in params.items()}
    new_s = {name: reader.take(prefix + name, value,
                               default=value if name == "num_batches_tracked" else None)
             for name, value in state.items()}
    return new_p, new_s


def load_torch_state_dict(model, state_dict, strict=True, key=None):
    """(params, state) for `model` from a PyTorch state_dict given as a mapping of names to
    NumPy arrays (or a path to an .npz of them, see fjit.serialization.load_state_dict).
    With strict=True (PyTorch's default) entries the model does not use are an error."""
    if isinstance(state_dict, (str, bytes)) or hasattr(state_dict, "__fspath__"):
        state_dict = load_state_dict(state_dict)
    template = eval_shape(model.init, random.PRNGKey(0) if key is None else key)  # shapes only
    reader = _Reader(dict(state_dict))
    params, state = _convert(model, "", template, model.init_state(), reader)
    problems = list(reader.problems)
    if strict:
        problems += [f"unexpected {name!r}" for name in sorted(set(state_dict) - reader.used)]
    if problems:
        raise StateDictError(f"load_torch_state_dict: the state_dict does not fit "
                             f"{type(model).__name__} ({len(problems)} problems):\n  "
                             + "\n  ".join(problems))
    return params, state


def _host(value):
    """A writable NumPy copy (torch.from_numpy warns on read-only arrays)."""
    return np.array(value)


_LEAF_ORDER = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _pytorch_order(entries):
    """A leaf layer's entry names in the order PyTorch declares them (a pytree transform
    such as grad may have sorted them)."""
    known = [name for name in _LEAF_ORDER if name in entries]
    return known + [name for name in entries if name not in _LEAF_ORDER]


def _leaf_to_torch(module, prefix, params, state, out):
    if isinstance(module, L.MultiHeadAttention):
        parts = ("query", "key", "value")
        if module.kdim == module.vdim == module.embed_dim:
            out[prefix + "in_proj_weight"] = np.concatenate(
                [_host(params[p]["weight"]).T for p in parts])
        else:
            for p in parts:
                out[f"{prefix}{p[0]}_proj_weight"] = _host(params[p]["weight"].T)
        if module.bias:
            out[prefix + "in_proj_bias"] = np.concatenate(
                [_host(params[p]["bias"]) for p in parts])
        out[prefix + "out_proj.weight"] = _host(params["out"]["weight"].T)
        if module.bias:
            out[prefix + "out_proj.bias"] = _host(params["out"]["bias"])
        return
    transpose = isinstance(module, L.Linear)
    for name in _pytorch_order(params):
        value = _host(params[name])
        if transpose and name == "weight":
            value = np.ascontiguousarray(value.T)
        out[prefix + name] = value
    for name in _pytorch_order(state):
        value = state[name]
        value = _host(value)
        out[prefix + name] = value.astype(np.int64) if name == "num_batches_tracked" else value


def _to_torch(module, prefix, params, state, out):
    if isinstance(module, Layer):
        _leaf_to_torch(module, prefix, params, state, out)
        return
    children = dict(module.named_children())
    declared = (list(vars(module).get("_parameters", {}))
                + list(vars(module).get("_buffers", {})))
    for tree in (params, state):  # a module's own parameters, then its buffers
        own = [name for name in tree if name not in children]
        for name in sorted(own, key=lambda n: declared.index(n) if n in declared else 1 << 30):
            out[prefix + name] = _host(tree[name])
    for name, child in children.items():   # then the children, in declaration order
        _to_torch(child, f"{prefix}{name}.", params.get(name, {}), state.get(name, {}), out)


def to_torch_state_dict(model, params, state=None):
    """{dotted name: NumPy array} in PyTorch's names, layouts and order for `model`'s params
    and state: `torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in
    to_torch_state_dict(model, params, state).items()})`."""
    out = {}
    _to_torch(model, "", params, {} if state is None else state, out)
    return out
