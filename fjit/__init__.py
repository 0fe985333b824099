"""fjit: a JAX-compatible functional transformation system built on Jittor's meta-operators.

    import fjit, fjit.numpy as jnp

    @fjit.jit
    def f(x):
        return jnp.tanh(x @ x.T).sum()
"""
from . import dtypes, lax
from .runtime import eager as _eager  # the eager trace at the bottom of every stack
from . import numpy, tree_util
from .api import (ShapeDtypeStruct, block_until_ready, eval_shape, jit, make_jaxpr,
                  make_program)
from .api_autodiff import (checkpoint, checkpoint_policies, grad, hessian, jacfwd, jacobian,
                           jacrev, jvp, linearize, remat, value_and_grad, vjp)
from .api_vmap import vmap
from .cross_iteration import cross_iteration, train_loop
from . import nn, optim, random, serialization
from .serialization import load, save
from .custom_derivatives import custom_jvp, custom_vjp
from .array import Array, device_get, device_put
from .config import config
from .core import Program, ShapedArray
from .errors import (ConcretizationTypeError, NonConcreteBooleanIndexError,
                     TracerArrayConversionError, TracerBoolConversionError,
                     TracerIntegerConversionError, UnexpectedTracerError)
from .interpreters.partial_eval import dce
from .runtime import reference as _reference_backend  # registers the "reference" backend
from .compiler.targets.c import executable as _c_target
from .compiler.targets.cuda import platform as _cuda_target
_c_target.register()
_cuda_target.register()   # GPUs, or one emulated (FJIT_CUDA_EMULATION=1)
from .runtime.backend import block_until_compiled
from .runtime.profile import report as profile_report, reset as profile_reset
from . import devices as _devices
from .devices import default_backend, default_device, device_count, devices, local_devices
from .typecheck import typecheck

__version__ = "0.1.0"

__all__ = ["jit", "block_until_ready", "block_until_compiled", "profile_report",
           "profile_reset", "make_program", "make_jaxpr", "eval_shape", "ShapeDtypeStruct", "grad",
           "value_and_grad", "jvp", "vjp", "linearize", "jacfwd", "jacrev", "jacobian",
           "hessian", "checkpoint", "remat", "checkpoint_policies", "vmap", "custom_jvp",
           "custom_vjp", "cross_iteration", "train_loop", "Array", "device_put", "device_get",
           "devices", "local_devices", "device_count", "default_backend", "default_device",
           "config", "Program", "ShapedArray", "typecheck", "dce", "numpy",
           "lax", "tree_util", "dtypes", "optim", "nn", "random", "serialization", "save",
           "load", "ConcretizationTypeError", "UnexpectedTracerError",
           "TracerArrayConversionError", "TracerBoolConversionError",
           "TracerIntegerConversionError", "NonConcreteBooleanIndexError"]
