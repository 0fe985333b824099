"""Devices arrays live on.  A core module (every `Array` records its device), so it imports
nothing from fjit.  Only the host CPU exists until the CUDA backend lands."""
from __future__ import annotations


class Device:
    """A place arrays live: `platform` ('cpu' or 'cuda') and an index on that platform."""

    __slots__ = ("platform", "id")

    def __init__(self, platform: str, id: int):
        self.platform = platform
        self.id = id

    @property
    def device_kind(self) -> str:
        return self.platform

    def __repr__(self):
        return f"{self.platform.capitalize()}Device(id={self.id})"

    def __eq__(self, other):
        return isinstance(other, Device) and (self.platform, self.id) == (other.platform, other.id)

    def __hash__(self):
        return hash((self.platform, self.id))


CPU = Device("cpu", 0)


def devices(backend: str | None = None) -> list[Device]:
    """The devices fjit can use (`fjit.devices()`), optionally of one platform."""
    if backend not in (None, "cpu"):
        raise RuntimeError(f"fjit.devices: unknown or unavailable platform {backend!r}; "
                           "available: ['cpu']")
    return [CPU]


def default_device() -> Device:
    return CPU
