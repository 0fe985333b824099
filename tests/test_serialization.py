"""Checkpoints: round trips of trees and dtypes, and files that must be refused without
running anything (pickles, unknown types, truncated or garbage bytes)."""
import collections
import dataclasses
import json
import os
import struct
import typing
import zipfile

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import dtypes, serialization
from fjit.tree_util import register_dataclass


class Params(typing.NamedTuple):
    w: object
    b: object


@register_dataclass
@dataclasses.dataclass
class Layer:
    kernel: object
    bias: object
    name: str = dataclasses.field(default="dense", metadata={"static": True})


def _assert_same(got, want):
    """Equal trees: same container types, same leaves (arrays: dtype, shape and bits)."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, fjit.Array):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
    elif isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            _assert_same(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _assert_same(g, w)
    elif dataclasses.is_dataclass(want):
        for f in dataclasses.fields(want):
            _assert_same(getattr(got, f.name), getattr(want, f.name))
    elif isinstance(want, float) and np.isnan(want):
        assert np.isnan(got)
    else:
        assert got == want


def test_round_trip_nested(tmp_path):
    tree = {
        "params": {"dense": {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)},
                   "list": [jnp.arange(4), (jnp.array(2.5), None)]},
        "step": 7, "lr": 1e-3, "flag": True, "name": "mlp", "nothing": None,
        "specials": [float("inf"), float("-inf"), float("nan"), -0.0, 10 ** 30],
        "empty": jnp.zeros((0, 3)), "scalar": jnp.array(1, jnp.int8),
        "empties": ([], (), {}),
        "odict": collections.OrderedDict([("z", jnp.ones(1)), ("a", 1)]),
        "unsorted": {"b": 1, "a": 2},
    }
    path = tmp_path / "ckpt.npz"
    serialization.save(path, tree)
    loaded = serialization.load(path)
    _assert_same(loaded, tree)
    assert str(loaded["specials"][3]) == "-0.0"
    # the structure matches for tree_util too (so the result can feed jit/grad directly)
    assert fjit.tree_util.tree_structure(loaded) == fjit.tree_util.tree_structure(tree)


DTYPES = ["bool_", "int8", "int16", "int32", "uint8", "uint16", "uint32", "float16",
          "float32"] + (["bfloat16"] if dtypes.bfloat16 is not None else [])


@pytest.mark.parametrize("shape", [(), (0,), (2, 3), (1, 0, 2)])
def test_round_trip_dtypes(tmp_path, shape):
    rng = np.random.default_rng(0)
    tree = {}
    for name in DTYPES:
        dtype = getattr(jnp, name)
        values = rng.standard_normal(shape) * 50
        tree[name] = jnp.asarray(values.astype(np.float32)).astype(dtype)
    serialization.save(tmp_path / "d.npz", tree)
    _assert_same(serialization.load(tmp_path / "d.npz"), tree)


def test_round_trip_64_bit(tmp_path, x64):
    tree = [jnp.arange(3, dtype=jnp.int64), jnp.ones(2, jnp.float64),
            jnp.array(2**40, jnp.uint64)]
    serialization.save(tmp_path / "x64.npz", tree)
    _assert_same(serialization.load(tmp_path / "x64.npz"), tree)


def test_numpy_leaves_come_back_as_fjit_arrays(tmp_path):
    serialization.save(tmp_path / "n.npz", {"a": np.arange(3, dtype=np.int32),
                                             "s": np.float32(2)})
    out = serialization.load(tmp_path / "n.npz")
    assert isinstance(out["a"], fjit.Array) and out["a"].dtype == jnp.int32
    assert isinstance(out["s"], fjit.Array) and out["s"].shape == ()


def test_namedtuple_and_dataclass_need_their_types(tmp_path):
    tree = {"p": Params(jnp.ones(2), jnp.zeros(1)),
            "layer": Layer(jnp.ones((2, 2)), jnp.zeros(2), name="head")}
    path = tmp_path / "t.npz"
    serialization.save(path, tree)
    with pytest.raises(serialization.CheckpointError, match=r"Params.*unknown type.*types="):
        serialization.load(path)
    loaded = serialization.load(path, types=[Params, Layer])
    _assert_same(loaded, tree)
    assert loaded["layer"].name == "head"


def test_save_rejects_what_it_cannot_describe(tmp_path):
    with pytest.raises(TypeError, match=r"dict keys must be str.*tree\['a'\]"):
        serialization.save(tmp_path / "x.npz", {"a": {1: jnp.ones(1)}})
    with pytest.raises(TypeError, match=r"cannot save the object at tree\[0\]"):
        serialization.save(tmp_path / "x.npz", [object()])
    with pytest.raises(TypeError, match="dtype complex64"):
        serialization.save(tmp_path / "x.npz", np.ones(2, np.complex64))
    with pytest.raises(TypeError, match="traced value"):
        fjit.jit(lambda x: serialization.save(tmp_path / "x.npz", x))(jnp.ones(1))
    assert not os.listdir(tmp_path)  # nothing half-written left behind


def test_save_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "c.npz"
    serialization.save(path, {"v": jnp.ones(2)})
    serialization.save(path, {"v": jnp.zeros(3)})
    assert os.listdir(tmp_path) == ["c.npz"]
    _assert_same(serialization.load(path), {"v": jnp.zeros(3)})


# --- refusing unsafe and broken files ---------------------------------------------------------

class _Evil:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _header(tree):
    text = json.dumps({"format": "fjit-checkpoint", "version": 1, "tree": tree})
    return np.frombuffer(text.encode(), np.uint8)


def test_pickled_object_array_is_never_loaded(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    evil = np.array([_Evil(str(marker))], dtype=object)
    np.savez(path, __fjit_tree__=_header({"t": "array", "leaf": 0, "dtype": "float32",
                                          "shape": [1]}), leaf_0=evil)
    with pytest.raises(serialization.CheckpointError, match="object array"):
        serialization.load(path)
    with pytest.raises(serialization.CheckpointError, match="object array"):
        serialization.load_state_dict(path)
    assert not marker.exists()


def test_raw_pickle_file_is_never_loaded(tmp_path):
    import pickle
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Evil(str(marker))))
    for loader in (serialization.load, serialization.load_state_dict):
        with pytest.raises(serialization.CheckpointError, match="not an .npz archive"):
            loader(path)
    assert not marker.exists()


def test_unknown_types_are_never_imported(tmp_path):
    path = tmp_path / "t.npz"
    for name in ("os.system", "builtins.eval", f"{Params.__module__}.Params"):
        node = {"t": "node", "type": name, "aux": {"t": "str", "v": "touch pwned"},
                "v": [{"t": "str", "v": "echo"}]}
        np.savez(path, __fjit_tree__=_header({"t": "list", "v": [node]}))
        with pytest.raises(serialization.CheckpointError, match=f"{name}.*unknown type"):
            serialization.load(path)
    np.savez(path, __fjit_tree__=_header({"t": "pickle", "v": "gASV"}))
    with pytest.raises(serialization.CheckpointError, match="unknown node kind 'pickle'"):
        serialization.load(path)
    # a class passed in `types` but not registered as a pytree node is not called either
    np.savez(path, __fjit_tree__=_header({"t": "node", "type": f"{_Evil.__module__}._Evil",
                                          "aux": {"t": "none"}, "v": []}))
    with pytest.raises(serialization.CheckpointError, match="not a registered pytree node"):
        serialization.load(path, types=[_Evil])


def test_garbage_and_truncated_files(tmp_path):
    good = tmp_path / "good.npz"
    serialization.save(good, {"w": jnp.arange(100.0), "b": [jnp.ones(3), 1]})
    data = good.read_bytes()
    bad = tmp_path / "bad.npz"
    for n in (0, 4, 40, len(data) // 2, len(data) - 10):
        bad.write_bytes(data[:n])
        with pytest.raises(serialization.CheckpointError, match="bad.npz"):
            serialization.load(bad)
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(serialization.CheckpointError, match="not an .npz archive"):
        serialization.load(bad)
    # a flipped byte inside an array: the zip checksum catches it
    flipped = bytearray(data)
    flipped[data.index(b"leaf_0.npy") + 200] ^= 0xFF
    bad.write_bytes(bytes(flipped))
    with pytest.raises(serialization.CheckpointError, match="corrupt"):
        serialization.load(bad)
    np.save(tmp_path / "one.npy", np.ones(3))
    with pytest.raises(serialization.CheckpointError, match="single .npy array"):
        serialization.load(tmp_path / "one.npy")
    with pytest.raises(FileNotFoundError):
        serialization.load(tmp_path / "missing.npz")


@pytest.mark.parametrize("tree, message", [
    ({"t": "array", "leaf": 1, "dtype": "float32", "shape": [3]}, "missing entry"),
    ({"t": "array", "leaf": 0, "dtype": "object", "shape": [3]}, "dtype 'object'"),
    ({"t": "array", "leaf": 0, "dtype": "float32", "shape": [4]}, "description says"),
    ({"t": "array", "leaf": 0, "dtype": "int32", "shape": [3]}, "description says"),
    ({"t": "list", "v": [{"t": "array", "leaf": 0, "dtype": "float32", "shape": [3]}] * 2},
     "used twice"),
    ({"t": "dict", "keys": ["a", "a"], "v": [{"t": "none"}] * 2}, "malformed keys"),
    ({"t": "int", "v": "7"}, "int node"),
    ({"t": "list"}, "no child list"),
    ({"t": "none"}, "unexpected entries"),
])
def test_inconsistent_descriptions(tmp_path, tree, message):
    path = tmp_path / "c.npz"
    np.savez(path, __fjit_tree__=_header(tree), leaf_0=np.ones(3, np.float32))
    with pytest.raises(serialization.CheckpointError, match=message):
        serialization.load(path)


def test_foreign_headers(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, __fjit_tree__=np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(serialization.CheckpointError, match="not valid JSON"):
        serialization.load(path)
    np.savez(path, __fjit_tree__=np.frombuffer(b'{"format": "x"}', np.uint8))
    with pytest.raises(serialization.CheckpointError, match="not an fjit checkpoint"):
        serialization.load(path)
    text = json.dumps({"format": "fjit-checkpoint", "version": 99, "tree": {"t": "none"}})
    np.savez(path, __fjit_tree__=np.frombuffer(text.encode(), np.uint8))
    with pytest.raises(serialization.CheckpointError, match="version 99"):
        serialization.load(path)
    deep = ('{"format": "fjit-checkpoint", "version": 1, "tree": ' + "[" * 100000
            + "]" * 100000 + "}")
    np.savez(path, __fjit_tree__=np.frombuffer(deep.encode(), np.uint8))
    with pytest.raises(serialization.CheckpointError):
        serialization.load(path)


# --- PyTorch state_dicts ----------------------------------------------------------------------

def test_load_state_dict(tmp_path):
    state = {"layer.0.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
             "layer.0.bias": np.zeros(2, np.float32),
             "bn.num_batches_tracked": np.array(3, np.int64)}
    path = tmp_path / "sd.npz"
    np.savez(path, **state)
    for loaded in (serialization.load_state_dict(path),
                   serialization.load_state_dict(str(path)),
                   serialization.load_state_dict(state)):
        assert list(loaded) == list(state)
        for k, v in state.items():
            assert isinstance(loaded[k], np.ndarray) and loaded[k].dtype == v.dtype
            np.testing.assert_array_equal(loaded[k], v)
    with pytest.raises(TypeError, match="keys must be str"):
        serialization.load_state_dict({1: np.ones(1)})
    with pytest.raises(TypeError, match="'x'.*not a numeric array"):
        serialization.load_state_dict({"x": object()})
    with pytest.raises(TypeError, match="expected a path or a mapping"):
        serialization.load_state_dict([np.ones(1)])


def op(value):
    """Pickle opcodes (protocol 2) for a tiny language: str, int, bool, tuple, dict,
    ("global", module, name), ("call", callable, args), ("pid", value)."""
    if isinstance(value, bool):
        return b"\x88" if value else b"\x89"
    if isinstance(value, int):
        return b"J" + struct.pack("<i", value)
    if isinstance(value, str):
        data = value.encode()
        return b"X" + struct.pack("<I", len(data)) + data
    if isinstance(value, dict):
        return b"}(" + b"".join(op(k) + op(v) for k, v in value.items()) + b"u"
    kind = value[0] if value and isinstance(value[0], str) else None
    if kind == "global":
        return f"c{value[1]}\n{value[2]}\n".encode()
    if kind == "call":
        return op(value[1]) + op(tuple(value[2])) + b"R"
    if kind == "pid":
        return op(value[1]) + b"Q"
    return b"(" + b"".join(op(v) for v in value) + b"t"

def dumps(obj):
    return b"\x80\x02" + op(obj) + b"."


def _torch_zip(path, pickled, storages=()):
    """A file laid out as torch.save lays it out: archive/data.pkl, archive/data/<key>."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickled)
        z.writestr("archive/byteorder", b"little")
        for key, raw in storages:
            z.writestr(f"archive/data/{key}", raw)


def test_torch_save_files_are_read_without_torch_or_code(tmp_path):
    """A pickle naming torch._utils._rebuild_tensor_v2 over a FloatStorage is read (strided
    views included); one naming anything else is refused by name, and nothing runs."""
    storage = ("pid", ("storage", ("global", "torch", "FloatStorage"), "0", "cpu", 6))
    rebuild = ("global", "torch._utils", "_rebuild_tensor_v2")
    tensor = ("call", rebuild, (storage, 0, (2, 3), (3, 1), False, {}))
    transposed = ("call", rebuild, (storage, 1, (2, 2), (1, 3), False, {}))
    raw = np.arange(6, dtype=np.float32).tobytes()
    path = tmp_path / "model.pt"
    _torch_zip(path, dumps({"w": tensor, "t": transposed}), [("0", raw)])
    loaded = serialization.load_state_dict(path)
    np.testing.assert_array_equal(loaded["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(loaded["t"], np.array([[1, 4], [2, 5]], np.float32))

    evil = ("call", ("global", "os", "system"), ("echo pwned > " + str(tmp_path / "pwned"),))
    _torch_zip(path, dumps({"w": evil}))
    with pytest.raises(serialization.CheckpointError, match="names os.system.*refused"):
        serialization.load_state_dict(path)
    assert not (tmp_path / "pwned").exists()
    past = ("call", rebuild, (storage, 4, (2, 3), (3, 1), False, {}))
    _torch_zip(path, dumps({"w": past}), [("0", raw)])
    with pytest.raises(serialization.CheckpointError, match="reaches past its storage"):
        serialization.load_state_dict(path)
    _torch_zip(path, dumps({"w": tensor}))
    with pytest.raises(serialization.CheckpointError, match="storage '0' is missing"):
        serialization.load_state_dict(path)


def test_torch_save_files_cannot_alter_the_reader_or_ask_for_unbounded_memory(tmp_path):
    path, good = tmp_path / "evil.pt", tmp_path / "good.pt"
    storage = ("pid", ("storage", ("global", "torch", "FloatStorage"), "0", "cpu", 1))
    rebuild = ("global", "torch._utils", "_rebuild_tensor_v2")
    _torch_zip(good, dumps({"w": ("call", rebuild, (storage, 0, (1,), (1,), False, {}))}),
               [("0", np.ones(1, np.float32).tobytes())])
    # BUILD on a tensor builder: would set its __defaults__ for the rest of the process
    _torch_zip(path, b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x0c\x00\x00\x00"
                     b"__defaults__)s\x86b.")
    with pytest.raises(serialization.CheckpointError, match="sets the state"):
        serialization.load_state_dict(path)
    assert serialization.load_state_dict(good)["w"].tolist() == [1.0]
    # a bare builder as the result
    _torch_zip(path, b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n.")
    with pytest.raises(serialization.CheckpointError, match="not a tensor or a plain"):
        serialization.load_state_dict(path)
    # 2**28 elements from a one-element storage through a zero stride
    amplified = ("call", rebuild, (storage, 0, (1 << 28,), (0,), False, {}))
    _torch_zip(path, dumps({"w": amplified}), [("0", np.ones(1, np.float32).tobytes())])
    with pytest.raises(serialization.CheckpointError, match="more elements than its storage"):
        serialization.load_state_dict(path)
    # a storage entry larger than the pickle says (a zip bomb is read only if it fits)
    _torch_zip(path, dumps({"w": ("call", rebuild, (storage, 0, (1,), (1,), False, {}))}),
               [("0", np.ones(1000, np.float32).tobytes())])
    with pytest.raises(serialization.CheckpointError, match="holds 4000 bytes"):
        serialization.load_state_dict(path)


def test_torch_save_files_written_by_torch(tmp_path):
    torch = pytest.importorskip("torch", reason="torch writes the reference files")
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    sd = model.state_dict()
    sd["strided"] = torch.arange(12.0).reshape(3, 4).t()
    sd["half"] = torch.linspace(-1, 1, 5, dtype=torch.float16)
    path = tmp_path / "sd.pt"
    torch.save(sd, path)
    loaded = serialization.load_state_dict(path)
    assert list(loaded) == list(sd)
    for name, tensor in sd.items():
        assert loaded[name].dtype == tensor.numpy().dtype, name
        np.testing.assert_array_equal(loaded[name], tensor.numpy())
    torch.save(model, tmp_path / "whole.pt")  # a pickled module: would need its classes
    with pytest.raises(serialization.CheckpointError, match="torch.nn.modules.*refused"):
        serialization.load_state_dict(tmp_path / "whole.pt")
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    with pytest.raises(serialization.CheckpointError, match=r"read_torch_file\(path\)\['model'\]"):
        serialization.load_state_dict(tmp_path / "ckpt.pt")
    from fjit.torch_pickle import read_torch_file
    ckpt = read_torch_file(tmp_path / "ckpt.pt")
    assert ckpt["epoch"] == 3 and set(ckpt["model"]) == set(model.state_dict())
