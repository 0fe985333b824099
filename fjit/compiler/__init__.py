"""The compiler: Program -> fused kernels -> loop nests -> source (templates) -> native code.

Target-neutral (this package):
    flatten.py   inline jit/checkpoint calls into one list of equations; CSE
    contractions.py  contractions no GEMM can read in place, rewritten over transposed copies
    scalar.py    the scalar expression IR a kernel body is made of
    ranges.py    interval analysis and simplification of index expressions
    fusion.py    which values get a buffer; kernels (map, scatter, GEMM) built from the rest
    control.py   scan/while/cond planned as loops and switches around body kernels
    schedule.py  loop nests and the loop passes (reorder, parallelize, vectorize, unroll)
    pipeline.py  the stages above, in order, for one Program
    cache.py     the on-disk cache of built libraries (verified before loading)
    lowered.py   `jit(f).lower(...)`: what the compiler made of a function
What the C-dialect targets share (targets/c_family/):
    kernel_data.py  scheduled kernels as template data: index trees, typed statements, loops
    ops.py       C for every element-wise op
The C target (targets/c/):
    render.py    a scheduled Program as C translation units (templates/c/)
    toolchain.py the C compiler, its flags, and what it can do here
    blas.py      the BLAS GEMM kernels may call
    executable.py  the "c" backend: build once, call the whole Program in one native call

The CUDA target (targets/cuda/): see its package docstring.

Nothing above this package knows C exists; tests/test_layering.py keeps the neutral modules
from importing a target, and each target from importing another (but c_family).
"""
