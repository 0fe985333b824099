"""`from_torch(torch_module)`: a PyTorch model as an fjit module, with its params and state.

    model, params, state = nn.from_torch(torchvision.models.resnet18())
    logits, state = model.apply(params, images, state=state, train=True)

How: torch.fx traces the model's forward into a graph of calls.  PyTorch's own layers
(Conv2d, BatchNorm2d, Linear, ReLU, ...) stay whole in the graph and become the fjit layers
of the same names and hyperparameters; the user's modules (a residual block, the model
itself) are traced through, and their tree is kept as fjit modules of the same names, so
every parameter keeps its dotted name and PyTorch's state_dict loads by name
(`load_torch_state_dict`).  Calls to torch functions and tensor methods become their fjit
counterparts (torch_ops.py).  The converted module's forward replays the graph; it holds no
torch objects, so it runs, jits and differentiates without torch.

What cannot be converted (a layer or function with no counterpart, an option fjit lacks,
control flow torch.fx cannot trace) is a ConversionError listing every such call with the
source line it comes from.  torch.fx records `self.training` as a constant; the converted
model's dropout and BatchNorm follow `apply(train=...)` instead.
"""
from __future__ import annotations

import inspect
import re

import numpy as np

from .. import numpy as jnp
from . import activation_layers as AL
from . import layers as L
from . import resize as R
from . import torch_ops
from .module import Identity, Layer, Module, Parameter, _calls
from .torch_compat import load_torch_state_dict

__all__ = ["from_torch", "ConversionError", "TorchGraphModule"]


class ConversionError(TypeError):
    """A PyTorch model with parts fjit cannot convert; the message lists each, with its
    source line."""


# ---- PyTorch layers -> fjit layers ---------------------------------------------------------

_LAYERS = {cls.__name__: cls for cls in (
    L.Linear, L.Conv1d, L.Conv2d, L.Conv3d, L.ConvTranspose1d, L.ConvTranspose2d,
    L.BatchNorm1d, L.BatchNorm2d, L.LayerNorm, L.GroupNorm, L.Embedding, L.Dropout,
    L.MaxPool1d, L.MaxPool2d, L.AvgPool1d, L.AvgPool2d, L.Flatten, Identity, R.Upsample,
    R.AdaptiveAvgPool1d, R.AdaptiveAvgPool2d, R.AdaptiveMaxPool1d, R.AdaptiveMaxPool2d)}
_LAYERS.update({name: getattr(AL, name) for name in AL.ACTIVATION_LAYERS})
_RENAMED = {"rate": "p"}           # fjit's argument name -> PyTorch's attribute
_NOT_ARGUMENTS = {"self", "dtype", "weight_init", "bias_init"}


def _unsupported_options(tmod):
    """The options of a PyTorch layer that its fjit counterpart does not have."""
    found = []

    def check(attr, ok):
        if hasattr(tmod, attr) and not ok(getattr(tmod, attr)):
            found.append(f"{attr}={getattr(tmod, attr)!r}")

    check("padding_mode", lambda v: v == "zeros")
    check("ceil_mode", lambda v: not v)
    check("return_indices", lambda v: not v)
    check("divisor_override", lambda v: v is None)
    check("padding_idx", lambda v: v is None)
    check("max_norm", lambda v: v is None)
    if type(tmod).__name__.startswith("MaxPool"):
        check("dilation", lambda v: v in (1, (1,), (1, 1), (1, 1, 1)))
    if type(tmod).__name__ == "LayerNorm" and tmod.elementwise_affine:
        check("bias", lambda v: v is not None)
    if type(tmod).__name__.startswith("Upsample"):
        check("recompute_scale_factor", lambda v: not v)
    return found


def _layer_arguments(cls, tmod):
    """The fjit layer's constructor arguments, read off the PyTorch layer's attributes of
    the same names (a bias is whether the layer has one)."""
    kwargs = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name in _NOT_ARGUMENTS or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        source = _RENAMED.get(name, name)
        if not hasattr(tmod, source):
            continue
        value = getattr(tmod, source)
        if name == "bias" and not isinstance(value, bool):
            value = value is not None
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return kwargs


def _is_torch_layer(tmod, torch):
    containers = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)
    return type(tmod).__module__.startswith("torch.nn.") and not isinstance(tmod, containers)


class _Container(Module):
    """A user module (or a PyTorch container) of the converted model: it keeps the names of
    its children, parameters and buffers; the root's graph does its computing."""

    def __init__(self, kind):
        object.__setattr__(self, "kind", kind)

    def forward(self, *inputs):
        raise TypeError(f"the converted {self.kind} runs as part of its model's graph")

    def __repr__(self):
        return super().__repr__().replace("_Container", self.kind, 1)


def _mirror(tmod, path, torch, problems, sites, into=None):
    """The fjit module tree mirroring `tmod`'s: PyTorch layers converted, the rest kept as
    containers (`into`, else a new _Container) of the same names; problems noted."""
    where = ".".join(path) or "the model"
    if _is_torch_layer(tmod, torch):
        name = type(tmod).__name__
        site = sites.get(".".join(path), "")
        if name not in _LAYERS:
            problems.append(f"torch.nn.{name} at {where!r}{site}: no fjit layer counterpart")
            return None
        options = _unsupported_options(tmod)
        if options:
            problems.append(f"torch.nn.{name} at {where!r}{site}: {', '.join(options)} is "
                            "not supported")
            return None
        cls = _LAYERS[name]
        return cls(**_layer_arguments(cls, tmod))
    out = _Container(type(tmod).__name__) if into is None else into
    non_persistent = getattr(tmod, "_non_persistent_buffers_set", set())
    for name, p in tmod.named_parameters(recurse=False):
        setattr(out, name, Parameter(p.detach().cpu().numpy()))
    for name, b in tmod.named_buffers(recurse=False):
        if b is not None and name not in non_persistent:
            out.register_buffer(name, b.detach().cpu().numpy())
    for name, child in tmod.named_children():
        converted = _mirror(child, path + (name,), torch, problems, sites)
        if converted is not None:
            setattr(out, name, converted)
    return out


# ---- the graph ---------------------------------------------------------------------------

class _Ref:
    """An argument that is an earlier step's value."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


class _Step:
    """One node of the traced graph: `kind` input, module, attribute, call or output."""
    __slots__ = ("name", "kind", "target", "fn", "args", "kwargs", "where")

    def __init__(self, name, kind, target, fn=None, args=(), kwargs=None, where=""):
        self.name, self.kind, self.target, self.fn = name, kind, target, fn
        self.args, self.kwargs, self.where = args, kwargs or {}, where

    def __repr__(self):
        """The step as a line of Python."""
        if self.kind == "input":
            return f"{self.name} = <input {self.target!r}>"
        if self.kind == "output":
            return f"return {self.args[0]!r}"
        if self.kind == "attribute":
            return f"{self.name} = self.{'.'.join(self.target)}"
        if self.kind == "constant":
            return f"{self.name} = <constant {self.target}>"
        args = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        if self.kind == "module":
            callee = "self." + ".".join(self.target)
        elif self.target in torch_ops.METHODS and self.args:
            callee, args = f"{args[0]}.{self.target}", args[1:]
        else:
            callee = self.target
        return f"{self.name} = {callee}({', '.join(args)})"


_USER_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)\n\s+(.*)')


def _source_line(node):
    """' (at file.py:12: code)' for the innermost user frame that made the node."""
    frames = [f for f in _USER_FRAME.findall(node.stack_trace or "")
              if "/torch/" not in f[0].replace("\\", "/")]
    if not frames:
        return ""
    path, line, _, code = frames[-1]
    return f" (at {path}:{line}: {code.strip()})"


_MODULE_NAMES = {"_operator": "operator", "torch._C._nn": "torch.nn.functional",
                 "torch._C._VariableFunctions": "torch", "torch._C._special": "torch.special"}


def _function_name(fn):
    module = getattr(fn, "__module__", None) or "builtins"
    return f"{_MODULE_NAMES.get(module, module)}.{getattr(fn, '__name__', repr(fn))}"


def _constant(value, torch):
    """An argument with torch objects replaced: dtypes by NumPy's, devices by None, tensors
    by arrays."""
    if isinstance(value, torch.dtype):
        return torch_ops.to_dtype(value)
    if isinstance(value, torch.device):
        return None
    if isinstance(value, torch.Tensor):
        return jnp.asarray(value.detach().cpu().numpy())
    if isinstance(value, torch.Size):
        return tuple(value)
    return value


def _arguments(value, torch):
    import torch.fx
    return torch.fx.node.map_aggregate(
        value, lambda v: _Ref(v.name) if isinstance(v, torch.fx.Node) else _constant(v, torch))


def _steps(graph, tmod, torch, problems):
    steps = []
    for node in graph.nodes:
        where = _source_line(node)
        args, kwargs = _arguments(tuple(node.args), torch), _arguments(dict(node.kwargs), torch)
        if node.op == "placeholder":
            default = args[0] if args else inspect.Parameter.empty
            steps.append(_Step(node.name, "input", node.target, args=(default,)))
        elif node.op == "get_attr":
            value = _attribute(tmod, node.target)
            if isinstance(value, torch.Tensor) and not _is_state(tmod, node.target):
                steps.append(_Step(node.name, "constant", node.target,
                                   args=(_constant(value, torch),)))
            else:
                steps.append(_Step(node.name, "attribute", tuple(node.target.split("."))))
        elif node.op == "call_module":
            steps.append(_Step(node.name, "module", tuple(node.target.split(".")), None, args,
                               kwargs, where))
        elif node.op in ("call_function", "call_method"):
            table = torch_ops.FUNCTIONS if node.op == "call_function" else torch_ops.METHODS
            name = (_function_name(node.target) if node.op == "call_function"
                    else node.target)
            fn = table.get(name)
            if fn is None:
                what = name if node.op == "call_function" else f"Tensor.{name}"
                problems.append(f"{what}{where}: no fjit counterpart")
            steps.append(_Step(node.name, "call", name, fn, args, kwargs, where))
        elif node.op == "output":
            steps.append(_Step(node.name, "output", "output", args=args))
    return steps


def _attribute(tmod, dotted):
    for name in dotted.split("."):
        tmod = getattr(tmod, name)
    return tmod


def _is_state(tmod, dotted):
    """Whether a dotted attribute is a parameter or persistent buffer (in the state_dict)."""
    owner, _, name = dotted.rpartition(".")
    module = _attribute(tmod, owner) if owner else tmod
    return name in dict(module.named_parameters(recurse=False)) or (
        name in dict(module.named_buffers(recurse=False))
        and name not in getattr(module, "_non_persistent_buffers_set", set()))


def _resolve(value, env):
    if isinstance(value, _Ref):
        return env[value.name]
    if isinstance(value, (tuple, list)):
        return type(value)(_resolve(v, env) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, env) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(_resolve(value.start, env), _resolve(value.stop, env),
                     _resolve(value.step, env))
    return value


class TorchGraphModule(Module):
    """A converted PyTorch model: the mirrored tree of fjit modules and the traced graph its
    forward replays (`print(model.code)` shows it)."""

    def __init__(self, kind):
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "_steps", [])

    @property
    def code(self):
        return "\n".join(repr(step) for step in self._steps)

    def _descendant(self, path):
        module = self
        for name in path:
            module = getattr(module, name)
        return module

    def _read(self, frame, path):
        """A parameter or buffer at a dotted path, in PyTorch's layout."""
        for tree in (frame.params, frame.state):
            node = tree
            for name in path:
                node = node.get(name) if isinstance(node, dict) else None
            if node is not None:
                owner = self._descendant(path[:-1])
                if isinstance(owner, L.Linear) and path[-1] == "weight":
                    return jnp.swapaxes(node, 0, 1)      # fjit keeps (in, out)
                return node
        raise KeyError(f"{'.'.join(path)} is in neither the params nor the state")

    def forward(self, *inputs, **kwargs):
        frame = _calls.frames[-1]
        env, position = {}, 0
        for step in self._steps:
            try:
                if step.kind == "input":
                    if position < len(inputs):
                        env[step.name] = inputs[position]
                    elif step.target in kwargs:
                        env[step.name] = kwargs[step.target]
                    elif step.args[0] is not inspect.Parameter.empty:
                        env[step.name] = step.args[0]
                    else:
                        raise TypeError(f"the converted {self.kind} takes an input "
                                        f"{step.target!r}, not given")
                    position += 1
                elif step.kind == "constant":
                    env[step.name] = step.args[0]
                elif step.kind == "attribute":
                    env[step.name] = self._read(frame, step.target)
                elif step.kind == "module":
                    env[step.name] = frame.call(step.target, self._descendant(step.target),
                                                _resolve(step.args, env),
                                                _resolve(step.kwargs, env))
                elif step.kind == "call":
                    env[step.name] = step.fn(*_resolve(step.args, env),
                                             **_resolve(step.kwargs, env))
                else:
                    return _resolve(step.args[0], env)
            except Exception as err:
                if step.where and hasattr(err, "add_note"):
                    err.add_note(f"in the {self.kind} converted from PyTorch, at step "
                                 f"{step!r}{step.where}")
                raise

    def __repr__(self):
        return super().__repr__().replace(type(self).__name__, f"{self.kind} (converted)", 1)


def from_torch(torch_module, concrete_args=None):
    """(module, params, state) for a PyTorch model: an fjit module whose forward is the
    model's traced graph, and PyTorch's weights and buffers in it.  `concrete_args`: values
    torch.fx should fix while tracing (torch.fx.Tracer.trace's argument)."""
    try:
        import torch
        import torch.fx
    except ImportError as err:
        raise ConversionError(f"from_torch needs PyTorch: {err}") from None
    if not isinstance(torch_module, torch.nn.Module):
        raise ConversionError(f"from_torch: expected a torch.nn.Module, got "
                              f"{type(torch_module).__name__}")
    kind = type(torch_module).__name__
    _refuse_tied_weights(torch_module, kind)
    if _is_torch_layer(torch_module, torch):    # one PyTorch layer: nothing to trace
        problems = []
        model = _mirror(torch_module, (), torch, problems, {})
        if problems:
            raise ConversionError(f"from_torch: cannot convert {kind}: {problems[0]}")
        return (model,) + _weights(model, torch_module, torch)

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return _is_torch_layer(m, torch)

    tracer = Tracer()
    tracer.record_stack_traces = True
    try:
        graph = tracer.trace(torch_module, concrete_args)
    except Exception as err:
        raise ConversionError(
            f"from_torch: torch.fx could not trace {kind}'s forward: {type(err).__name__}: "
            f"{err}.  The converter needs a forward whose Python control flow does not "
            "depend on tensor values (pass such values as concrete_args)") from None
    problems = []
    sites = {node.target: _source_line(node) for node in graph.nodes
             if node.op == "call_module"}
    model = _mirror(torch_module, (), torch, problems, sites, into=TorchGraphModule(kind))
    steps = _steps(graph, torch_module, torch, problems)
    if problems:
        raise ConversionError(f"from_torch: cannot convert {kind} ({len(problems)} "
                              "problems):\n  " + "\n  ".join(problems))
    object.__setattr__(model, "_steps", steps)
    return (model,) + _weights(model, torch_module, torch)


def _refuse_tied_weights(torch_module, kind):
    """A parameter shared by two modules (tied embedding and output weights) would become two
    independent entries of the params pytree, trained apart: refused, naming them."""
    names = {}
    for name, p in torch_module.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
    tied = [group for group in names.values() if len(group) > 1]
    if tied:
        raise ConversionError(
            f"from_torch: {kind} shares parameters between modules ("
            + "; ".join(" = ".join(group) for group in tied) + "): fjit's params are a plain "
            "pytree with one entry per name, so tied weights would train apart.  Untie them "
            "in PyTorch first, or write the model with fjit.nn and read the shared weight "
            "through one module")


def _weights(model, torch_module, torch):
    """(params, state) of the converted model: PyTorch's state_dict loaded by name."""
    state_dict = {}
    for name, value in torch_module.state_dict().items():
        value = value.detach().cpu()
        state_dict[name] = (value.float() if value.dtype == torch.bfloat16 else value).numpy()
    return load_torch_state_dict(model, state_dict)
