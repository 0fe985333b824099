"""static_argnums / static_argnames are checked against the function's signature as strictly
as JAX checks them (JAX: ValueError for a number past the positional parameters or a
positional-only name, a warning for a name the function does not take)."""
import warnings

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp


def two(x, n):
    return x * n


def test_static_argnums_past_the_positional_parameters_is_an_error():
    with pytest.raises(ValueError, match=r"static_argnums=\(5,\), but only accepts 2 "
                                         r"positional arguments.*") as e:
        fjit.jit(two, static_argnums=5)
    assert "jit(two)" in str(e.value)
    with pytest.raises(ValueError, match="only accepts 2 positional"):
        fjit.jit(two, static_argnums=(1, 2))
    with pytest.raises(ValueError, match="only accepts 2 positional"):
        fjit.jit(two, static_argnums=-3)
    with pytest.raises(ValueError, match="only accepts 0 positional"):
        fjit.jit(lambda *, k: k, static_argnums=0)
    with pytest.raises(TypeError, match="static_argnums must be ints"):
        fjit.jit(two, static_argnums="n")


def test_valid_static_arguments_are_accepted():
    assert fjit.jit(two, static_argnums=1)(jnp.ones(2), 3).tolist() == [3.0, 3.0]
    assert fjit.jit(two, static_argnums=-1)(jnp.ones(2), 3).tolist() == [3.0, 3.0]
    assert fjit.jit(lambda *a: a[0] * a[1], static_argnums=7)  # *args: any number
    assert fjit.jit(two, static_argnames="n")(jnp.ones(2), n=2).tolist() == [2.0, 2.0]
    assert fjit.jit(lambda x, **kw: x, static_argnames="anything")  # **kwargs: any name


def test_static_argnames_naming_no_parameter_warns():
    with pytest.warns(SyntaxWarning, match=r"invalid argnames \['m'\] in static_argnames"):
        jf = fjit.jit(two, static_argnames="m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.asarray(jf(jnp.ones(2), 4.0)).tolist() == [4.0, 4.0]  # still runs


def test_positional_only_static_argname_is_an_error():
    def pos_only(x, n, /):
        return x * n
    with pytest.raises(ValueError, match="positional-only"):
        fjit.jit(pos_only, static_argnames="n")
    assert fjit.jit(pos_only, static_argnums=1)(jnp.ones(2), 2).tolist() == [2.0, 2.0]
