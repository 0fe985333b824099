"""The cuda platform's runtime on the emulated GPU (the same host code a GPU runs): arrays that
live on the device, counted transfers, asynchronous calls, CUDA graphs, the caching
allocator, kernel faults as typed errors at the next synchronization, FJIT_PLATFORM=cuda."""
import threading

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import optim
from fjit.compiler.targets.cuda import executable as cuda_executable
from fjit.compiler.targets.cuda.emulated_gpu import EmulatedGpu
from fjit.compiler.targets.cuda.gpu import CudaError, CudaOutOfMemory
from fjit.compiler.targets.cuda.memory import CachingAllocator, DeviceBuffer
from fjit.compiler.targets.cuda.platform import context_of
from fjit.devices import reset_transfer_stats, transfer_stats

from conftest import emulator_only

pytestmark = pytest.mark.c_backend


@pytest.fixture
def gpu(cuda_device):
    """The emulated GPU (a real one under FJIT_TEST_CUDA=gpu)."""
    return cuda_device


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _executable(jitted, *args):
    """The CudaExecutable a jitted function's call with `args` ran."""
    program = jitted._lookup(args, {})[0].program
    return next(e for e in program.cache.values()
                if isinstance(e, cuda_executable.CudaExecutable))


def test_arrays_stay_on_the_device_and_reading_them_copies_once(gpu):
    reset_transfer_stats()
    x = fjit.device_put(rand(4, 3), gpu)
    assert x.device == gpu and transfer_stats()["host_to_device_copies"] == 1
    y = fjit.jit(lambda a: jnp.exp(a) * 2.0)(x)
    z = y + 1.0   # eager, on the device
    assert y.device == gpu and z.device == gpu
    assert transfer_stats()["device_to_host_copies"] == 0
    np.testing.assert_allclose(np.asarray(z), np.exp(np.asarray(x)) * 2 + 1, rtol=1e-6)
    assert transfer_stats()["device_to_host_copies"] == 2   # x, then z: y never left
    assert float(z[0, 0]) == pytest.approx(float(np.exp(np.asarray(x)[0, 0]) * 2 + 1), 1e-6)
    assert "Array(" in repr(z) and z.block_until_ready() is z


def _mlp_loss(params, x, y):
    (w1, b1), (w2, b2) = params
    h = jnp.tanh(x @ w1 + b1)
    return jnp.mean((h @ w2 + b2 - y) ** 2)


def test_a_jitted_training_loop_makes_no_hidden_transfers_and_reuses_its_memory(gpu):
    params = [(rand(8, 16) * 0.3, np.zeros(16, np.float32)),
              (rand(16, 2, seed=1) * 0.3, np.zeros(2, np.float32))]
    x, y = rand(32, 8, seed=2), rand(32, 2, seed=3)
    opt = optim.adam(1e-2)
    state = opt.init(params)

    @fjit.jit
    def step(params, state, x, y):
        loss, grads = fjit.value_and_grad(_mlp_loss)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state, loss

    want_params, want_state = params, state   # the C backend, on the host
    want = []
    for _ in range(4):
        want_params, want_state, loss = step(want_params, want_state, x, y)
        want.append(float(loss))

    params, state, x, y = fjit.device_put((params, state, x, y), gpu)
    reset_transfer_stats()
    losses = []
    for k in range(4):
        params, state, loss = step(params, state, x, y)
        losses.append(loss)
        if k == 1:
            allocations = gpu.memory_stats()["device_allocations"]
    assert transfer_stats()["host_to_device_copies"] == 0
    assert transfer_stats()["device_to_host_copies"] == 0
    # from the cache, but for the blocks of the two losses kept since (at most one each:
    # the cache may already hold blocks of their size from earlier tests)
    assert gpu.memory_stats()["device_allocations"] <= allocations + 2
    np.testing.assert_allclose([float(l) for l in losses], want, rtol=1e-5)
    assert transfer_stats()["device_to_host_copies"] == 4
    exe = _executable(step, params, state, x, y)
    assert exe.calls >= 4 and exe.graph_launches == exe.calls - 1   # a graph from call 2


@emulator_only
def test_a_call_returns_before_its_kernels_run(gpu):
    x = fjit.device_put(rand(64), gpu)
    f = fjit.jit(lambda a: jnp.sin(a) + 1.0)
    f(x).block_until_ready()   # built
    emulated = context_of(gpu).gpu
    release = threading.Event()
    emulated._enqueue(release.wait, "a test holding the stream")
    y = f(x)   # enqueued behind the held stream: it cannot have run yet
    assert not release.is_set()
    release.set()
    np.testing.assert_allclose(np.asarray(y), np.sin(np.asarray(x)) + 1.0, rtol=1e-6)


def test_graph_replay_computes_what_the_launches_compute(gpu, set_option):
    f = fjit.jit(lambda a, b: (jnp.tanh(a @ b).sum(0), (a * 3).max()))
    a = fjit.device_put(rand(6, 5), gpu)
    b = fjit.device_put(rand(5, 7, seed=1), gpu)
    set_option("cuda_graphs", False)
    direct = [np.asarray(v) for v in f(a, b)]
    direct2 = [np.asarray(v) for v in f(b.T, a.T)]   # another shape: another executable
    set_option("cuda_graphs", True)
    for _ in range(3):
        replayed = [np.asarray(v) for v in f(a, b)]
    for d, r in zip(direct, replayed):
        np.testing.assert_array_equal(d, r)
    exe = _executable(f, a, b)
    assert exe.graph_launches == 3 and exe.graph is not None   # calls 2, 3 and 4
    assert len(direct2[0]) == 6


def test_a_kernel_fault_is_a_typed_error_at_the_next_sync_naming_kernel_and_program(gpu):
    def scaled(a):
        return a * 2.0 + 1.0
    x = fjit.device_put(rand(40), gpu)
    f = fjit.jit(scaled)
    f(x).block_until_ready()
    exe = _executable(f, x)
    function, _, *rest = exe._launches[0]
    exe._launches[0] = (function, (0, 128), *rest)   # a launch the device refuses
    exe.graph = None
    exe.calls = 0
    # the emulator fails it on the stream (raised at the sync), a GPU's driver at the launch
    with pytest.raises(CudaError, match=rf"CUDA kernel {function} of Program scaled"
                                        r" \(.*mul.*\), from .*test_cuda_runtime.py:\d+ "
                                        r"\(scaled\)"):
        f(x).block_until_ready()
    exe._launches[0] = (function, (1, 128), *rest)
    np.testing.assert_allclose(np.asarray(f(x)), np.asarray(x) * 2 + 1, rtol=1e-6)


def test_a_fault_on_the_emulated_stream_is_sticky_as_on_a_gpu():
    gpu = EmulatedGpu()
    block = gpu.alloc(64)
    gpu._enqueue(lambda: 1 / 0, "CUDA kernel k of Program p (a test's fault)")
    gpu.copy_to_device(block, np.arange(16, dtype=np.float32))   # skipped: the context is lost
    for _ in range(2):
        with pytest.raises(CudaError, match=r"kernel k of Program p .*ZeroDivisionError.*"
                                            r"can no longer be used"):
            gpu.synchronize()
    gpu.reset()
    gpu.synchronize()


def test_the_allocator_reuses_blocks_and_empties_its_cache_before_running_out():
    small = EmulatedGpu(memory_bytes=4 << 20)
    allocator = CachingAllocator(small)
    a = DeviceBuffer(allocator, (1 << 18,), np.float32, None)   # 1 MiB: a 2 MiB block
    address = a.address
    del a
    b = DeviceBuffer(allocator, (1 << 18,), np.float32, None)
    assert b.address == address and allocator.device_allocations == 1
    del b
    c = DeviceBuffer(allocator, (3 << 18,), np.float32, None)   # 3 MiB: frees the cache first
    assert allocator.device_allocations == 2 and allocator.stats()["bytes_cached"] == 0
    with pytest.raises(CudaOutOfMemory, match=r"no room on the GPU for 4194304 bytes: "
                                              r"4194304 bytes are held by live arrays"):
        DeviceBuffer(allocator, (1 << 20,), np.float32, None)
    del c


def test_fjit_platform_cuda_runs_jit_on_the_gpu(gpu, set_option):
    set_option("platform", "cuda")
    assert fjit.default_device() == gpu and fjit.default_backend() == "cuda"
    f = fjit.jit(lambda a: a @ a.T)
    x = rand(5, 3)
    reset_transfer_stats()
    y = f(x)   # host data: copied to the default device, the result stays there
    assert y.device == gpu and transfer_stats()["host_to_device_copies"] == 1
    z = f(y)
    assert z.device == gpu and transfer_stats()["host_to_device_copies"] == 1
    np.testing.assert_allclose(np.asarray(y), x @ x.T, rtol=1e-5, atol=1e-6)
    assert fjit.device_put(np.ones(3)).device == gpu
    set_option("platform", "cpu")
    assert fjit.default_device().platform == "cpu"


def _step(c, xs):
    c = jnp.tanh(c * 0.5 + xs.sum())
    return c, (c * 2, xs[::-1])


@pytest.mark.parametrize("reverse", [False, True])
def test_scans_run_on_the_device_as_launches_per_iteration(gpu, reverse):
    def nested(c, xs):
        c, ys = fjit.lax.scan(_step, c, xs, reverse=reverse)
        inner = fjit.lax.fori_loop(0, 3, lambda i, v: fjit.lax.scan(
            lambda a, _: (a * 0.9 + i, None), v, None, length=2)[0], c)
        return inner, ys
    xs = rand(6, 3)
    c0 = np.float32(0.3)
    f = fjit.jit(nested)
    want = fjit.jit(nested)(c0, xs)   # the C backend, on the host
    before = sum(cuda_executable.fallbacks.values())
    args = fjit.device_put((c0, xs), gpu)
    reset_transfer_stats()
    for _ in range(3):   # the third call replays a graph
        got = f(*args)
    assert transfer_stats()["host_to_device_copies"] == 0
    for g, w in zip(fjit.tree_util.tree_leaves(got), fjit.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)
    assert sum(cuda_executable.fallbacks.values()) == before
    assert _executable(f, *args).graph_launches == 2


@pytest.mark.parametrize("scale", [0.01, 3.0, 6.0, 40.0])   # 6, 2, 1 and 0 trips
def test_while_and_switch_are_decided_on_the_device(gpu, scale):
    branches = [lambda v: v - 1.0, lambda v: v * 2.0, lambda v: jnp.sin(v)]

    def f(x, i, xs):
        doubled, trips = fjit.lax.while_loop(lambda c: c[0].sum() < 100.0,
                                             lambda c: (c[0] * 2.0, c[1] + 1), (x, 0))
        switched = fjit.lax.switch(i, branches, x)
        in_scan = fjit.lax.scan(lambda c, t: (fjit.lax.while_loop(
            lambda v: v.sum() < t * 10, lambda v: v * 1.5, c), fjit.lax.cond(
            t > 2, lambda: c.sum(), lambda: -c.sum())), x, xs)
        return doubled, trips, switched, in_scan
    x = np.arange(1, 5, dtype=np.float32) * np.float32(scale)
    xs = np.array([1.0, 3.0, 8.0], np.float32)
    jitted = fjit.jit(f)
    for i in (-1, 1, 2, 7):   # lax.switch clamps the index
        want = fjit.jit(f)(x, np.int32(i), xs)   # the C backend
        got = jitted(*fjit.device_put((x, np.int32(i), xs), gpu))
        for g, w in zip(fjit.tree_util.tree_leaves(got), fjit.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)
    exe = _executable(jitted, *fjit.device_put((x, np.int32(0), xs), gpu))
    assert exe.compiled.rendered.host_driven and exe.graph is None   # the whiles' batches


def test_a_branch_is_chosen_on_the_device_so_a_graph_replays_any_index(gpu):
    branches = [lambda v: v - 1.0, lambda v: v * 2.0, lambda v: jnp.sin(v).sum() + v]
    f = fjit.jit(lambda i, x: fjit.lax.switch(i, branches, x) + 1.0)
    x = rand(5)
    reset_transfer_stats()
    for i in (0, 2, 1, 5, -4, 1):   # calls 2 on replay one graph
        got = f(*fjit.device_put((np.int32(i), x), gpu))
        want = branches[min(max(i, 0), 2)](x) + 1.0
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
    exe = _executable(f, *fjit.device_put((np.int32(0), x), gpu))
    assert not exe.compiled.rendered.host_driven and exe.graph_launches == 5
    assert transfer_stats()["device_to_host_copies"] == 6   # the results only


@pytest.mark.parametrize("n", [0, 1, 2, 3, 100])
def test_a_while_reads_its_flag_only_between_doubling_batches(gpu, n):
    def f(x, n):
        def body(c):
            k, v = c
            inner = fjit.lax.while_loop(lambda w: w[0] < k % 3, lambda w: (w[0] + 1, w[1] * 1.5),
                                        (0, v))[1]   # nested: 0, 1 or 2 trips
            return k + 1, fjit.lax.cond(k % 2 == 0, lambda: inner + 1.0, lambda: inner - 0.5)
        return fjit.lax.while_loop(lambda c: c[0] < n, body, (0, x))
    x = rand(3)
    want = fjit.jit(f)(x, np.int32(n))   # the C backend
    g = fjit.jit(f)
    got = g(*fjit.device_put((x, np.int32(n)), gpu))
    for a, b in zip(fjit.tree_util.tree_leaves(got), fjit.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    exe = _executable(g, *fjit.device_put((x, np.int32(n)), gpu))
    batches = 1 if n == 0 else int(np.ceil(np.log2(n + 2)))   # 1, 2, 4, ... iterations
    outer = 2 ** batches - 1
    assert exe.while_iterations >= outer and exe.flag_reads >= batches
    # the inner loop's batches run in every outer iteration enqueued: it reads its flag at
    # least once each, at most twice (0, 1 or 2 trips: a batch of 1, then of 2)
    assert exe.flag_reads <= batches + 2 * outer
    again = g(*fjit.device_put((x, np.int32(n)), gpu))   # the runs of launches: graphs
    for a, b in zip(fjit.tree_util.tree_leaves(again), fjit.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    assert exe.graph_launches > 0 and exe.graph is None


def test_a_program_the_target_cannot_compile_runs_on_the_host_with_counted_transfers(
        gpu, monkeypatch):
    from fjit.compiler.targets.cuda import render
    monkeypatch.setattr(render, "MAX_LAUNCHES", 10)   # a scan too long to unroll
    x = fjit.device_put(rand(4), gpu)
    loop = fjit.jit(lambda x: fjit.lax.fori_loop(0, 30, lambda i, c: c * 1.1, x))
    before = sum(cuda_executable.fallbacks.values())
    reset_transfer_stats()
    y = loop(x)
    assert y.device == gpu
    assert transfer_stats()["device_to_host_copies"] == 1
    assert transfer_stats()["host_to_device_copies"] == 1
    np.testing.assert_allclose(np.asarray(y), np.asarray(x) * np.float32(1.1) ** 30,
                               rtol=1e-5)
    assert sum(cuda_executable.fallbacks.values()) == before + 1
