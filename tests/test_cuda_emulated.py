"""Programs on the cuda target, run on the emulated GPU: the source is rendered from the same
kernels as the C target's, compiled by NVRTC for sm_80 and sm_90 (where NVRTC is installed)
and run through the device runtime (allocator, pointer tables, stream, graphs); values
against the reference interpreter."""
import re

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import nn
from fjit.compiler.targets.cuda import nvrtc
from fjit.compiler.targets.cuda import executable as cuda_executable
from fjit.compiler.targets.cuda.platform import context_of
from fjit.compiler.targets.cuda.program import CompiledCuda
from fjit.compiler.targets.cuda.render import CudaUnsupported

pytestmark = pytest.mark.c_backend


def rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _program(fn, *args):
    return fjit.jit(fn)._lookup(args, {})[0].program


def _on_gpu(program, device):
    """`program` on the (emulated) GPU, called with host arrays (FJIT_BACKEND=cuda's path)."""
    return cuda_executable.HostCudaExecutable(program, context_of(device))


def _reference(fn, args, set_option):
    set_option("backend", "reference")
    try:
        return [np.asarray(v) for v in fjit.tree_util.tree_leaves(fjit.jit(fn)(*args))]
    finally:
        set_option("backend", "c")


def _mlp_step(w1, w2, x, y):
    def loss(p):
        h = jnp.tanh(x @ p[0])
        return jnp.mean((h @ p[1] - y) ** 2)
    g = fjit.grad(loss)((w1, w2))
    return w1 - 0.1 * g[0], w2 - 0.1 * g[1]


def _layer_norm(x, g, b):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * fjit.lax.rsqrt(var + 1e-5) * g + b


def _conv_relu_pool(x, w):
    return nn.max_pool(nn.relu(nn.conv(x, w, padding=1)), 2)


CASES = {
    "gelu": (lambda x: 0.5 * x * (1 + jnp.tanh(0.79788456 * (x + 0.044715 * x ** 3))),
             lambda: [rand(64, 33)]),
    "softmax": (lambda x: jnp.exp(x - x.max(1, keepdims=True))
                / jnp.exp(x - x.max(1, keepdims=True)).sum(1, keepdims=True),
                lambda: [rand(16, 50)]),
    "reductions": (lambda x: (x.sum(0), x.max(1), jnp.argmax(x, axis=1), x.prod(), x.min()),
                   lambda: [rand(12, 9) * 0.5]),
    "matmul": (lambda a, b: a @ b, lambda: [rand(17, 31), rand(31, 12, seed=1)]),
    "gemm_tiles_transposed_batched": (   # edges of 64x64 tiles, op(A), op(B), a batch
        lambda a, b, c: (a.T @ b, jnp.einsum("bji,bjk->bik", c, c)),
        lambda: [rand(40, 70), rand(40, 130, seed=1), rand(3, 24, 20, seed=2)]),
    "mlp_grad_step": (_mlp_step, lambda: [rand(16, 32), rand(32, 4, seed=1),
                                          rand(8, 16, seed=2), rand(8, 4, seed=3)]),
    "layer_norm": (_layer_norm, lambda: [rand(6, 40), rand(40, seed=1), rand(40, seed=2)]),
    "conv_relu_pool": (_conv_relu_pool, lambda: [rand(2, 3, 8, 8), rand(4, 3, 3, 3, seed=1)]),
    "integers_and_bools": (lambda i, x: ((i * 3) // 2 % 5, jnp.where(x > 0, i, -i),
                                         (x > 0.5) | (x < -0.5), i.astype(jnp.float32) / 3),
                           lambda: [np.arange(-20, 20, dtype=np.int32).reshape(5, 8),
                                    rand(5, 8)]),
    "broadcast_concat_slice": (lambda x, y: jnp.concatenate([x[:, ::2], y.T[:, 1:]], axis=1)
                               + x[:, :1], lambda: [rand(7, 10), rand(5, 7, seed=1)]),
    "shared_reductions": (   # a block per row or one block, combined by shuffle trees
        lambda x, i: (x.sum(), x.sum((0, 2)), x.max(2), jnp.argmax(x.reshape(6, -1), 1),
                      jnp.argmin(x.reshape(-1)), fjit.nn.logsumexp(x, axis=1), i.sum(1), i.max(),
                      jnp.argmax(i, 1), (x > 0).all(2), (x > 2).any(), jnp.var(x, 2)),
        lambda: [rand(6, 5, 300), np.random.default_rng(1).integers(-9, 9, (6, 700))
                 .astype(np.int32)]),
    "float64": (lambda x: jnp.log1p(jnp.abs(x)).sum(1), lambda: [rand(9, 13, dtype=np.float64)]),
    "float16": (lambda x: (jnp.exp(x) * 2, x.max(0), x.astype(jnp.float32).sum(), x > 0),
                lambda: [rand(9, 13, dtype=np.float16)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_programs_run_on_the_emulated_cuda_target(case, tmp_path, set_option, cuda_device):
    set_option("cache_dir", str(tmp_path / "cache"))
    fn, make_args = CASES[case]
    args = make_args()
    exe = _on_gpu(_program(fn, *args), cuda_device)
    got = exe(args)
    want = _reference(fn, args, set_option)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        if np.issubdtype(w.dtype, np.floating):
            tol = {np.dtype(np.float64): 1e-12, np.dtype(np.float16): 1e-3}.get(w.dtype, 2e-5)
            np.testing.assert_allclose(g, w, rtol=tol * 10, atol=tol)
        else:
            np.testing.assert_array_equal(g, w)
    compiled = exe.inner.compiled
    assert compiled.nvrtc_checked == (nvrtc.available() is None)
    assert "__global__" in compiled.source and "#pragma omp" not in compiled.source


def test_what_the_cuda_target_does_not_render_yet_is_a_typed_error_naming_the_kernel(
        monkeypatch):
    from fjit.compiler.targets.cuda import render
    monkeypatch.setattr(render, "MAX_LAUNCHES", 10)

    def loop(x):
        return fjit.lax.fori_loop(0, 30, lambda i, c: c * 2.0 + 1.0, x)
    with pytest.raises(CudaUnsupported, match=r"more than 10 launches \(a long scan\)"):
        CompiledCuda(_program(loop, rand(4)))


def test_the_cuda_backend_runs_jit_on_the_emulator_and_counts_what_it_cannot(set_option,
                                                                             tmp_path,
                                                                             monkeypatch):
    from fjit.compiler.targets.cuda import render
    monkeypatch.setattr(render, "MAX_LAUNCHES", 10)
    program = cuda_executable
    set_option("cache_dir", str(tmp_path / "cache"))
    set_option("cuda_emulation", True)
    set_option("backend", "cuda")
    x = rand(8, 5)
    got = fjit.jit(lambda x: jnp.tanh(x @ x.T).sum(0))(x)
    np.testing.assert_allclose(np.asarray(got), np.tanh(x @ x.T).sum(0), rtol=1e-5, atol=1e-5)
    why = "more than 10 launches (a long scan) are not rendered for CUDA yet"
    before = program.fallbacks.get(why, 0)
    looped = fjit.jit(lambda x: fjit.lax.fori_loop(0, 30, lambda i, c: c * 1.5, x))(x)
    np.testing.assert_allclose(np.asarray(looped), x * np.float32(1.5) ** 30, rtol=1e-5)
    assert program.fallbacks[why] == before + 1


def test_without_a_gpu_or_emulation_the_cuda_backend_says_what_is_missing(set_option):
    from fjit.compiler.targets.cuda import driver
    if driver.probe()[1] is None:
        pytest.skip("this machine has a GPU")
    set_option("cuda_emulation", False)
    set_option("backend", "cuda")
    with pytest.raises(RuntimeError, match="cuda backend has no device: .*FJIT_CUDA_EMULATION=1"):
        fjit.jit(lambda x: x + 1.0)(np.ones(3, np.float32))


def test_inputs_returned_as_they_are_keep_their_rank(set_option, tmp_path):
    set_option("cache_dir", str(tmp_path / "cache"))
    set_option("cuda_emulation", True)
    set_option("backend", "cuda")
    out = fjit.jit(lambda p, x: (p["w"] * x, p["n"]))({"w": jnp.full(2, 3.0), "n":
                                                       jnp.asarray(7)}, jnp.ones(2))
    assert out[1].shape == () and int(out[1]) == 7
    np.testing.assert_allclose(np.asarray(out[0]), [3.0, 3.0])


def test_lower_shows_the_cuda_source_and_each_launch(set_option):
    set_option("cuda_emulation", True)
    set_option("backend", "cuda")
    x = np.ones((64, 300), np.float32)
    text = fjit.jit(lambda x: (jnp.exp(x).sum(1), x * 2)).lower(x).as_text()
    launches = text[text.index("# Launches"):text.index("# Generated source")]
    assert launches.count("<<<") == 2   # the header, and one kernel: x * 2 fused into the rows
    assert "kernel_0_n0<<<64, 256>>>" in launches   # a block per row, its sum shared
    if nvrtc.available() is None:   # ptxas's report: the block's 32 partial sums are shared
        assert re.search(r"kernel_0_n0<<<64, 256>>>  \d+ registers, 128 B shared\n", launches)
        usage = nvrtc.resources(fjit.jit(lambda x: x.sum(1)).lower(x).source())
        assert usage["kernel_0_n0"]["shared"] == 128 and usage["kernel_0_n0"]["registers"] > 0
        assert usage["fj_copy"]["shared"] == 0
    assert 'extern "C" __global__ void kernel_0_n0' in text


def test_gemm_grids_loop_over_row_tiles_and_batches_past_the_grid_limit(cuda_device,
                                                                        monkeypatch):
    from fjit.compiler.targets.cuda import render
    monkeypatch.setattr(render, "MAX_GRID_YZ", 2)   # CUDA's is 65535: 4.2M rows, a batch
    a, b = rand(3, 300, 20), rand(3, 20, 70, seed=1)
    f = fjit.jit(lambda a, b: a @ b)
    got = f(*fjit.device_put((a, b), cuda_device))
    np.testing.assert_allclose(np.asarray(got), a @ b, rtol=1e-5, atol=1e-5)
    compiled = CompiledCuda(_program(lambda a, b: a @ b, a, b))
    (config,) = [c for fn, c in compiled.configurations() if fn.endswith("_gemm")]
    assert config == ((2, 2, 2), 256)


def test_a_reduction_over_an_outer_axis_is_a_thread_per_output(set_option):
    set_option("cuda_emulation", True)
    set_option("backend", "cuda")
    x = rand(50, 40)
    f = fjit.jit(lambda x: x.sum(0))
    launches = f.lower(x).as_text().split("# Launches")[1].split("# Generated")[0]
    assert "kernel_0_n0<<<1, 40>>>" in launches   # not the CPU's rows-outer single thread
    np.testing.assert_allclose(np.asarray(f(x)), x.sum(0), rtol=1e-5)


def _nan_ties(x):
    return jnp.argmax(x, 1), jnp.argmin(x, 1), jnp.argmax(x.reshape(-1)), x.max(1)


def test_shared_arg_reductions_keep_the_first_nan_and_the_first_of_equal_bests(cuda_device):
    x = np.zeros((4, 1000), np.float32)
    x[0, [900, 300, 700]] = 5.0          # ties: the first position wins
    x[1, [650, 20]] = np.nan             # the first NaN wins over any number
    x[2] = -np.inf                       # all equal to the initial best: position 0
    x[3, 999] = -1.0
    f = fjit.jit(_nan_ties)
    got = [np.asarray(g) for g in f(fjit.device_put(x, cuda_device))]
    want = [np.argmax(x, 1), np.argmin(x, 1), np.argmax(x.reshape(-1)), x.max(1)]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    text = f.lower(fjit.device_put(x, cuda_device)).as_text()
    assert "reductions shared" in text and "fj_block_reduce" in text


def test_rows_past_the_grid_are_looped_over_by_the_blocks(cuda_device, monkeypatch):
    from fjit.compiler.targets.cuda import render
    monkeypatch.setattr(render, "MAX_BLOCKS", 3)
    x = rand(10, 400)
    f = fjit.jit(lambda x: jnp.exp(x - x.max(1, keepdims=True)).sum(1))
    got = np.asarray(f(fjit.device_put(x, cuda_device)))
    np.testing.assert_allclose(got, np.exp(x - x.max(1, keepdims=True)).sum(1), rtol=1e-5)
    text = f.lower(fjit.device_put(x, cuda_device)).as_text()
    assert "<<<3, 256>>>" in text.split("# Launches")[1].split("# Generated")[0]


def test_short_rows_stay_a_thread_per_row(set_option):
    set_option("cuda_emulation", True)
    set_option("backend", "cuda")
    x = rand(300, 4)
    f = fjit.jit(lambda x: x.sum(1))
    launches = f.lower(x).as_text().split("# Launches")[1].split("# Generated")[0]
    assert "<<<3, 128>>>" in launches   # 300 rows of 4: one thread each
    np.testing.assert_allclose(np.asarray(f(x)), x.sum(1), rtol=1e-5)
