"""Compiled targets: each owns its syntax (code for every element-wise op, types, literals),
its renderer, its toolchain and its executables, and registers its backend.  Only `c`
exists so far."""
