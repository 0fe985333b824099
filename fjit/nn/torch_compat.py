"""Loading a PyTorch state_dict (saved as NumPy arrays: no torch needed) into an fjit.nn
model's params and state.

Names match by construction (Sequential children by position, "weight", "bias",
"running_mean", ...); what differs is layout, converted here per layer type:
- Linear: PyTorch keeps weight as (out, in), fjit as (in, out): transposed;
- MultiHeadAttention: PyTorch packs the query/key/value projections into in_proj_weight
  (3E, E) and in_proj_bias, and names the output projection out_proj: split and transposed;
- BatchNorm: num_batches_tracked has no counterpart (fjit uses a fixed momentum) and is
  skipped; convolutions, Embedding, LayerNorm and GroupNorm have the same layout.
"""
from __future__ import annotations

import numpy as np

from .. import numpy as jnp
from .. import random
from ..api import eval_shape
from ..serialization import load_state_dict
from . import layers as L
from .module import Lambda, Module, Sequential


class StateDictError(ValueError):
    """A state_dict that does not fit the model: missing, unexpected or mis-shaped entries."""


def _take(sd, used, name, shape, transpose=False):
    if name not in sd:
        raise StateDictError(f"load_torch_state_dict: the state_dict has no entry {name!r}")
    value = np.asarray(sd[name])
    if transpose:
        value = value.T
    if value.shape != tuple(shape):
        raise StateDictError(f"load_torch_state_dict: {name!r} has shape {np.shape(sd[name])}"
                             f", the model expects {tuple(shape)}"
                             + (" (after transposing PyTorch's (out, in))" if transpose else ""))
    used.add(name)
    return jnp.asarray(value)


def _convert(module, prefix, params, state, sd, used):
    """(params, state) of `module` with every array taken from `sd`."""
    if isinstance(module, Sequential):
        new_p, new_s = {}, {}
        for i, layer in enumerate(module.layers):
            name = str(i)
            p, s = _convert(layer, f"{prefix}{name}.", params.get(name, {}),
                            state.get(name, {}), sd, used)
            if p:
                new_p[name] = p
            if s:
                new_s[name] = s
        return new_p, new_s
    if isinstance(module, L.MultiHeadAttention):
        E = module.embed_dim
        new_p = {}
        packed = f"{prefix}in_proj_weight" in sd
        for k, part in enumerate(("query", "key", "value")):
            width = {"query": E, "key": module.kdim, "value": module.vdim}[part]
            if packed:
                w = _take(sd, used, f"{prefix}in_proj_weight", (3 * E, E))[k * E:(k + 1) * E]
            else:
                w = _take(sd, used, f"{prefix}{part[0]}_proj_weight", (E, width))
            entry = {"weight": w.T}
            if module.bias:
                bias = _take(sd, used, f"{prefix}in_proj_bias", (3 * E,))
                entry["bias"] = bias[k * E:(k + 1) * E]
            new_p[part] = entry
        out = {"weight": _take(sd, used, f"{prefix}out_proj.weight", (E, E), transpose=True)}
        if module.bias:
            out["bias"] = _take(sd, used, f"{prefix}out_proj.bias", (E,))
        new_p["out"] = out
        return new_p, {}
    if isinstance(module, Lambda) or type(module).init is Module.init \
            and type(module).init_state is Module.init_state:
        return {}, {}
    transpose = isinstance(module, L.Linear)
    new_p = {name: _take(sd, used, prefix + name, np.shape(value),
                         transpose=transpose and name == "weight")
             for name, value in params.items()}
    new_s = {name: _take(sd, used, prefix + name, np.shape(value))
             for name, value in state.items()}
    if isinstance(module, L._BatchNorm):
        used.add(prefix + "num_batches_tracked")
    return new_p, new_s


def load_torch_state_dict(model, state_dict, strict=True, key=None):
    """(params, state) for `model` from a PyTorch state_dict given as a mapping of names to
    NumPy arrays (or a path to an .npz of them, see fjit.serialization.load_state_dict).
    With strict=True (PyTorch's default) entries the model does not use are an error."""
    if isinstance(state_dict, (str, bytes)) or hasattr(state_dict, "__fspath__"):
        state_dict = load_state_dict(state_dict)
    template = eval_shape(model.init, random.PRNGKey(0) if key is None else key)  # shapes only
    used = set()
    params, state = _convert(model, "", template, model.init_state(), dict(state_dict), used)
    extra = sorted(set(state_dict) - used)
    if strict and extra:
        raise StateDictError(f"load_torch_state_dict: entries the model does not use: "
                             f"{', '.join(extra)}")
    return params, state
