"""Gradient checking, like jax.test_util.check_grads.

Forward mode is compared with central finite differences; reverse mode with forward mode
through the inner-product identity <u, J v> = <J^T u, v>.  Higher orders check the
derivative functions themselves.  Float inputs are checked in float64 (64-bit types are
switched on for the duration), where finite differences are accurate.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .api_autodiff import jvp, vjp
from .array import device_put
from .config import config
from .tree_util import tree_flatten, tree_map


@contextlib.contextmanager
def float64():
    previous = config.enable_x64
    config.update("enable_x64", True)
    try:
        yield
    finally:
        config.update("enable_x64", previous)


def _is_float(x):
    return np.issubdtype(np.asarray(x).dtype, np.floating)


def _to64(tree):
    """fjit arrays, floats as float64 (call it with 64-bit types on)."""
    return tree_map(lambda x: device_put(np.asarray(x, np.float64) if _is_float(x)
                                         else np.asarray(x)), tree)


def _random_like(tree, rng):
    return tree_map(lambda x: rng.standard_normal(np.shape(x)) if _is_float(x) else
                    np.zeros(np.shape(x), np.float64), tree)


def _inner(a, b):
    la, lb = tree_flatten(a)[0], tree_flatten(b)[0]
    return sum(float(np.sum(np.asarray(x, np.float64) * np.asarray(y, np.float64)))
               for x, y in zip(la, lb) if _is_float(x) and _is_float(y))


def _add_scaled(args, tangents, scale):
    return tree_map(lambda x, t: x + scale * np.asarray(t) if _is_float(x) else x, args,
                    tangents)


def _allclose(name, got, want, atol, rtol):
    for g, w in zip(tree_flatten(got)[0], tree_flatten(want)[0]):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        if g.dtype.fields is not None or w.dtype.fields is not None:  # float0
            continue
        np.testing.assert_allclose(g, w, atol=atol, rtol=rtol, err_msg=name)


def numerical_jvp(f, args, tangents, eps):
    """(f(x + eps t) - f(x - eps t)) / 2 eps, leaf by leaf."""
    plus = f(*_add_scaled(args, tangents, eps))
    minus = f(*_add_scaled(args, tangents, -eps))
    return tree_map(lambda p, m: (np.asarray(p, np.float64) - np.asarray(m, np.float64))
                    / (2 * eps), plus, minus)


def check_jvp(f, args, atol, rtol, eps, rng, name=""):
    tangents = _random_like(args, rng)
    _, out_tangent = jvp(f, tuple(args), tuple(tangents))
    expected = numerical_jvp(f, args, tangents, eps)
    _allclose(f"jvp vs finite differences {name}", out_tangent, expected, atol, rtol)


def check_vjp(f, args, atol, rtol, rng, name=""):
    tangents = _random_like(args, rng)
    out, pullback = vjp(f, *args)
    cotangent = _random_like(out, rng)
    cotangent = tree_map(lambda c, o: np.asarray(c, np.asarray(o).dtype)
                         if _is_float(o) else c, cotangent, out)
    in_cts = pullback(cotangent)
    _, out_tangent = jvp(f, tuple(args), tuple(tangents))
    lhs = _inner(out_tangent, cotangent)
    rhs = _inner(tangents, in_cts)
    scale = max(abs(lhs), abs(rhs), 1.0)
    if abs(lhs - rhs) > atol + rtol * scale:
        raise AssertionError(f"vjp vs jvp {name}: <J v, u> = {lhs!r} but <v, J^T u> = {rhs!r}")


def check_grads(f, args, order, modes=("fwd", "rev"), atol=1e-5, rtol=1e-5, eps=1e-4,
                seed=0):
    """Check f's derivatives up to `order` at `args` (a tuple of arrays or pytrees)."""
    rng = np.random.default_rng(seed)
    with float64():
        args = _to64(tuple(args))

        def check(fun, fun_args, k, name):
            if "fwd" in modes:
                check_jvp(fun, fun_args, atol, rtol, eps, rng, name)
                if k > 1:
                    def f_jvp(primals, tangents):
                        return jvp(fun, tuple(primals), tuple(tangents))
                    check(f_jvp, (fun_args, _random_like(fun_args, rng)), k - 1,
                          name + " (jvp)")
            if "rev" in modes:
                check_vjp(fun, fun_args, atol, rtol, rng, name)
                if k > 1:
                    def f_vjp(*primals):
                        out, pullback = vjp(fun, *primals)
                        return pullback(out)
                    check(f_vjp, fun_args, k - 1, name + " (vjp)")

        check(f, args, order, getattr(f, "__name__", "f"))

