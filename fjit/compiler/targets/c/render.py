"""Render a Program's scheduled kernels as C translation units through templates/c/*.j2, from
the kernel data the C-dialect targets share (targets/c_family/kernel_data.py): the units'
split, the OpenMP program around the kernels, the vector-math functions the toolchain has.
"""
from __future__ import annotations

import hashlib

from ..c_family.kernel_data import (FLOATS, INT_MAX, INT_MIN, INTS, KernelData, _types_used,
                                    all_kernels, environment, unique_kernels)
from .toolchain import VECTOR_FUNCTIONS


class Rendered:
    """A Program's C source, in translation units that compile in parallel (unit 0 holds
    `fj_program`), and the values its kernels' parameters take: `sizes` (int64) and
    `constants` (double), passed to `fj_program(B, N, F)` at every call.  The source holds
    no sizes, so Programs that differ only in sizes (a new batch size) share one library."""

    def __init__(self, units, sizes, constants, functions):
        self.units, self.sizes, self.constants = units, sizes, constants
        self.functions = functions   # what each kernel function computes (its identity)

    @property
    def source(self) -> str:
        return "\n".join(self.units)


# Source (bytes of template data, a proxy) per translation unit worth its own compiler
# process: gcc -O3 builds ResNet-18's kernels at about 35 kB of C per second, and a unit
# costs about 30 ms to start, plus one link for the whole library.  A Program of more than
# this much gets at least two units.
UNIT_MIN_WEIGHT = 20_000
# At most this many units, whatever the machine: the split is part of the source, so of the
# cache key, and machines with different core counts share cache entries.
MAX_UNITS = 4

# Template data from which a Program is built in tiers (executable.py): about 2 s of gcc -O3
# on one core.  W4's MLP step (38 kB) is built at -O3 at once.
TIER_MIN_WEIGHT = 80_000


def split_units(kernels, most) -> list:
    """`kernels` dealt into at most `most` groups of about equal weight (largest first, each
    to the lightest group), in their original order within each group.  A kernel weighs
    what its code does (its identity, not its sizes: a new batch size must not move it).
    In a Program built in tiers (TIER_MIN_WEIGHT), the kernels whose results depend on how
    the compiler vectorises them (`_vectorisation_sensitive`) get groups of their own: the
    quick tier compiles those units with the optimised build's flags, so both tiers compute
    the same bits."""
    if not kernels:
        return [[]]   # one unit all the same: fj_program, which runs nothing
    weights = [k["weight"] for k in kernels]
    count = max(1, min(most, -(-sum(weights) // UNIT_MIN_WEIGHT), len(kernels)))
    if count == 1 or sum(weights) < TIER_MIN_WEIGHT:
        return [[kernels[i] for i in group]
                for group in _balanced(range(len(kernels)), weights, count)]
    exact = [i for i, k in enumerate(kernels) if not k["sensitive"]]
    sensitive = [i for i, k in enumerate(kernels) if k["sensitive"]]
    share = max(1, round(count * sum(weights[i] for i in sensitive) / sum(weights))) \
        if sensitive else 0
    share = min(share, count - 1) if exact else count
    return [[kernels[i] for i in group]
            for part, n in ((exact, count - share), (sensitive, share))
            for group in _balanced(part, [weights[i] for i in part], n)]


def _balanced(indices, weights, count) -> list:
    if not indices:
        return []
    count = max(1, min(count, len(indices)))
    groups, loads = [[] for _ in range(count)], [0] * count
    for j in sorted(range(len(indices)), key=lambda j: -weights[j]):
        g = loads.index(min(loads))
        groups[g].append(indices[j])
        loads[g] += weights[j]
    return [sorted(group) for group in groups]


def render_program(name, plan, scheduled, toolchain, target, units=None) -> Rendered:
    """The Program's C, in at most `units` (default MAX_UNITS) translation units."""
    sizes, constants = [], []
    kernels, calls, identities = unique_kernels(KernelData(plan), scheduled, sizes, constants)
    identities = [hashlib.sha256(i.encode()).digest()[:16] for i in identities]
    top = [calls[sk.name] for sk in scheduled]
    used = _types_used(plan, scheduled)  # the prelude only defines helpers for these
    prototypes = [{"name": k["name"], "kind": k["kind"]} for k in kernels]
    template = environment().get_template("c/program.c.j2")
    groups = split_units(kernels, units or MAX_UNITS)
    units = [template.render(
        name=name, kernels=group, top=top, main=(u == 0), prototypes=prototypes, openmp=True,
        floats=[f for f in FLOATS if f[0] in used],
        ints=[i for i in INTS if i[0] in used], int_min=INT_MIN, int_max=INT_MAX,
        vector_math=toolchain.vector_math and any(f[0] in used for f in FLOATS),
        vector_functions=toolchain_vector_functions(), parallel_min_work=target.parallel_min_work,
        gemm=any(sk.kind == "gemm" for sk in all_kernels(scheduled)))
        for u, group in enumerate(groups)]
    rendered = Rendered(units, sizes, constants, identities)
    rendered.sensitive_units = [any(k["sensitive"] for k in group) for group in groups]
    rendered.tiered = len(groups) > 1 and sum(k["weight"] for k in kernels) >= TIER_MIN_WEIGHT
    return rendered


def toolchain_vector_functions():
    return VECTOR_FUNCTIONS
