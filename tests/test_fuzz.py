"""The differential fuzzer in the suite: a fixed-seed set of random programs must agree between
eager fjit, the reference jit backend and every compiled backend in every mode; plus the
fuzzer's own parts (the printer reproduces, the shrinker reaches the minimum)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit.testing import expr as fx
from fjit.testing.generate import generate
from fjit.testing.oracle import check
from fjit.testing.reproducer import reproducer_source
from fjit.testing.shrink import dce, shrink

pytestmark = pytest.mark.c_backend  # the fuzzer runs every backend itself

SEED = 20261207
N_PROGRAMS = int(os.environ.get("FJIT_FUZZ_PROGRAMS", "240"))
GROUP = 8  # programs per jitted function: one C build per group and mode, not per program
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def combine(progs):
    """One program computing every program of `progs` side by side (names prefixed)."""
    inputs, stmts, outputs = [], [], []
    for k, p in enumerate(progs):
        rename = {n: fx.Ref(f"p{k}_{n}") for n, _ in p.inputs}
        rename.update({n: fx.Ref(f"p{k}_{n}") for n, _ in p.stmts})
        inputs += [(f"p{k}_{n}", v) for n, v in p.inputs]
        stmts += [(f"p{k}_{n}", fx.substitute(e, rename)) for n, e in p.stmts]
        outputs += [f"p{k}_{n}" for n in p.outputs]
    return fx.FuzzProgram(inputs, stmts, outputs, x64=progs[0].x64,
                          seed=[p.seed for p in progs])


def _groups():
    progs = [generate((SEED, k)) for k in range(N_PROGRAMS)]
    for x64 in (False, True):
        same = [p for p in progs if p.x64 == x64]
        for i in range(0, len(same), GROUP):
            yield same[i:i + GROUP]


def test_fixed_seed_programs_agree_on_every_backend():
    failures = {}  # signature -> [(program, failure)]
    for group in _groups():
        if not check(combine(group)):
            continue
        for p in group:  # the members that fail, each on its own
            for f in check(p):
                failures.setdefault(f.signature(), []).append((p, f))
    problems = []
    for sig, cases in failures.items():  # one shrunk reproducer per distinct failure
        p, f = cases[0]
        small = shrink(p, lambda c: any(g.signature() == sig
                                        for g in check(c, (f.mode,), [f.target])),
                       max_checks=40)
        problems.append(f"{f.describe()} in {len(cases)} programs, seeds "
                        f"{[c[0].seed for c in cases]}; shrunk:\n"
                        + reproducer_source(small, f.mode, f.target, standalone=False))
    assert not problems, f"{len(problems)} distinct fuzz failures:\n\n" + "\n\n".join(problems)


# --- the fuzzer's parts -----------------------------------------------------------------------

def test_printed_function_computes_what_the_program_computes():
    """The source of each program's `def f`, run, gives the values the data structure gives
    (all op makers, lambdas of control flow included)."""
    ns = fx.namespaces()
    ns_src = {"np": ns["np"], "jnp": ns["jnp"], "lax": ns["lax"], "nn": ns["nn"], "fjit": fjit}
    seen = set()
    for k in range(60):
        p = generate((7, k))
        for _, e in p.stmts:
            seen.update(fx.op_names(e))
        scope = dict(ns_src)
        exec(fx.function_source(p), scope)  # noqa: S102 -- the code under test prints it
        args = [fjit.numpy.asarray(v) for v in p.arg_values()]
        fjit.config.update("enable_x64", p.x64)
        try:
            want = fx.as_function(p)(*args)
            got = scope["f"](*args)
        finally:
            fjit.config.update("enable_x64", False)
        for w, g in zip(want, got):
            np.testing.assert_array_equal(np.asarray(w), np.asarray(g))
    assert {"lax.cond", "lax.scan", "index", "jnp.einsum"} <= seen


def _run_script(tmp_path, source, prelude=""):
    path = tmp_path / "repro.py"
    path.write_text(prelude + source)
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env,
                          timeout=300)


def test_reproducer_runs_and_reproduces(tmp_path):
    """A printed reproducer exits 0 while the target agrees with eager and fails (an assert
    naming the difference) while it does not: here against a deliberately wrong backend."""
    prog = fx.FuzzProgram([("x0", np.arange(6, dtype=np.float32).reshape(2, 3))],
                          [("v0", fx.Call("jnp.sin", (fx.Ref("x0"),))),
                           ("v1", fx.Call("lax.cond", (
                               fx.BinOp(">", fx.Call("jnp.sum", (fx.Ref("v0"),)), fx.Lit(0)),
                               fx.Lambda(("c",), (("w", fx.BinOp("*", fx.Ref("c"), fx.Lit(2))),),
                                         fx.Ref("w")),
                               fx.Lambda(("c",), (), fx.UnOp("-", fx.Ref("c"))),
                               fx.Ref("v0"))))],
                          ["v1"])
    ok = _run_script(tmp_path, reproducer_source(prog, "jit_vmap_grad", "c"))
    assert ok.returncode == 0, ok.stderr
    assert "no failure" in ok.stdout
    broken = ("import numpy as np\n"
              "from fjit.runtime.backend import register_backend\n"
              "from fjit.runtime.reference import ReferenceExecutable\n"
              "def _broken(program):\n"
              "    ref = ReferenceExecutable(program)\n"
              "    return lambda args: [np.asarray(o) + 1 for o in ref(args)]\n"
              "register_backend('broken', _broken)\n")
    bad = _run_script(tmp_path, reproducer_source(prog, "forward", "broken"), broken)
    assert bad.returncode != 0
    assert "AssertionError: value: output 0" in bad.stderr


def test_shrinker_reaches_the_minimum():
    """With a predicate that only needs one `jnp.sin`, every other statement, output, keyword
    and input element goes, and the dtype becomes float32."""
    prog = None
    for k in range(200):
        p = generate((11, k), n_ops=6)
        if len(p.stmts) >= 5 and any("jnp.sin" in fx.op_names(e) for _, e in p.stmts[:-1]):
            prog = p
            break
    assert prog is not None
    calls = []

    def has_sin(c):
        calls.append(c)
        return any(s.func == "jnp.sin" for _, e in c.stmts for s in fx.walk(e)
                   if type(s) is fx.Call)

    small = shrink(prog, has_sin, max_checks=1000)
    assert len(small.stmts) == 1 and small.outputs == [small.stmts[0][0]]
    (_, e), = small.stmts
    assert type(e) is fx.Call and e.func == "jnp.sin" and not e.kwargs
    # the operand is a program input, shrunk to one element (or a rank-0 array)
    assert all(v.size <= 1 and v.dtype in (np.float32, np.int32, np.bool_)
               for _, v in small.inputs)
    assert small == dce(small)


def test_mismatches_within_the_programs_own_sensitivity_are_not_failures():
    """remainder(x, y) with y from a cancelling dot product: two correct summation orders give
    y a few ulps apart, and remainder amplifies that (the campaign's (12, 1114)); a mismatch
    no larger than eager's own change under a few-ulp input perturbation is accepted, and a
    wrong value in a well-conditioned output is not."""
    from fjit.testing.oracle import _within_sensitivity
    expected = (np.array([1.0, -0.002604127], np.float32),)
    perturbed = (np.array([1.0, -0.0027], np.float32),)       # eager moved by 1e-4
    assert _within_sensitivity(expected, (np.array([1.0, -0.0025931597], np.float32),),
                               [perturbed])
    assert not _within_sensitivity(expected, (np.array([1.01, -0.002604127], np.float32),),
                                   [perturbed])               # a stable element is wrong
    assert not _within_sensitivity(expected, (np.array([1.0, -0.01], np.float32),),
                                   [perturbed])               # beyond the sensitivity
    assert not _within_sensitivity((np.array([1, 2]),), (np.array([1, 3]),),
                                   [(np.array([1, 2]),)])      # a stable integer is exact
    assert _within_sensitivity((np.array([10]),), (np.array([11]),), [(np.array([12]),)])
    assert not _within_sensitivity((np.array([10]),), (np.array([14]),),
                                   [(np.array([11]),)])        # an integer: moved as far


def test_rounding_noise_moves_libm_and_half_results_by_a_few_ulps_and_goes_away():
    from fjit.testing.noise import LIBM_ULPS, rounding_noise
    x = np.linspace(-3, 3, 257).astype(np.float32)
    h = np.linspace(-3, 3, 257).astype(np.float16)
    with rounding_noise(0):
        e = np.asarray(jnp.exp(jnp.asarray(x)))
        s32 = np.asarray(jnp.asarray(x) + 1.0)
        s16 = np.asarray(jnp.asarray(h) * np.float16(3))
    ulps = np.abs(e.view(np.int32).astype(np.int64) - np.exp(x).view(np.int32))
    assert ulps.max() == LIBM_ULPS and (ulps != 0).mean() > 0.5   # libm: moved
    np.testing.assert_array_equal(s32, x + 1.0)                    # float32 add: exact
    half = np.abs(s16.view(np.int16).astype(np.int64) - (h * np.float16(3)).view(np.int16))
    assert half.max() == 1 and half.any()                          # float16 mul: one ulp
    np.testing.assert_array_equal(np.asarray(jnp.exp(jnp.asarray(x))), np.exp(x))  # restored
    from fjit.testing.noise import _nudged
    for dtype in (np.float16, np.float32):
        top = np.full(1000, np.finfo(dtype).max, dtype)
        assert np.isfinite(_nudged(top, 2, np.random.default_rng(0))).all()  # never past it


def test_a_discontinuity_one_libm_ulp_away_is_not_a_failure():
    """Campaign program (31, 4046): x ** log(exp(x)) for integer x.  libmvec's logf gave
    log(exp(-1)) one ulp above -1, NumPy's gave -1, and a negative base to a non-integer
    power is NaN: the C backend's NaNs in that row are what eager itself does when libm is
    an ulp off, while a NaN under a positive base is a real failure."""
    from fjit.testing.oracle import _disturbed, _within_sensitivity

    def f(x):
        return (x ** jnp.log(jnp.exp(x)[:, None]),)
    args = [np.array([-2, -4, -1, 2], np.int32)]
    expected = tuple(np.asarray(o) for o in f(jnp.asarray(args[0])))
    runs = _disturbed(f, "forward", args, ())
    got = expected[0].copy()
    got[2, :3] = np.nan                       # the row with exponent log(exp(-1))
    assert _within_sensitivity(expected, (got,), runs)
    got[3, 3] = np.nan                        # 2 ** log(exp(2)): no excuse
    assert not _within_sensitivity(expected, (got,), runs)
    shifted = expected[0].copy()
    shifted[0] = shifted[1]                   # a wrong value, as a bad index gives
    assert not _within_sensitivity(expected, (shifted,), runs)


def test_rounding_noise_does_not_stay_in_executables_built_under_it():
    """The reference backend caches an executable on its Program: one built inside the
    noise must compute exactly afterwards, and one built before it must see the noise
    (it binds each impl again when one is overridden)."""
    from fjit.testing.noise import rounding_noise
    saved = fjit.config.backend
    fjit.config.update("backend", "reference")
    try:
        f = fjit.jit(lambda v: jnp.exp(v) * 2.0)
        x = np.linspace(-1, 1, 1000).astype(np.float32)
        with rounding_noise(1):
            noisy = np.asarray(f(x))
        assert (noisy != np.exp(x) * 2).any()
        np.testing.assert_array_equal(np.asarray(f(x)), np.exp(x) * 2)
        with rounding_noise(2):
            assert (np.asarray(f(x)) != np.exp(x) * 2).any()
        np.testing.assert_array_equal(np.asarray(f(x)), np.exp(x) * 2)
    finally:
        fjit.config.update("backend", saved)
