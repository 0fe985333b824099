"""Sizes that vary between calls (fjit/compiler/dynamic.py): once a jitted function has met a
second batch size, one shape-generic build serves every later size, with values checked
against the reference interpreter."""
import collections

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import nn
from fjit.compiler import dynamic
from fjit.compiler.flatten import flatten

pytestmark = pytest.mark.c_backend


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _cnn_params():
    return {"w1": rand(8, 3, 3, 3, seed=1) * 0.3, "w2": rand(8, 8, 3, 3, seed=2) * 0.2,
            "fc": rand(8 * 4 * 4, 10, seed=3) * 0.1}


def _cnn_step(params, x, y):
    """A small CNN training step with the size-sensitive parts of real models: convolutions
    (GEMMs over the batch), BatchNorm statistics (reductions over the batch, unrolled when
    short), a pooled classifier and a mean over the batch (a divisor that is 1/batch)."""
    def bn(h):
        mean = h.mean(axis=(0, 2, 3), keepdims=True)
        var = ((h - mean) ** 2).mean(axis=(0, 2, 3), keepdims=True)
        return (h - mean) * fjit.lax.rsqrt(var + 1e-5)

    def loss(p):
        h = nn.relu(bn(nn.conv(x, p["w1"], padding=1)))
        h = nn.relu(bn(nn.conv(h, p["w2"], stride=2, padding=1)))
        h = nn.avg_pool(h, 2).reshape(x.shape[0], -1)
        return nn.softmax_cross_entropy_with_integer_labels(h @ p["fc"], y).mean()
    grads = fjit.grad(loss)(params)
    return {k: params[k] - 0.1 * grads[k] for k in params}


def _jitted():
    """A jitted step of its own: jit's cache is shared by every jit of one function, and
    these tests need a function with no history."""
    return fjit.jit(lambda params, x, y: _cnn_step(params, x, y))


def _batch(n):
    rng = np.random.default_rng(n)
    return (rng.standard_normal((n, 3, 16, 16)).astype(np.float32),
            rng.integers(0, 10, n).astype(np.int32))


@pytest.fixture
def builds(tmp_path, set_option, monkeypatch):
    """The keys of the libraries built from here on (a fresh disk cache, nothing in memory)."""
    from fjit.compiler.targets.c import executable
    set_option("cache_dir", str(tmp_path / "cache"))
    monkeypatch.setattr(executable, "_loaded_libraries", collections.OrderedDict())
    built = []
    real_build = executable.cache.build_into_cache
    monkeypatch.setattr(executable.cache, "build_into_cache",
                        lambda key, *a: built.append(key) or real_build(key, *a))
    return built


def _reference_step(params, x, y, set_option):
    set_option("backend", "reference")
    try:
        return _jitted()(params, x, y)
    finally:
        set_option("backend", "c")


def test_a_cnn_step_at_ten_batch_sizes_builds_two_libraries(builds, set_option):
    set_option("tiered_compilation", False)
    params, step = _cnn_params(), _jitted()
    keys = []
    for n in [4, 8, 2, 3, 5, 6, 12, 16, 24, 32]:   # short batches unrolled before this
        x, y = _batch(n)
        got = step(params, x, y)
        want = _reference_step(params, x, y, set_option)
        for k in params:
            np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]),
                                       rtol=2e-4, atol=2e-5, err_msg=f"batch {n}, {k}")
        keys.append(step.lower(params, x, y).compiled.key)
    # the first size's own build, then one shape-generic build for every later size
    assert len(builds) == 2, builds
    assert keys[0] != keys[1] and len(set(keys[1:])) == 1
    assert step.cache_info()["traces"] == 10


def test_the_shape_generic_code_does_not_depend_on_the_sizes_it_was_derived_from():
    params, step = _cnn_params(), _jitted()
    step.lower(params, *_batch(8))
    generic = step.lower(params, *_batch(2)).compiled     # derived from batches 8 and 2
    other = _jitted()
    other.lower(params, *_batch(64))
    again = other.lower(params, *_batch(24)).compiled     # from 64 and 24
    assert generic.source == again.source
    # unlike the code specialised to a batch of 4 (its batch loops unrolled)
    assert _jitted().lower(params, *_batch(4)).compiled.source != generic.source


def test_only_a_function_seen_at_other_sizes_gets_shape_generic_code():
    params = _cnn_params()
    first = _jitted().lower(params, *_batch(4)).compiled
    assert "#pragma GCC unroll 4" in first.source   # its batch-of-4 reductions, specialised
    fresh = _jitted().lower(params, *_batch(4)).compiled
    assert fresh.key == first.key   # deterministic: no history, no generalisation


def test_a_batch_of_one_is_specialised_and_later_sizes_still_share(builds, set_option):
    """Size-1 dims change the Program itself (as torch.compile, fjit specialises 0 and 1): the
    batch-1 Program does not line up with the others, and later sizes line up with an older
    one instead."""
    set_option("tiered_compilation", False)
    params, step = _cnn_params(), _jitted()
    keys = {}
    for n in [8, 16, 1, 3, 24]:
        x, y = _batch(n)
        step(params, x, y)
        keys[n] = step.lower(params, x, y).compiled.key
    assert keys[16] == keys[3] == keys[24] != keys[1]
    assert len(builds) == len(set(keys.values())) <= 3   # each library built once


def _flat(fn, *args):
    return flatten(fjit.jit(fn).trace(*args))


def test_generalise_tags_exactly_the_sizes_that_differ():
    def f(x):
        return (x[:, :3] * 2.0).sum(axis=0) / x.shape[0]
    a, b = _flat(f, rand(8, 5)), _flat(f, rand(16, 5))
    g = dynamic.generalise(b, a)
    shapes = [v.aval.shape for v in g.invars]
    assert shapes == [(16, 5)] and dynamic.is_dynamic(shapes[0][0])
    assert shapes[0][0].twin == 8 and not dynamic.is_dynamic(shapes[0][1])
    literals = [a for e in g.eqns for a in e.invars if isinstance(a, dynamic.TaggedLiteral)]
    assert [(float(a.tagged), a.tagged.twin) for a in literals] == [(16.0, 8.0)]  # the divisor
    assert literals[0].value.dtype == np.float32    # its NumPy value keeps the dtype


def test_generalise_gives_up_on_programs_that_differ_in_more_than_sizes():
    def f(x):
        return x * 2 if x.shape[0] > 8 else jnp.tanh(x)   # a branch on a size
    assert dynamic.generalise(_flat(f, rand(16, 4)), _flat(f, rand(4, 4))) is None
    assert dynamic.generalise(_flat(f, rand(16, 4)), _flat(f, rand(12, 4))) is not None


def test_a_varying_size_keeps_its_tag_through_arithmetic():
    n = dynamic.Dyn(16, 8)
    assert int(n * 3) == 48 and (n * 3).twin == 24
    assert repr(n * 3) == "48~24" and repr(1024 / n) == "64.0~128.0"
    assert type(n - n) is int and type(n * 0) is int   # equal at both sizes: plain again
    assert dynamic.same_size(n * 2, n + 16) is False   # 32~16 vs 32~24: equal only here
    assert dynamic.same_size(n * 2, n + n)
    assert dynamic.at_least(dynamic.Dyn(1, 8), 2)   # a varying size counts as large
    # a decision that flips between the two sizes is taken as it goes for large sizes
    assert dynamic.for_large(lambda m: m - 12, n) > 0
    assert dynamic.for_large(lambda m: 12 - m, n) < 0


def test_a_varying_literal_output_keeps_its_dtype():
    f = _jitted_plain(lambda x: (x * 2, x.shape[0] * 0.5))
    for n in (8, 16, 24):
        _, s = f(np.ones((n, 2), np.float32))
        assert np.asarray(s).dtype == np.float32 and float(s + s) == n


def test_check_mode_sees_no_mismatch_in_shape_generic_code(set_option):
    set_option("check_mode", True)
    f = _jitted_plain(lambda x: (x * (x.shape[0] - 3)).astype(jnp.int8).sum(0))
    for n in (8, 16):
        x = np.arange(n * 3, dtype=np.int8).reshape(n, 3)
        want = (x.astype(np.int32) * (n - 3)).astype(np.int8).sum(0, dtype=np.int32)
        np.testing.assert_array_equal(np.asarray(f(x)), want)


def test_minus_zero_and_zero_literals_stay_apart():
    f = _jitted_plain(lambda x: (1 / (x * -((x.shape[0] - 8) * 0.5)),
                                 1 / (x * ((8 - x.shape[0]) * 0.5))))
    for n in (16, 8):
        a, b = f(np.ones(n, np.float32))
        with np.errstate(divide="ignore"):   # at n = 8: 1 / -0.0 and 1 / 0.0
            want_a = np.float32(1) / (np.float32(1) * np.float32(-((n - 8) * 0.5)))
            want_b = np.float32(1) / (np.float32(1) * np.float32((8 - n) * 0.5))
        assert (np.asarray(a)[0], np.asarray(b)[0]) == (want_a, want_b)


def test_lining_up_checks_dataflow_not_just_primitives():
    def f(x):
        a, b = x * 2, x + 1
        return a - b if x.shape[0] > 8 else b - a
    assert dynamic.generalise(_flat(f, rand(16, 3)), _flat(f, rand(4, 3))) is None


def test_tagged_sizes_copy_pickle_and_print_as_numbers():
    import copy
    import pickle
    n = dynamic.Dyn(16, 8)
    assert str(n) == "16" and f"{n}" == "16" and repr(n) == "16~8"
    for clone in (copy.copy(n), copy.deepcopy(n), pickle.loads(pickle.dumps(n))):
        assert clone == 16 and clone.twin == 8 and type(clone) is dynamic.Dyn


def _jitted_plain(fn):
    return fjit.jit(lambda *a: fn(*a))
