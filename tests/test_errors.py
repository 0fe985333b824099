"""Bad input gives a clear typed error (issue 13, items 6 and 9).

1. A table of bad calls across fjit.numpy and fjit.lax, each run eagerly and under jit: the
   error is an instance of the built-in type JAX raises for it (checked against JAX 0.10.2)
   and of fjit.errors.FjitError, its message names the operation and the operands'
   shapes or dtypes, and it names this file's line that made the call (the user's line).
2. Pytrees that cannot be flattened: a list that contains itself, a dict with int and str
   keys.
3. Arrays larger than the machine's memory raise at once, naming shape, dtype and bytes.
"""
from __future__ import annotations

import pickle
from typing import NamedTuple

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit import lax
from fjit.errors import FjitError, FjitMemoryError
from fjit.tree_util import tree_flatten


class V(NamedTuple):
    """The operands the bad calls use (a pytree, so jit traces them)."""
    a23: object
    a34: object
    a44: object
    a3: object
    a4: object
    i3: object
    s: object


def operands():
    return V(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32),
             np.ones((4, 4), np.float32), np.ones(3, np.float32), np.ones(4, np.float32),
             np.arange(3, dtype=np.int32), np.float32(1.0))


# (name, bad call, the built-in type JAX raises, what the message must contain)
CASES = [
    ("matmul_dims", lambda v: jnp.asarray(v.a23) @ v.a44, TypeError,
     ["matmul", "(2, 3)", "(4, 4)"]),
    ("matmul_0d", lambda v: jnp.matmul(v.s, v.a3), ValueError, ["matmul", "()", "(3,)"]),
    ("dot", lambda v: jnp.dot(v.a3, v.a4), TypeError, ["dot", "(3,)", "(4,)"]),
    ("inner", lambda v: jnp.inner(v.a3, v.a4), TypeError, ["inner", "(3,)", "(4,)"]),
    ("vdot", lambda v: jnp.vdot(v.a3, v.a4), TypeError, ["vdot", "(3,)", "(4,)"]),
    ("tensordot_axes", lambda v: jnp.tensordot(v.a23, v.a23, axes=([1], [1, 0])), TypeError,
     ["tensordot", "(2, 3)"]),
    ("einsum_sizes", lambda v: jnp.einsum("ij,jk->ik", v.a23, v.a23), ValueError,
     ["einsum", "(2, 3)"]),
    ("einsum_rank", lambda v: jnp.einsum("ijk->i", v.a23), ValueError,
     ["einsum", "'ijk'", "(2, 3)"]),
    ("concatenate_shapes", lambda v: jnp.concatenate([v.a23, v.a34]), TypeError,
     ["concatenate", "(2, 3)", "(3, 4)"]),
    ("concatenate_ranks", lambda v: jnp.concatenate([v.a23, v.a3]), TypeError,
     ["concatenate", "(2, 3)", "(3,)"]),
    ("stack_shapes", lambda v: jnp.stack([v.a3, v.a4]), ValueError, ["stack", "(3,)", "(4,)"]),
    ("sum_axis", lambda v: jnp.sum(v.a23, axis=3), ValueError, ["sum", "axis 3", "dimension 2"]),
    ("mean_axis", lambda v: jnp.mean(v.a23, axis=2), ValueError, ["mean", "axis 2"]),
    ("argmax_axis", lambda v: jnp.argmax(v.a23, axis=2), IndexError, ["argmax", "axis 2"]),
    ("swapaxes", lambda v: jnp.swapaxes(v.a23, 0, 4), IndexError, ["swapaxes", "axis 4"]),
    ("transpose_repeated", lambda v: jnp.transpose(v.a23, (0, 0)), TypeError,
     ["transpose", "(0, 0)", "(2, 3)"]),
    ("reshape_two_unknown", lambda v: jnp.reshape(v.a23, (-1, -1)), TypeError,
     ["reshape", "(-1, -1)", "(2, 3)"]),
    ("reshape_size", lambda v: jnp.reshape(v.a23, (4, 2)), TypeError,
     ["reshape", "(2, 3)", "(4, 2)"]),
    ("reshape_size_as_numpy", lambda v: jnp.reshape(v.a23, (4, 2)), ValueError, ["reshape"]),
    ("reshape_method", lambda v: jnp.asarray(v.a23).reshape(5), TypeError,
     ["reshape", "(2, 3)", "(5,)"]),
    ("zeros_negative", lambda v: jnp.zeros((-1, 2)), TypeError, ["zeros", "(-1, 2)"]),
    ("ones_float_shape", lambda v: jnp.ones((2.5, 3)), TypeError, ["ones", "(2.5, 3)"]),
    ("and_float", lambda v: jnp.asarray(v.a3) & v.a3, TypeError, ["bitwise_and", "f32[3]"]),
    ("or_float", lambda v: jnp.asarray(v.a3) | v.a3, TypeError, ["bitwise_or", "f32[3]"]),
    ("xor_float", lambda v: jnp.asarray(v.a3) ^ v.a3, TypeError, ["bitwise_xor", "f32[3]"]),
    ("invert_float", lambda v: ~jnp.asarray(v.a3), TypeError, ["invert", "f32[3]"]),
    ("left_shift_float", lambda v: jnp.left_shift(v.a3, 1), TypeError,
     ["left_shift", "f32[3]"]),
    ("sin_of_str", lambda v: jnp.sin("abc"), TypeError, ["sin", "str", "'abc'"]),
    ("add_broadcast", lambda v: jnp.add(v.a3, v.a4), TypeError, ["add", "(3,)", "(4,)"]),
    ("add_operator_broadcast", lambda v: jnp.asarray(v.a3) + v.a4, TypeError,
     ["add", "(3,)", "(4,)"]),
    ("where_broadcast", lambda v: jnp.where(jnp.asarray(v.a3) > 0, v.a3, v.a4), ValueError,
     ["where", "(3,)", "(4,)"]),
    ("clip_broadcast", lambda v: jnp.clip(v.a3, v.a4, 5.0), TypeError,
     ["clip", "(3,)", "(4,)"]),
    ("take_axis", lambda v: jnp.take(v.a23, v.i3, axis=5), ValueError,
     ["take", "axis 5", "dimension 2"]),
    ("split_unequal", lambda v: jnp.split(v.a4, 3), ValueError, ["split", "size 4", "3"]),
    ("split_axis", lambda v: jnp.split(v.a4, 2, axis=3), IndexError, ["split", "axis 3"]),
    ("pad_widths", lambda v: jnp.pad(v.a23, ((1, 1), (1, 1), (1, 1))), ValueError,
     ["pad", "(2, 3)"]),
    ("squeeze_not_one", lambda v: jnp.squeeze(v.a23, axis=0), ValueError,
     ["squeeze", "(2, 3)"]),
    ("expand_dims_axis", lambda v: jnp.expand_dims(v.a23, 5), ValueError,
     ["expand_dims", "axis 5"]),
    ("moveaxis_repeated", lambda v: jnp.moveaxis(v.a23, (0, 1), (0, 0)), ValueError,
     ["moveaxis", "(0, 0)", "(2, 3)"]),
    ("astype_unknown", lambda v: jnp.asarray(v.a3).astype("notadtype"), TypeError,
     ["astype", "notadtype"]),
    ("at_set_shape", lambda v: jnp.asarray(v.a23).at[0].set(jnp.ones(4)), ValueError,
     ["at[...].set", "(4,)", "(3,)", "(2, 3)"]),
    ("at_add_shape", lambda v: jnp.asarray(v.a23).at[:, 0].add(v.a3), ValueError,
     ["at[...].add", "(3,)", "(2,)"]),
    ("broadcast_to", lambda v: jnp.broadcast_to(v.a3, (4,)), ValueError,
     ["broadcast_to", "(3,)", "(4,)"]),
    ("tile_negative", lambda v: jnp.tile(v.a3, -1), ValueError, ["tile", "(3,)"]),
    ("repeat_counts", lambda v: jnp.repeat(v.a3, np.array([1, 2])), ValueError,
     ["repeat", "(2,)", "(3,)"]),
    ("full_of_str", lambda v: jnp.full((2,), "x"), TypeError, ["full", "'x'"]),
    ("arange_zero_step", lambda v: jnp.arange(0, 5, 0), ZeroDivisionError, ["arange", "step"]),
    ("diag_3d", lambda v: jnp.diag(jnp.ones((2, 2, 2))), ValueError, ["diag", "(2, 2, 2)"]),
    ("triu_1d", lambda v: jnp.triu(v.a3), ValueError, ["triu", "(3,)"]),
    ("flip_axis", lambda v: jnp.flip(v.a23, 4), ValueError, ["flip", "axis 4"]),
    ("sort_axis", lambda v: jnp.sort(v.a23, axis=4), ValueError, ["sort", "axis 4"]),
    ("too_many_indices", lambda v: jnp.asarray(v.a23)[0, 0, 0], IndexError,
     ["too many indices", "(2, 3)"]),
    ("float_index", lambda v: jnp.asarray(v.a23)[1.5], TypeError, ["1.5", "(2, 3)"]),
    ("float_index_array", lambda v: jnp.asarray(v.a23)[v.a3], TypeError, ["f32[3]"]),
    ("ragged_list", lambda v: jnp.array([[1, 2], [3]]), ValueError, ["array", "[[1, 2], [3]]"]),
    ("lax_add_dtypes", lambda v: lax.add(v.a3, v.i3), TypeError, ["add", "f32[3]", "i32[3]"]),
    ("lax_add_shapes", lambda v: lax.add(v.a3, v.a4), TypeError, ["add", "f32[3]", "f32[4]"]),
    ("lax_reshape", lambda v: lax.reshape(v.a23, (5,)), TypeError, ["reshape", "f32[2,3]"]),
    ("lax_broadcast_in_dim", lambda v: lax.broadcast_in_dim(v.a3, (4,), (0,)), TypeError,
     ["broadcast_in_dim", "f32[3]"]),
    ("lax_slice", lambda v: lax.slice(v.a23, (0, 0), (3, 3)), TypeError, ["slice", "(2, 3)"]),
    ("lax_dynamic_slice", lambda v: lax.dynamic_slice(v.a23, (0,), (1,)), ValueError,
     ["dynamic_slice", "(2, 3)"]),
    ("lax_pad", lambda v: lax.pad(v.a23, 0.0, ((1, 1, 0),)), ValueError, ["pad", "(2, 3)"]),
    ("lax_select_predicate", lambda v: lax.select(v.a3, v.a3, v.a3), TypeError,
     ["select", "float32", "f32[3]"]),
    ("lax_convert_unknown", lambda v: lax.convert_element_type(v.a3, "nope"), TypeError,
     ["convert_element_type", "nope"]),
    ("lax_concatenate", lambda v: lax.concatenate([v.a23, v.a34], 0), TypeError,
     ["concatenate", "(2, 3)", "(3, 4)"]),
    ("lax_transpose", lambda v: lax.transpose(v.a23, (0,)), TypeError,
     ["transpose", "(0,)", "(2, 3)"]),
    ("lax_reduce_axes", lambda v: lax.reduce_sum(v.a23, (3,)), ValueError,
     ["reduce_sum", "(3,)", "f32[2,3]"]),
]


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("name,bad,builtin,words", CASES, ids=[c[0] for c in CASES])
def test_bad_call_raises_typed_error_naming_op_shapes_and_line(name, bad, builtin, words,
                                                               mode):
    run = bad if mode == "eager" else fjit.jit(bad)
    with pytest.raises(builtin) as info:
        run(operands())
    error = info.value
    assert isinstance(error, FjitError), f"{type(error).__mro__} is not an fjit error"
    message = str(error)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    line = bad.__code__.co_firstlineno  # the table row: the user's line
    assert f"test_errors.py:{line}" in message, message


def test_errors_from_a_user_function_name_its_line():
    def model(x, w):
        h = jnp.tanh(x @ w)
        return h @ w   # (2, 4) @ (3, 4): this line
    line = model.__code__.co_firstlineno + 2
    for f in (model, fjit.jit(model), fjit.grad(lambda x, w: jnp.sum(model(x, w)))):
        with pytest.raises(TypeError, match=rf"test_errors.py:{line} \(model\)"):
            f(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32))


def test_except_fjit_error_catches_them_all():
    caught = []
    for bad in (lambda: jnp.zeros((-1,)), lambda: jnp.sum(jnp.ones(2), axis=2),
                lambda: jnp.ones(2)[5], lambda: jnp.zeros((2**40, 2**40))):
        try:
            bad()
        except FjitError as e:
            caught.append(type(e).__name__)
    assert len(caught) == 4, caught


@pytest.mark.parametrize("bad", [lambda: jnp.asarray(np.ones(3)) & 1.5,
                                 lambda: jnp.sum(jnp.ones(2), axis=3),
                                 lambda: jnp.zeros((-1,))])
def test_errors_pickle_without_repeating_the_line(bad):
    with pytest.raises(FjitError) as info:
        bad()
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is type(info.value) and str(again) == str(info.value)


# --- pytrees ------------------------------------------------------------------------------------

def test_recursive_pytree():
    tree = [1.0]
    tree.append(tree)
    for flatten in (tree_flatten, fjit.jit(lambda t: 0.0)):
        with pytest.raises(ValueError, match=r"contains itself.*\[1\]") as info:
            flatten(tree)
        assert isinstance(info.value, FjitError) and isinstance(info.value, RecursionError)


def test_recursive_pytree_through_a_dict():
    tree = {"a": [1.0, 2.0]}
    tree["a"].append(tree)
    with pytest.raises(ValueError, match=r"a dict contains itself.*\['a'\]\[2\]"):
        tree_flatten(tree)


def test_deep_but_finite_pytree_names_the_depth():
    tree = []
    node = tree
    for _ in range(5000):
        node.append([])
        node = node[0]
    with pytest.raises(RecursionError, match="nested too deeply"):
        tree_flatten(tree)


def test_dict_with_int_and_str_keys():
    tree = {1: np.ones(2), "a": np.ones(3)}
    for flatten in (tree_flatten, fjit.jit(lambda t: 0.0), fjit.grad(lambda t: 0.0)):
        with pytest.raises(ValueError, match=r"keys \[1, 'a'\].*int, str") as info:
            flatten(tree)
        assert isinstance(info.value, TypeError) and isinstance(info.value, FjitError)


# --- allocations larger than the machine -----------------------------------------------------

HUGE = (100000, 100000, 100)   # 4e12 bytes of float32: more than any machine here

# Refused when created, eagerly and under jit.
CREATED = [
    ("zeros_sum", lambda: jnp.zeros(HUGE).sum()),
    ("ones_int8", lambda: jnp.ones(HUGE, jnp.int8)),
    ("full", lambda: jnp.full(HUGE, 2.0)),
    ("empty", lambda: jnp.empty(HUGE)),
    ("zeros_like", lambda: jnp.zeros_like(jnp.ones(3), shape=HUGE)),
    ("eye", lambda: jnp.eye(10**7)),
    ("arange", lambda: jnp.arange(4 * 10**12)),
    ("linspace", lambda: jnp.linspace(0.0, 1.0, 4 * 10**12)),
]
# Refused when an eager result would be that large; under jit these are values inside a
# Program that the compiler may fuse away, so the check there is the compiler's.
EAGER_RESULTS = [
    ("broadcast_to", lambda: jnp.broadcast_to(jnp.ones(1), HUGE)),
    ("lax_full", lambda: lax.full(HUGE, 0.0)),
    ("outer_product", lambda: jnp.ones((10**6,))[:, None] * jnp.ones((10**7,))),
]


def _check_memory_error(make, run):
    with pytest.raises(MemoryError) as info:
        run()
    error = info.value
    assert isinstance(error, FjitMemoryError) and isinstance(error, RuntimeError)
    message = str(error)
    assert "bytes" in message and f"test_errors.py:{make.__code__.co_firstlineno}" in message


@pytest.mark.parametrize("name,make", CREATED, ids=[c[0] for c in CREATED])
@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_creating_an_array_larger_than_memory_raises_at_once(name, make, mode):
    _check_memory_error(make, make if mode == "eager" else fjit.jit(make))


@pytest.mark.parametrize("name,make", EAGER_RESULTS, ids=[c[0] for c in EAGER_RESULTS])
def test_eager_result_larger_than_memory_raises_at_once(name, make):
    _check_memory_error(make, make)


def test_memory_error_names_shape_dtype_and_bytes():
    with pytest.raises(FjitMemoryError) as info:
        jnp.zeros(HUGE)
    message = str(info.value)
    assert "zeros" in message and "(100000, 100000, 100)" in message
    assert "float32" in message and "4000000000000 bytes" in message


def test_arrays_that_fit_are_fine():
    assert jnp.zeros((1000, 1000)).sum() == 0
    assert fjit.jit(lambda: jnp.ones((256, 256)).sum())() == 256 * 256


def test_jit_refuses_outputs_larger_than_memory_before_running():
    """An outer product of 200k x 200k float32 (149 GiB) as a jit output: refused before any
    C is built or memory touched, naming the shape, the bytes and this line."""
    x = np.ones(200_000, np.float32)
    with pytest.raises(MemoryError) as info:
        fjit.jit(lambda x, y: x[:, None] * y[None, :])(x, x)
    assert isinstance(info.value, FjitMemoryError)
    message = str(info.value)
    assert "160000000000 bytes" in message and "200000, 200000" in message
    assert "test_errors.py" in message
