"""The Program IR, its printer, typechecker and DCE, and tracing (staging, nesting, errors)."""
import re

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax
from fjit.core import Eqn, Literal, Program, ShapedArray, Var, eval_program
from fjit.typecheck import ProgramTypeError


def _prims(program):
    return [e.primitive.name for e in program.eqns]


def test_shaped_array():
    a = ShapedArray((3, 4), np.float32)
    assert a.ndim == 2 and a.size == 12 and a.str_short() == "f32[3,4]"
    assert a == ShapedArray([3, 4], "float32") and hash(a) == hash(ShapedArray((3, 4), "f4"))
    assert a != a.update(weak_type=True)
    assert "weak_type=True" in repr(a.update(weak_type=True))


def test_issue_example_prints_only_meta_ops():
    program = fjit.make_program(lambda x, y: jnp.tanh(x @ y).sum(0))(
        jnp.ones((3, 4)), jnp.ones((4, 5)))
    assert _prims(program) == ["broadcast_in_dim", "broadcast_in_dim", "mul", "reduce_sum",
                               "tanh", "reduce_sum"]
    text = str(program)
    assert text.startswith("{ lambda ; a:f32[3,4] b:f32[4,5]. let")
    assert "c:f32[3,4,5] = broadcast_in_dim[broadcast_dimensions=(0, 1) shape=(3, 4, 5)] a" in text
    assert "f:f32[3,5] = reduce_sum[axes=(1,)] e" in text
    assert text.rstrip().endswith("in (h,) }")


def test_printer_literals_constvars_and_names():
    captured = np.arange(3.0, dtype=np.float32)
    program = fjit.make_program(lambda x: x * 2.0 + captured)(jnp.ones(3))
    text = str(program)
    assert text.startswith("{ lambda a:f32[3]; b:f32[3]. let")  # the capture is a constvar
    assert "mul b 2.0:f32[]" in text
    np.testing.assert_array_equal(np.asarray(program.consts[0]), captured)
    many = fjit.make_program(lambda x: sum((x + i for i in range(30)), x))(1.0)
    names = re.findall(r"\b([a-z]+):f32", str(many))
    assert "ba" in names and len(set(names)) == len(names)  # a..z then ba, bb, ...


def test_eval_program_reinterprets():
    program = fjit.make_program(lambda x, y: jnp.sin(x) * y + 1)(jnp.ones(3), jnp.ones(3))
    x, y = np.array([0.1, 0.2, 0.3], np.float32), np.array([1.0, 2.0, 3.0], np.float32)
    (out,) = eval_program(program, jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(np.asarray(out), np.sin(x) * y + 1, rtol=1e-6)
    # re-traced by another staging trace: same equations again
    again = fjit.make_program(lambda a, b: eval_program(program, a, b))(x, y)
    assert _prims(again) == _prims(program)


def test_typecheck_accepts_traced_programs_and_rejects_broken_ones():
    program = fjit.make_program(lambda x: jnp.exp(x).sum())(jnp.ones((2, 3)))
    fjit.typecheck(program)
    a = Var(ShapedArray((3,), np.float32))
    b = Var(ShapedArray((3,), np.float32))
    exp = lax.elementwise.PRIMITIVES["exp"]
    unbound = Program([a], [], [], [Eqn(exp, [b], {}, [Var(b.aval)])], [a])
    with pytest.raises(ProgramTypeError, match="used before it is bound"):
        fjit.typecheck(unbound)
    twice = Program([a], [], [], [Eqn(exp, [a], {}, [a])], [a])
    with pytest.raises(ProgramTypeError, match="more than once"):
        fjit.typecheck(twice)
    wrong = Program([a], [], [], [Eqn(exp, [a], {}, [Var(ShapedArray((4,), np.float32))])], [a])
    with pytest.raises(ProgramTypeError, match="outvar has type"):
        fjit.typecheck(wrong)
    bad_op = Program([a], [], [], [Eqn(exp, [Literal(1, ShapedArray((), np.int32))], {},
                                       [Var(ShapedArray((), np.int32))])], [a])
    with pytest.raises(ProgramTypeError, match="exp"):
        fjit.typecheck(bad_op)
    unhashable = Program([a], [], [], [Eqn(lax.reduce.REDUCE_PRIMITIVES["sum"], [a],
                                           {"axes": [0]}, [Var(ShapedArray((), np.float32))])],
                         [a])
    with pytest.raises(ProgramTypeError, match="hashable"):
        fjit.typecheck(unhashable)


def test_dce_removes_unused_work_and_keeps_signature():
    def f(x, y):
        jnp.exp(y) * 3  # dead work: tracing drops it
        return jnp.sin(x)

    program = fjit.make_program(f)(jnp.ones(2), jnp.ones(2))
    assert _prims(program) == ["sin"]
    # fjit.dce on a Program built by hand
    a, b = Var(ShapedArray((2,), np.float32)), Var(ShapedArray((2,), np.float32))
    dead, live = Var(a.aval), Var(a.aval)
    prims = lax.elementwise.PRIMITIVES
    hand = Program([a, b], [], [], [Eqn(prims["exp"], [b], {}, [dead]),
                                    Eqn(prims["sin"], [a], {}, [live])], [live])
    cleaned = fjit.dce(hand)
    assert _prims(cleaned) == ["sin"]
    assert len(cleaned.invars) == 2
    fjit.typecheck(cleaned)


def test_dce_prunes_inside_jit_equations():
    inner = fjit.jit(lambda x: (jnp.sin(x), jnp.exp(x)))
    program = fjit.make_program(lambda x: inner(x)[0])(jnp.ones(2))
    (eqn,) = program.eqns  # tracing already dropped the unused output inside the jit
    assert len(eqn.outvars) == 1 and _prims(eqn.params["program"]) == ["sin"]
    fjit.typecheck(program)
    (out,) = eval_program(program, jnp.asarray([0.5, 1.0]))
    np.testing.assert_allclose(np.asarray(out), np.sin([0.5, 1.0]), rtol=1e-6)


def test_outer_tracers_become_constvars_of_inner_programs():
    def outer(x):
        inner = fjit.jit(lambda y: x * y)  # closes over the outer tracer x
        return inner(jnp.ones(3)) + 1

    program = fjit.make_program(outer)(jnp.full(3, 2.0))
    (jit_eqn,) = [e for e in program.eqns if e.primitive.name == "jit"]
    assert len(jit_eqn.invars) == 2  # the captured x is passed explicitly
    np.testing.assert_allclose(np.asarray(fjit.jit(outer)(jnp.full(3, 2.0))), [3.0, 3.0, 3.0])


def _line_of(marker, fn):
    import inspect
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, l in enumerate(lines) if marker in l)


def test_concretization_error_names_function_and_line():
    def branchy(x):
        if x.sum() > 0:  # MARK
            return x
        return -x

    with pytest.raises(fjit.ConcretizationTypeError) as info:
        fjit.jit(branchy)(jnp.ones(3))
    message = str(info.value)
    assert "branchy" in message
    assert f"{__file__}:{_line_of('MARK', branchy)}" in message
    with pytest.raises(fjit.TracerBoolConversionError):
        fjit.make_program(branchy)(jnp.ones(3))


@pytest.mark.parametrize("convert", [int, float, np.asarray, lambda t: t.item(),
                                     lambda t: t.tolist(), lambda t: list(range(t))])
def test_other_concretizations_raise(convert):
    with pytest.raises(fjit.ConcretizationTypeError):
        fjit.jit(lambda x: convert(x))(jnp.ones((), jnp.int32))


def test_escaped_tracer_is_detected():
    leaked = []

    @fjit.jit
    def f(x):
        leaked.append(x)
        return x * 2

    f(jnp.ones(2))
    with pytest.raises(fjit.UnexpectedTracerError, match="leaked"):
        leaked[0] + 1
    with pytest.raises(fjit.UnexpectedTracerError):
        bool(leaked[0])
    # leaking into a later, unrelated trace is caught too
    with pytest.raises(fjit.UnexpectedTracerError):
        fjit.jit(lambda y: y + leaked[0])(jnp.ones(2))


def test_shape_errors_name_op_shapes_and_user_line():
    def bad(x, y):
        return lax.add(x, y)  # BAD

    with pytest.raises(TypeError) as info:
        fjit.jit(bad)(jnp.ones(3), jnp.ones(4))
    message = str(info.value)
    assert "add" in message and "f32[3]" in message and "f32[4]" in message
    assert f"{__file__}:{_line_of('BAD', bad)}" in message
    with pytest.raises(TypeError) as info:
        jnp.ones((2, 3)) + jnp.ones((4,))  # numpy-level broadcasting error
    assert "(2, 3)" in str(info.value) and "(4,)" in str(info.value)
    assert __file__ in str(info.value)


def test_outputs_must_be_arrays():
    with pytest.raises(TypeError, match="not an array"):
        fjit.jit(lambda x: "text")(jnp.ones(2))


def test_constants_and_python_scalar_outputs():
    out = fjit.jit(lambda x: (x, 3.0, np.ones(2)))(jnp.ones(1))
    assert out[1].weak_type and out[1].dtype == np.float32
    np.testing.assert_array_equal(np.asarray(out[2]), np.ones(2, np.float32))


def test_every_primitive_bind_goes_through_the_current_trace():
    calls = []

    class CountingTrace(fjit.core.Trace):
        def process_primitive(self, primitive, args, params):
            calls.append(primitive.name)
            with fjit.core.set_current_trace(self.parent):
                return primitive.bind(*args, **params)

    with fjit.core.set_current_trace(CountingTrace(fjit.core.current_trace())):
        jnp.sum(jnp.exp(jnp.ones(3)))
    assert "exp" in calls and "reduce_sum" in calls


def test_a_captured_array_is_one_constvar():
    table = jnp.arange(4.0)
    program = fjit.make_program(lambda x: x * table + table)(jnp.ones(4))
    assert len(program.constvars) == 1


def test_eager_type_rules_are_memoized_but_errors_are_not():
    """Eager ops remember their output types per (primitive, operand types, params); a type
    error is raised every time, never remembered as a result."""
    from fjit import lax
    from fjit.runtime import eager
    x = fjit.device_put(np.ones(3, np.float32))
    y = fjit.device_put(np.ones(4, np.float32))
    before = len(eager._avals_cache)
    lax.add(x, x)
    lax.add(x, x)
    assert len(eager._avals_cache) <= before + 1
    for _ in range(2):
        with pytest.raises(TypeError):
            lax.add(x, y)
    np.testing.assert_array_equal(np.asarray(lax.add(x, x)), [2, 2, 2])
