"""Eager scan / while_loop / fori_loop / cond retrace their bodies on every call (a body may
read values that changed) but share executables between equal Programs
(fjit/runtime/sharing.py): a repeated call compiles nothing, a changed closure or literal
is seen, and Programs that differ in any value never share."""
import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax
from fjit.runtime import sharing
from fjit.compiler.targets.c.toolchain import toolchain

pytestmark = pytest.mark.c_backend


@pytest.fixture
def compiles(monkeypatch):
    """Counts the C backend's Program compilations."""
    from fjit.compiler.targets.c import executable as backend
    count = [0]
    original = backend.compile_program

    def counting(*args, **kwargs):
        count[0] += 1
        return original(*args, **kwargs)
    monkeypatch.setattr(backend, "compile_program", counting)
    return count


XS = np.arange(12, dtype=np.float32).reshape(6, 2)
C0 = np.zeros(2, np.float32)


@pytest.mark.parametrize("run", [
    lambda: lax.scan(lambda c, x: (c * 0.5 + x, c.sum()), C0, XS),
    lambda: lax.while_loop(lambda c: c[0] < 7, lambda c: c + 1.5, C0),
    lambda: lax.fori_loop(0, 5, lambda i, c: c + i, C0),
    lambda: lax.cond(np.float32(1) > 0, lambda: C0 + 1, lambda: C0 - 1),
], ids=["scan", "while_loop", "fori_loop", "cond"])
def test_repeated_eager_calls_compile_once(run, compiles):
    first = run()
    after_first = compiles[0]
    for _ in range(3):   # a new lambda, traced anew each time: the same Program
        again = run()
        for a, b in zip(fjit.tree_util.tree_leaves(first), fjit.tree_util.tree_leaves(again)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert compiles[0] == after_first


def test_changed_closures_and_literals_are_seen(compiles):
    weights = {"w": np.full(2, 2.0, np.float32)}

    def body(c, x):
        return c + weights["w"] * x, None

    def run():
        return np.asarray(lax.scan(body, C0, XS)[0])
    np.testing.assert_array_equal(run(), 2.0 * XS.sum(0))
    n = compiles[0]
    weights["w"] = np.full(2, -3.0, np.float32)     # an operand of the loop: no recompile
    np.testing.assert_array_equal(run(), -3.0 * XS.sum(0))
    assert compiles[0] == n
    for scale in (0.5, 0.25):                       # a literal in the body: a new Program
        got = lax.fori_loop(0, 3, lambda i, c: c * scale + 1, C0)
        want = C0
        for _ in range(3):
            want = want * np.float32(scale) + 1
        np.testing.assert_array_equal(np.asarray(got), want)


def _program(fn, *args):
    return fjit.make_program(fn)(*args)


@pytest.mark.parametrize("a, b", [
    (lambda x: x + 1, lambda x: x + 2),             # literals
    (lambda x: x * 0.0, lambda x: x * -0.0),        # signed zeros
    (lambda x: x[::2], lambda x: x[1::2]),          # index expressions
    (lambda x: x + jnp.asarray(np.arange(4, dtype=np.float32)),
     lambda x: x + jnp.asarray(np.arange(4, dtype=np.float32)[::-1].copy())),   # constants
    (lambda x: jnp.sum(x), lambda x: jnp.max(x)),
])
def test_programs_that_differ_in_any_value_do_not_share(a, b):
    x = np.ones(4, np.float32)
    pa, pb = _program(a, x), _program(b, x)
    assert sharing.fingerprint(pa) != sharing.fingerprint(pb)
    assert sharing.fingerprint(pa) == sharing.fingerprint(_program(a, x))   # retraced: equal
    assert sharing.shared(pb) is not sharing.shared(pa)


def test_programs_with_callable_params_are_not_shared():
    @fjit.custom_jvp
    def f(x):
        return jnp.sin(x)
    f.defjvp(lambda p, t: (f(p[0]), t[0] * jnp.cos(p[0])))
    program = _program(lambda x: f(x) * 2, np.float32(1))
    assert sharing.shared(program) is program
    assert sharing.shared(_program(lambda x: f(x) * 2, np.float32(1))) is not program


def test_repeated_eager_loops_keep_no_dead_programs():
    """Each call traces a new body; nothing may keep those Programs alive (a memo once held
    thousands, and every full garbage collection walked them)."""
    import gc
    from fjit.core import Program

    def live_programs():
        gc.collect()
        return sum(isinstance(o, Program) for o in gc.get_objects())
    body = lambda c, x: (c * 0.5 + x, c)   # noqa: E731
    for _ in range(5):
        lax.scan(body, C0, XS)
    before = live_programs()
    for _ in range(50):
        lax.scan(body, C0, XS)
        lax.fori_loop(0, 3, lambda i, c: c + i, C0)
    assert live_programs() <= before + 2
