"""jit: tracing once per cache key, static arguments, pytrees, nesting, the backend."""
import functools

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit.runtime.backend import executable_for


def counting(fn):
    """Wrap fn so each trace (each Python call during tracing) is counted."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        wrapper.traces += 1
        return fn(*args, **kwargs)
    wrapper.traces = 0
    return wrapper


def test_second_call_does_not_retrace():
    f = counting(lambda x, y: jnp.sin(x) * y)
    jf = fjit.jit(f)
    x, y = jnp.ones(3), jnp.full(3, 2.0, jnp.float32)
    first = jf(x, y)
    second = jf(x, y)
    assert f.traces == 1
    np.testing.assert_allclose(np.asarray(second), np.sin(1.0) * 2, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    jf(jnp.zeros(3), jnp.zeros(3))  # new values, same types: no retrace
    jf(np.zeros(3, np.float32), np.zeros(3, np.float32))  # NumPy inputs of the same type
    assert f.traces == 1


@pytest.mark.parametrize("other", [
    (jnp.ones(4), jnp.ones(4)),                      # shape
    (jnp.ones(3, jnp.int32), jnp.ones(3)),            # dtype
    (jnp.ones(3), 2.0),                               # weak-typed Python scalar
])
def test_new_avals_retrace(other):
    f = counting(lambda x, y: x * y)
    jf = fjit.jit(f)
    jf(jnp.ones(3), jnp.ones(3))
    jf(*other)
    assert f.traces == 2


def test_weak_type_is_part_of_the_key():
    f = counting(lambda x: x + 1)
    jf = fjit.jit(f)
    a = jf(jnp.asarray(2.0))           # weak f32
    b = jf(jnp.float32(2.0))           # strong f32
    assert f.traces == 2
    assert a.weak_type and not b.weak_type


def test_static_argnums_and_argnames():
    f = counting(lambda x, n, scale=1.0: x * n * scale)
    jf = fjit.jit(f, static_argnums=1, static_argnames="scale")
    np.testing.assert_allclose(np.asarray(jf(jnp.ones(2), 3)), [3.0, 3.0])
    jf(jnp.ones(2), 3)
    assert f.traces == 1
    jf(jnp.ones(2), 4)
    assert f.traces == 2
    np.testing.assert_allclose(np.asarray(jf(jnp.ones(2), 4, scale=0.5)), [2.0, 2.0])
    assert f.traces == 3
    # a static argument passed by keyword is still static
    np.testing.assert_allclose(np.asarray(jf(jnp.ones(2), n=4)), [4.0, 4.0])


def test_negative_static_argnums():
    jf = fjit.jit(lambda x, shape: jnp.reshape(x, shape), static_argnums=-1)
    assert jf(jnp.arange(6), (2, 3)).shape == (2, 3)


def test_unhashable_static_arg_is_a_clear_type_error():
    jf = fjit.jit(lambda x, shape: jnp.reshape(x, shape), static_argnums=1)
    with pytest.raises(TypeError, match="static argument 1 of type list is not hashable"):
        jf(jnp.arange(6), [2, 3])


def test_non_array_argument_error_suggests_static():
    with pytest.raises(TypeError, match="static_argnums"):
        fjit.jit(lambda x, mode: x)(jnp.ones(2), "fast")


def test_pytree_arguments_outputs_and_kwargs():
    f = counting(lambda params, x, *, bias: {"y": params["w"] * x + bias,
                                             "n": (params["n"], None)})
    jf = fjit.jit(f)
    params = {"w": jnp.full(2, 3.0, jnp.float32), "n": jnp.asarray(7)}
    out = jf(params, jnp.ones(2), bias=1.0)
    np.testing.assert_allclose(np.asarray(out["y"]), [4.0, 4.0])
    assert int(out["n"][0]) == 7 and out["n"][1] is None
    jf({"n": jnp.asarray(8), "w": jnp.zeros(2)}, jnp.ones(2), bias=2.0)
    assert f.traces == 1
    jf({"w": jnp.zeros(2), "n": jnp.asarray(1), "extra": jnp.ones(1)}, jnp.ones(2), bias=2.0)
    assert f.traces == 2  # new structure


def test_cache_is_shared_by_jit_objects_of_one_function():
    f = counting(lambda x: x + 1)
    fjit.jit(f)(jnp.ones(2))
    fjit.jit(f)(jnp.ones(2))
    assert f.traces == 1


def test_config_change_retraces():
    f = counting(lambda x: jnp.asarray(x) * 2)
    jf = fjit.jit(f)
    jf(1.0)
    fjit.config.update("enable_x64", True)
    try:
        out = jf(1.0)
        assert out.dtype == np.float64
    finally:
        fjit.config.update("enable_x64", False)
    assert f.traces == 2
    assert jf(1.0).dtype == np.float32


def test_nested_jit_is_one_equation_and_runs():
    inner = fjit.jit(lambda x: jnp.exp(x) + 1)
    outer = fjit.jit(lambda x: inner(x) * 2)
    program = outer.trace(jnp.ones(3))
    assert [e.primitive.name for e in program.eqns] == ["jit", "mul"]
    np.testing.assert_allclose(np.asarray(outer(jnp.zeros(3))), [4.0, 4.0, 4.0])


def test_inline_jit_is_traced_into_the_caller():
    inner = fjit.jit(lambda x: jnp.exp(x) + 1, inline=True)
    program = fjit.make_program(lambda x: inner(x) * 2)(jnp.ones(3))
    assert [e.primitive.name for e in program.eqns] == ["exp", "add", "mul"]
    np.testing.assert_allclose(np.asarray(inner(jnp.zeros(2))), [2.0, 2.0])


def test_jit_on_methods_and_decorator_forms():
    class Model:
        def __init__(self, scale):
            self.scale = scale

        @functools.partial(fjit.jit, static_argnums=0)
        def __call__(self, x):
            return x * self.scale

    np.testing.assert_allclose(np.asarray(Model(3.0)(jnp.ones(2))), [3.0, 3.0])

    @fjit.jit(static_argnames=("axis",))
    def total(x, axis):
        return x.sum(axis)

    np.testing.assert_allclose(np.asarray(total(jnp.ones((2, 3)), axis=1)), [3.0, 3.0])


def test_matmul_runs_as_one_contraction_on_the_reference_backend():
    f = fjit.jit(lambda a, b: a @ b)
    a = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((32, 16)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(f(a, b)), a @ b, rtol=1e-4, atol=1e-4)
    program = f.trace(a, b)
    closed, _ = program.closure_convert()
    assert executable_for(f._lookup((a, b), {})[0].program, "reference").num_contractions == 1
    assert [e.primitive.name for e in closed.eqns].count("mul") == 1


def test_backend_selection():
    previous = fjit.config.backend
    fjit.config.update("backend", "no-such-backend")
    try:
        with pytest.raises(ValueError, match="unknown fjit backend"):
            fjit.jit(lambda x: x + 1)(jnp.ones(2))
    finally:
        fjit.config.update("backend", previous)


def test_jit_inside_make_program_typechecks_and_prints_nested_program():
    inner = fjit.jit(lambda x, y: x * y + 1)
    program = fjit.make_program(lambda x: inner(x, 2.0))(jnp.ones(3))
    fjit.typecheck(program)
    text = str(program)
    assert "jit[" in text and "name=<lambda>\n" in text and "program={ lambda" in text


def test_eager_and_jit_results_agree_on_dtype_and_weak_type():
    fn = lambda x, y: (x * y, x + 1, jnp.sum(x))  # noqa: E731
    for args in [(jnp.ones(3, jnp.int8), 2), (2.0, 3.0), (jnp.ones(2, jnp.float16), 0.5)]:
        eager = fn(*[jnp.asarray(a) for a in args])  # Python scalars become weak arrays
        jitted = fjit.jit(fn)(*args)
        for e, j in zip(eager, jitted):
            assert e.dtype == j.dtype
            np.testing.assert_allclose(np.asarray(e, np.float64), np.asarray(j, np.float64))


def test_block_until_ready_returns_its_argument():
    """JAX's block_until_ready: any pytree, arrays or not, comes back as it is."""
    tree = {"a": fjit.jit(lambda x: x * 2)(np.ones(3, np.float32)), "b": (1, "s", None)}
    assert fjit.block_until_ready(tree) is tree
    np.testing.assert_array_equal(tree["a"], [2, 2, 2])
    x = jnp.arange(3)
    assert fjit.block_until_ready(x) is x and x.block_until_ready() is x


@pytest.fixture
def asynchronous(set_option):
    set_option("async_dispatch", True)


@pytest.mark.c_backend
def test_asynchronous_calls_return_at_once_and_reading_waits(asynchronous):
    """With async_dispatch a large call returns Arrays still being computed; a call reading
    them is queued behind it (the worker runs calls in order) and values come out right."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 256)).astype(np.float32)
    f = fjit.jit(lambda x, y: jnp.tanh(x @ y) * 2.0)
    y = f(a, a)
    z = f(y, a)                         # reads y's buffer without waiting for it
    assert z._pending is not None
    want = np.tanh(np.tanh(a @ a) * 2.0 @ a) * 2.0
    np.testing.assert_allclose(np.asarray(z), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(y), np.tanh(a @ a) * 2.0, rtol=1e-4, atol=1e-4)
    assert fjit.block_until_ready({"y": y, "z": z})["z"] is z and z._pending is None
    small = fjit.jit(lambda x: x * 2.0)(np.ones(3, np.float32))
    assert small._pending is None       # small calls stay synchronous


def test_an_asynchronous_failure_surfaces_at_the_next_wait_naming_the_call():
    from fjit.devices import CPU
    from fjit.runtime.dispatch import worker_for
    worker = worker_for(CPU)

    def boom():
        raise ValueError("bad buffer")
    failed = worker.submit(boom, "step")
    after = worker.submit(lambda: None, "next", after=[failed])
    with pytest.raises(RuntimeError, match="call of step failed: ValueError: bad buffer"):
        failed.wait()
    with pytest.raises(RuntimeError, match="reads the outputs of step"):
        after.wait()
    x = fjit.Array(np.zeros(2, np.float32), fjit.ShapedArray((2,), np.dtype(np.float32)),
                   pending=failed)
    with pytest.raises(RuntimeError, match="step failed"):
        np.asarray(x)


@pytest.mark.c_backend
def test_asynchronous_work_in_flight_finishes_at_exit_and_across_fork(tmp_path, run_fjit):
    """Queued calls run to the end before the interpreter (and BLAS's threads) shut down,
    and a forked child starts a worker of its own (review: both used to hang)."""
    code = """
        import os, numpy as np, fjit, fjit.numpy as jnp
        f = fjit.jit(lambda x, y: jnp.tanh(x @ y) + 1.0)
        a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
        y = jnp.asarray(a)
        for _ in range(3):
            y = f(y, a)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if np.isfinite(np.asarray(f(a, a))).all() else 1)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
        y = f(y, a)                       # still in flight when the script ends
    """
    out = run_fjit(code, tmp_path, FJIT_ASYNC_DISPATCH="1", OMP_NUM_THREADS="1")
    assert out.returncode == 0, out.stderr
    assert "child 0" in out.stdout


def test_the_worker_refuses_to_wait_for_a_call_queued_behind_it():
    """A finalizer the worker's garbage collection runs may read a pending array; waiting
    would never end (its call is queued behind the running one), so it raises."""
    import threading
    from fjit.devices import CPU
    from fjit.runtime.dispatch import worker_for
    worker = worker_for(CPU)
    submitted, queued, seen = threading.Event(), [], []

    def running():
        submitted.wait()
        try:
            queued[0].wait()
        except RuntimeError as e:
            seen.append(str(e))
    first = worker.submit(running, "running")
    queued.append(worker.submit(lambda: None, "queued"))
    submitted.set()
    first.wait()
    queued[0].wait()
    assert seen == ["fjit: the device worker cannot wait for queued"]
