"""explain_recompiles (each retrace and native build says why) and JitFunction.cache_info()."""
import logging

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp


@pytest.fixture
def explained(set_option, caplog, monkeypatch):
    from fjit import recompiles
    monkeypatch.setattr(recompiles, "_last_of_code", recompiles.OrderedDict())  # this test's
    set_option("explain_recompiles", True)
    caplog.set_level(logging.INFO, logger="fjit.recompiles")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "fjit.recompiles"]


def _retraces(messages):
    return [m for m in messages if "traces again" in m]


def test_a_new_shape_names_the_argument_by_its_path_and_the_callers_line(explained):
    @fjit.jit
    def step(x, params):
        return x * params["w"][0]
    step(np.ones(8, np.float32), {"w": [np.ones(8, np.float32)]})
    assert _retraces(explained()) == []          # a first trace is not a retrace
    step(np.ones(8, np.float32), {"w": [np.ones(8, np.float32)]})
    assert _retraces(explained()) == []          # a hit
    step(np.ones(16, np.float32), {"w": [np.ones(16, np.float32)]})
    (line,) = _retraces(explained())
    assert line.startswith("jit(step) at ") and "test_recompiles.py:" in line
    assert "x was f32[8], now f32[16]" in line and "params['w'][0] was f32[8], now f32[16]" in line


def test_a_new_dtype_or_weak_type_is_named(explained):
    f = fjit.jit(lambda x, y: x + y)
    f(np.ones(3, np.float32), np.ones(3, np.float32))
    f(np.ones(3, np.float32), np.ones(3, np.int32))
    f(np.ones(3, np.float32), 2.0)
    lines = _retraces(explained())
    assert "y was f32[3], now i32[3]" in lines[0]
    assert "y was f32[3], now f32[] (weakly typed)" in lines[1]


def test_a_new_static_value_is_named(explained):
    f = fjit.jit(lambda x, n: x * n, static_argnums=1)
    f(np.ones(3, np.float32), 2)
    f(np.ones(3, np.float32), 3)
    (line,) = _retraces(explained())
    assert "static argument 1 was 2, now 3" in line


def test_arguments_after_a_static_one_are_named_right(explained):
    h = fjit.jit(lambda n, x: x * n, static_argnums=0)
    h(2, np.ones(3, np.float32))
    h(2, np.ones(4, np.float32))
    (line,) = _retraces(explained())
    assert "x was f32[3], now f32[4]" in line


def test_a_new_argument_structure_is_named(explained):
    f = fjit.jit(lambda p: sum(p.values()))
    f({"a": np.ones(2, np.float32)})
    f({"a": np.ones(2, np.float32), "b": np.ones(2, np.float32)})
    (line,) = _retraces(explained())
    assert "the arguments' structure changed" in line and "'b'" in line


def test_a_changed_tracing_option_is_named(explained, set_option):
    f = fjit.jit(lambda x: x * 2)
    f(np.ones(3, np.float32))
    set_option("enable_x64", True)
    f(np.ones(3, np.float32))
    (line,) = _retraces(explained())
    assert "option enable_x64 was False, now True" in line


@pytest.mark.c_backend
def test_a_native_build_says_how_many_kernel_functions_are_new(explained, set_option,
                                                                tmp_path, monkeypatch):
    from fjit.compiler.targets.c import executable
    set_option("cache_dir", str(tmp_path))
    monkeypatch.setattr(executable, "_loaded_libraries",
                        __import__("collections").OrderedDict())
    monkeypatch.setattr(executable, "_functions_seen", set())
    f = fjit.jit(lambda x, w: jnp.tanh(x @ w).sum(0) * 1.5)
    f(np.ones((32, 16), np.float32), np.ones((16, 8), np.float32))
    f(np.ones((48, 16), np.float32), np.ones((16, 8), np.float32))   # new batch: no build
    builds = [m for m in explained() if "native build" in m]
    assert len(builds) == 1 and "are new to this process" in builds[0]
    assert f.cache_info()["traces"] == 2 and f.cache_info()["builds"] == 1


def test_cache_info_counts_traces_hits_and_signatures():
    f = fjit.jit(lambda x: x + 1)
    for n in (3, 3, 5, 3):
        f(np.ones(n, np.float32))
    info = f.cache_info()
    assert info["traces"] == 2 and info["hits"] == 2
    assert sorted("f32[5]" in s for s in info["signatures"]) == [False, True]


LEARNING_RATE = 0.1


def test_a_closure_made_again_is_named_with_its_changed_values(explained):
    def make(scale):
        return fjit.jit(lambda x: x * scale)
    x = np.ones(4, np.float32)
    make(2.0)(x)
    make(2.0)(x)
    make(3.0)(x)
    lines = _retraces(explained())
    assert len(lines) == 2
    assert "a new function object of code traced before" in lines[0]
    assert "its captured values are the same" in lines[0]
    assert "closure variable scale was 2.0, now 3.0" in lines[1]
    assert f"{__file__}:" in lines[1]


def test_a_global_changed_after_tracing_is_named_once(explained):
    global LEARNING_RATE
    step = fjit.jit(lambda w: w - LEARNING_RATE * w)
    w = np.ones(3, np.float32)
    np.testing.assert_allclose(step(w), 0.9)
    LEARNING_RATE = 0.5
    try:
        np.testing.assert_allclose(step(w), 0.9)   # still the traced value, as in JAX
        step(w)
    finally:
        LEARNING_RATE = 0.1
    (line,) = [m for m in explained() if "since it was traced" in m]
    assert "global LEARNING_RATE was 0.1, now 0.5" in line
    assert "pass it as an argument" in line


def test_explaining_keeps_no_function_or_captured_array_alive(explained):
    import gc
    import weakref
    big = np.ones(1 << 16, np.float32)
    f = fjit.jit(lambda x: x * big[:4])
    f(np.ones(4, np.float32))
    f(np.ones(4, np.float32))
    functions, arrays = weakref.ref(f.fun), weakref.ref(big)
    del f, big
    gc.collect()
    assert functions() is None and arrays() is None
