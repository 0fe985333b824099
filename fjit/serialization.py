"""Checkpoints: `save(path, tree)` / `load(path)`, in a format that never runs code on load.

A checkpoint is one .npz file (a zip of .npy arrays, written by NumPy, read with
allow_pickle=False): entry `leaf_<k>` holds the k-th array, and entry `__fjit_tree__` holds,
as uint8 bytes, a JSON description of the tree around them:

    {"format": "fjit-checkpoint", "version": 1, "tree": NODE}
    NODE = {"t": "dict", "keys": [str, ...], "v": [NODE, ...]}      (also "ordered_dict")
         | {"t": "list" | "tuple", "v": [NODE, ...]} | {"t": "none"}
         | {"t": "bool" | "int" | "str", "v": value} | {"t": "float", "v": float.hex()}
         | {"t": "array", "leaf": k, "dtype": name, "shape": [...]}
         | {"t": "namedtuple", "type": "module.QualName", "fields": [...], "v": [NODE, ...]}
         | {"t": "node", "type": "module.QualName", "aux": NODE, "v": [NODE, ...]}

A file can only name a type; `load` builds namedtuples and registered pytree nodes only
from the classes the caller passes in `types=` (matched by module and qualified name), never
by importing what the file names.  bfloat16 arrays are stored as their uint16 bits, with the
dtype name in the JSON.  Arrays come back as fjit Arrays (64-bit types canonicalised like
`device_put` unless 64-bit types are on).

`load_state_dict` reads a PyTorch state_dict that was saved as NumPy arrays
(`np.savez(path, **{k: v.numpy() for k, v in sd.items()})`), without torch.
"""
from __future__ import annotations

import collections
import collections.abc
import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

from . import dtypes, tree_util
from .array import Array, from_numpy
from .core import Tracer
from .torch_pickle import UnsafeCheckpointError, is_torch_zip, read_torch_file
from .tree_util import PyTreeDef, tree_flatten, tree_structure

__all__ = ["save", "load", "load_state_dict", "CheckpointError"]

_FORMAT, _VERSION, _TREE_KEY = "fjit-checkpoint", 1, "__fjit_tree__"


class CheckpointError(ValueError):
    """A file that is not a valid fjit checkpoint (corrupt, truncated, foreign or unsafe)."""


def _dtype_names():
    names = {d.name: d for d in dtypes.SUPPORTED}
    if dtypes.bfloat16 is not None:
        names["bfloat16"] = dtypes.bfloat16
    return names


def _type_name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# --- save -------------------------------------------------------------------------------------

class _Encoder:
    """Walks a tree into JSON nodes, collecting its arrays."""

    def __init__(self):
        self.arrays = []

    def encode(self, x, path):
        if isinstance(x, Tracer):
            raise TypeError(f"fjit.serialization.save: the leaf at {path} is a traced value; "
                            "save concrete arrays (outside jit/grad/vmap)")
        if x is None:
            return {"t": "none"}
        if isinstance(x, (np.ndarray, np.generic, Array)):
            return self.array(x, path)
        if type(x) in (bool, int, str):
            return {"t": type(x).__name__, "v": x}
        if type(x) is float:
            return {"t": "float", "v": float.hex(x)}
        if type(x) in (dict, collections.OrderedDict):
            bad = [k for k in x if not isinstance(k, str)]
            if bad:
                raise TypeError(f"fjit.serialization.save: dict keys must be str; the dict at "
                                f"{path} has key {bad[0]!r}")
            kind = "dict" if type(x) is dict else "ordered_dict"
            return {"t": kind, "keys": list(x),
                    "v": [self.encode(v, f"{path}[{k!r}]") for k, v in x.items()]}
        if type(x) in (list, tuple):
            return {"t": type(x).__name__,
                    "v": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(x)]}
        if isinstance(x, tuple) and hasattr(type(x), "_fields"):
            return {"t": "namedtuple", "type": _type_name(type(x)),
                    "fields": list(type(x)._fields),
                    "v": [self.encode(v, f"{path}.{f}") for f, v in zip(type(x)._fields, x)]}
        children, treedef = tree_flatten(x, is_leaf=lambda y: y is not x)
        if treedef.node_type is not None and treedef.node_type is type(x):
            aux = self.static(treedef.node_data, path)
            return {"t": "node", "type": _type_name(type(x)), "aux": aux,
                    "v": [self.encode(c, f"{path}.<{k}>") for k, c in enumerate(children)]}
        raise TypeError(f"fjit.serialization.save: cannot save the {type(x).__name__} at "
                        f"{path}: a checkpoint holds dicts with str keys, lists, tuples, "
                        "namedtuples, registered pytree nodes, None, bool/int/float/str and "
                        "arrays")

    def static(self, value, path):
        """A registered node's aux data: JSON-able Python values only (no arrays)."""
        if value is None or type(value) in (bool, int, float, str):
            return self.encode(value, path)
        if type(value) in (list, tuple):
            return {"t": type(value).__name__,
                    "v": [self.static(v, f"{path}.aux[{i}]") for i, v in enumerate(value)]}
        raise TypeError(f"fjit.serialization.save: the pytree node at {path} has static data "
                        f"of type {type(value).__name__}, which a checkpoint cannot hold "
                        "(only None, bool, int, float, str, lists and tuples)")

    def array(self, x, path):
        value = np.asarray(x)
        name = value.dtype.name if dtypes.bfloat16 is None or value.dtype != dtypes.bfloat16 \
            else "bfloat16"
        if name not in _dtype_names():
            raise TypeError(f"fjit.serialization.save: the array at {path} has dtype "
                            f"{value.dtype}, which fjit does not support")
        if name == "bfloat16":
            value = value.view(np.uint16)
        self.arrays.append(np.asarray(value, order="C"))
        return {"t": "array", "leaf": len(self.arrays) - 1, "dtype": name,
                "shape": list(value.shape)}


def save(path, tree) -> None:
    """Write `tree` to `path` (exactly that name) as an .npz checkpoint, atomically: a
    temporary file in the same directory is renamed over `path` once fully written."""
    encoder = _Encoder()
    node = encoder.encode(tree, "tree")
    header = json.dumps({"format": _FORMAT, "version": _VERSION, "tree": node},
                        allow_nan=False).encode("utf-8")
    entries = {f"leaf_{k}": a for k, a in enumerate(encoder.arrays)}
    entries[_TREE_KEY] = np.frombuffer(header, np.uint8)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fjit-ckpt-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **entries)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- load -------------------------------------------------------------------------------------

def _open_npz(path, caller):
    """The entries of an .npz file as {name: ndarray}, never unpickling anything."""
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err):  # neither a zip nor an .npy: np.load would need pickle
            raise CheckpointError(f"{caller}: {path!r} is not an .npz archive (and files "
                                  "that need unpickling are never loaded)") from None
        raise CheckpointError(f"{caller}: {path!r} is not a valid .npz archive: "
                              f"{err}") from None
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as err:
        raise CheckpointError(f"{caller}: {path!r} is not a valid .npz archive (corrupt or "
                              f"truncated): {type(err).__name__}: {err}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{caller}: {path!r} holds a single .npy array, not an .npz "
                              "archive")
    try:
        entries = {}
        for name in data.files:
            try:
                value = data[name]
            except ValueError as err:
                if "allow_pickle" in str(err):
                    raise CheckpointError(f"{caller}: {path!r}: entry {name!r} is an object "
                                          "array (pickled Python objects), which is never "
                                          "loaded: it could run code") from None
                raise
            if not isinstance(value, np.ndarray):
                hint = (" (this looks like a torch.save file: read it with "
                        "fjit.serialization.load_state_dict)"
                        if name.endswith("data.pkl") else "")
                raise CheckpointError(f"{caller}: {path!r}: entry {name!r} is not a .npy "
                                      f"array{hint}")
            entries[name] = value
        return entries
    except CheckpointError:
        raise
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error,
            NotImplementedError) as err:
        raise CheckpointError(f"{caller}: {path!r} is not a valid .npz archive (corrupt or "
                              f"truncated): {type(err).__name__}: {err}") from None
    finally:
        data.close()


class _Decoder:
    """Rebuilds a tree from JSON nodes, checking every field; builds only known classes."""

    def __init__(self, path, entries, types):
        self.path, self.entries, self.used = path, entries, set()
        self.types = {}
        for cls in (types,) if isinstance(types, type) else types:
            if not isinstance(cls, type):
                raise TypeError(f"fjit.serialization.load: types must be classes, got "
                                f"{cls!r}")
            self.types[_type_name(cls)] = cls

    def fail(self, message):
        raise CheckpointError(f"fjit.serialization.load: {self.path!r}: {message}")

    def children(self, node, where):
        v = node.get("v")
        if not isinstance(v, list):
            self.fail(f"node at {where} has no child list")
        return v

    def decode(self, node, where="tree"):
        if not isinstance(node, dict) or not isinstance(node.get("t"), str):
            self.fail(f"malformed node at {where}: {str(node)[:80]}")
        t = node["t"]
        if t == "none":
            return None
        if t in ("bool", "int", "str"):
            value = node.get("v")
            want = {"bool": bool, "int": int, "str": str}[t]
            if type(value) is not want:
                self.fail(f"{t} node at {where} holds {value!r}")
            return value
        if t == "float":
            try:
                return float.fromhex(node.get("v"))
            except (TypeError, ValueError):
                self.fail(f"float node at {where} holds {node.get('v')!r}")
        if t in ("list", "tuple"):
            items = [self.decode(c, f"{where}[{i}]")
                     for i, c in enumerate(self.children(node, where))]
            return items if t == "list" else tuple(items)
        if t in ("dict", "ordered_dict"):
            keys, values = node.get("keys"), self.children(node, where)
            if (not isinstance(keys, list) or len(keys) != len(values)
                    or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys)):
                self.fail(f"dict node at {where} has malformed keys")
            out = dict if t == "dict" else collections.OrderedDict
            return out((k, self.decode(v, f"{where}[{k!r}]")) for k, v in zip(keys, values))
        if t == "array":
            return self.array(node, where)
        if t in ("namedtuple", "node"):
            return self.custom(node, where)
        self.fail(f"unknown node kind {t!r} at {where}")

    def known_type(self, node, where):
        name = node.get("type")
        if not isinstance(name, str):
            self.fail(f"{node['t']} node at {where} names no type")
        cls = self.types.get(name)
        if cls is None:
            raise CheckpointError(
                f"fjit.serialization.load: {self.path!r}: the tree at {where} is a {name!r}, "
                "an unknown type; a checkpoint never imports the classes it names: pass the "
                f"class as load(path, types=[...]) if you trust it")
        return cls

    def custom(self, node, where):
        cls = self.known_type(node, where)
        items = [self.decode(c, f"{where}.<{i}>")
                 for i, c in enumerate(self.children(node, where))]
        if node["t"] == "namedtuple":
            fields = node.get("fields")
            if not (isinstance(cls, type) and issubclass(cls, tuple)
                    and tuple(getattr(cls, "_fields", ())) == tuple(fields or ())
                    and len(items) == len(fields)):
                self.fail(f"namedtuple at {where}: {_type_name(cls)} has fields "
                          f"{getattr(cls, '_fields', None)}, the file {fields}")
            return cls(*items)
        if cls not in tree_util._registry:
            self.fail(f"{_type_name(cls)} (at {where}) is not a registered pytree node")
        aux = self.decode(node.get("aux"), f"{where}.aux")
        leaf = tree_structure(0)
        try:
            return PyTreeDef(cls, aux, [leaf] * len(items)).unflatten(items)
        except Exception as err:  # the class's own unflatten rejected the data
            raise CheckpointError(f"fjit.serialization.load: {self.path!r}: cannot rebuild "
                                  f"the {_type_name(cls)} at {where}: {err}") from err

    def array(self, node, where):
        leaf, name, shape = node.get("leaf"), node.get("dtype"), node.get("shape")
        if type(leaf) is not int or f"leaf_{leaf}" not in self.entries:
            self.fail(f"array at {where} refers to a missing entry {leaf!r}")
        if leaf in self.used:
            self.fail(f"array entry {leaf} is used twice")
        self.used.add(leaf)
        dtype = _dtype_names().get(name)
        if dtype is None:
            self.fail(f"array at {where} has dtype {name!r}, not one fjit supports"
                      + (" (bfloat16 needs the ml_dtypes package)" if name == "bfloat16"
                         else ""))
        value = self.entries[f"leaf_{leaf}"]
        stored = np.dtype(np.uint16) if name == "bfloat16" else dtype
        if (value.dtype != stored or not isinstance(shape, list)
                or list(value.shape) != shape):
            self.fail(f"array at {where} is {value.dtype}{list(value.shape)}, its description "
                      f"says {name}{shape}")
        if name == "bfloat16":
            value = value.view(dtype)
        return from_numpy(value)


def load(path, types=()):
    """Read a checkpoint written by `save`.  `types`: the namedtuple and registered pytree
    classes the file may contain (nothing else is ever constructed).  Raises CheckpointError
    (a ValueError) for a corrupt, truncated, foreign or unsafe file."""
    entries = _open_npz(path, "fjit.serialization.load")
    decoder = _Decoder(path, entries, types)
    header = entries.get(_TREE_KEY)
    if header is None or header.dtype != np.uint8 or header.ndim != 1:
        decoder.fail("no fjit tree description: not a checkpoint written by "
                     "fjit.serialization.save (for a PyTorch state_dict use load_state_dict)")
    try:
        doc = json.loads(header.tobytes().decode("utf-8"),
                         parse_constant=lambda c: decoder.fail(f"bad JSON constant {c}"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        decoder.fail(f"the tree description is not valid JSON: {type(err).__name__}: {err}")
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        decoder.fail("the tree description is not an fjit checkpoint header")
    if doc.get("version") != _VERSION:
        decoder.fail(f"checkpoint format version {doc.get('version')!r} is not supported "
                     f"(this fjit reads version {_VERSION})")
    try:
        tree = decoder.decode(doc.get("tree"))
    except RecursionError:
        decoder.fail("the tree description is nested too deeply")
    extra = set(entries) - {_TREE_KEY} - {f"leaf_{k}" for k in decoder.used}
    if extra:
        decoder.fail(f"unexpected entries {sorted(extra)[:5]}")
    return tree


# --- PyTorch state_dicts ----------------------------------------------------------------------

def load_state_dict(path_or_mapping) -> dict:
    """{name: numpy array} from a PyTorch state_dict: a `torch.save` file (.pt/.pth), an .npz
    of NumPy arrays (`np.savez(path, **{k: v.numpy() for k, v in sd.items()})`), or a
    mapping of names to arrays or tensors.

    Never imports torch and never runs code from the file: a torch.save file is read by
    fjit.torch_pickle, which refuses pickles naming anything but tensors and containers."""
    caller = "fjit.serialization.load_state_dict"
    if isinstance(path_or_mapping, (str, bytes, os.PathLike)):
        path = os.fspath(path_or_mapping)
        if not is_torch_zip(path):
            return _open_npz(path, caller)
        try:
            path_or_mapping = read_torch_file(path)
        except UnsafeCheckpointError as err:
            raise CheckpointError(f"{caller}: {err}") from None
        if not isinstance(path_or_mapping, collections.abc.Mapping):
            raise CheckpointError(f"{caller}: {path!r} holds a {type(path_or_mapping).__name__}"
                                  ", not a state_dict")
        nested = [k for k, v in path_or_mapping.items() if isinstance(v, collections.abc.Mapping)]
        if nested:
            raise CheckpointError(f"{caller}: {path!r} holds a checkpoint with entries "
                                  f"{list(path_or_mapping)[:6]}, not a state_dict: pick one "
                                  f"with fjit.torch_pickle.read_torch_file(path)[{nested[0]!r}]")
    if not isinstance(path_or_mapping, collections.abc.Mapping):
        raise TypeError(f"{caller}: expected a path or a mapping of names to arrays, got "
                        f"{type(path_or_mapping).__name__}")
    out = {}
    for name, value in path_or_mapping.items():
        if not isinstance(name, str):
            raise TypeError(f"{caller}: keys must be str, got {name!r}")
        try:
            array = np.asarray(value)
        except Exception as err:
            raise TypeError(f"{caller}: the value of {name!r} ({type(value).__name__}) is "
                            f"not convertible to a NumPy array: {err}") from None
        if array.dtype == object:
            raise TypeError(f"{caller}: the value of {name!r} ({type(value).__name__}) is "
                            "not a numeric array")
        out[name] = array
    return out
