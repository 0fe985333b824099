"""The C target: C11 with GNU extensions and OpenMP, built by the system C compiler."""
from ...target import Target

# Tuned on the AVX-512 server with 2 OpenMP threads the benchmarks in bench/ ran on.
C_TARGET = Target("c")
