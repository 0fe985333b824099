"""Tiered compilation: a large Program first runs on code built at -O1, and switches to the
-O3 library built in the background; both compute the same bits."""
import collections
import warnings

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax

pytestmark = pytest.mark.c_backend


@pytest.fixture
def tiered(set_option, tmp_path, monkeypatch):
    """Every Program counts as large (a unit per few hundred bytes of kernel data), with a
    cache and loaded libraries of this test's own."""
    from fjit.compiler.targets.c import executable, render
    monkeypatch.setattr(render, "UNIT_MIN_WEIGHT", 200)
    monkeypatch.setattr(render, "TIER_MIN_WEIGHT", 400)
    monkeypatch.setattr(executable, "_loaded_libraries", collections.OrderedDict())
    set_option("cache_dir", str(tmp_path))
    set_option("tiered_compilation", True)
    yield
    assert fjit.block_until_compiled(timeout=300)


def _executable(jitted):
    return next(iter(jitted._cache.values())).executable


def _layer_norm_mlp(x, w):
    h = jnp.tanh(x @ w)
    mu = h.mean(1, keepdims=True)
    h = (h - mu) / jnp.sqrt(((h - mu) ** 2).mean(1, keepdims=True) + 1e-5)
    return jnp.exp(h - h.max(1, keepdims=True)).sum(0), jnp.log1p(jnp.abs(h)).sum()


def test_a_large_program_runs_quick_code_then_switches_to_the_optimised(tiered):
    from fjit.compiler import cache
    x = np.random.default_rng(0).standard_normal((64, 48)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((48, 300)).astype(np.float32)
    f = fjit.jit(_layer_norm_mlp)
    first = [np.asarray(r) for r in f(x, w)]
    exe = _executable(f)
    assert exe.cache_state.startswith("quick tier (-O1) built")
    assert f.cache_info()["builds"] == 1
    assert fjit.block_until_compiled(timeout=300)
    assert exe.optimized and exe.library.key == exe.key
    assert cache.verified_entry(exe.key) is not None   # on disk for the next process
    later = [np.asarray(r) for r in f(x, w)]
    for a, b in zip(first, later):
        np.testing.assert_array_equal(a, b)
    want = _layer_norm_mlp(x.astype(np.float64), w.astype(np.float64))
    np.testing.assert_allclose(later[0], want[0], rtol=1e-4)
    f.clear_cache()   # traced again: a new executable of the same source finds -O3 code
    f(x, w)
    assert _executable(f).optimized and _executable(f).cache_state == "memory"


PROGRAMS = [
    ("softmax rows", lambda x: jax_softmax(x), (64, 300)),
    ("column sums", lambda x: (x * x).sum(0) * 2 + x.max(0), (300, 64)),
    ("small contraction", lambda x: jnp.tanh(x[:8, :16] @ x[:16, :4]).sum(1), (64, 300)),
    ("gemm and logsumexp", lambda x: jax_logsumexp(x @ x.T), (64, 300)),
    ("scan", lambda x: lax.scan(lambda c, r: (jnp.tanh(c * 0.5 + r), c.sum()),
                                jnp.zeros(x.shape[1], x.dtype), x), (64, 300)),
    ("cumulative", lambda x: jnp.cumsum(x, axis=1) / (1.0 + jnp.abs(x).sum()), (64, 300)),
    # exp inside a 3-element inner loop of a vectorised one: -O3 unrolls it and the outer
    # loop calls the vector expf, -O1 keeps it and calls the scalar one (unless such units
    # are built at -O3 in both tiers)
    ("libm in a short inner loop", lambda x: jnp.exp(x.reshape(64, 100, 3)).sum(2), (64, 300)),
    ("libm along rows", lambda x: jnp.exp(jnp.sin(x)).sum(1)[:, None]
     + jnp.log1p(jnp.abs(x)).sum(0), (64, 300)),
    ("column sums of products", lambda x: (x[:, :128] * x[:, 128:256]).sum(0)
     + (x * 0.5).sum(1).sum(), (64, 300)),
    # a vectorised reduction over short unrolled windows: -O3 unrolls them and vectorises
    # the sum (adding in another order), -O1 keeps it scalar (found by a review)
    ("max-pool then mean", lambda x: x.reshape(64, 150, 2).max(2).mean(), (64, 300)),
    ("max-pool then row sums", lambda x: x.reshape(64, 75, 4).max(2).sum(1), (64, 300)),
    ("integer powers summed", lambda x: lax.integer_pow(x, 5).sum() + lax.integer_pow(x, 4)
     .sum(0).sum(), (64, 300)),
]


def jax_softmax(x):
    e = jnp.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def jax_logsumexp(x):
    m = x.max(1, keepdims=True)
    return jnp.log(jnp.exp(x - m).sum(1)) + m[:, 0]


@pytest.mark.parametrize("passes", ["", "-vectorize", "-unroll,-reorder"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, fn, shape", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_both_tiers_compute_the_same_bits(tiered, x64, set_option, name, fn, shape, dtype,
                                          passes):
    """Also with loop passes off: -O3 then vectorises loops fjit left scalar by itself."""
    set_option("passes", passes)
    x = (np.random.default_rng(2).standard_normal(shape) * 4).astype(dtype)
    f = fjit.jit(lambda x: (fn(x), (x * 3.0).max()))   # two kernels at least: two units
    quick = [np.asarray(r) for r in fjit.tree_util.tree_leaves(f(x))]
    assert _executable(f).cache_state.startswith("quick tier")
    assert fjit.block_until_compiled(timeout=300) and _executable(f).optimized
    optimised = [np.asarray(r) for r in fjit.tree_util.tree_leaves(f(x))]
    for a, b in zip(quick, optimised):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_an_optimisation_level_in_cflags_is_the_optimised_tier(tiered, set_option):
    """FJIT_CFLAGS=-O2: the optimised tier is -O2, the quick one -O1, and the vectorisation-
    sensitive units of the quick tier are built with exactly the optimised flags."""
    from fjit.compiler.targets.c.toolchain import toolchain
    set_option("cflags", "-O2")
    tc = toolchain()
    assert [f for f in tc.quick().flags if f.startswith("-O")] == ["-O1", "-O1"]
    x = (np.random.default_rng(3).standard_normal((64, 300)) * 4).astype(np.float32)
    f = fjit.jit(lambda x: (jnp.exp(jnp.sin(x)).sum(1), x.reshape(64, 150, 2).max(2).mean()))
    quick = [np.asarray(r) for r in f(x)]
    assert _executable(f).cache_state.startswith("quick tier")
    assert fjit.block_until_compiled(timeout=300) and _executable(f).optimized
    for a, b in zip(quick, f(x)):
        np.testing.assert_array_equal(a, np.asarray(b))


def test_with_tiering_off_the_optimised_library_is_built_at_once(tiered, set_option):
    set_option("tiered_compilation", False)
    f = fjit.jit(lambda x: (jax_softmax(x).sum(0), x.max()))
    f(np.ones((8, 32), np.float32))
    assert _executable(f).optimized and _executable(f).cache_state.startswith("built")


def test_a_failed_background_build_keeps_the_quick_code_running(tiered, monkeypatch):
    from fjit.compiler import cache
    build = cache.build_into_cache

    def fails_in_background(key, source, toolchain, unit_flags=None):
        if toolchain.niceness:
            raise cache.BuildError("planted failure")
        return build(key, source, toolchain, unit_flags)
    monkeypatch.setattr(cache, "build_into_cache", fails_in_background)
    f = fjit.jit(lambda x: (jax_softmax(x).sum(0), x.max()))
    x = np.ones((8, 32), np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = f(x)
        assert fjit.block_until_compiled(timeout=300)
    assert any("planted failure" in str(w.message) for w in caught)
    assert not _executable(f).optimized
    for a, b in zip(f(x), first):
        np.testing.assert_array_equal(a, b)
