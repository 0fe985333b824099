"""Reading the tensors of a `torch.save` file without torch and without running its code.

A torch.save file (PyTorch >= 1.6) is a zip: `<root>/data.pkl` is a pickle of the saved
object whose tensors point, through pickle's persistent ids, at raw storages
`<root>/data/<key>`; `<root>/byteorder` says their byte order.  A pickle can name any
callable, which is why loading one can run arbitrary code.  This reader unpickles with a
closed table of what a state_dict needs -- the tensor and parameter rebuilders, the storage
types, OrderedDict -- and refuses anything else by name, so a file can only ever produce
dicts, lists, numbers, strings and NumPy arrays.  (torch.load(weights_only=True) applies the
same idea inside PyTorch; this one needs no torch.)
"""
from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np

__all__ = ["read_torch_file", "UnsafeCheckpointError", "is_torch_zip"]


class UnsafeCheckpointError(ValueError):
    """A torch.save file that names something other than tensors and plain containers (or is
    not a torch.save file at all)."""


_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "BFloat16Storage": "bfloat16",
}


class _Sealed:
    """What find_class hands the pickle: fresh objects without a __dict__ whose state a
    BUILD opcode cannot set, so a file cannot reach or alter this module's functions."""
    __slots__ = ()

    def __setstate__(self, state):
        raise UnsafeCheckpointError("the pickle sets the state of a tensor builder or storage "
                                    "type, which no torch.save file does")

    def __reduce__(self):
        raise TypeError("not picklable")


class _StorageType(_Sealed):
    """Stands for torch.<Kind>Storage in the pickle: only its element type matters."""
    __slots__ = ("name",)

    def __init__(self, name):
        object.__setattr__(self, "name", name)

    def dtype(self):
        dtype = _STORAGE_DTYPES[self.name]
        if dtype == "bfloat16":
            from . import dtypes
            if dtypes.bfloat16 is None:
                raise UnsafeCheckpointError("the file holds bfloat16 tensors: reading them "
                                            "needs the ml_dtypes package")
            return np.dtype(dtypes.bfloat16)
        return np.dtype(dtype)


class _Builder(_Sealed):
    """An allowed callable (a tensor rebuilder, OrderedDict), sealed."""
    __slots__ = ("fn",)

    def __init__(self, fn):
        object.__setattr__(self, "fn", fn)

    def __call__(self, *args):
        return self.fn(*args)


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                    metadata=None):
    """torch._utils._rebuild_tensor_v2, as a NumPy array (a copy: the storage may be shared
    between tensors)."""
    size, stride = tuple(size), tuple(stride)
    if min(size + stride + (offset,), default=0) < 0 or len(size) != len(stride):
        raise UnsafeCheckpointError(f"a tensor of size {size}, stride {stride} and offset "
                                    f"{offset} is malformed")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if int(np.prod(size, dtype=np.int64)) > storage.size:
        raise UnsafeCheckpointError(f"a tensor of size {size} has more elements than its "
                                    f"storage ({storage.size}): an expanded or overlapping "
                                    "view, which is not read (save it with .contiguous())")
    if last >= storage.size:
        raise UnsafeCheckpointError(f"a tensor of size {size}, stride {stride} and offset "
                                    f"{offset} reaches past its storage of {storage.size} "
                                    "elements")
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], size,
                                           tuple(s * itemsize for s in stride),
                                           writeable=False)
    return np.array(view)


def _rebuild_parameter(data, requires_grad=True, hooks=None, *rest):
    return data


def _ordered_dict(*args):
    return collections.OrderedDict(*args)


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data, storages):
        super().__init__(io.BytesIO(data))
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        found = _ALLOWED.get((module, name))
        if found is None:
            kind = ("a tensor type fjit does not read (complex or unsigned wider than 8 bits)"
                    if module == "torch" and name.endswith("Storage")
                    else "not a tensor or a plain container: refused (loading it could run "
                    "code)")
            raise UnsafeCheckpointError(f"the pickle names {module}.{name}, {kind}")
        return _Builder(found)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise UnsafeCheckpointError(f"unexpected persistent id {pid!r:.80}")
        _, kind, key, _location, numel = pid
        return self.storages(str(key), kind.dtype(), numel)


def is_torch_zip(path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("data.pkl") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_torch_file(path):
    """The object a torch.save file holds (a state_dict: {name: ndarray}), tensors as NumPy
    arrays.  Raises UnsafeCheckpointError for a file naming anything else."""
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UnsafeCheckpointError(
            f"{path!r} is not a zip archive: PyTorch's legacy (pre-1.6) format is not read; "
            "re-save it with a current torch.save") from None
    with z:
        pickles = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise UnsafeCheckpointError(f"{path!r} is a zip but not a torch.save file (it "
                                        "holds no single data.pkl)")
        root = pickles[0][:-len("data.pkl")]
        names = set(z.namelist())
        order = "little"
        if root + "byteorder" in names:
            order = z.read(root + "byteorder").decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise UnsafeCheckpointError(f"{path!r}: byteorder {order[:20]!r} is neither "
                                            "'little' nor 'big'")
        cache = {}

        def storage(key, dtype, numel):
            if key not in cache:
                entry = f"{root}data/{key}"
                if entry not in names:
                    raise UnsafeCheckpointError(f"{path!r}: storage {key!r} is missing")
                if z.getinfo(entry).file_size != numel * dtype.itemsize:
                    raise UnsafeCheckpointError(
                        f"{path!r}: storage {key!r} holds {z.getinfo(entry).file_size} bytes, "
                        f"the pickle says {numel} elements of {dtype.itemsize}")
                raw = np.frombuffer(z.read(entry), dtype.newbyteorder(
                    "<" if order == "little" else ">"))
                if raw.size < numel:
                    raise UnsafeCheckpointError(f"{path!r}: storage {key!r} holds {raw.size} "
                                                f"elements, the pickle says {numel}")
                cache[key] = raw.astype(dtype, copy=False)
            return cache[key]

        try:
            return _plain(_Unpickler(z.read(pickles[0]), storage).load())
        except MemoryError:
            raise UnsafeCheckpointError(f"reading {path!r}: the file asks for more memory than "
                                        "there is") from None
        except UnsafeCheckpointError as err:
            raise UnsafeCheckpointError(f"reading {path!r}: {err}") from None
        except (pickle.UnpicklingError, EOFError, TypeError, ValueError, KeyError,
                AttributeError, IndexError) as err:
            raise UnsafeCheckpointError(f"reading {path!r}: a corrupt or unsupported pickle: "
                                        f"{type(err).__name__}: {err}") from None


_PLAIN = (str, bytes, int, float, bool, type(None), np.ndarray, np.generic)


def _plain(value, depth=0):
    """`value` if it holds only containers, numbers, strings and arrays."""
    if depth > 100:
        raise UnsafeCheckpointError("the pickle nests containers too deeply")
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (dict, collections.OrderedDict)):
        for k, v in value.items():
            _plain(k, depth + 1)
            _plain(v, depth + 1)
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            _plain(v, depth + 1)
        return value
    raise UnsafeCheckpointError(f"the pickle yields a {type(value).__name__}, not a tensor or "
                                "a plain container")
