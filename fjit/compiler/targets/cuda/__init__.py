"""The CUDA target (issue 16), built from the bottom up.

- `nvrtc`: CUDA C++ to cubins (sm_80, sm_90, or the device's own) with or without a GPU.
- `emulator`: the same source built with g++ against fjit's emulator header and run on the
  CPU, launch by launch, with cuLaunchKernel's argument block.
- `driver`: the GPUs this machine has, or why there are none (`fjit.devices("cuda")`).
- `render`: a Program's CUDA source from the C target's kernel data (templates/cuda/), for
  loop kernels (maps, reductions, contractions as loops, fills), each nest a launch.
- `program`: `EmulatedCudaProgram`, a Program rendered, checked by NVRTC and run on the
  emulator; the "cuda" backend runs jit this way under the `cuda_emulation` option.

Not yet: GEMM, scatter-under-threads, control-flow and float16 kernels in the renderer
(Programs with them run on the reference interpreter, counted in `program.fallbacks`), and
the device runtime (device memory, streams, CUDA graphs) a GPU needs.
"""
