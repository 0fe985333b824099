"""Compiler regressions found by probing (issue 13): gradients of matmuls whose operands
fusion shares between GEMMs, arrays with a zero-sized dimension, and loop unrolling that
made gcc run for a minute.  Every value is checked against NumPy, on each backend."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def close(got, want, tol=2e-4):
    got, want = fjit.tree_util.tree_leaves(got), fjit.tree_util.tree_leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert np.shape(g) == w.shape
        scale = max(1.0, float(np.abs(w).max())) if w.size else 1.0
        np.testing.assert_allclose(np.asarray(g, np.float64), w, rtol=tol, atol=tol * scale)


# --- 1. GEMM operands shared between GEMMs ---------------------------------------------------
# The gradient of a @ b wrt both operands is g @ b.T and a.T @ g, one broadcast of the
# cotangent g feeding two GEMMs; fusion let the first GEMM compute g while packing it, and
# the second then found no buffer (KeyError in plan_block).

@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (15, 15, 15), (16, 16, 16), (17, 17, 17),
                                   (64, 64, 64), (24, 40, 18), (16, 5, 33)])
def test_grad_of_matmul_wrt_both_operands(m, k, n):
    a, b = rand(m, k), rand(k, n, seed=1)
    grads = fjit.jit(fjit.grad(lambda a, b: jnp.sum(a @ b), argnums=(0, 1)))(a, b)
    g = np.ones((m, n))
    close(grads, (g @ b.T.astype(np.float64), a.T.astype(np.float64) @ g))


def test_grad_of_mean_of_squared_matmul():
    a, b = rand(16, 16), rand(16, 16, seed=1)
    grads = fjit.jit(fjit.grad(lambda a, b: jnp.mean((a @ b) ** 2), argnums=(0, 1)))(a, b)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    g = 2 * (a64 @ b64) / (a64 @ b64).size
    close(grads, (g @ b64.T, a64.T @ g))


def test_jit_of_vjp_of_matmul():
    a, b = rand(32, 16), rand(16, 24, seed=1)
    ct = rand(32, 24, seed=2)

    def f(a, b, ct):
        _, pullback = fjit.vjp(lambda a, b: a @ b, a, b)
        return pullback(ct)
    a64, b64, c64 = (x.astype(np.float64) for x in (a, b, ct))
    close(fjit.jit(f)(a, b, ct), (c64 @ b64.T, a64.T @ c64))

    def g(a, b):   # a constant cotangent: the shared broadcast of one value
        y, pullback = fjit.vjp(lambda a, b: a @ b, a, b)
        return pullback(jnp.ones_like(y))
    ones = np.ones((32, 24))
    close(fjit.jit(g)(a, b), (ones @ b64.T, a64.T @ ones))


@pytest.mark.parametrize("loss", ["sum", "mean", "mse"])
@pytest.mark.parametrize("bias", [False, True])
def test_two_layer_mlp_jit_grad(loss, bias):
    w1, b1, w2, b2 = rand(32, 64), rand(64, seed=1), rand(64, 16, seed=2), rand(16, seed=3)
    x, y = rand(16, 32, seed=4), rand(16, 16, seed=5)
    if not bias:
        b1, b2 = np.zeros_like(b1), np.zeros_like(b2)

    def model(w1, b1, w2, b2, x):
        h = jnp.tanh(x @ w1 + b1) if bias else jnp.tanh(x @ w1)
        return h @ w2 + b2 if bias else h @ w2

    def f(w1, b1, w2, b2, x):
        o = model(w1, b1, w2, b2, x)
        return {"sum": jnp.sum(o), "mean": jnp.mean(o), "mse": jnp.mean((o - y) ** 2)}[loss]
    grads = fjit.jit(fjit.grad(f, argnums=(0, 1, 2, 3, 4)))(w1, b1, w2, b2, x)
    w1, b1, w2, b2, x, y = (v.astype(np.float64) for v in (w1, b1, w2, b2, x, y))
    h = np.tanh(x @ w1 + b1)
    o = h @ w2 + b2
    go = {"sum": np.ones_like(o), "mean": np.full_like(o, 1 / o.size),
          "mse": 2 * (o - y) / o.size}[loss]
    gh = go @ w2.T
    gz = gh * (1 - h ** 2)
    gb1, gb2 = (gz.sum(0), go.sum(0)) if bias else (np.zeros_like(b1), np.zeros_like(b2))
    want = (x.T @ gz, gb1, h.T @ go, gb2, gz @ w1.T)
    close(grads, want)


# Operand configurations a GEMM can meet: transposed, an input straight through, a broadcast
# constant, one value on both sides, a @ a.T, batched; each forward and with its gradient.
# Each is written once over a NumPy-like module `xp`, run with fjit.numpy and with NumPy.
GEMM_CONFIGS = {
    "a@b": (lambda xp, a, b: a @ b, (16, 24), (24, 20)),
    "a.T@b": (lambda xp, a, b: a.T @ b, (24, 16), (24, 20)),
    "a@b.T": (lambda xp, a, b: a @ b.T, (16, 24), (20, 24)),
    "a.T@b.T": (lambda xp, a, b: a.T @ b.T, (24, 16), (20, 24)),
    "a@a": (lambda xp, a, b: a @ a + b, (16, 16), (16, 16)),
    "a@a.T": (lambda xp, a, b: a @ a.T + b, (16, 24), (16, 16)),
    "a.T@a": (lambda xp, a, b: a.T @ a + b, (24, 16), (16, 16)),
    "ones@a": (lambda xp, a, b: xp.ones((16, 24), np.float32) @ a * b, (24, 16), (16, 16)),
    "a@full": (lambda xp, a, b: a @ xp.full((24, 16), 0.5, np.float32) + b, (16, 24),
               (16, 16)),
    "bmm": (lambda xp, a, b: a @ b, (3, 16, 24), (3, 24, 20)),
    "bmm@2d": (lambda xp, a, b: a @ b, (3, 16, 24), (24, 20)),
    "2d@bmm": (lambda xp, a, b: a @ b, (16, 24), (3, 24, 20)),
    "bmm@bmm.T": (lambda xp, a, b: a @ xp.swapaxes(b, 1, 2), (3, 16, 24), (3, 20, 24)),
    "einsum": (lambda xp, a, b: xp.einsum("bij,bkj->bik", a, b), (3, 16, 24), (3, 20, 24)),
}


def _numpy_grad_both(f, a, b, eps=1e-4):
    """d/da, d/db of sum(tanh(f)) by central differences in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)

    def loss(a, b):
        return np.sum(np.tanh(f(np, a, b)))
    out = []
    for which, x in enumerate((a, b)):
        g = np.zeros_like(x)
        for i in np.ndindex(*x.shape):
            step = np.zeros_like(x)
            step[i] = eps
            plus = (a + step, b) if which == 0 else (a, b + step)
            minus = (a - step, b) if which == 0 else (a, b - step)
            g[i] = (loss(*plus) - loss(*minus)) / (2 * eps)
        out.append(g)
    return tuple(out)


@pytest.mark.parametrize("name", sorted(GEMM_CONFIGS))
def test_gemm_operand_configurations(name):
    f, sa, sb = GEMM_CONFIGS[name]
    a, b = rand(*sa) * 0.3, rand(*sb, seed=1) * 0.3
    close(fjit.jit(lambda a, b: f(jnp, a, b))(a, b),
          f(np, a.astype(np.float64), b.astype(np.float64)))
    grad = fjit.jit(fjit.grad(lambda a, b: jnp.sum(jnp.tanh(f(jnp, a, b))), argnums=(0, 1)))
    close(grad(a, b), _numpy_grad_both(f, a, b), tol=1e-3)



def test_vmap_of_grad_of_matmul_and_a_matmul_in_a_scan_body():
    """The same planning runs for batched GEMMs and for loop bodies."""
    a, b = rand(4, 16, 16), rand(4, 16, 16, seed=1)
    grads = fjit.jit(fjit.vmap(fjit.grad(lambda a, b: jnp.sum(a @ b), argnums=(0, 1))))(a, b)
    ones = np.ones((16, 16))
    close(grads, (ones @ np.swapaxes(b, 1, 2).astype(np.float64),
                  np.swapaxes(a, 1, 2).astype(np.float64) @ ones))

    w, xs = rand(16, 16) * 0.2, rand(3, 16, 16, seed=2) * 0.2

    def f(w, xs):
        def body(c, x):
            return jnp.tanh(c @ w + x), None
        return jnp.sum(fjit.lax.scan(body, jnp.ones((16, 16), jnp.float32), xs)[0])
    w64, xs64 = w.astype(np.float64), xs.astype(np.float64)
    cs = [np.ones((16, 16))]
    for x in xs64:
        cs.append(np.tanh(cs[-1] @ w64 + x))
    gc, gw, gxs = np.ones((16, 16)), np.zeros_like(w64), np.zeros_like(xs64)
    for t in reversed(range(3)):
        gz = gc * (1 - cs[t + 1] ** 2)
        gw += cs[t].T @ gz
        gxs[t] = gz
        gc = gz @ w64.T
    close(fjit.jit(fjit.grad(f, argnums=(0, 1)))(w, xs), (gw, gxs))


# --- 2. arrays with a zero-sized dimension -----------------------------------------------------
# A reshape of a value with no elements unravelled its index by strides of 0 (ZeroDivisionError
# while planning); a value with no elements now gets a buffer and no kernel, and a reduction
# over an empty axis reads its (never evaluated) operand at index 0.

def zeros(*shape, dtype=np.float32):
    return np.zeros(shape, dtype)


def ones(*shape):
    return np.ones(shape, np.float32)


# name: (f over a NumPy-like module xp, arguments)
ZERO_SIZE = {
    "reshape": (lambda xp, x: x.reshape(0, 1), (zeros(5, 2, 0),)),
    "reshape 3d": (lambda xp, x: x.reshape(2, 0, 5), (zeros(5, 2, 0),)),
    "reshape -1": (lambda xp, x: x.reshape(-1) + 1, (zeros(5, 0, 3),)),
    "squeeze": (lambda xp, x: xp.squeeze(x, 1), (zeros(3, 1, 0),)),
    "squeeze lead": (lambda xp, x: xp.squeeze(x, 0), (zeros(1, 0, 2),)),
    "squeeze empty first": (lambda xp, x: xp.squeeze(x, 1), (zeros(0, 1, 3),)),
    "expand_dims": (lambda xp, x: xp.expand_dims(x, 1), (zeros(3, 0),)),
    "expand_dims lead": (lambda xp, x: xp.expand_dims(x, 0) * 2, (zeros(0, 3),)),
    "broadcast_to": (lambda xp, x: xp.broadcast_to(x, (4, 0, 3)), (zeros(0, 3),)),
    "broadcast_to from 1": (lambda xp, x: xp.broadcast_to(x, (0, 3)), (ones(1, 3),)),
    "transpose": (lambda xp, x: x.T + 1, (zeros(0, 3),)),
    "transpose 3d": (lambda xp, x: xp.transpose(x, (2, 0, 1)) * 2, (zeros(4, 0, 3),)),
    "concatenate rows": (lambda xp, x, y: xp.concatenate([x, y], 0), (zeros(0, 3), ones(2, 3))),
    "concatenate cols": (lambda xp, x, y: xp.concatenate([x, y], 1), (zeros(2, 0), ones(2, 3))),
    "slice": (lambda xp, x: x[1:1] + 1, (ones(5, 3),)),
    "pad": (lambda xp, x: xp.pad(x, ((1, 1), (0, 0))), (zeros(0, 3),)),
    "sum over 0": (lambda xp, x: xp.sum(x, 0), (zeros(0, 3),)),
    "sum all": (lambda xp, x: xp.sum(x), (zeros(4, 0),)),
    "sum keeps 0": (lambda xp, x: xp.sum(x, 1), (zeros(0, 3),)),
    "sum int": (lambda xp, x: xp.sum(x, 0), (zeros(0, 3, dtype=np.int32),)),
    "prod over 0": (lambda xp, x: xp.prod(x, 1), (zeros(4, 0),)),
    "max keeps 0": (lambda xp, x: xp.max(x, 1), (zeros(0, 3),)),
    "max with initial": (lambda xp, x: xp.max(x, 1, initial=-1.0), (zeros(4, 0),)),
    "sum of reshape": (lambda xp, x: xp.sum(x.reshape(4, 0), 1), (zeros(2, 2, 0),)),
    "sum of reshape 2": (lambda xp, x: xp.sum(x.reshape(0, 4), 0), (zeros(2, 0, 2),)),
    "matmul m=0": (lambda xp, a, b: a @ b, (zeros(0, 4), ones(4, 5))),
    "matmul n=0": (lambda xp, a, b: xp.tanh(a @ b), (ones(64, 64), zeros(64, 0))),
    "matmul k=0": (lambda xp, a, b: a @ b, (zeros(3, 0), zeros(0, 5))),
    "matmul k=0 large": (lambda xp, a, b: a @ b + 1, (zeros(64, 0), zeros(0, 64))),
    "batched k=0": (lambda xp, a, b: a @ b, (zeros(2, 3, 0), zeros(2, 0, 5))),
    "batched b=0": (lambda xp, a, b: a @ b, (zeros(0, 3, 4), zeros(0, 4, 5))),
    "batched@2d k=0": (lambda xp, a, b: a @ b, (zeros(3, 16, 0), zeros(0, 16))),
    "einsum k=0": (lambda xp, a, b: xp.einsum("ij,jk->ik", a, b), (zeros(16, 0), zeros(0, 16))),
    "gather empty": (lambda xp, x, i: x[i] * 2, (ones(4, 3), zeros(0, dtype=np.int32))),
    "gather from empty": (lambda xp, x, i: x[i], (zeros(4, 0), np.array([1, 2], np.int32))),
}


def test_zero_size_values_in_loops_and_branches():
    xs = zeros(0, 16, 16)
    c, ys = fjit.jit(lambda xs: fjit.lax.scan(lambda c, x: (c @ x, jnp.sum(x)),
                                               jnp.eye(16, dtype=jnp.float32), xs))(xs)
    close((c, ys), (np.eye(16), np.zeros(0)))
    branch = fjit.jit(lambda p, x: fjit.lax.cond(p, lambda x: x.reshape(0, 2) * 2,
                                                 lambda x: x.reshape(0, 2) + 1, x))
    close(branch(True, zeros(3, 0, 2)), np.zeros((0, 2)))


@pytest.mark.parametrize("name", sorted(ZERO_SIZE))
def test_zero_size_arrays(name):
    f, args = ZERO_SIZE[name]
    got = fjit.jit(lambda *a: f(jnp, *a))(*args)
    want = f(np, *args)
    assert np.asarray(got).dtype.kind == np.asarray(want).dtype.kind  # NumPy sums ints in 64 bits
    close(got, want)


@pytest.mark.parametrize("name", ["reshape", "expand_dims", "broadcast_to", "transpose",
                                  "squeeze", "sum of reshape", "matmul k=0", "matmul m=0",
                                  "matmul n=0", "batched b=0", "concatenate rows",
                                  "matmul k=0 large"])
def test_zero_size_gradients(name):
    """grad of sum(tanh(f)) wrt every float argument: tanh' = 1 - tanh**2, so the expected
    value is (1 - tanh(f)**2) pulled back by hand, or zeros where f reads nothing."""
    f, args = ZERO_SIZE[name]
    argnums = tuple(k for k, a in enumerate(args) if a.dtype == np.float32)
    loss = lambda *a: jnp.sum(jnp.tanh(f(jnp, *a)))  # noqa: E731
    grads = fjit.jit(fjit.grad(loss, argnums=argnums))(*args)
    a64 = [a.astype(np.float64) for a in args]
    out = f(np, *a64)
    g = 1 - np.tanh(out) ** 2          # d loss / d out
    if name.startswith("matmul") or name.startswith("batched"):
        a, b = a64
        want = (g @ np.swapaxes(b, -1, -2), np.swapaxes(a, -1, -2) @ g)
    elif name == "concatenate rows":
        want = (np.zeros((0, 3)), g[0:])
    else:   # every element of the argument is an element of out or none is read
        want = tuple(np.zeros_like(a) if out.size == 0 else None for a in a64)
        if name == "sum of reshape":
            want = (np.zeros((2, 2, 0)),)
    close(grads, want)


@pytest.mark.parametrize("op", ["max", "min", "argmax", "argmin"])
def test_reduction_without_identity_over_empty_axis_raises(op):
    """Like NumPy and JAX: a max/min/argmax of an empty axis has no value to give."""
    with pytest.raises(ValueError):
        fjit.jit(lambda x: getattr(jnp, op)(x, axis=0))(zeros(0, 3))


@pytest.mark.c_backend
def test_values_with_no_elements_get_no_kernel():
    """Nothing to compute: the Program's size-0 results are buffers no kernel writes."""
    kernels = fjit.jit(lambda x: (x.reshape(0, 1), x.T * 2)).lower(zeros(5, 2, 0)).kernels()
    assert kernels == []


# --- 7. bounded unrolling ---------------------------------------------------------------------
# A weight gradient run eagerly is reduce_sum over three axes of 16: every short reduction
# loop was unrolled, 4096 copies of the body, and gcc took 18-46 s and 436 MB on it.

def _unrolled_copies(levels):
    """The largest product of nested unroll factors over the reductions in `levels`, times
    the statements each copy holds."""
    from fjit.compiler.schedule import ReduceStmt

    def size(stmts):
        total = 0
        for s in stmts:
            if isinstance(s, ReduceStmt):
                factor = 1
                for loop in s.loops:
                    factor *= loop.extent if loop.unroll else 1
                total += factor * (size(s.body) + 1)
            else:
                total += 1
        return total
    return max((size(stmts) for stmts in levels), default=0)


@pytest.mark.c_backend
def test_nested_short_reductions_unroll_within_the_budget():
    from fjit import lax
    from fjit.compiler.schedule import ReduceStmt, walk_statements
    from fjit.compiler.targets.c import C_TARGET

    def weight_grad(a, b):
        spread = lax.broadcast_in_dim(b, (16, 8, 4, 3, 3, 16, 16), (0, 1, 5, 6))
        return lax.reduce_sum(lax.mul(spread, a), (0, 5, 6))
    a, b = rand(16, 8, 4, 3, 3, 16, 16) * 0.1, rand(16, 8, 16, 16, seed=1)
    lowered = fjit.jit(weight_grad).lower(a, b)
    (kernel,) = lowered.compiled.scheduled
    (nest,) = kernel.nests
    assert _unrolled_copies(nest.levels) <= C_TARGET.unroll_budget
    (reduction,) = [s for s in walk_statements(nest.levels) if isinstance(s, ReduceStmt)]
    assert [loop.unroll for loop in reduction.loops] == [False, False, True]  # innermost only
    assert lowered.source().count("#pragma GCC unroll") == 1
    want = np.einsum("nocdeyx,noyx->ocde", a.astype(np.float64), b.astype(np.float64))
    close(fjit.jit(weight_grad)(a, b), want)


@pytest.mark.c_backend
def test_short_windows_are_still_unrolled_completely():
    """A 3 x 3 window sum is straight-line code (where unrolling pays)."""
    from fjit.compiler.schedule import ReduceStmt, walk_statements
    x = rand(10, 10)

    def window(x):
        return sum(x[i:i + 8, j:j + 8] for i in range(3) for j in range(3))
    pooled = lambda x: jnp.sum(jnp.stack([x[i:i + 8, j:j + 8] for i in range(3)  # noqa: E731
                                          for j in range(3)]).reshape(3, 3, 8, 8), (0, 1))
    lowered = fjit.jit(pooled).lower(x)
    reductions = [s for k in lowered.compiled.scheduled for n in k.nests
                  for s in walk_statements(n.levels) if isinstance(s, ReduceStmt)]
    assert reductions and all(l.unroll for s in reductions for l in s.loops)
    close(fjit.jit(pooled)(x), window(x.astype(np.float64)))


def _masked_loads(source, tmp_path):
    """How many loads gcc if-converted into masked loads in `source` (built as fjit builds)."""
    import subprocess
    from fjit.compiler.targets.c.toolchain import toolchain
    tc = toolchain()
    if "clang" in tc.version.lower():
        pytest.skip("-fdump-tree-ifcvt is gcc's")
    src = tmp_path / "k.c"
    src.write_text(source)
    flags = [f for f in tc.flags if f not in ("-shared", "-fPIC")]
    subprocess.run([tc.cc, *flags, "-c", str(src), "-o", str(tmp_path / "k.o"),
                    "-fdump-tree-ifcvt"], cwd=tmp_path, check=True, capture_output=True)
    return sum(p.read_text().count(".MASK_LOAD") for p in tmp_path.glob("*ifcvt*"))


@pytest.mark.c_backend
def test_no_kernel_load_is_masked(tmp_path):
    """Map kernels load every operand unconditionally.  gcc 12.2 miscompiles masked loads in
    loops with a small unrolled inner loop, so none may appear: the flags keep gcc from
    moving loads under conditions (the first case is the map kernel of `x.at[idx].set(v)`
    that tests/test_fuzz_regressions.py keeps; scatter kernels guard their accumulates on
    purpose and are not checked here)."""
    x = np.arange(12, dtype=np.float32).reshape(4, 3, 1)
    where = np.array([0, 1, 2, -9, -9, -9, 3, 4, 5, -9, -9, -9], np.int32).reshape(4, 3, 1)
    cases = [
        (lambda x, g, v: jnp.where(g >= 0, jnp.where(g < 6, v, 0.0), x),
         (x, where, np.float32(-1))),
        (fjit.grad(lambda x: jnp.sum(jnp.maximum(x, 0.0) * 2.0)), (x,)),
        (lambda x: jnp.where(x > 2, jnp.where(x < 9, x, -x), 1.0), (x,)),
        (lambda x: jnp.pad(x, ((1, 1), (0, 2), (0, 0)))[1:], (x,)),
    ]
    for f, args in cases:
        source = fjit.jit(f).lower(*args).source()
        assert _masked_loads(source, tmp_path) == 0


@pytest.mark.c_backend
def test_window_gathers_load_conditionally_only_in_long_innermost_loops(tmp_path):
    """A padded window gather (im2col) loads only where its position is in range, so a
    32-wide row vectorises into masked contiguous loads instead of staying scalar with
    clamped indices.  In a short innermost loop (which gcc unrolls completely) and under a
    pooling window's reduction loops it keeps the clamped, unconditional load that
    test_no_kernel_load_is_masked asks for."""
    from fjit.nn import conv, max_pool
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 32)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32)
    wide = lambda x, w: conv(x, w, 1, 1)  # noqa: E731
    from fjit.compiler.targets.c.toolchain import toolchain
    levels = [f for f in toolchain().flags if f.startswith("-O")]
    vectorising = levels and levels[-1] in ("-O2", "-O3", "-Ofast")   # not the sanitizers' -O1
    assert (_masked_loads(fjit.jit(wide).lower(x, w).source(), tmp_path) > 0) == vectorising
    close(fjit.jit(wide)(x, w), conv(x, w, 1, 1))        # against the reference backend
    # (a new function for the 8-wide row: a second size of `wide` would build its
    # shape-generic library, where the row's length varies and gcc cannot unroll it)
    for f, args in [(lambda x, w: conv(x, w, 1, 1), (x[..., :8], w)),   # an 8-wide row
                    (lambda x: max_pool(x, 3, 1, 1), (x,))]:
        for old in tmp_path.glob("*ifcvt*"):
            old.unlink()
        assert _masked_loads(fjit.jit(f).lower(*args).source(), tmp_path) == 0
        close(fjit.jit(f)(*args), f(*args))


@pytest.mark.c_backend
def test_padded_loads_beside_a_short_reduction_stay_unconditional(tmp_path):
    """A pad (a 20-wide row, so fusion makes its load conditional) whose kernel also sums a
    3-long axis: the sum's loop is unrolled inside the row loop, gcc 12.2's wrong-code shape
    for masked loads, so the scheduler makes the loads unconditional again (found in
    review)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 17)).astype(np.float32)
    z = rng.standard_normal((4, 20, 3)).astype(np.float32)
    f = lambda x, z: jnp.pad(x, ((0, 1), (1, 2))) * jnp.sum(z, axis=2)  # noqa: E731
    assert _masked_loads(fjit.jit(f).lower(x, z).source(), tmp_path) == 0
    close(fjit.jit(f)(x, z), np.pad(x, ((0, 1), (1, 2))) * z.sum(axis=2))
