"""The CUDA target (issue 16).

Build:
- `render`: a Program's CUDA source and launch list from the C-dialect kernel data it shares
  with the C target (targets/c_family/kernel_data.py)
  (templates/cuda/), for loop kernels (maps, reductions, contractions as loops, fills).
- `program`: `CompiledCuda`, a Program lowered and rendered for the target (what
  `jit(f).lower()` shows), checked by NVRTC for sm_80 and sm_90 where it is installed.
- `nvrtc`: CUDA C++ to cubins with or without a GPU, cached on disk.

Run:
- `gpu`: what the backend asks of a GPU (memory, an ordered stream, modules, launches,
  graphs) and its errors; `driver_gpu` (a GPU through cuda-python's driver API) and
  `emulated_gpu` (host memory, a worker thread as the stream, kernels built by `emulator`:
  g++ against fjit's CUDA header) give it.
- `memory`: the caching allocator and the DeviceBuffers arrays on a GPU hold.
- `executable`: a Program on a GPU (pointer table, launches, a CUDA graph from the second
  call); the "cuda" backend for host arrays.
- `platform`: the cuda platform (fjit.devices("cuda"), FJIT_PLATFORM=cuda); `driver` probes
  the machine's GPUs.

Not yet: while and cond kernels in the renderer (Programs with them run on the reference
interpreter, counted in `executable.fallbacks`).
"""
