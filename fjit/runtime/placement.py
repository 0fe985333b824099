"""Where a computation runs, and getting its operands there.

JAX's rule, with the default device and the host standing for "uncommitted": arrays there
follow the others.  A computation whose operands live on one other device runs there, and
its other operands are copied over (a counted host-to-device transfer); operands on two
different devices of that kind are an error, as in JAX.  One whose operands are all
uncommitted runs on the default device (a GPU under FJIT_PLATFORM=cuda).  Unlike JAX, an
array put on the CPU with device_put is not committed there when the default is a GPU.
"""
from __future__ import annotations

from ..devices import CPU, default_device
from ..errors import FjitValueError


def common_device(arrays, what: str):
    """The device `what` (an operation's or function's name) runs on for these operands."""
    default = default_device()
    chosen = None
    for x in arrays:
        device = x._device
        if device == default or device == chosen or device is CPU:
            continue
        if chosen is not None:
            raise FjitValueError(
                f"{what}: operands live on different devices, {chosen} and {device}; "
                "move them to one with fjit.device_put(x, device)")
        chosen = device
    return default if chosen is None else chosen


def buffer_on(device, x):
    """`x`'s buffer on `device`, copied there if it lives elsewhere."""
    if x._device == device:
        if x._pending is not None:
            x._wait()   # for an asynchronous call computing it
        return x._buffer
    return device.from_host(x._value)


def runs_on_host(operands) -> bool:
    """Whether every operand is on the host CPU (the common case, checked first); operands
    that are not Arrays yet (NumPy data, scalars) will be made there."""
    return all(getattr(x, "_device", CPU) is CPU for x in operands)
