"""What the C-dialect targets share: the kernel data their templates render (kernel_data.py)
and the element-wise ops' C expressions (ops.py).  The C target (targets/c) and the CUDA
target (targets/cuda) each import from here, not from each other."""
