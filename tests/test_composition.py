"""Transformations compose: jit, grad, vmap, jacfwd/jacrev/hessian and checkpoint nested in
each other, in every order that matters.

The reference values never come from the composition under test: they are plain eager `grad`
(itself checked with fjit.test_util.check_grads), hand-written NumPy (the MLP's backward pass)
and central finite differences in float64.  Besides values, the tests look at the Programs the
compositions trace (calls stay calls, no dead forward work, only meta-ops inside), at what is
cached between calls, at closures over outer tracers, and at the errors that surface through
several layers of transformation.
"""
import inspect
from types import SimpleNamespace

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
from fjit.interpreters import partial_eval
from fjit.runtime import backend
from fjit.test_util import check_grads
from fjit.tree_util import tree_flatten, tree_map, tree_unflatten

RTOL, ATOL = 2e-5, 2e-6          # float32: the same maths, possibly summed in another order
META_FAMILIES = {"elementwise", "broadcast", "reduce", "argreduce", "reindex",
                 "reindex_reduce", "reshape", "iota"}
CALL_PRIMITIVES = {"jit", "checkpoint"}


# --- helpers ----------------------------------------------------------------------------------

def assert_tree_close(got, want, rtol=RTOL, atol=ATOL, err_msg=""):
    got_leaves, got_tree = tree_flatten(got)
    want_leaves, want_tree = tree_flatten(want)
    assert got_tree == want_tree, f"{err_msg}: structure {got_tree} != {want_tree}"
    for g, w in zip(got_leaves, want_leaves):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape, f"{err_msg}: shape {g.shape} != {w.shape}"
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=err_msg)


def tree_stack(trees):
    return tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def tree_sum(trees):
    return tree_map(lambda *xs: np.sum([np.asarray(x, np.float64) for x in xs], axis=0), *trees)


def examples(batch, in_axes):
    """The per-example argument tuples of a batch mapped over axis 0 (None: shared)."""
    sizes = {np.shape(leaf)[0] for arg, ax in zip(batch, in_axes) if ax is not None
             for leaf in tree_flatten(arg)[0]}
    (size,) = sizes
    return [tuple(arg if ax is None else tree_map(lambda a: a[k], arg)
                  for arg, ax in zip(batch, in_axes)) for k in range(size)]


def all_eqns(program):
    """Every equation of `program`, including those of nested Programs."""
    for eqn in program.eqns:
        yield eqn
        for value in eqn.params.values():
            if isinstance(value, fjit.Program):
                yield from all_eqns(value)


def primitive_names(program):
    return {eqn.primitive.name for eqn in all_eqns(program)}


def assert_only_meta_ops(program, allow_calls=True):
    for eqn in all_eqns(program):
        if allow_calls and eqn.primitive.name in CALL_PRIMITIVES:
            continue
        assert eqn.primitive.family in META_FAMILIES, \
            f"{eqn.primitive.name} ({eqn.primitive.family}) is not a meta-op:\n{program}"


def ravel(tree):
    leaves, treedef = tree_flatten(tree)
    shapes = [np.shape(leaf) for leaf in leaves]
    flat = np.concatenate([np.ravel(np.asarray(leaf, np.float64)) for leaf in leaves])

    def unravel(vec):
        out, offset = [], 0
        for shape in shapes:
            n = int(np.prod(shape, dtype=np.int64))
            out.append(jnp.asarray(np.reshape(vec[offset:offset + n], shape)))
            offset += n
        return tree_unflatten(treedef, out)

    return flat, unravel


def hessian_matrix(h, theta):
    """A Hessian laid out as JAX does (a tree of trees of out-shape + in-shape blocks) as one
    (n, n) matrix in `ravel` order."""
    leaves = tree_flatten(theta)[0]
    sizes = [int(np.size(np.asarray(leaf))) for leaf in leaves]
    blocks = tree_flatten(h)[0]
    n = len(leaves)
    assert len(blocks) == n * n
    return np.block([[np.asarray(blocks[i * n + j]).reshape(sizes[i], sizes[j])
                      for j in range(n)] for i in range(n)])


def fd_hessian(f, args, eps=1e-5):
    """Central finite differences of the eager gradient with respect to args[0]."""
    theta0, unravel = ravel(args[0])
    grad_f = fjit.grad(f)

    def flat_grad(vec):
        return ravel(grad_f(unravel(vec), *args[1:]))[0]

    cols = [(flat_grad(theta0 + eps * e) - flat_grad(theta0 - eps * e)) / (2 * eps)
            for e in np.eye(theta0.size)]
    return np.stack(cols, axis=1)


def counting(fn):
    """fn, counting its Python calls (each trace of a transformation calls it once)."""
    def wrapper(*args, **kwargs):
        wrapper.calls += 1
        return fn(*args, **kwargs)
    wrapper.calls = 0
    wrapper.__name__ = wrapper.__qualname__ = fn.__name__
    return wrapper


# --- the functions ----------------------------------------------------------------------------

N_IN, N_HIDDEN, N_CLASSES, BATCH = 4, 8, 3, 5


def mlp_logits(params, x):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def log_softmax(logits):
    m = jnp.max(logits, axis=-1, keepdims=True)
    shifted = logits - m
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=-1, keepdims=True))


def mlp_loss(params, x, labels):
    """Softmax cross-entropy of a batch; labels picked with take_along_axis."""
    logp = log_softmax(mlp_logits(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


def mlp_loss_onehot(params, x, labels):
    """The same loss with one-hot labels made by ==."""
    logp = log_softmax(mlp_logits(params, x))
    onehot = (labels[:, None] == jnp.arange(N_CLASSES)[None, :]).astype(logp.dtype)
    return -jnp.mean(jnp.sum(onehot * logp, axis=-1))


def mlp_example_loss(params, x, label):
    return mlp_loss(params, x[None], label[None])


def mlp_example_loss_onehot(params, x, label):
    return mlp_loss_onehot(params, x[None], jnp.reshape(label, (1,)))


def np_mlp_grad(params, x, labels):
    """The MLP's gradient by hand in NumPy (float64)."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    x, labels = np.asarray(x, np.float64), np.asarray(labels)
    h = np.tanh(x @ p["w1"] + p["b1"])
    z = h @ p["w2"] + p["b2"]
    e = np.exp(z - z.max(-1, keepdims=True))
    softmax = e / e.sum(-1, keepdims=True)
    dz = (softmax - np.eye(N_CLASSES)[labels]) / len(x)
    da = (dz @ p["w2"].T) * (1 - h ** 2)
    return {"w1": x.T @ da, "b1": da.sum(0), "w2": h.T @ dz, "b2": dz.sum(0)}


def np_logits_jacobian(params, x):
    """d logits / d x for one example: W2^T diag(1 - h^2) W1^T."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    h = np.tanh(np.asarray(x, np.float64) @ p["w1"] + p["b1"])
    return (p["w2"].T * (1 - h ** 2)) @ p["w1"].T


GATHER = np.array([3, 0, 5, 5, 1], np.int32)
SCATTER = np.array([0, 2, 2, 3], np.int32)


def mixed_parts(x):
    """Reductions, reindex views (negative-step slices, pad, integer-array gather,
    concatenate, roll), an .at[].add scatter with repeated indices and where; x: (6,)."""
    a = x[::-1] * x                                   # reversed
    b = x[4:0:-2]                                     # negative stride
    p = jnp.pad(x, (2, 1))                            # (9,)
    g = x[jnp.asarray(GATHER)]                        # gather, repeated index
    c = jnp.concatenate([a, b, g[:3] ** 2])           # (11,)
    r = jnp.roll(p, 3)
    s = jnp.zeros(4, x.dtype).at[jnp.asarray(SCATTER)].add(x[:4] * x[1:5])
    w = jnp.where(x > 0.0, jnp.sin(x), x ** 2)
    return jnp.stack([jnp.sum(c * jnp.cos(c)), jnp.max(r * jnp.tanh(p)), jnp.sum(s ** 2),
                      jnp.mean(w * g.sum()), jnp.prod(x[1:4])])


def mixed(x):
    return jnp.sum(mixed_parts(x))


MIXED_X = np.array([0.3, -0.7, 1.1, 0.5, -1.3, 0.9])   # away from where's and max's kinks


def mlp_single_logits(params, x):
    return mlp_logits(params, x)


def make_case(name, dtype=np.float32):
    rng = np.random.default_rng(0)
    if name.startswith("mlp"):
        params = {"w1": rng.standard_normal((N_IN, N_HIDDEN)) * 0.5,
                  "b1": rng.standard_normal(N_HIDDEN) * 0.1,
                  "w2": rng.standard_normal((N_HIDDEN, N_CLASSES)) * 0.5,
                  "b2": rng.standard_normal(N_CLASSES) * 0.1}
        params = {k: jnp.asarray(v.astype(dtype)) for k, v in params.items()}
        x = jnp.asarray(rng.standard_normal((BATCH, N_IN)).astype(dtype))
        labels = jnp.asarray(np.array([0, 2, 1, 1, 0], np.int32))
        onehot = name == "mlp_onehot"
        args = (params, x, labels)
        return SimpleNamespace(
            name=name, f=mlp_loss_onehot if onehot else mlp_loss, args=args,
            ex_f=mlp_example_loss_onehot if onehot else mlp_example_loss,
            ex_batch=args, ex_in_axes=(None, 0, 0),
            vec_f=mlp_single_logits, vec_argnums=1, vec_batch=(params, x),
            vec_in_axes=(None, 0),
            vec_ref=lambda p, xi: np_logits_jacobian(p, xi),
            direction=tree_map(lambda a: rng.standard_normal(np.shape(a)).astype(dtype),
                               params))
    assert name == "mixed"
    x = jnp.asarray(MIXED_X.astype(dtype))
    batch = jnp.asarray((rng.standard_normal((4, 6)) + 0.05).astype(dtype))

    def vec_ref(xi):
        return np.stack([np.asarray(fjit.grad(lambda v, k=k: mixed_parts(v)[k])(xi))
                         for k in range(5)])

    return SimpleNamespace(
        name=name, f=mixed, args=(x,), ex_f=mixed, ex_batch=(batch,), ex_in_axes=(0,),
        vec_f=mixed_parts, vec_argnums=0, vec_batch=(batch,), vec_in_axes=(0,),
        vec_ref=vec_ref, direction=rng.standard_normal(6).astype(dtype))


CASES = ["mlp", "mlp_onehot", "mixed"]


@pytest.fixture(params=CASES)
def case(request):
    return make_case(request.param)


# --- the references are right -----------------------------------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_eager_grad_reference_passes_check_grads(name):
    c = make_case(name)
    if name.startswith("mlp"):
        labels = c.args[2]
        check_grads(lambda p, x: c.f(p, x, labels), c.args[:2], order=2)
        assert_tree_close(fjit.grad(c.f)(*c.args), np_mlp_grad(*c.args), err_msg="NumPy")
    else:
        check_grads(c.f, c.args, order=2)


def test_mixed_function_values_against_numpy():
    x = MIXED_X
    p = np.pad(x, (2, 1))
    g = x[GATHER]
    c = np.concatenate([x[::-1] * x, x[4:0:-2], g[:3] ** 2])
    s = np.zeros(4)
    np.add.at(s, SCATTER, x[:4] * x[1:5])
    w = np.where(x > 0, np.sin(x), x ** 2)
    want = [np.sum(c * np.cos(c)), np.max(np.roll(p, 3) * np.tanh(p)), np.sum(s ** 2),
            np.mean(w * g.sum()), np.prod(x[1:4])]
    np.testing.assert_allclose(np.asarray(mixed_parts(jnp.asarray(x.astype(np.float32)))),
                               want, rtol=1e-5, atol=1e-6)


def test_two_mlp_losses_agree():
    c = make_case("mlp")
    np.testing.assert_allclose(np.asarray(mlp_loss(*c.args)),
                               np.asarray(mlp_loss_onehot(*c.args)), rtol=1e-6)


# --- the composition matrix -------------------------------------------------------------------

def test_jit_of_grad(case):
    want = fjit.grad(case.f)(*case.args)
    assert_tree_close(fjit.jit(fjit.grad(case.f))(*case.args), want)
    if case.name.startswith("mlp"):
        assert_tree_close(fjit.jit(fjit.grad(case.f))(*case.args), np_mlp_grad(*case.args),
                          rtol=1e-4, atol=1e-6)


def test_grad_of_jit(case):
    want = fjit.grad(case.f)(*case.args)
    assert_tree_close(fjit.grad(fjit.jit(case.f))(*case.args), want)


def test_value_and_grad_of_jit_under_jit(case):
    value, g = fjit.jit(fjit.value_and_grad(fjit.jit(case.f)))(*case.args)
    np.testing.assert_allclose(np.asarray(value), np.asarray(case.f(*case.args)), rtol=RTOL)
    assert_tree_close(g, fjit.grad(case.f)(*case.args))


def test_vmap_of_grad_gives_per_example_gradients(case):
    got = fjit.vmap(fjit.grad(case.ex_f), in_axes=case.ex_in_axes)(*case.ex_batch)
    want = tree_stack([fjit.grad(case.ex_f)(*ex)
                       for ex in examples(case.ex_batch, case.ex_in_axes)])
    assert_tree_close(got, want)


def test_jit_of_vmap_of_grad(case):
    got = fjit.jit(fjit.vmap(fjit.grad(case.ex_f), in_axes=case.ex_in_axes))(*case.ex_batch)
    want = tree_stack([fjit.grad(case.ex_f)(*ex)
                       for ex in examples(case.ex_batch, case.ex_in_axes)])
    assert_tree_close(got, want)


def test_vmap_of_grad_of_jit(case):
    got = fjit.vmap(fjit.grad(fjit.jit(case.ex_f)), in_axes=case.ex_in_axes)(*case.ex_batch)
    want = tree_stack([fjit.grad(case.ex_f)(*ex)
                       for ex in examples(case.ex_batch, case.ex_in_axes)])
    assert_tree_close(got, want)


def test_grad_of_vmap_is_gradient_of_summed_loop(case):
    in_axes = case.ex_in_axes

    def batched_total(*batch):
        return jnp.sum(fjit.vmap(case.ex_f, in_axes=in_axes)(*batch))

    def looped_total(*batch):
        return sum(case.ex_f(*ex) for ex in examples(batch, in_axes))

    got = fjit.grad(batched_total)(*case.ex_batch)
    assert_tree_close(got, fjit.grad(looped_total)(*case.ex_batch))
    if in_axes[0] is None:   # shared parameters: the sum of per-example gradients
        per_example = [fjit.grad(case.ex_f)(*ex) for ex in examples(case.ex_batch, in_axes)]
        assert_tree_close(got, tree_sum(per_example), rtol=1e-4, atol=1e-6)
    assert_tree_close(fjit.grad(fjit.jit(batched_total))(*case.ex_batch), got)
    assert_tree_close(fjit.grad(lambda *b: jnp.sum(fjit.vmap(fjit.jit(case.ex_f), in_axes)(*b)))
                      (*case.ex_batch), got)


def test_vmap_of_jit(case):
    got = fjit.vmap(fjit.jit(case.ex_f), in_axes=case.ex_in_axes)(*case.ex_batch)
    want = np.stack([np.asarray(case.ex_f(*ex))
                     for ex in examples(case.ex_batch, case.ex_in_axes)])
    np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL, atol=ATOL)


def test_jit_of_jit(case):
    want = np.asarray(case.f(*case.args))
    np.testing.assert_allclose(np.asarray(fjit.jit(fjit.jit(case.f))(*case.args)), want,
                               rtol=RTOL)
    assert_tree_close(fjit.jit(fjit.jit(fjit.grad(case.f)))(*case.args),
                      fjit.grad(case.f)(*case.args))


@pytest.mark.parametrize("policy", [None, "dots_saveable", "everything_saveable"])
def test_grad_of_checkpoint(case, policy):
    pol = getattr(fjit.checkpoint_policies, policy) if policy else None
    want = fjit.grad(case.f)(*case.args)
    remat_f = fjit.checkpoint(case.f, policy=pol)
    np.testing.assert_allclose(np.asarray(remat_f(*case.args)), np.asarray(case.f(*case.args)),
                               rtol=RTOL)
    assert_tree_close(fjit.grad(remat_f)(*case.args), want)
    assert_tree_close(fjit.jit(fjit.grad(remat_f))(*case.args), want)
    assert_tree_close(fjit.grad(fjit.jit(remat_f))(*case.args), want)


def test_vmap_of_jacrev(case):
    jac = fjit.jacrev(case.vec_f, argnums=case.vec_argnums)
    got = fjit.vmap(jac, in_axes=case.vec_in_axes)(*case.vec_batch)
    want = np.stack([case.vec_ref(*ex) for ex in examples(case.vec_batch, case.vec_in_axes)])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)
    got_fwd = fjit.vmap(fjit.jacfwd(case.vec_f, argnums=case.vec_argnums),
                        in_axes=case.vec_in_axes)(*case.vec_batch)
    np.testing.assert_allclose(np.asarray(got_fwd), want, rtol=1e-4, atol=1e-5)
    got_jit = fjit.jit(fjit.vmap(jac, in_axes=case.vec_in_axes))(*case.vec_batch)
    np.testing.assert_allclose(np.asarray(got_jit), np.asarray(got), rtol=RTOL, atol=ATOL)


# --- second order (float64, against finite differences) ---------------------------------------

def phi(t):
    return t ** 3 * jnp.sin(t) + jnp.exp(jnp.tanh(t))


def phi_second(t):
    s = np.tanh(t)
    d = 1 - s ** 2
    return (6 * t * np.sin(t) + 6 * t ** 2 * np.cos(t) - t ** 3 * np.sin(t)
            + np.exp(s) * d * (d - 2 * s))


def test_grad_of_grad_of_a_scalar_function(x64):
    t0 = 0.7
    want = phi_second(t0)
    eps = 1e-5
    fd = (float(fjit.grad(phi)(t0 + eps)) - float(fjit.grad(phi)(t0 - eps))) / (2 * eps)
    np.testing.assert_allclose(fd, want, rtol=1e-8)
    for name, fn in [("grad(grad)", fjit.grad(fjit.grad(phi))),
                     ("jit(grad(grad))", fjit.jit(fjit.grad(fjit.grad(phi)))),
                     ("grad(jit(grad))", fjit.grad(fjit.jit(fjit.grad(phi)))),
                     ("grad(grad(jit))", fjit.grad(fjit.grad(fjit.jit(phi)))),
                     ("grad(grad(checkpoint))", fjit.grad(fjit.grad(fjit.checkpoint(phi)))),
                     ("hessian", fjit.hessian(phi))]:
        np.testing.assert_allclose(float(fn(t0)), want, rtol=1e-10, err_msg=name)
    ts = np.array([-1.2, 0.1, 0.7, 2.0])
    np.testing.assert_allclose(np.asarray(fjit.vmap(fjit.grad(fjit.grad(phi)))(jnp.asarray(ts))),
                               phi_second(ts), rtol=1e-10)


@pytest.mark.parametrize("name", CASES)
def test_grad_of_grad_along_a_direction(x64, name):
    c = make_case(name, np.float64)
    theta, rest = c.args[0], c.args[1:]
    v = tree_map(jnp.asarray, c.direction)

    def along(t):
        return c.f(tree_map(lambda a, b: a + t * b, theta, v), *rest)

    eps = 1e-5
    fd = (float(fjit.grad(along)(eps)) - float(fjit.grad(along)(-eps))) / (2 * eps)
    v_flat = ravel(c.direction)[0]
    vhv = v_flat @ fd_hessian(c.f, c.args) @ v_flat
    np.testing.assert_allclose(fd, vhv, rtol=1e-6, atol=1e-8)
    for fn in (fjit.grad(fjit.grad(along)), fjit.jit(fjit.grad(fjit.grad(along))),
               fjit.grad(fjit.jit(fjit.grad(along)))):
        np.testing.assert_allclose(float(fn(0.0)), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", CASES)
def test_hessians_agree_with_each_other_and_finite_differences(x64, name):
    c = make_case(name, np.float64)
    theta = c.args[0]
    want = fd_hessian(c.f, c.args)
    results = {"jacfwd(jacrev)": fjit.jacfwd(fjit.jacrev(c.f))(*c.args),
               "jacrev(jacfwd)": fjit.jacrev(fjit.jacfwd(c.f))(*c.args),
               "hessian": fjit.hessian(c.f)(*c.args),
               "jit(hessian)": fjit.jit(fjit.hessian(c.f))(*c.args),
               "hessian(jit)": fjit.hessian(fjit.jit(c.f))(*c.args)}
    reference = hessian_matrix(results["hessian"], theta)
    assert tree_flatten(results["jacfwd(jacrev)"])[1] == tree_flatten(results["hessian"])[1]
    for name, h in results.items():
        assert np.asarray(tree_flatten(h)[0][0]).dtype == np.float64, name
        m = hessian_matrix(h, theta)
        np.testing.assert_allclose(m, reference, rtol=1e-10, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(m, want, rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(reference, reference.T, atol=1e-12)


# --- structure of the traced Programs ---------------------------------------------------------

def matrix_compositions(c):
    """(name, function, args) for every composition of the matrix, as make_program sees it."""
    f, args = c.f, c.args
    ex = (c.ex_f, c.ex_batch, c.ex_in_axes)
    return [
        ("jit(grad)", fjit.jit(fjit.grad(f)), args),
        ("grad(jit)", fjit.grad(fjit.jit(f)), args),
        ("vmap(grad)", fjit.vmap(fjit.grad(ex[0]), ex[2]), ex[1]),
        ("grad(vmap)", fjit.grad(lambda *b: jnp.sum(fjit.vmap(ex[0], ex[2])(*b))), ex[1]),
        ("jit(vmap(grad))", fjit.jit(fjit.vmap(fjit.grad(ex[0]), ex[2])), ex[1]),
        ("jacfwd(jacrev)", fjit.jacfwd(fjit.jacrev(f)), args),
        ("jacrev(jacfwd)", fjit.jacrev(fjit.jacfwd(f)), args),
        ("hessian(jit)", fjit.hessian(fjit.jit(f)), args),
        ("vmap(jit)", fjit.vmap(fjit.jit(ex[0]), ex[2]), ex[1]),
        ("jit(jit)", fjit.jit(fjit.jit(f)), args),
        ("grad(checkpoint)", fjit.grad(fjit.checkpoint(f)), args),
        ("vmap(jacrev)", fjit.vmap(fjit.jacrev(c.vec_f, argnums=c.vec_argnums),
                                   c.vec_in_axes), c.vec_batch),
    ]


@pytest.mark.parametrize("name", CASES)
def test_matrix_programs_typecheck_and_hold_only_meta_ops(name):
    c = make_case(name)
    for label, fn, args in matrix_compositions(c):
        program = fjit.make_program(fn)(*args)
        assert fjit.typecheck(program) is None, label
        assert_only_meta_ops(program)
        # and the Program computes what the composition computes
        outs = fjit.core.eval_program(program, *tree_flatten((args, {}))[0])
        want = tree_flatten(fn(*args))[0]
        assert len(outs) == len(want), label
        for o, w in zip(outs, want):
            np.testing.assert_allclose(np.asarray(o), np.asarray(w), rtol=RTOL, atol=ATOL,
                                       err_msg=label)


def test_grad_of_jit_keeps_the_function_as_jit_equations(case):
    program = fjit.make_program(fjit.grad(fjit.jit(case.f)))(*case.args)
    fjit.typecheck(program)
    jit_eqns = [e for e in program.eqns if e.primitive.name == "jit"]
    assert len(jit_eqns) == 2, program          # the forward part and its transpose
    assert [e.primitive.name for e in program.eqns] == ["jit", "jit"], program  # no inlining
    name = case.f.__name__
    assert [e.params["name"] for e in jit_eqns] == [name, f"transpose({name})"]
    for eqn in jit_eqns:
        assert_only_meta_ops(eqn.params["program"], allow_calls=False)
    if case.name.startswith("mlp"):    # the user's tanh lives inside the forward call only
        assert "tanh" in primitive_names(jit_eqns[0].params["program"])
        assert "tanh" not in primitive_names(jit_eqns[1].params["program"])


def test_jit_of_grad_is_one_equation_of_meta_ops(case):
    program = fjit.make_program(fjit.jit(fjit.grad(case.f)))(*case.args)
    fjit.typecheck(program)
    assert [e.primitive.name for e in program.eqns] == ["jit"], program
    inner = program.eqns[0].params["program"]
    fjit.typecheck(inner)
    assert_only_meta_ops(inner, allow_calls=False)
    assert len(program.outvars) == len(tree_flatten(case.args[0])[0])


def test_vmap_of_jit_keeps_one_jit_equation(case):
    program = fjit.make_program(fjit.vmap(fjit.jit(case.ex_f), case.ex_in_axes))(*case.ex_batch)
    fjit.typecheck(program)
    jit_eqns = [e for e in program.eqns if e.primitive.name == "jit"]
    assert len(jit_eqns) == 1, program
    assert jit_eqns[0].params["name"] == case.ex_f.__name__
    (out,) = program.out_avals
    assert out.shape == (np.shape(tree_flatten(case.ex_batch[-1])[0][0])[0],)
    assert_only_meta_ops(jit_eqns[0].params["program"], allow_calls=False)


def test_jit_of_jit_nests_calls():
    program = fjit.make_program(fjit.jit(fjit.jit(mixed)))(jnp.asarray(MIXED_X, jnp.float32))
    fjit.typecheck(program)
    assert [e.primitive.name for e in program.eqns] == ["jit"]
    inner = program.eqns[0].params["program"]
    assert [e.primitive.name for e in inner.eqns] == ["jit"]


def sin_plus_zero_exp(x):
    return jnp.sum(jnp.sin(x)) + 0.0 * jnp.sum(jnp.exp(x))


def sin_plus_stopped_exp(x):
    return jnp.sum(jnp.sin(x)) + fjit.lax.stop_gradient(jnp.sum(jnp.exp(x)))


def test_gradient_program_drops_unneeded_forward_work():
    x = jnp.linspace(-1.0, 1.0, 3)
    for fn in (fjit.grad(sin_plus_zero_exp), fjit.grad(fjit.jit(sin_plus_zero_exp)),
               fjit.jit(fjit.grad(sin_plus_zero_exp))):
        program = fjit.make_program(fn)(x)
        fjit.typecheck(program)
        names = primitive_names(program)
        # sin(x) only feeds the primal output, which the gradient does not return
        assert "sin" not in names, program
        assert "cos" in names
        # 0 * sum(exp(x)) is linear in a tangent: exp(x) is a residual of its transpose, as in
        # JAX (jax.make_jaxpr(jax.grad(f)) keeps `exp` and multiplies its cotangent by 0.0)
        assert "exp" in names, program
        np.testing.assert_allclose(np.asarray(fn(x)), np.cos(np.asarray(x)), rtol=1e-6)
    for fn in (fjit.grad(sin_plus_stopped_exp), fjit.grad(fjit.jit(sin_plus_stopped_exp)),
               fjit.jit(fjit.grad(sin_plus_stopped_exp))):
        program = fjit.make_program(fn)(x)
        fjit.typecheck(program)
        names = primitive_names(program)
        assert not names & {"sin", "exp", "reduce_sum", "stop_gradient"}, program
        np.testing.assert_allclose(np.asarray(fn(x)), np.cos(np.asarray(x)), rtol=1e-6)


def test_grad_of_jit_forward_call_does_not_compute_the_loss():
    c = make_case("mlp")
    program = fjit.make_program(fjit.grad(fjit.jit(c.f)))(*c.args)
    forward = program.eqns[0].params["program"]
    # the loss (log, the final mean over the batch) is not needed by the gradient
    assert "log" not in primitive_names(forward), forward


def test_grad_of_checkpoint_recomputes_in_the_backward_pass():
    c = make_case("mlp")
    program = fjit.make_program(fjit.grad(fjit.checkpoint(c.f)))(*c.args)
    fjit.typecheck(program)
    backward = [e for e in program.eqns if "transpose" in str(e.params.get("name"))]
    assert len(backward) == 1, program
    assert "tanh" in primitive_names(backward[0].params["program"])
    saved = fjit.make_program(fjit.grad(fjit.checkpoint(
        c.f, policy=fjit.checkpoint_policies.everything_saveable)))(*c.args)
    backward = [e for e in saved.eqns if "transpose" in str(e.params.get("name"))]
    assert "tanh" not in primitive_names(backward[0].params["program"]), saved


# --- caching ----------------------------------------------------------------------------------

@pytest.fixture
def traced_programs(monkeypatch):
    """The purposes ('jit', 'jvp', 'transpose', 'vmap', 'linearize', ...) of the Programs
    staged from now on."""
    log = []
    original = partial_eval.StagingTrace.to_program

    def to_program(self, outvars):
        log.append(self.debug.purpose)
        return original(self, outvars)

    monkeypatch.setattr(partial_eval.StagingTrace, "to_program", to_program)
    return log


@pytest.fixture
def compiled_programs(monkeypatch):
    """Programs the backend builds an executable for from now on."""
    log = []
    name = fjit.config.backend
    factory = backend._factories[name]

    def counting_factory(program):
        log.append(program)
        return factory(program)

    monkeypatch.setitem(backend._factories, name, counting_factory)
    return log


def test_jit_of_grad_traces_once():
    f = counting(mlp_loss)
    c = make_case("mlp")
    jg = fjit.jit(fjit.grad(f))
    first = jg(*c.args)
    assert f.calls == 1
    second = jg(*c.args)
    params2 = tree_map(lambda a: a * 2, c.args[0])
    third = jg(params2, *c.args[1:])
    assert f.calls == 1                      # same types: the cached Program runs
    assert_tree_close(first, second, rtol=0, atol=0)
    assert_tree_close(third, fjit.grad(mlp_loss)(params2, *c.args[1:]))
    jg(c.args[0], c.args[1][:2], c.args[2][:2])   # a new batch size: one new trace
    assert f.calls == 2


def test_jit_of_grad_second_call_traces_and_compiles_nothing(traced_programs,
                                                             compiled_programs):
    c = make_case("mixed")
    jg = fjit.jit(fjit.grad(mixed))
    jg(*c.args)
    traced_programs.clear()
    compiled_programs.clear()
    jg(*c.args)
    assert traced_programs == [] and compiled_programs == []


def jit_program_of(jf):
    """The closed Program of `jf`'s one cache entry (jf must wrap a function of its own:
    jit caches are shared by all jits of the same function)."""
    (entry,) = jf._cache.values()
    return entry.program


def test_grad_of_jit_reuses_the_jvp_program():
    f = counting(mixed)
    jf = fjit.jit(f)
    x = jnp.asarray(MIXED_X, jnp.float32)
    g = fjit.grad(jf)
    first = g(x)
    program = jit_program_of(jf)
    jvp_keys = [k for k in program.cache if isinstance(k, tuple) and k[0] == "jvp"]
    # one jvp Program, with a tangent for x only (the gather/scatter index constants are
    # leading inputs of the closed Program)
    assert len(jvp_keys) == 1 and jvp_keys[0][1][-1] is True, list(program.cache)
    jvp_program = program.cache[jvp_keys[0]][0]
    second = g(x * 2)
    assert f.calls == 1
    assert program.cache[jvp_keys[0]][0] is jvp_program
    assert_tree_close(second, fjit.grad(mixed)(x * 2))
    assert_tree_close(first, fjit.grad(mixed)(x))


def test_traced_jit_equation_carries_the_jits_cached_program():
    """Staging a call to a jitted function (and DCE, which drops nothing here) leaves the
    equation with the jit's own Program, so what is cached on it (executables, jvp, batched
    and transposed Programs) is found again from the traced Program."""
    jf = fjit.jit(counting(mixed))       # a function of its own: a cache of its own
    x = jnp.asarray(MIXED_X, jnp.float32)
    fjit.grad(jf)(x)
    (eqn,) = fjit.make_program(lambda v: jf(v))(x).eqns
    assert eqn.params["program"] is jit_program_of(jf)
    assert any(isinstance(k, tuple) and k[0] == "jvp" for k in eqn.params["program"].cache)


def test_grad_of_jit_second_call_traces_no_new_program(traced_programs):
    """Eagerly, grad re-linearizes the outer function each call (JAX too), but the jit's
    jvp, split and transposed Programs are cached: nothing else is traced again."""
    c = make_case("mlp")
    g = fjit.grad(fjit.jit(c.f))
    g(*c.args)
    traced_programs.clear()
    g(*c.args)
    assert [p for p in traced_programs if p != "linearize"] == []


def test_grad_of_jit_second_call_compiles_nothing(compiled_programs):
    """JAX's grad(jit(f)) compiles nothing on a second call with the same types."""
    c = make_case("mlp")
    g = fjit.grad(fjit.jit(c.f))
    g(*c.args)
    compiled_programs.clear()
    g(*c.args)
    assert len(compiled_programs) == 0, [p.name for p in compiled_programs]


def test_vmap_of_jit_second_call_traces_and_compiles_nothing(traced_programs,
                                                           compiled_programs):
    c = make_case("mlp")
    f = counting(c.ex_f)
    vf = fjit.vmap(fjit.jit(f), in_axes=c.ex_in_axes)
    first = vf(*c.ex_batch)
    traced_programs.clear()
    compiled_programs.clear()
    second = vf(*c.ex_batch)
    assert f.calls == 1
    assert traced_programs == [] and compiled_programs == []
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


# --- nested transformations with closures -----------------------------------------------------

def grad_of_closure(x):
    """grad(lambda y: x * y**2)(x) = 2 x y at y = x: 2 x**2, whose derivative is 4 x."""
    return fjit.grad(lambda y: x * y ** 2)(x)


def test_grad_of_a_function_calling_grad_on_a_closure():
    for x in (3.0, -0.5):
        np.testing.assert_allclose(float(grad_of_closure(x)), 2 * x ** 2, rtol=1e-6)
        for fn in (fjit.grad(grad_of_closure), fjit.jit(fjit.grad(grad_of_closure)),
                   fjit.grad(fjit.jit(grad_of_closure)),
                   fjit.grad(fjit.checkpoint(grad_of_closure))):
            np.testing.assert_allclose(float(fn(x)), 4 * x, rtol=1e-6)
    xs = jnp.asarray(np.array([0.0, 1.0, -2.0], np.float32))
    np.testing.assert_allclose(np.asarray(fjit.vmap(fjit.grad(grad_of_closure))(xs)),
                               4 * np.asarray(xs), rtol=1e-6)
    np.testing.assert_allclose(float(fjit.grad(fjit.grad(grad_of_closure))(1.5)), 4.0,
                               rtol=1e-6)


def test_no_perturbation_confusion():
    # d/dy (x * y) = x, so f(x) = x * x and f'(x) = 2x (not 3x, as a confused tangent gives)
    def f(x):
        return x * fjit.grad(lambda y: x * y)(2.0)

    def f_jit_inner(x):
        return x * fjit.grad(fjit.jit(lambda y: x * y))(2.0)

    for fn in (f, f_jit_inner):
        np.testing.assert_allclose(float(fjit.grad(fn)(1.3)), 2.6, rtol=1e-6)
        np.testing.assert_allclose(float(fjit.jit(fjit.grad(fn))(1.3)), 2.6, rtol=1e-6)
        np.testing.assert_allclose(float(fjit.jacfwd(fn)(1.3)), 2.6, rtol=1e-6)


def test_closure_over_outer_tracer_in_jit_under_grad():
    def f(x):
        return fjit.jit(lambda y: x * jnp.sin(y))(x)
    x0 = 1.3
    want = np.sin(x0) + x0 * np.cos(x0)
    np.testing.assert_allclose(float(fjit.grad(f)(x0)), want, rtol=1e-6)
    np.testing.assert_allclose(float(fjit.jit(fjit.grad(f))(x0)), want, rtol=1e-6)
    xs = np.array([0.2, 1.3], np.float32)
    np.testing.assert_allclose(np.asarray(fjit.vmap(fjit.grad(f))(jnp.asarray(xs))),
                               np.sin(xs) + xs * np.cos(xs), rtol=1e-6)


def weighted(a, b):
    return jnp.sum(jnp.sin(a * b) * b)


def test_vmap_over_a_function_calling_grad_with_argnums():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)

    def db(a, b):
        return fjit.grad(weighted, argnums=1)(a, b)

    def both(a, b):
        return fjit.grad(weighted, argnums=(0, 1))(a, b)

    want_da = np.cos(a * b) * b * b
    want_db = a * np.cos(a * b) * b + np.sin(a * b)
    got = fjit.vmap(db)(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_allclose(np.asarray(got), want_db, rtol=1e-5, atol=1e-6)
    da, dbb = fjit.vmap(both)(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_allclose(np.asarray(da), want_da, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dbb), want_db, rtol=1e-5, atol=1e-6)
    # a shared (unmapped) first argument: the gradient with respect to b per row
    got = fjit.vmap(db, in_axes=(None, 0))(jnp.asarray(a[0]), jnp.asarray(b))
    want = a[0] * np.cos(a[0] * b) * b + np.sin(a[0] * b)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    # vmap with in_axes=1 and out_axes=1 around grad with argnums
    got = fjit.vmap(db, in_axes=1, out_axes=1)(jnp.asarray(a.T), jnp.asarray(b.T))
    np.testing.assert_allclose(np.asarray(got), want_db.T, rtol=1e-5, atol=1e-6)


def test_jit_of_a_function_that_builds_vmap_of_grad_inside():
    rng = np.random.default_rng(4)
    a = jnp.asarray(rng.standard_normal((4, 3)).astype(np.float32))
    b = jnp.asarray(rng.standard_normal((4, 3)).astype(np.float32))

    def per_row_grads(a, b):
        per_row = fjit.vmap(fjit.grad(weighted, argnums=(0, 1)))
        da, db = per_row(a, b)
        return da * 2.0 + db

    counted = counting(per_row_grads)
    jf = fjit.jit(counted)
    got = jf(a, b)
    jf(a * 2, b)
    assert counted.calls == 1
    want = np.stack([np.asarray(fjit.grad(weighted, argnums=0)(a[k], b[k])) * 2
                     + np.asarray(fjit.grad(weighted, argnums=1)(a[k], b[k]))
                     for k in range(4)])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    program = fjit.make_program(jf)(a, b)
    fjit.typecheck(program)
    assert [e.primitive.name for e in program.eqns] == ["jit"]
    assert_only_meta_ops(program.eqns[0].params["program"], allow_calls=False)
    # and the whole thing differentiates again
    total = fjit.grad(lambda a: jnp.sum(jf(a, b)))(a)
    fd_dir = np.asarray(rng.standard_normal((4, 3)).astype(np.float32))
    with_dir = lambda t: float(jnp.sum(per_row_grads(a + t * jnp.asarray(fd_dir), b)))
    fd = (with_dir(1e-2) - with_dir(-1e-2)) / 2e-2
    np.testing.assert_allclose(np.sum(np.asarray(total) * fd_dir), fd, rtol=2e-3, atol=2e-3)


# --- has_aux through compositions -------------------------------------------------------------

def loss_with_aux(x):
    y = jnp.sin(x)
    return jnp.sum(y ** 2), y * 2.0


def test_jit_of_grad_with_aux_returns_concrete_aux():
    x = jnp.asarray(MIXED_X, jnp.float32)
    g, aux = fjit.jit(fjit.grad(loss_with_aux, has_aux=True))(x)
    xn = np.asarray(x)
    np.testing.assert_allclose(np.asarray(g), 2 * np.sin(xn) * np.cos(xn), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(aux), 2 * np.sin(xn), rtol=1e-6)


def test_vmap_of_grad_with_aux():
    xs = jnp.asarray(np.stack([MIXED_X, -MIXED_X]).astype(np.float32))
    g, aux = fjit.vmap(fjit.grad(loss_with_aux, has_aux=True))(xs)
    xn = np.asarray(xs)
    np.testing.assert_allclose(np.asarray(g), 2 * np.sin(xn) * np.cos(xn), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(aux), 2 * np.sin(xn), rtol=1e-6)


def test_grad_with_aux_eagerly_returns_an_array():
    x = jnp.asarray(MIXED_X, jnp.float32)
    _, aux = fjit.grad(loss_with_aux, has_aux=True)(x)
    assert isinstance(aux, fjit.Array), type(aux)
    np.testing.assert_allclose(np.asarray(aux), 2 * np.sin(np.asarray(x)), rtol=1e-6)


# --- errors through compositions --------------------------------------------------------------

def branchy(x):
    s = jnp.sum(x)
    if s > 0:                                   # Python control flow on a traced value
        return s * 2.0
    return s


BRANCHY_DEF_LINE = inspect.getsourcelines(branchy)[1]
BRANCHY_IF_LINE = BRANCHY_DEF_LINE + 2


@pytest.mark.parametrize("transform", ["jit(grad)", "grad(jit)", "vmap(grad)", "jit(vmap(grad))"])
def test_concretization_error_names_the_function_and_line(transform):
    fn = {"jit(grad)": lambda: fjit.jit(fjit.grad(branchy)),
          "grad(jit)": lambda: fjit.grad(fjit.jit(branchy)),
          "vmap(grad)": lambda: fjit.vmap(fjit.grad(branchy)),
          "jit(vmap(grad))": lambda: fjit.jit(fjit.vmap(fjit.grad(branchy)))}[transform]()
    arg = jnp.ones((2, 3)) if "vmap" in transform else jnp.ones(3)
    with pytest.raises(fjit.ConcretizationTypeError) as info:
        fn(arg)
    assert isinstance(info.value, fjit.TracerBoolConversionError)
    message = str(info.value)
    assert f"{__file__}:{BRANCHY_IF_LINE} (branchy)" in message, message


def test_concretization_error_in_jit_of_grad_points_at_the_definition():
    """JAX: 'The error occurred while tracing the function branchy at <file>:<def line> for
    jit'.  The function being traced is the user's, not grad's wrapper inside fjit."""
    with pytest.raises(fjit.ConcretizationTypeError) as info:
        fjit.jit(fjit.grad(branchy))(jnp.ones(3))
    message = str(info.value)
    assert "branchy" in message
    assert "fjit/api_autodiff.py" not in message, message
    assert f"{__file__}:{BRANCHY_DEF_LINE}" in message, message


def test_leaked_tracer_from_vmap_of_grad():
    leaked = []

    def leaky(x):
        y = jnp.sin(x)
        leaked.append(y)
        return jnp.sum(y * x)

    xs = jnp.asarray(np.arange(6.0, dtype=np.float32).reshape(2, 3))
    g = fjit.vmap(fjit.grad(leaky))(xs)
    np.testing.assert_allclose(np.asarray(g), np.sin(np.asarray(xs)) + np.asarray(xs)
                               * np.cos(np.asarray(xs)), rtol=1e-6)
    (tracer,) = leaked
    uses = [lambda t: t + 1.0,
            lambda t: jnp.sum(t),
            lambda t: fjit.jit(lambda z: z * t)(jnp.ones(3)),
            lambda t: fjit.grad(lambda z: jnp.sum(z * t))(jnp.ones(3)),
            lambda t: fjit.vmap(lambda z: z * t)(jnp.ones((2, 3))),
            lambda t: float(t[0]),
            lambda t: np.asarray(t)]
    for use in uses:
        with pytest.raises(fjit.UnexpectedTracerError):
            use(tracer)


def test_leaked_tracer_from_jit_of_grad():
    leaked = []

    def leaky(x):
        leaked.append(x * 2.0)
        return jnp.sum(x ** 2)

    fjit.jit(fjit.grad(leaky))(jnp.ones(3))
    with pytest.raises(fjit.UnexpectedTracerError):
        jnp.sin(leaked[0])


# --- the reference tool with integer arguments ------------------------------------------------

def test_check_grads_accepts_integer_arguments():
    """check_grads perturbs float leaves only (JAX's float0 for the integer labels)."""
    c = make_case("mlp")
    check_grads(c.f, c.args, order=1, modes=("rev",))
