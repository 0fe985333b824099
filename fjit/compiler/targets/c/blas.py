"""Where GEMM comes from: the OpenBLAS that NumPy's wheels ship (the 64-bit-integer
`scipy_cblas_?gemm64_` interface), found without any extra dependency.  Without it the
generated code falls back to its own loop nest (correct, slower).  FJIT_BLAS=none turns
BLAS off; FJIT_BLAS=/path/to/lib.so points at another library with the same interface."""
from __future__ import annotations

import functools
import glob
import os

import cffi

from ....config import config

_ffi = cffi.FFI()
_ffi.cdef("""
void scipy_cblas_sgemm64_(int, int, int, int64_t, int64_t, int64_t, float, const float *,
                          int64_t, const float *, int64_t, float, float *, int64_t);
void scipy_cblas_dgemm64_(int, int, int, int64_t, int64_t, int64_t, double, const double *,
                          int64_t, const double *, int64_t, double, double *, int64_t);
""")
_libraries = []


def _candidates():
    choice = config.blas
    if choice == "none":
        return []
    if choice:
        return [choice]
    import numpy
    libs = os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs")
    return sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so*")))


@functools.lru_cache(maxsize=None)
def gemm_pointers():
    """(sgemm, dgemm) function pointers as cffi void*, or NULLs."""
    for path in _candidates():
        try:
            lib = _ffi.dlopen(path)
            sgemm = _ffi.cast("void *", _ffi.addressof(lib, "scipy_cblas_sgemm64_"))
            dgemm = _ffi.cast("void *", _ffi.addressof(lib, "scipy_cblas_dgemm64_"))
        except (OSError, AttributeError, cffi.FFIError):
            continue
        _libraries.append(lib)  # keep it loaded
        return sgemm, dgemm
    return _ffi.NULL, _ffi.NULL


def available() -> bool:
    return gemm_pointers()[0] != _ffi.NULL
