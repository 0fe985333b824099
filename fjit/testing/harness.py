"""How one fuzz program is run in each mode and compared: self-contained functions (they use
only numpy, fjit and fjit.numpy) so that a reproducer script can carry their source verbatim
and do exactly what the fuzzer did."""
import numpy as np

import fjit
import fjit.numpy as jnp

MODES = ("forward", "grad", "vmap", "jit_vmap_grad")


def batch(x, n):
    """`n` different variants of `x` stacked on a new leading axis (the inputs of vmap)."""
    x = np.asarray(x)
    rows = []
    for k in range(n):
        flat = np.roll(x.reshape(-1), k)
        if x.dtype == bool:
            flat = flat ^ bool(k % 2)
        elif x.dtype.kind in "iu":
            flat = flat + np.asarray(k).astype(x.dtype)
        else:
            flat = (flat.astype(np.float64) * (1.0 - 0.75 * k)).astype(x.dtype)
        rows.append(flat.reshape(x.shape))
    return np.stack(rows) if rows else np.zeros((0,) + x.shape, x.dtype)


def loss_of(f):
    """A float32 scalar of `f`'s floating outputs: each summed against fixed weights (not a
    plain sum, whose gradient hides mistakes that cancel)."""
    def loss(*args):
        total = jnp.zeros((), jnp.float32)
        for out in f(*args):
            if jnp.issubdtype(out.dtype, jnp.floating):
                w = np.cos(np.arange(out.size) + 1.0).reshape(out.shape).astype(np.float32)
                total = total + jnp.sum(out.astype(jnp.float32) * w)
        return total
    return loss


def transform(f, mode, argnums):
    """`f` under a fuzz mode; `argnums`: the floating inputs grad differentiates."""
    if mode == "forward":
        return f
    if mode == "grad":
        return fjit.grad(loss_of(f), argnums=argnums)
    if mode == "vmap":
        return fjit.vmap(f)
    if mode == "jit_vmap_grad":
        return fjit.vmap(fjit.grad(loss_of(f), argnums=argnums))
    raise ValueError(f"unknown fuzz mode {mode!r}")


def run(f, mode, args, argnums, target):
    """Outputs of `f` in `mode` on `target`: 'eager' (no jit, NumPy reference), 'eager_loop'
    (eager, one vmapped example at a time, stacked) or a jit backend ('reference', 'c')."""
    fjit.config.update("backend", "reference" if target.startswith("eager") else target)
    g = transform(f, mode, argnums)
    if target == "eager":
        return g(*[jnp.asarray(a) for a in args])
    if target == "eager_loop":
        inner = transform(f, "grad" if mode == "jit_vmap_grad" else "forward", argnums)
        per = [inner(*[jnp.asarray(a[k]) for a in args]) for k in range(len(args[0]))]
        return tuple(jnp.stack([p[i] for p in per]) for i in range(len(per[0])))
    return fjit.jit(g)(*args)


TOLERANCE = {"float16": (2e-2, 2e-2), "bfloat16": (6e-2, 6e-2), "float32": (2e-4, 1e-5),
             "float64": (1e-9, 1e-12)}


def mismatched(e, g):
    """Where `g` differs from `e` (same shape and dtype): ints and bools exactly, NaN and inf
    at the same places, finite floats beyond the dtype's tolerance scaled by the output's
    magnitude."""
    if e.dtype.kind in "biu":
        return e != g
    e64, g64 = e.astype(np.float64), g.astype(np.float64)
    rtol, atol = TOLERANCE.get(e.dtype.name, TOLERANCE["float32"])
    finite = np.isfinite(e64)
    scale = max(1.0, float(np.max(np.abs(e64[finite]), initial=0.0)))
    with np.errstate(invalid="ignore"):
        close = np.abs(e64 - g64) <= atol * scale + rtol * np.abs(e64)
    return np.where(finite, ~close, ~((e64 == g64) | (np.isnan(e64) & np.isnan(g64))))


def compare(expected, got):
    """None if `got` matches `expected` (ints and bools exactly, NaN and inf at the same
    places, finite floats within the dtype's tolerance scaled by the output's magnitude),
    else what differs first."""
    expected = expected if isinstance(expected, (tuple, list)) else (expected,)
    got = got if isinstance(got, (tuple, list)) else (got,)
    if len(expected) != len(got):
        return f"structure: {len(expected)} outputs expected, {len(got)} got"
    for k, (e, g) in enumerate(zip(expected, got)):
        e_dt, g_dt = np.asarray(e).dtype, np.asarray(g).dtype
        e, g = np.asarray(e), np.asarray(g)
        if e.shape != g.shape:
            return f"shape: output {k} expected {e.shape}, got {g.shape}"
        if e_dt != g_dt:
            return f"dtype: output {k} expected {e_dt}, got {g_dt}"
        bad = mismatched(e, g)
        if np.any(bad):
            at = tuple(int(i) for i in np.argwhere(bad)[0])
            what = "nan" if np.isnan(e[at].astype(np.float64)) != np.isnan(
                g[at].astype(np.float64)) else "value"
            return (f"{what}: output {k} ({e_dt}{list(e.shape)}) at {at}: expected {e[at]!r}, "
                    f"got {g[at]!r} ({int(np.sum(bad))} of {e.size} differ)")
    return None
