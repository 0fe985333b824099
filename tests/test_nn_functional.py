"""fjit.nn.activations and fjit.nn.losses against NumPy formulas (float64 references),
finite-difference gradients, and JAX's conventions at kinks.  Values are checked eagerly;
a single test runs the functions under jit."""
import math

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import dtypes
from fjit.nn import activations as A
from fjit.nn import losses as L
from fjit.test_util import check_grads

# --- NumPy references (float64) ---------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))


def _softplus(x):
    return np.logaddexp(x, 0.0)


def _gelu_tanh(x):
    return x * 0.5 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _relu6(x):
    return np.where(np.isnan(x), x, np.clip(x, 0, 6))


SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805

ACTIVATIONS = {
    "relu": (A.relu, lambda x: np.where(np.isnan(x), x, np.maximum(x, 0))),
    "relu6": (A.relu6, _relu6),
    "leaky_relu": (A.leaky_relu, lambda x: np.where(x >= 0, x, 0.01 * x)),
    "leaky_relu_0.2": (lambda x: A.leaky_relu(x, negative_slope=0.2),
                       lambda x: np.where(x >= 0, x, 0.2 * x)),
    "elu": (A.elu, _elu),
    "elu_2": (lambda x: A.elu(x, alpha=2.0), lambda x: _elu(x, 2.0)),
    "celu": (lambda x: A.celu(x, alpha=0.5),
             lambda x: np.maximum(x, 0) + 0.5 * np.expm1(np.minimum(x, 0) / 0.5)),
    "selu": (A.selu, lambda x: SELU_S * _elu(x, SELU_A)),
    "gelu_tanh": (A.gelu, _gelu_tanh),
    "gelu_erf": (lambda x: A.gelu(x, approximate=False),
                 lambda x: x * (1 + _erf(x / np.sqrt(2))) / 2),
    "sigmoid": (A.sigmoid, _sigmoid),
    "silu": (A.silu, lambda x: x * _sigmoid(x)),
    "swish": (A.swish, lambda x: x * _sigmoid(x)),
    "softplus": (A.softplus, _softplus),
    "log_sigmoid": (A.log_sigmoid, lambda x: -_softplus(-x)),
    "soft_sign": (A.soft_sign, lambda x: x / (np.abs(x) + 1)),
    "hard_tanh": (A.hard_tanh, lambda x: np.where(np.isnan(x), x, np.clip(x, -1, 1))),
    "hard_sigmoid": (A.hard_sigmoid, lambda x: _relu6(x + 3) / 6),
    "hard_silu": (A.hard_silu, lambda x: x * _relu6(x + 3) / 6),
    "hard_swish": (A.hard_swish, lambda x: x * _relu6(x + 3) / 6),
    "tanh": (A.tanh, np.tanh),
}

SPECIAL = [-np.inf, -1e4, -30.0, -6.0, -3.0, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 3.0, 6.0,
           30.0, 1e4, np.inf, np.nan]

FLOATS = ["float32", "float16"] + (["bfloat16"] if dtypes.bfloat16 is not None else [])
TOL = {"float32": 2e-6, "float16": 2e-3, "bfloat16": 1.6e-2}


def _input(dtype):
    x = np.array(SPECIAL, dtype=np.float32).astype(jnp.dtype(getattr(jnp, dtype)))
    return jnp.asarray(x), np.asarray(x).astype(np.float64)


def _close(got, want, dtype, atol=None):
    tol = TOL[dtype]
    np.testing.assert_allclose(np.asarray(got).astype(np.float64), want, rtol=tol,
                               atol=tol if atol is None else atol, equal_nan=True)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values(name, dtype):
    fn, ref = ACTIVATIONS[name]
    x, x64 = _input(dtype)
    with np.errstate(all="ignore"):
        want = ref(x64)
    got = fn(x)
    assert got.dtype == x.dtype and got.shape == x.shape
    _close(got, want, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_activations_jitted(dtype):
    """All activations in one jitted Program (compiled C on the c backend) agree with the
    eager values, infinities and NaNs included."""
    x, _ = _input(dtype)
    names = sorted(ACTIVATIONS)
    jitted = fjit.jit(lambda x: [ACTIVATIONS[n][0](x) for n in names])(x)
    for name, got in zip(names, jitted):
        want = np.asarray(ACTIVATIONS[name][0](x), np.float64)
        np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=TOL[dtype],
                                   atol=TOL[dtype], equal_nan=True, err_msg=name)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_grads(name):
    fn, _ = ACTIVATIONS[name]
    x = np.array([-4.3, -2.2, -0.7, 0.4, 1.3, 2.9, 7.1])  # away from every kink
    check_grads(fn, (x,), order=2 if name in ("gelu_erf", "softplus", "selu") else 1)


def test_integer_inputs():
    assert A.relu(jnp.array([-2, 3])).dtype == jnp.int32
    np.testing.assert_array_equal(A.relu6(jnp.array([-2, 3, 9])), [0, 3, 6])
    np.testing.assert_allclose(A.sigmoid(jnp.array([0, 0])), [0.5, 0.5])
    assert A.sigmoid(jnp.array([0])).dtype == jnp.float32


def test_kinks_follow_jax():
    """relu'(0) = 0, relu6' is 0 at 0 and 6, hard_tanh' is 1 at +-1, softplus'(0) = 1/2."""
    def grad_of(f, at):
        return np.asarray(fjit.vmap(fjit.grad(f))(jnp.array(at)))

    np.testing.assert_array_equal(grad_of(A.relu, [-1.0, 0.0, 2.0]), [0, 0, 1])
    np.testing.assert_array_equal(grad_of(A.relu6, [0.0, 3.0, 6.0, 7.0]), [0, 1, 0, 0])
    np.testing.assert_array_equal(grad_of(A.hard_tanh, [-1.0, 1.0, 1.5]), [1, 1, 0])
    np.testing.assert_allclose(grad_of(A.softplus, [0.0, -1e4, 1e4]), [0.5, 0, 1])
    np.testing.assert_allclose(grad_of(A.log_sigmoid, [0.0, -1e4, 1e4]), [0.5, 1, 0])
    np.testing.assert_allclose(grad_of(A.elu, [-1e4, 0.0, 1e4]), [0, 1, 1])
    # large inputs give finite gradients (no inf * 0 from the branch that is not taken)
    for f in (A.sigmoid, A.silu, A.gelu, A.softplus, A.celu, A.selu, A.soft_sign):
        assert np.isfinite(grad_of(f, [-1e4, 1e4])).all(), f.__name__


def test_glu():
    x = np.random.default_rng(0).standard_normal((2, 6)).astype(np.float32)
    np.testing.assert_allclose(A.glu(x), x[:, :3] * _sigmoid(x[:, 3:]), rtol=1e-6)
    np.testing.assert_allclose(A.glu(x.T, axis=0), (x[:, :3] * _sigmoid(x[:, 3:])).T,
                               rtol=1e-6)
    check_grads(A.glu, (x,), order=1)
    with pytest.raises(ValueError, match=r"glu.*\(2, 5\)"):
        A.glu(jnp.ones((2, 5)))


# --- softmax, log_softmax, logsumexp ----------------------------------------------------------

def _np_logsumexp(x, axis, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis)


def _np_softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


X = np.array([[1e4, 1e4 - 1, -1e4, 0.0], [-3.0, 0.5, 2.0, -np.inf], [0.1, -0.2, 0.3, 0.0]])


@pytest.mark.parametrize("dtype", FLOATS)
def test_softmax_family_stable(dtype):
    x = jnp.asarray(X.astype(np.float32)).astype(dtype)
    x64 = np.asarray(x).astype(np.float64)
    for axis in (-1, 0, (0, 1)):
        _close(A.softmax(x, axis=axis), _np_softmax(x64, axis), dtype)
        _close(A.log_softmax(x, axis=axis), x64 - _np_logsumexp(x64, axis, keepdims=True),
               dtype, atol=TOL[dtype] * 1e4)
        _close(A.logsumexp(x, axis=axis), _np_logsumexp(x64, axis), dtype,
               atol=TOL[dtype] * 1e4)
    assert A.softmax(x).dtype == x.dtype and A.logsumexp(x, axis=1).dtype == x.dtype


def test_logsumexp_options():
    x64 = X.copy()
    np.testing.assert_allclose(A.logsumexp(X.astype(np.float32)), _np_logsumexp(x64, None),
                               rtol=1e-6)
    np.testing.assert_allclose(A.logsumexp(X.astype(np.float32), axis=1, keepdims=True),
                               _np_logsumexp(x64, 1, keepdims=True), rtol=1e-6)
    # rows of -inf give -inf, +inf gives +inf
    rows = jnp.array([[-np.inf, -np.inf], [np.inf, 0.0]])
    np.testing.assert_array_equal(A.logsumexp(rows, axis=1), [-np.inf, np.inf])
    # b: weights, possibly negative
    a, b = np.array([[0.5, 1.0, 2.0]]), np.array([[2.0, -1.0, 0.5]])
    total = np.sum(b * np.exp(a), axis=1)
    out, sign = A.logsumexp(a.astype(np.float32), axis=1, b=b.astype(np.float32),
                            return_sign=True)
    np.testing.assert_allclose(out, np.log(np.abs(total)), rtol=1e-6)
    np.testing.assert_array_equal(sign, np.sign(total))
    neg = A.logsumexp(jnp.array([0.0, 1.0]), b=jnp.array([1.0, -1.0]))
    assert np.isnan(neg)
    # b == 0 ignores the entry, even an infinite one
    np.testing.assert_allclose(A.logsumexp(jnp.array([np.inf, 1.0]), b=jnp.array([0.0, 1.0])),
                               1.0)
    # where masks entries out
    w = np.array([True, False, True])
    np.testing.assert_allclose(A.logsumexp(jnp.array([1.0, 50.0, 2.0]), where=w),
                               np.log(np.exp(1.0) + np.exp(2.0)), rtol=1e-6)


def test_softmax_where():
    x = np.array([[1.0, 100.0, 2.0], [3.0, 1.0, -1.0]], np.float32)
    w = np.array([True, False, True])
    got = A.softmax(x, where=w)
    want = np.where(w, _np_softmax(np.where(w, x, -np.inf), -1), 0)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    log_got = A.log_softmax(x, where=w)
    assert np.isneginf(np.asarray(log_got)[:, 1]).all()
    np.testing.assert_allclose(np.asarray(log_got)[:, [0, 2]],
                               np.log(want[:, [0, 2]]), rtol=1e-5)
    # the masked entries get zero gradient, the others the masked softmax's
    g = fjit.grad(lambda x: jnp.sum(A.softmax(x, where=w) * jnp.arange(3.0)))(jnp.asarray(x))
    assert np.asarray(g)[:, 1].tolist() == [0.0, 0.0]
    assert np.isfinite(np.asarray(g)).all()


def test_softmax_grads():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4))
    check_grads(A.softmax, (x,), order=2)
    check_grads(lambda x: A.softmax(x, axis=0), (x,), order=1)
    check_grads(A.log_softmax, (x,), order=2)
    check_grads(lambda x: A.logsumexp(x, axis=1), (x,), order=2)
    check_grads(lambda x, b: A.logsumexp(x, axis=1, b=b), (x, np.abs(x) + 0.1), order=1)
    check_grads(lambda x: A.standardize(x, axis=1), (x,), order=1)


def test_gradients_with_infinite_entries():
    """-inf logits: softmax and logsumexp gradients are 0 there and finite elsewhere."""
    x = jnp.array([[-np.inf, 0.0, 1.0], [1e4, -1e4, 0.0]])
    weights = jnp.arange(3.0)
    g = np.asarray(fjit.grad(lambda x: jnp.sum(A.softmax(x) * weights))(x))
    assert np.isfinite(g).all() and g[0, 0] == 0
    g = np.asarray(fjit.grad(lambda x: jnp.sum(A.logsumexp(x, axis=1)))(x))
    np.testing.assert_allclose(g, _np_softmax(np.asarray(x, np.float64), 1), atol=1e-7)
    g = np.asarray(fjit.grad(lambda x: jnp.sum(A.log_softmax(x)[:, 1]))(x))
    assert np.isfinite(g).all() and g[0, 0] == 0


def test_standardize():
    x = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32) * 3 + 1
    for axis in (-1, 0, (0, 1)):
        want = (x - x.mean(axis, keepdims=True)) / np.sqrt(x.var(axis, keepdims=True) + 1e-5)
        np.testing.assert_allclose(A.standardize(x, axis=axis), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(A.standardize(x, mean=1.0, variance=4.0, epsilon=0.0),
                               (x - 1) / 2, rtol=1e-6)


def test_one_hot():
    labels = jnp.array([0, 2, 3, -1, 1])
    want = np.zeros((5, 3), np.float32)
    want[[0, 1, 4], [0, 2, 1]] = 1  # 3 and -1 are out of range: all-zero rows
    got = A.one_hot(labels, 3)
    assert got.dtype == jnp.float32 and got.shape == (5, 3)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(A.one_hot(labels, 3, axis=0), want.T)
    got = A.one_hot(jnp.array([[1, 0]]), 2, dtype=jnp.int32, axis=1)
    assert got.dtype == jnp.int32 and got.shape == (1, 2, 2)
    np.testing.assert_array_equal(got, [[[0, 1], [1, 0]]])
    with pytest.raises(TypeError, match="one_hot: num_classes"):
        A.one_hot(labels, 2.5)


# --- losses -----------------------------------------------------------------------------------

RNG = np.random.default_rng(3)
LOGITS = RNG.standard_normal((4, 5)) * 3
PROBS = _np_softmax(RNG.standard_normal((4, 5)), -1)
INT_LABELS = np.array([0, 4, 2, 2])
PRED, TARGET = RNG.standard_normal((3, 4)) * 2, RNG.standard_normal((3, 4))


def _np_huber(e, delta):
    a = np.abs(e)
    return np.where(a <= delta, 0.5 * e ** 2, delta * (a - 0.5 * delta))


def test_cross_entropies():
    logp = LOGITS - _np_logsumexp(LOGITS, -1, keepdims=True)
    f32 = LOGITS.astype(np.float32)
    got = L.softmax_cross_entropy(f32, PROBS.astype(np.float32))
    assert got.shape == (4,) and got.dtype == jnp.float32
    np.testing.assert_allclose(got, -(PROBS * logp).sum(-1), rtol=1e-5)
    got = L.softmax_cross_entropy_with_integer_labels(f32, INT_LABELS)
    np.testing.assert_allclose(got, -logp[np.arange(4), INT_LABELS], rtol=1e-5, atol=1e-6)
    one_hot = np.eye(5)[INT_LABELS]
    np.testing.assert_allclose(L.softmax_cross_entropy(f32, one_hot.astype(np.float32)), got,
                               rtol=1e-5)
    # class axis 0
    got = L.softmax_cross_entropy_with_integer_labels(f32.T, INT_LABELS, axis=0)
    np.testing.assert_allclose(got, -logp[np.arange(4), INT_LABELS], rtol=1e-5, atol=1e-6)
    # stable for huge logits; -inf logits with zero labels contribute 0
    big = jnp.array([[1e4, -1e4, 0.0], [-np.inf, 2.0, 1.0]])
    want = [2e4, np.log(1 + np.e)]
    np.testing.assert_allclose(
        L.softmax_cross_entropy_with_integer_labels(big, jnp.array([1, 2])), want, rtol=1e-6)
    np.testing.assert_allclose(
        L.softmax_cross_entropy(big, jnp.array([[0.0, 1, 0], [0, 0, 1]])), want, rtol=1e-6)
    # out-of-range integer labels give NaN rather than a plausible number
    bad = L.softmax_cross_entropy_with_integer_labels(f32[:2], jnp.array([5, -1]))
    assert np.isnan(np.asarray(bad)).all()


def test_sigmoid_binary_cross_entropy():
    x = np.array([-1e4, -30.0, -2.0, 0.0, 0.5, 30.0, 1e4])
    y = np.array([0.0, 1.0, 0.3, 1.0, 0.0, 0.0, 1.0])
    want = -y * -np.logaddexp(0, -x) - (1 - y) * -np.logaddexp(0, x)
    got = L.sigmoid_binary_cross_entropy(x.astype(np.float32), y.astype(np.float32))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    got16 = L.sigmoid_binary_cross_entropy(jnp.asarray(x[1:-1], jnp.float16), y[1:-1])
    assert got16.dtype == jnp.float16
    np.testing.assert_allclose(np.asarray(got16, np.float64), want[1:-1], rtol=2e-3,
                               atol=2e-3)


def test_regression_losses():
    f32 = PRED.astype(np.float32), TARGET.astype(np.float32)
    e = PRED - TARGET
    cases = [(L.squared_error, e ** 2), (L.l2_loss, 0.5 * e ** 2),
             (L.absolute_error, np.abs(e)), (L.huber_loss, _np_huber(e, 1.0)),
             (L.log_cosh, np.log(np.cosh(e)))]
    for fn, want in cases:
        got = fn(*f32)
        assert got.shape == e.shape and got.dtype == jnp.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=fn.__name__)
        np.testing.assert_allclose(fn(f32[0] - f32[1]), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(L.huber_loss(*f32, delta=0.5), _np_huber(e, 0.5), rtol=1e-5)
    # log_cosh does not overflow where cosh does
    np.testing.assert_allclose(L.log_cosh(jnp.array([1e4, -1e4])), 1e4 - np.log(2), rtol=1e-6)


def test_loss_grads():
    check_grads(L.softmax_cross_entropy, (LOGITS, PROBS), order=2)
    check_grads(lambda x: L.softmax_cross_entropy_with_integer_labels(x, INT_LABELS),
                (LOGITS,), order=2)
    check_grads(L.sigmoid_binary_cross_entropy, (LOGITS, PROBS), order=2)
    for fn in (L.squared_error, L.l2_loss, L.absolute_error, L.log_cosh):
        check_grads(fn, (PRED, TARGET), order=1)
    check_grads(lambda p, t: L.huber_loss(p, t, delta=0.7), (PRED, TARGET), order=1)
    # the gradients at zero error are the smooth ones
    zero = jnp.zeros(2)
    for fn in (L.huber_loss, L.log_cosh, L.l2_loss):
        np.testing.assert_array_equal(fjit.grad(lambda p, fn=fn: jnp.sum(fn(p)))(zero), [0, 0])
    # d/dlogits of the integer-label loss: softmax - one_hot
    g = fjit.grad(lambda x: jnp.sum(L.softmax_cross_entropy_with_integer_labels(
        x, INT_LABELS)))(jnp.asarray(LOGITS, jnp.float32))
    np.testing.assert_allclose(g, _np_softmax(LOGITS, -1) - np.eye(5)[INT_LABELS], atol=1e-6)


def test_loss_errors():
    logits = jnp.ones((4, 5))
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: logits of shape \(4, 5\) "
                                         r"and labels of shape \(4, 3\)"):
        L.softmax_cross_entropy(logits, jnp.ones((4, 3)))
    with pytest.raises(TypeError, match=r"with_integer_labels: labels must be integers.*f32"):
        L.softmax_cross_entropy_with_integer_labels(logits, jnp.ones(4))
    with pytest.raises(ValueError, match=r"labels of shape \(5,\) do not match logits of "
                                         r"shape \(4, 5\)"):
        L.softmax_cross_entropy_with_integer_labels(logits, jnp.zeros(5, jnp.int32))
    with pytest.raises(TypeError, match="logits must be a floating-point array, got i32"):
        L.softmax_cross_entropy_with_integer_labels(jnp.ones((4, 5), jnp.int32),
                                                    jnp.zeros(4, jnp.int32))
    with pytest.raises(ValueError, match=r"sigmoid_binary_cross_entropy: logits of shape"):
        L.sigmoid_binary_cross_entropy(jnp.ones(3), jnp.ones(4))
    with pytest.raises(ValueError, match=r"huber_loss: predictions of shape \(3,\) and "
                                         r"targets of shape \(2,\)"):
        L.huber_loss(jnp.ones(3), jnp.ones(2))


# --- under transformations --------------------------------------------------------------------

def test_jit_vmap_training_step():
    """A small classifier's loss gradient: jit(grad) equals the eager gradient, and vmap of
    per-example losses equals the batched call."""
    rng = np.random.default_rng(4)
    w = jnp.asarray(rng.standard_normal((3, 4)), jnp.float32)
    x = jnp.asarray(rng.standard_normal((6, 3)), jnp.float32)
    labels = jnp.array([0, 1, 2, 3, 1, 0])

    def loss(w, x, labels):
        h = A.gelu(x @ w) + A.relu(x @ w) + A.softmax(x @ w)
        return jnp.mean(L.softmax_cross_entropy_with_integer_labels(h, labels)
                        + L.softmax_cross_entropy(h, A.one_hot(labels, 4))) \
            + jnp.mean(A.logsumexp(h, axis=1))

    eager = fjit.grad(loss)(w, x, labels)
    jitted = fjit.jit(fjit.grad(loss))(w, x, labels)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)
    per_example = fjit.vmap(lambda xi, li: L.softmax_cross_entropy_with_integer_labels(
        A.log_softmax(xi @ w), li))(x, labels)
    np.testing.assert_allclose(per_example, L.softmax_cross_entropy_with_integer_labels(
        A.log_softmax(x @ w), labels), rtol=1e-6)
