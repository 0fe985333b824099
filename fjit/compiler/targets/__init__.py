"""Compiled targets: each owns its syntax (the code for every element-wise op, types,
literals) and its toolchain.  Only `c` exists so far; its renderer still lives in
fjit/compiler/codegen.py and moves here step by step."""
