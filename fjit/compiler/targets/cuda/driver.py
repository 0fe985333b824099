"""The CUDA driver, asked what GPUs this machine has (`probe`), through cuda-python's driver
API.  Without cuda-python, without a driver or without a device, it says which: `cuInit`
raises (it does not return an error) where no driver library exists (../shared/CUDA.md)."""
from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    compute_capability: tuple   # (major, minor): the cubin's sm_XY
    memory_bytes: int

    @property
    def arch(self) -> str:
        return f"sm_{self.compute_capability[0]}{self.compute_capability[1]}"


class _Failure(Exception):
    pass


def _checked(driver, result, what):
    error, *rest = result
    if error != driver.CUresult.CUDA_SUCCESS:
        raise _Failure(f"{what} failed: {error.name}")
    return rest[0] if len(rest) == 1 else rest


@functools.lru_cache(maxsize=None)
def probe() -> tuple:
    """(the GPUs, None), or ((), why there are none)."""
    try:
        from cuda.bindings import driver
    except ImportError as e:
        return (), f"cuda-python is not installed (pip install 'fjit[cuda]'; {e})"
    return inspect(driver)


def inspect(driver) -> tuple:
    """`probe` with the driver API module `driver` (cuda.bindings.driver, or a test's)."""
    try:
        (error,) = driver.cuInit(0)
    except RuntimeError as e:   # cuda.pathfinder's DynamicLibNotFoundError: no libcuda
        return (), f"no NVIDIA driver: cuInit raised {type(e).__name__}: {str(e)[:200]}"
    if error != driver.CUresult.CUDA_SUCCESS:
        return (), f"the NVIDIA driver did not start: cuInit returned {error.name}"
    try:
        count = _checked(driver, driver.cuDeviceGetCount(), "cuDeviceGetCount")
        gpus = []
        for index in range(count):
            device = _checked(driver, driver.cuDeviceGet(index), "cuDeviceGet")
            name = _checked(driver, driver.cuDeviceGetName(256, device), "cuDeviceGetName")
            attribute = driver.CUdevice_attribute
            major, minor = (_checked(driver, driver.cuDeviceGetAttribute(which, device),
                                     "cuDeviceGetAttribute")
                            for which in (attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                          attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR))
            memory = _checked(driver, driver.cuDeviceTotalMem(device), "cuDeviceTotalMem")
            gpus.append(GpuInfo(index, name.split(b"\0", 1)[0].decode(), (major, minor),
                                int(memory)))
    except _Failure as e:
        return (), str(e)
    if not gpus:
        return (), "the NVIDIA driver reports no CUDA device"
    return tuple(gpus), None

