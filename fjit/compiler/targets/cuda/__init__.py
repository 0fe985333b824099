"""The CUDA target (issue 16), built from the bottom up.  What exists so far is its toolchain:
`nvrtc` compiles CUDA C++ to cubins with or without a GPU, and `emulator` runs the same source
on the CPU.  The renderer, the launch runtime and the backend registration are not written
yet: nothing registers a "cuda" backend."""
