"""The CUDA target (issue 16), built from the bottom up.  What exists so far is its toolchain:
`nvrtc` compiles CUDA C++ to cubins with or without a GPU, `emulator` runs the same source on
the CPU, and `driver` finds the GPUs (or says why there are none).  The renderer, the launch runtime and the backend registration are not written
yet: nothing registers a "cuda" backend."""
