"""Checked mode: compiled Programs run kernel by kernel against the reference interpreter, and
a wrong kernel is reported by name, equation, source line, index and values."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax
from fjit.compiler.checked import KernelMismatchError, first_mismatch

pytestmark = pytest.mark.c_backend

RNG = np.random.default_rng(0)
X = RNG.standard_normal((8, 16)).astype(np.float32)
W = RNG.standard_normal((16, 4)).astype(np.float32)


@pytest.fixture
def planted_tanh(monkeypatch):
    """The C target's tanh renders as tanh + 0.5: every kernel computing a tanh is wrong."""
    from fjit.compiler.targets.c_family import kernel_data as render, ops
    monkeypatch.setitem(ops.C_OPS, "tanh", ops.C_OPS["tanh"] + " + 0.5f")
    render._op_template.cache_clear()
    yield
    monkeypatch.undo()
    render._op_template.cache_clear()


def _line_of(text):
    with open(__file__) as f:
        return next(n for n, line in enumerate(f, 1) if text in line)


def test_correct_programs_pass_and_return_the_compiled_values(set_option):
    """Values as an unchecked run gives them up to rounding: the last kernels computed from
    the reference's values of their inputs, not their own kernels'."""
    def f(x, w):
        y = jnp.tanh(x @ w)
        return y.sum(0) * 2, jnp.exp(y).max()

    def loss(w, x):
        def body(h, row):
            h = jnp.tanh(h + row @ w)
            return h, h.sum()
        h, ys = lax.scan(body, jnp.zeros(4, jnp.float32), x)
        return (h ** 2).sum() + lax.cond(ys.sum() > 0, lambda v: v * 2, lambda v: -v, ys).sum()

    plain = [fjit.jit(f)(X, W), fjit.jit(fjit.grad(loss))(W, X)]
    set_option("check_mode", True)
    checked = [fjit.jit(f)(X, W), fjit.jit(fjit.grad(loss))(W, X)]
    for a, b in zip(fjit.tree_util.tree_leaves(plain), fjit.tree_util.tree_leaves(checked)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    y = np.tanh(X @ W)
    np.testing.assert_allclose(checked[0][0], y.sum(0) * 2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(checked[0][1], np.exp(y).max(), rtol=1e-5)


def test_a_wrong_kernel_is_named_with_its_equation_line_index_and_values(
        set_option, planted_tanh):
    def f(x, w):
        y = jnp.tanh(x @ w)   # the planted kernel
        return y, y.sum(0)

    set_option("check_mode", True)
    with pytest.raises(KernelMismatchError) as caught:
        fjit.jit(f)(X, W)
    error = caught.value
    kernels = fjit.jit(f).lower(X, W).kernels()
    tanh_kernel = next(k for k in kernels if "tanh" in k.primitives)
    assert error.kernel == tanh_kernel.name           # not the sum downstream of it
    assert "= tanh " in error.equation
    assert error.source_info.filename == __file__
    assert error.source_info.lineno == _line_of("# the planted kernel")
    i, j = error.index
    expected = np.tanh(X @ W)[i, j]
    assert error.expected == pytest.approx(expected, abs=1e-5)
    assert error.got == pytest.approx(expected + 0.5, abs=1e-5)
    message = str(error)
    assert tanh_kernel.name in message and "jit(f)" in message
    assert f"{__file__}:{error.source_info.lineno}" in message
    assert "32 of 32 elements differ" in message


def test_the_kernel_after_a_wrong_one_is_fed_the_reference_values(set_option, planted_tanh):
    """The kernel reading the wrong one's output is not blamed even though, run on the wrong
    values, it would differ too: checking stops at the first wrong kernel, and kernels that
    pass hand on the reference's values, not their own."""
    def f(x):
        return jnp.tanh(x).sum(1) * 3 + jnp.exp(x).max()

    set_option("check_mode", True)
    with pytest.raises(KernelMismatchError) as caught:
        fjit.jit(f)(X)
    assert "tanh" in str(caught.value).split("computes these equations")[1]


def test_a_wrong_kernel_in_a_loop_body_is_reported_on_its_loop(set_option, planted_tanh):
    def f(x):
        def body(h, row):
            h = jnp.tanh(h + row)
            return h, h
        return lax.scan(body, jnp.zeros(16, jnp.float32), x)

    set_option("check_mode", True)
    with pytest.raises(KernelMismatchError) as caught:
        fjit.jit(f)(X)
    assert "= scan[" in caught.value.equation


def test_check_mode_works_on_another_c_target(set_option, planted_tanh):
    """The checker is target-neutral: here the C target without threads or BLAS."""
    from fjit.compiler.target import Target
    from fjit.compiler.targets.c.executable import executable_factory
    from fjit.runtime.backend import register_backend, unregister_backend
    register_backend("c_checked_serial", executable_factory(
        Target("c_checked_serial", gemm=False, parallel_min_work=1 << 62)))
    try:
        set_option("backend", "c_checked_serial")
        set_option("check_mode", True)
        with pytest.raises(KernelMismatchError, match="= tanh"):
            fjit.jit(lambda x, w: jnp.tanh(x @ w))(X, W)
    finally:
        unregister_backend("c_checked_serial")


def test_turning_check_mode_on_and_off_switches_executables(set_option):
    f = fjit.jit(lambda x: jnp.tanh(x) * 2)
    f(X)
    set_option("check_mode", True)
    f(X)
    set_option("check_mode", False)
    f(X)
    assert f.cache_info()["traces"] == 2
    assert f.cache_info()["builds"] <= 1      # the checked run uses the same library


def test_the_environment_variable_turns_it_on(run_fjit, tmp_path):
    out = run_fjit("import fjit; print(fjit.config.check_mode)", tmp_path / "cache",
                   FJIT_CHECK_MODE="1")
    assert out.stdout.strip() == "True", out.stderr


@pytest.mark.parametrize("dtype, close, far", [
    (np.float32, 1 + 1e-6, 1 + 1e-3), (np.float64, 1 + 1e-12, 1 + 1e-7),
    (np.float16, 1 + 1e-3, 1.1)])
def test_tolerance_follows_the_dtype(dtype, close, far):
    want = np.ones(4, dtype)
    assert first_mismatch(np.array([1, 1, close, 1], dtype), want, dtype) is None
    index, got, expected, count = first_mismatch(np.array([1, close, far, 1], dtype), want,
                                                 dtype)
    assert (index, count) == ((2,), 1)


def test_ints_are_exact_and_nan_matches_nan():
    assert first_mismatch(np.array([1, 2]), np.array([1, 3]), np.int32)[0] == (1,)
    assert first_mismatch(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), np.float64) is None
    assert first_mismatch(np.array([np.inf, 1.0]), np.array([-np.inf, 1.0]),
                          np.float64)[0] == (0,)
    assert first_mismatch(np.array([np.nan, 1.0]), np.array([0.0, 1.0]),
                          np.float64)[0] == (0,)
