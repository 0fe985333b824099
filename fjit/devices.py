"""Devices arrays live on, and the platforms that own their memory.

A base module (every `Array` records its device): it imports only fjit.config.  A
platform says how its buffers reach the host and back and which backend compiles for it;
the host CPU's buffers are NumPy arrays.  Other platforms (CUDA, a test's fake device)
register themselves with `register_platform`.

Copies between the host and a device are counted (`transfer_stats`), so a test can assert
that a jitted training loop makes no hidden transfers.
"""
from __future__ import annotations

import threading

import numpy as np

from .config import config


class Platform:
    """What a kind of device provides.  A subclass overrides every method; buffers are
    whatever the platform's backend's executables take and return."""

    name = "?"

    def devices(self) -> list:
        raise NotImplementedError

    def why_none(self) -> str:
        """Why `devices()` is empty here (a platform that can be without devices says)."""
        return "the platform has no devices"

    def backend(self, device=None) -> str:
        """The registered backend (fjit/runtime/backend.py) that runs Programs on `device`."""
        raise NotImplementedError

    def device_kind(self, id: int) -> str:
        """What the device is (a GPU's name), as JAX's `Device.device_kind`."""
        return self.name

    def describe(self, id: int) -> dict:
        """More about the device (a GPU's compute capability and memory), for its repr."""
        return {}

    def memory_stats(self, id: int) -> dict | None:
        return None

    def to_host(self, buffer) -> np.ndarray:
        """A new host array holding the buffer's value (waiting for it if need be)."""
        raise NotImplementedError

    def from_host(self, value: np.ndarray, device: Device):
        """A buffer on `device` holding `value`, a C-contiguous host array."""
        raise NotImplementedError

    def wait(self, buffer):
        """Return once whatever computes `buffer` has finished (`block_until_ready`); a
        platform that runs asynchronously overrides this."""


class Device:
    """A place arrays live: one of its platform's devices, by index."""

    __slots__ = ("_platform", "id")

    def __init__(self, platform: Platform, id: int):
        self._platform = platform
        self.id = id

    @property
    def platform(self) -> str:
        return self._platform.name

    @property
    def device_kind(self) -> str:
        return self._platform.device_kind(self.id)

    @property
    def compute_capability(self) -> str | None:
        """A GPU's compute capability as "9.0" (as JAX's CUDA devices give it); None on
        other platforms."""
        return self._platform.describe(self.id).get("compute_capability")

    def memory_stats(self) -> dict | None:
        """The device's memory in use and cached (a GPU's allocator), or None."""
        return self._platform.memory_stats(self.id)

    @property
    def is_host(self) -> bool:
        return self._platform is _CPU_PLATFORM

    def backend(self) -> str:
        return self._platform.backend(self)

    def to_host(self, buffer) -> np.ndarray:
        """A host copy of one of this device's buffers (the buffer itself on the CPU)."""
        if self._platform is _CPU_PLATFORM:
            return buffer
        value = self._platform.to_host(buffer)
        _stats.count("device_to_host", value.nbytes)
        return value

    def from_host(self, value: np.ndarray):
        """A buffer on this device holding `value` (itself on the CPU)."""
        if self._platform is _CPU_PLATFORM:
            return value
        if not value.flags.c_contiguous:   # a broadcast view has zero strides
            value = np.ascontiguousarray(value)   # (never 0-d: those are contiguous)
        _stats.count("host_to_device", value.nbytes)
        return self._platform.from_host(value, self)

    def wait(self, buffer):
        if self._platform is not _CPU_PLATFORM:
            self._platform.wait(buffer)

    def __reduce__(self):   # a device is its registered platform's, found again by name
        return (_registered_device, (self._platform.name, self.id))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __repr__(self):
        more = "".join(f", {k}={v!r}" for k, v in self._platform.describe(self.id).items())
        return f"{self._platform.name.capitalize()}Device(id={self.id}{more})"

    def __eq__(self, other):
        return isinstance(other, Device) and self._platform is other._platform and \
            self.id == other.id

    def __hash__(self):
        return hash((self._platform.name, self.id))


class _CpuPlatform(Platform):
    name = "cpu"

    def devices(self):
        return [CPU]

    def backend(self, device=None):
        return config.backend   # the C compiler or the NumPy reference

    def to_host(self, buffer):
        return buffer

    def from_host(self, value, device):
        return value


_CPU_PLATFORM = _CpuPlatform()
CPU = Device(_CPU_PLATFORM, 0)
_platforms: dict = {"cpu": _CPU_PLATFORM}


def _registered_device(platform: str, id: int) -> Device:
    for device in devices(platform):
        if device.id == id:
            return device
    raise RuntimeError(f"fjit: no {platform} device {id} in this process")


def register_platform(platform: Platform):
    """Make `platform`'s devices available (`fjit.devices(platform.name)`)."""
    if platform.name in _platforms and _platforms[platform.name] is not platform:
        raise ValueError(f"a platform named {platform.name!r} is already registered")
    _platforms[platform.name] = platform


def unregister_platform(name: str):
    if name == "cpu":
        raise ValueError("the CPU platform cannot be removed")
    _platforms.pop(name, None)


def devices(backend: str | None = None) -> list[Device]:
    """The devices fjit can use (`fjit.devices()`), optionally of one platform."""
    if backend is None:
        return [d for platform in _platforms.values() for d in platform.devices()]
    platform = _platforms.get("cuda" if backend == "gpu" else backend)
    if platform is None:
        raise RuntimeError(f"fjit.devices: unknown platform {backend!r}; known: "
                           f"{sorted(_platforms)}")
    found = platform.devices()
    if not found:
        raise RuntimeError(f"fjit.devices: no {platform.name} devices: {platform.why_none()}")
    return found


def default_device() -> Device:
    """The first device of the `platform` option's platform (FJIT_PLATFORM): the CPU unless
    it names another."""
    if config.platform == "cpu":
        return CPU
    return devices(config.platform)[0]


def local_devices(backend: str | None = None) -> list[Device]:
    """This process's devices (all of them: fjit runs in one process)."""
    return devices(backend)


def device_count(backend: str | None = None) -> int:
    return len(devices(backend))


def default_backend() -> str:
    """The platform of the default device ('cpu'), as `jax.default_backend()`."""
    return default_device().platform


class _TransferStats:
    """Counts of host<->device copies and their bytes, per direction."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self._counts = {"host_to_device": [0, 0], "device_to_host": [0, 0]}

    def count(self, direction, nbytes):
        with self._lock:
            entry = self._counts[direction]
            entry[0] += 1
            entry[1] += int(nbytes)

    def snapshot(self) -> dict:
        with self._lock:
            return {f"{direction}_{what}": entry[k]
                    for direction, entry in self._counts.items()
                    for k, what in enumerate(("copies", "bytes"))}


_stats = _TransferStats()


def transfer_stats() -> dict:
    """Copies between the host and devices so far: `host_to_device_copies`,
    `host_to_device_bytes`, `device_to_host_copies`, `device_to_host_bytes`.  Reading an
    array on the host (np.asarray, float, print) copies it once; the CPU never counts."""
    return _stats.snapshot()


def reset_transfer_stats():
    _stats.reset()
