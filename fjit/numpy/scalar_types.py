"""`fjit.numpy.float32` and friends: callables that make arrays, usable wherever a dtype is."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ._util import asarray


class ScalarType:
    """`jnp.float32(3)` makes a rank-0 float32 array; `np.dtype(jnp.float32)` is float32."""

    def __init__(self, name: str, dtype):
        self.__name__ = name
        self.dtype = np.dtype(dtype)

    def __call__(self, x):
        return asarray(x, self.dtype)

    def __repr__(self):
        return f"fjit.numpy.{self.__name__}"

    def __eq__(self, other):
        try:
            return self.dtype == np.dtype(other)
        except TypeError:
            return NotImplemented

    def __hash__(self):
        return hash(self.dtype)


bool_ = ScalarType("bool_", np.bool_)
int8, int16, int32, int64 = (ScalarType(n, n) for n in ("int8", "int16", "int32", "int64"))
uint8, uint16, uint32, uint64 = (ScalarType(n, n) for n in ("uint8", "uint16", "uint32",
                                                             "uint64"))
float16, float32, float64 = (ScalarType(n, n) for n in ("float16", "float32", "float64"))
if dtypes.bfloat16 is not None:
    bfloat16 = ScalarType("bfloat16", dtypes.bfloat16)
