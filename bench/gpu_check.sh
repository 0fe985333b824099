#!/usr/bin/env bash
# The GPU run of issue 16, prepared to finish in under 8 minutes on a lent GPU machine:
#   1. what the machine has (nvidia-smi, fjit's driver probe);
#   2. the cuda tests on the real GPU, no emulation (FJIT_TEST_CUDA=gpu);
#   3. a sample of the suite with jit on the cuda backend (FJIT_TEST_BACKENDS=cuda);
#   4. the GPU benchmarks (bench/gpu.py), one round.
# Each step has its own time limit and the script goes on after a failure; everything lands
# in $OUT (or /tmp/gpu_check).  The GPU image (Python 3.12) has no cffi: carry its wheels in
# .whl/, made where pip works with
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl cffi pycparser
# and they are installed here into /tmp/site.
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if ! python3 -c "import cffi" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || { echo "no cffi and no wheels to install"; exit 1; }
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
export FJIT_CACHE_DIR=/tmp/fjit-cache
step() {   # step NAME SECONDS COMMAND...: run, keep the output, report the status
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
  tail -n 3 "$OUT/$name.txt"
}
step machine 30 bash -c 'nvidia-smi; python3 -c "
import fjit
from fjit.compiler.targets.cuda import driver
print(driver.probe()); print(fjit.devices())"'
PYTEST="python3 -m pytest -q -p no:cacheprovider -o addopts= -p no:randomly"
step gpu_tests 120 env FJIT_TEST_CUDA=gpu $PYTEST tests/test_cuda_runtime.py \
  tests/test_cuda_emulated.py tests/test_cuda_toolchain.py
step suite_on_cuda 120 env FJIT_TEST_CUDA=gpu FJIT_TEST_BACKENDS=cuda FJIT_TEST_CUDA_SAMPLE=3 $PYTEST tests/test_jit.py \
  tests/test_lax.py tests/test_optim.py
step bench 190 python3 bench/gpu.py --rounds 1 --timeout 45 --budget 170 \
  --out "$OUT/bench.json"
cat "$OUT/summary.txt"
