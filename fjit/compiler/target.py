"""What a compiled target can do and what planning and scheduling should weigh for it.

One `Target` travels through every stage of the pipeline (contraction rewrites, fusion,
control flow, scheduling), so the neutral stages hold no machine's numbers.  A target
package defines its own (fjit/compiler/targets/c/__init__.py: tuned on an AVX-512 server
with OpenMP threads); the defaults here are that CPU's.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str                       # the backend it registers (config.update("backend", name))
    # contractions: GEMM kernels (BLAS where available) for big enough ones, else loops
    gemm: bool = True
    gemm_min_k: int = 8             # shorter contractions are maps with an unrolled inner loop
    gemm_min_work: int = 1 << 12    # multiply-adds below which a contraction is a map's loop
    copy_ratio: int = 4             # multiply-adds per copied element that pay for a transpose
    gemm_tile: tuple = (12, 32)     # the GEMM's register tile (rows, columns): how full a
                                    # GEMM's shape keeps it decides between orientations
    # fusion
    recompute_budget: int = 8       # extra per-element work accepted to avoid a buffer
    producer_max_cost: int = 16     # per-element work a GEMM's packing may do for its B operand
    # scheduling
    parallel_min_work: int = 1 << 15   # elements x body cost below which threads cost more
    unroll_max: int = 16            # longest reduction loop unrolled
    unroll_budget: int = 512        # statements a reduction's unrolled loops may expand to
    tile: int = 16                  # block edge for reads strided along the innermost loop
