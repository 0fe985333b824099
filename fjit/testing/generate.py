"""Random fuzz programs over fjit's public surface, reproducible from a seed.

`generate(seed)` draws everything from `np.random.default_rng(seed)`, so a seed (an int or a
tuple such as `(campaign_seed, index)`) names one program exactly.  Each statement is made by
a *maker* (one per op family) and run eagerly at once: a statement the eager (NumPy
reference) evaluation rejects is dropped and another drawn, so the generator needs no shape
rules of its own and every program it returns is valid where eager fjit says so.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .expr import (At, BinOp, Call, Const, DType, FuzzProgram, Index, Lambda, Lit, Method,
                   Ref, Tup, UnOp, evaluate, namespaces)

FLOATS = ("float32", "float16", "bfloat16", "float64")
INTS = ("int8", "int16", "int32", "int64", "uint8")
# Drawn for inputs: mostly float32, every other dtype now and then.
_DTYPE_WEIGHTS = {"float32": 10, "float16": 1, "bfloat16": 1, "float64": 1, "int32": 3,
                  "int8": 1, "int16": 1, "int64": 1, "uint8": 1, "bool": 2}

_UNARY_FLOAT = ["jnp.exp", "jnp.log", "jnp.sin", "jnp.cos", "jnp.tanh", "jnp.sqrt", "jnp.abs",
                "jnp.negative", "jnp.square", "jnp.floor", "jnp.ceil", "jnp.sign", "jnp.expm1",
                "jnp.log1p", "jnp.reciprocal", "jnp.arctan", "jnp.sinh", "jnp.round",
                "nn.relu", "nn.sigmoid", "nn.softplus", "jnp.isnan", "jnp.isfinite"]
_UNARY_INT = ["jnp.abs", "jnp.negative", "jnp.square", "jnp.sign"]
_BINARY_CALLS = ["jnp.maximum", "jnp.minimum", "jnp.arctan2", "jnp.power", "jnp.floor_divide",
                 "jnp.remainder", "jnp.logaddexp", "jnp.subtract", "jnp.divide"]
_BINARY_OPS = ["+", "-", "*", "/", "//", "%", "**"]
_BITWISE = ["&", "|", "^"]
_COMPARE = ["<", "<=", ">", ">=", "==", "!="]
_REDUCE = ["jnp.sum", "jnp.mean", "jnp.max", "jnp.min", "jnp.prod", "jnp.any", "jnp.all"]
_EINSUMS = [("ij,jk->ik", 2), ("ij->ji", 1), ("bij,bjk->bik", 2), ("i,i->", 2),
            ("ij,j->i", 2), ("ijk->k", 1), ("ij,ij->i", 2), ("i,j->ij", 2)]
MAX_SIZE = 48


def _is_float(dt):
    return dt.kind == "f" or dt.name == "bfloat16"


class Generator:
    """Builds one program: a pool of named values (inputs and statement results) with their
    eager values, grown by makers."""

    def __init__(self, rng: np.random.Generator, x64: bool):
        self.rng = rng
        self.x64 = x64
        self.ns = namespaces()
        self.inputs, self.stmts = [], []
        self.env = {}          # name -> eager value (inputs and statements)
        self.pool = []         # names a maker may read
        self.counter = 0
        self.rejected = 0

    # --- random helpers ---------------------------------------------------------------------
    def choice(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def coin(self, p):
        return bool(self.rng.random() < p)

    def dtype(self):
        names = list(_DTYPE_WEIGHTS)
        w = np.array([_DTYPE_WEIGHTS[n] for n in names], float)
        name = names[int(self.rng.choice(len(names), p=w / w.sum()))]
        if name == "bfloat16" and self.ns["fjit"].dtypes.bfloat16 is None:
            name = "float32"
        return name

    def dim(self):
        r = self.rng.random()
        if r < 0.04:
            return 0
        if r < 0.25:
            return 1
        return int(self.rng.integers(2, 6))

    def shape(self, rank=None):
        rank = int(self.rng.choice([0, 1, 2, 3], p=[0.1, 0.3, 0.4, 0.2])) if rank is None else rank
        for _ in range(20):
            s = tuple(self.dim() for _ in range(rank))
            if int(np.prod(s)) <= MAX_SIZE:
                return s
        return (1,) * rank

    def values(self, shape, dtype_name):
        rng = self.rng
        dt = np.dtype(self.ns["jnp"].bfloat16) if dtype_name == "bfloat16" else np.dtype(dtype_name)
        if dtype_name == "bool":
            return rng.random(shape) < 0.5
        if dt.kind in "iu":
            lo = 0 if dt.kind == "u" else -4
            return rng.integers(lo, 5, size=shape).astype(dt)
        v = rng.standard_normal(shape) * self.choice([1.0, 1.0, 3.0])
        if self.coin(0.3):
            v = np.round(v * 2) / 2  # ties for max/argmax and exact zeros
        if self.coin(0.03) and v.size:
            flat = v.reshape(-1)
            flat[int(rng.integers(flat.size))] = self.choice([np.inf, -np.inf, np.nan, 0.0])
        return v.astype(dt)

    # --- the pool ---------------------------------------------------------------------------
    def fresh(self, shape=None, dtype=None):
        """A new program input; returns its Ref."""
        name = f"x{len(self.inputs)}"
        value = self.values(self.shape() if shape is None else shape,
                            self.dtype() if dtype is None else dtype)
        self.inputs.append((name, value))
        self.env[name] = self._eager(Ref(name), {name: value})
        self.pool.append(name)
        return Ref(name)

    def _eager(self, e, env):
        import fjit
        with _settings(fjit, self.x64):
            return fjit.numpy.asarray(evaluate(e, env, self.ns))

    def pick(self, pred=lambda v: True):
        names = [n for n in self.pool if pred(self.env[n])]
        if not names:
            return None
        # Favour recent values so statements chain.
        w = np.arange(1, len(names) + 1, dtype=float) ** 2
        return Ref(names[int(self.rng.choice(len(names), p=w / w.sum()))])

    def val(self, ref):
        return self.env[ref.name]

    def add(self, e):
        """Run `e` eagerly; keep it as a statement if fjit accepts it."""
        import fjit
        try:
            with _settings(fjit, self.x64):
                value = evaluate(e, self.env, self.ns)
                if not isinstance(value, fjit.Array):
                    value = fjit.numpy.asarray(value)
        except Exception:
            self.rejected += 1
            return None
        if value.size > 12 * MAX_SIZE:
            self.rejected += 1
            return None
        name = f"v{self.counter}"
        self.counter += 1
        self.stmts.append((name, e))
        self.env[name] = value
        self.pool.append(name)
        return Ref(name)

    # --- operands ---------------------------------------------------------------------------
    def scalar_like(self, dt):
        if dt.name == "bool":
            return Lit(self.coin(0.5))
        if _is_float(dt) and self.coin(0.7):
            return Lit(self.choice([2.0, -1.5, 0.5, 0.0, 3.0]))
        return Lit(self.choice([2, -1, 0, 1, 3]) if dt.kind != "u" else self.choice([0, 1, 2, 3]))

    def broadcastable_shape(self, shape):
        """A shape that broadcasts with `shape`: a suffix of it, some dims set to 1."""
        k = int(self.rng.integers(0, len(shape) + 1))
        tail = shape[len(shape) - k:]
        return tuple(1 if self.coin(0.3) else d for d in tail)

    def partner(self, a_ref, dtype=None):
        """A second operand for an element-wise op with `a`: a weak scalar, a pool value that
        broadcasts with it, or a fresh input."""
        a = self.val(a_ref)
        r = self.rng.random()
        if r < 0.3:
            return self.scalar_like(a.dtype)
        if r < 0.7:
            def ok(v):
                try:
                    np.broadcast_shapes(v.shape, a.shape)
                    return int(np.prod(np.broadcast_shapes(v.shape, a.shape))) <= 4 * MAX_SIZE
                except ValueError:
                    return False
            b = self.pick(ok)
            if b is not None:
                return b
        dt = dtype or (a.dtype.name if self.coin(0.6) else self.dtype())
        return self.fresh(self.broadcastable_shape(a.shape), dt)

    def axis(self, ndim, allow_none=True, allow_tuple=True):
        if ndim == 0 or (allow_none and self.coin(0.25)):
            return None
        if allow_tuple and ndim > 1 and self.coin(0.25):
            k = int(self.rng.integers(1, ndim + 1))
            return tuple(sorted(int(a) for a in self.rng.choice(ndim, k, replace=False)))
        a = int(self.rng.integers(ndim))
        return a - ndim if self.coin(0.2) else a


@contextlib.contextmanager
def _settings(fjit, x64):
    prev = (fjit.config.backend, fjit.config.enable_x64)
    fjit.config.update("backend", "reference")
    fjit.config.update("enable_x64", x64)
    try:
        yield
    finally:
        fjit.config.update("backend", prev[0])
        fjit.config.update("enable_x64", prev[1])


# --- makers: each returns an expression (or None) ----------------------------------------------

def m_unary(g):
    a = g.pick()
    dt = g.val(a).dtype
    if dt.name == "bool":
        return Call(g.choice(["jnp.logical_not", "jnp.invert"]), (a,))
    if dt.kind in "iu":
        if g.coin(0.2):
            return UnOp(g.choice(["-", "~"]), a)
        return Call(g.choice(_UNARY_INT + ["jnp.sin", "jnp.exp"]), (a,))
    if g.coin(0.15):
        return UnOp("-", a)
    return Call(g.choice(_UNARY_FLOAT), (a,))


def m_binary(g):
    a = g.pick()
    b = g.partner(a)
    dt = g.val(a).dtype
    if dt.kind in "iub" and g.coin(0.3):
        op = g.choice(_BITWISE)
        return BinOp(op, a, b) if g.coin(0.5) else BinOp(op, b, a)
    if g.coin(0.5):
        op = g.choice(_BINARY_OPS)
        return BinOp(op, a, b) if g.coin(0.7) else BinOp(op, b, a)
    return Call(g.choice(_BINARY_CALLS), (a, b) if g.coin(0.7) else (b, a))


def m_compare(g):
    a = g.pick()
    return BinOp(g.choice(_COMPARE), a, g.partner(a))


def m_where(g):
    a = g.pick()
    c = g.pick(lambda v: v.dtype == bool)
    if c is None or g.coin(0.5):
        c = BinOp(g.choice([">", "<", "!="]), a, Lit(0))
    return Call("jnp.where", (c, a, g.partner(a)))


def m_cast(g):
    a = g.pick()
    names = [n for n in _DTYPE_WEIGHTS if n != "bfloat16" or g.ns["fjit"].dtypes.bfloat16]
    return Method(a, "astype", (DType(g.choice(names)),))


def m_reduce(g):
    a = g.pick()
    v = g.val(a)
    if g.coin(0.2) and v.ndim:
        return Call(g.choice(["jnp.argmax", "jnp.argmin"]),
                    (a,), (("axis", Lit(g.axis(v.ndim, allow_tuple=False))),))
    fn = g.choice(_REDUCE)
    kwargs = (("axis", Lit(g.axis(v.ndim))),)
    if g.coin(0.3):
        kwargs += (("keepdims", Lit(True)),)
    if g.coin(0.2):
        return Method(a, fn.split(".")[1], (), kwargs)
    return Call(fn, (a,), kwargs)


def m_index(g):
    a = g.pick(lambda v: v.ndim > 0)
    if a is None:
        return None
    v = g.val(a)
    key = []
    for d in v.shape:
        r = g.rng.random()
        if r < 0.25 and d > 0:
            key.append(Lit(int(g.rng.integers(-d, d))))
        elif r < 0.85:
            start = None if g.coin(0.4) else int(g.rng.integers(-d - 1, d + 2))
            stop = None if g.coin(0.4) else int(g.rng.integers(-d - 1, d + 2))
            step = None if g.coin(0.6) else g.choice([1, 2, -1, -2, 3])
            key.append(Lit(slice(start, stop, step)))
        else:
            key.append(Lit(slice(None)))
        if g.coin(0.1):
            key.append(Lit(None))
    if g.coin(0.2):
        key = key[: int(g.rng.integers(1, len(key) + 1))] + [Lit(Ellipsis)]
    return Index(a, tuple(key))


def _index_array(g, n):
    shape = g.choice([(int(g.rng.integers(1, 5)),), (2, 2), (0,)])
    idx = g.rng.integers(-n, n, size=shape) if n else np.zeros(shape, int)
    return Const(idx.astype(g.choice([np.int32, np.int64])))


def m_gather(g):
    a = g.pick(lambda v: v.ndim > 0 and v.shape[0] > 0)
    if a is None:
        return None
    v = g.val(a)
    idx = _index_array(g, v.shape[0])
    if g.coin(0.3) and v.ndim > 1 and v.shape[1] > 0:
        return Index(a, (Lit(slice(None)), _index_array(g, v.shape[1])))
    if g.coin(0.2):
        return Call("jnp.take", (a, idx), (("axis", Lit(0)),))
    return Index(a, idx)


def m_at(g):
    a = g.pick(lambda v: v.ndim > 0 and v.shape[0] > 0)
    if a is None:
        return None
    v = g.val(a)
    method = g.choice(["set", "add", "min", "max", "mul"])
    r = g.rng.random()
    n = v.shape[0]
    if r < 0.35:
        key = Lit(int(g.rng.integers(-n, n)))
    elif r < 0.7:
        key = Lit(slice(int(g.rng.integers(0, n + 1)), None, g.choice([None, 2])))
    else:
        idx = g.rng.integers(-n, n, size=int(g.rng.integers(1, 4)))
        if method == "set":  # JAX leaves the order of duplicate sets unspecified
            idx = np.unique(idx % n)
        key = Const(idx.astype(np.int32))
    target = g._eager(Index(a, key), g.env)
    value = g.scalar_like(v.dtype) if g.coin(0.4) else \
        g.fresh(g.broadcastable_shape(target.shape), v.dtype.name)
    return At(a, key, method, value)


def _factor(g, size, rank):
    dims = []
    for _ in range(rank - 1):
        divisors = [d for d in range(1, size + 1) if size % d == 0] if size else [0, 1, 2]
        d = g.choice(divisors)
        dims.append(d)
        size = size // d if d else size
    dims.append(size)
    g.rng.shuffle(dims)
    return tuple(int(d) for d in dims)


def m_reshape(g):
    a = g.pick()
    v = g.val(a)
    kind = g.rng.random()
    if kind < 0.4:
        shape = _factor(g, v.size, int(g.rng.integers(0 if v.size == 1 else 1, 4)))
        if shape and v.size and g.coin(0.3):
            shape = list(shape)
            shape[int(g.rng.integers(len(shape)))] = -1
            shape = tuple(shape)
        return Method(a, "reshape", (Lit(shape),)) if g.coin(0.7) else \
            Call("jnp.reshape", (a, Lit(shape)))
    if kind < 0.6 and v.ndim > 1:
        perm = tuple(int(p) for p in g.rng.permutation(v.ndim))
        return Call("jnp.transpose", (a, Lit(perm))) if g.coin(0.7) else Method(a, "transpose", (Lit(perm),))
    if kind < 0.7:
        ones = [k for k, d in enumerate(v.shape) if d == 1]
        if ones and g.coin(0.7):
            return Call("jnp.squeeze", (a,), (("axis", Lit(g.choice(ones))),))
        return Call("jnp.expand_dims", (a, Lit(int(g.rng.integers(-v.ndim - 1, v.ndim + 1)))))
    if kind < 0.8:
        return Call("jnp.flip", (a,), (("axis", Lit(g.axis(v.ndim, allow_tuple=False))),))
    if kind < 0.9:
        lead = tuple(g.dim() for _ in range(int(g.rng.integers(0, 2))))
        shape = lead + tuple(g.choice([1, 2, 3]) if d == 1 else d for d in v.shape)
        return Call("jnp.broadcast_to", (a, Lit(shape)))
    return Method(a, "ravel") if g.coin(0.5) else Method(a, "swapaxes", (Lit(0), Lit(-1))) \
        if v.ndim else None


def m_join(g):
    a = g.pick(lambda v: v.ndim > 0)
    if a is None:
        return None
    v = g.val(a)
    ax = int(g.rng.integers(v.ndim))
    if g.coin(0.5):
        shape = list(v.shape)
        shape[ax] = g.dim()
        b = g.fresh(tuple(shape), v.dtype.name if g.coin(0.8) else g.dtype())
        parts = [a, b] if g.coin(0.5) else [b, a, a]
        return Call("jnp.concatenate", (Tup(tuple(parts)),), (("axis", Lit(ax)),))
    b = g.fresh(v.shape, v.dtype.name)
    return Call("jnp.stack", (Tup((a, b)),), (("axis", Lit(int(g.rng.integers(v.ndim + 1)))),))


def m_pad(g):
    a = g.pick(lambda v: v.ndim > 0)
    if a is None:
        return None
    v = g.val(a)
    widths = tuple((int(g.rng.integers(0, 3)), int(g.rng.integers(0, 3))) for _ in v.shape)
    kwargs = ()
    if g.coin(0.3):
        kwargs = (("constant_values", g.scalar_like(v.dtype)),)
    elif g.coin(0.2):
        kwargs = (("mode", Lit("edge")),)
    return Call("jnp.pad", (a, Lit(widths)), kwargs)


def m_matmul(g):
    a = g.pick(lambda v: 1 <= v.ndim <= 3 and v.dtype != bool)
    if a is None or g.coin(0.2):
        a = g.fresh(g.shape(int(g.rng.integers(1, 4))), g.choice(["float32", "float32", "int32",
                                                                 "float16"]))
    if g.coin(0.15):  # a layer of an MLP: sizes where GEMM and its gradient take over
        m, k, n = (g.choice([1, 3, 16, 17]) for _ in range(3))
        return BinOp("@", g.fresh((m, k), "float32"), g.fresh((k, n), "float32"))
    v = g.val(a)
    k = v.shape[-1]
    dt = v.dtype.name if g.coin(0.8) else "float32"
    r = g.rng.random()
    if r < 0.5:
        shape = (k,) if g.coin(0.2) else \
            tuple(v.shape[:-2]) * g.coin(0.5) + (k, g.choice([1, 2, 3, 4, 16]))
        b = g.fresh(shape, dt)
        return BinOp("@", a, b) if g.coin(0.6) else Call(g.choice(["jnp.matmul", "jnp.dot"]), (a, b))
    spec, n = g.choice(_EINSUMS)
    ins = spec.split("->")[0].split(",")
    sizes = {}
    if len(ins[0]) == v.ndim:
        sizes.update(zip(ins[0], v.shape))
        first = a
    else:
        first = None
    for ch in spec:
        if ch.isalpha() and ch not in sizes:
            sizes[ch] = g.choice([0, 1, 2, 3, 4, 16]) if g.coin(0.9) else 0
    ops = [first if first is not None else g.fresh(tuple(sizes[c] for c in ins[0]), dt)]
    ops += [g.fresh(tuple(sizes[c] for c in s), dt) for s in ins[1:]]
    return Call("jnp.einsum", (Lit(spec),) + tuple(ops))


def m_conv(g):
    n, c, o = g.choice([1, 2]), g.choice([1, 2, 3]), g.choice([1, 2, 4])
    groups = 1
    if c == 2 and o in (2, 4) and g.coin(0.3):
        groups = 2
    k = g.choice([1, 2, 3])
    hw = (g.choice([k, k + 1, 4, 5]), g.choice([k, 3, 5]))
    x = g.fresh((n, c) + hw, "float32")
    w = g.fresh((o, c // groups, k, k), "float32")
    kwargs = (("stride", Lit(g.choice([1, 1, 2]))), ("padding", Lit(g.choice([0, 1]))))
    if groups > 1:
        kwargs += (("groups", Lit(groups)),)
    return Call("nn.conv", (x, w), kwargs)


# --- control flow -----------------------------------------------------------------------------

_BODY_MAKERS = None


def _body(g, params, values, result_like):
    """Statements over `params` (eager `values`) ending in a value of `result_like`'s shape
    and dtype, drawn with the element-wise makers; None if none fits."""
    sub = Generator(g.rng, g.x64)
    sub.env, sub.pool = dict(g.env), list(g.pool)
    sub.inputs = g.inputs       # fresh inputs in a body are program inputs
    sub.counter = 0
    for p, v in zip(params, values):
        sub.env[p] = v
        sub.pool.append(p)
    prefix = f"b{g.counter}_"
    start = len(sub.stmts)
    for _ in range(int(g.rng.integers(1, 4))):
        e = g.choice(_BODY_MAKERS)(sub)
        if e is not None:
            sub.add(e)
    stmts = sub.stmts[start:]
    for name, _ in sub.inputs:
        g.env.setdefault(name, sub.env[name])

    def fits(name):
        try:
            np.broadcast_to(np.zeros(sub.env[name].shape), result_like.shape)
            return True
        except ValueError:
            return False
    # the body ends at its last statement whose value broadcasts to the result's shape
    while stmts and not fits(stmts[-1][0]):
        stmts = stmts[:-1]
    if not stmts:
        return None
    last_val = sub.env[stmts[-1][0]]
    # rename body locals so they cannot clash with the enclosing function's names
    names = {n: Ref(prefix + n) for n, _ in stmts}
    from .expr import substitute
    stmts = tuple((prefix + n, substitute(e, names)) for n, e in stmts)
    result = Ref(stmts[-1][0])
    if last_val.shape != result_like.shape:
        result = Call("jnp.broadcast_to", (result, Lit(tuple(result_like.shape))))
    if last_val.dtype != result_like.dtype:
        result = Method(result, "astype", (DType(result_like.dtype.name),))
    return stmts, result


def m_cond(g):
    a = g.pick()
    v = g.val(a)
    branches = []
    for _ in range(2):
        body = _body(g, ("c",), (v,), v)
        if body is None:
            return None
        branches.append(Lambda(("c",), *body))
    pred = BinOp(">", Call("jnp.sum", (a,)), Lit(0)) if g.coin(0.7) else \
        BinOp("<", Call("jnp.max", (a,)), Lit(1)) if v.size else Lit(True)
    return Call("lax.cond", (pred, branches[0], branches[1], a))


def m_scan(g):
    xs = g.pick(lambda v: v.ndim >= 1)
    if xs is None:
        return None
    v = g.val(xs)
    init = g.fresh(v.shape[1:], v.dtype.name)
    x0 = v[0] if v.shape[0] else g._eager(Call("jnp.zeros", (Lit(v.shape[1:]),),
                                              (("dtype", DType(v.dtype.name)),)), {})
    carry = g.val(init)
    body = _body(g, ("c", "x"), (carry, x0), carry)
    if body is None:
        return None
    stmts, result = body
    out = Tup((result, Ref(stmts[0][0]) if g.coin(0.5) else BinOp("*", Ref("c"), Lit(2))))
    kwargs = (("reverse", Lit(True)),) if g.coin(0.3) else ()
    return Index(Call("lax.scan", (Lambda(("c", "x"), stmts, out), init, xs), kwargs),
                 Lit(int(g.rng.integers(2))))


def m_fori(g):
    a = g.pick()
    v = g.val(a)
    body = _body(g, ("i", "c"), (np.int32(0), v), v)
    if body is None:
        return None
    return Call("lax.fori_loop", (Lit(0), Lit(int(g.rng.integers(0, 4))), Lambda(("i", "c"), *body), a))


def m_while(g):
    a = g.pick()
    v = g.val(a)
    body = _body(g, ("c",), (v,), v)
    if body is None:
        return None
    stmts, result = body
    n = int(g.rng.integers(0, 4))
    cond = Lambda(("s",), (), BinOp("<", Index(Ref("s"), Lit(0)), Lit(n)))
    step = Lambda(("s",), (("c", Index(Ref("s"), Lit(1))),) + tuple(stmts),
                  Tup((BinOp("+", Index(Ref("s"), Lit(0)), Lit(1)), result)))
    return Index(Call("lax.while_loop", (cond, step, Tup((Lit(0), a)))), Lit(1))


MAKERS = {"unary": (m_unary, 10), "binary": (m_binary, 12), "compare": (m_compare, 3),
          "where": (m_where, 3), "cast": (m_cast, 3), "reduce": (m_reduce, 8),
          "index": (m_index, 5), "gather": (m_gather, 3), "at": (m_at, 4),
          "reshape": (m_reshape, 8), "join": (m_join, 3), "pad": (m_pad, 2),
          "matmul": (m_matmul, 5), "conv": (m_conv, 1), "cond": (m_cond, 2),
          "scan": (m_scan, 2), "fori": (m_fori, 1), "while": (m_while, 1)}
_BODY_MAKERS = [m_unary, m_binary, m_binary, m_compare, m_where, m_cast]


def generate(seed, n_ops=None, x64=None) -> FuzzProgram:
    """The program named by `seed`."""
    rng = np.random.default_rng(seed)
    x64 = bool(rng.random() < 0.15) if x64 is None else x64
    g = Generator(rng, x64)
    for _ in range(int(rng.integers(1, 3))):
        g.fresh()
    names = list(MAKERS)
    w = np.array([MAKERS[n][1] for n in names], float)
    n_ops = int(rng.integers(1, 7)) if n_ops is None else n_ops
    attempts = 0
    while len(g.stmts) < n_ops and attempts < 4 * n_ops + 8:
        attempts += 1
        maker = MAKERS[names[int(rng.choice(len(names), p=w / w.sum()))]][0]
        try:
            e = maker(g)
        except Exception:  # a maker's own eager probe failed: draw another
            e = None
        if e is not None:
            g.add(e)
    if not g.stmts:
        g.add(Call("jnp.sin", (Ref(g.inputs[0][0]),)))
    stmt_names = [n for n, _ in g.stmts]
    outputs = [stmt_names[-1]]
    for n in stmt_names[:-1]:
        if rng.random() < 0.3:
            outputs.append(n)
    # Inputs no statement reads are dropped (an unused input only slows the fuzzer down).
    from .expr import refs
    used = set(outputs)
    for _, e in g.stmts:
        used |= refs(e)
    inputs = [(n, v) for n, v in g.inputs if n in used]
    return FuzzProgram(inputs=inputs, stmts=list(g.stmts), outputs=outputs, x64=x64, seed=seed)
