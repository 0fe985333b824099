"""The compiler: Program -> fused kernels -> loop nests -> source (templates) -> native code.

    flatten.py   inline jit/checkpoint calls into one list of equations; CSE
    scalar.py    the scalar expression IR a kernel body is made of
    ranges.py    interval analysis and simplification of index expressions
    fusion.py    which values get a buffer; kernels (map, scatter, GEMM) built from the rest
    schedule.py  loop nests and the loop passes (reorder, parallelize, vectorize, unroll)
    codegen.py   render a scheduled Program through the Jinja2 templates in templates/c/
    toolchain.py the C compiler, its flags, and what it can do here
    cache.py     the on-disk cache of built libraries
    backend.py   the "c" backend: build once, call the whole Program in one native call

Nothing above this package knows C exists.
"""
