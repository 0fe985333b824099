"""`fjit.random`: JAX's counter-based, splittable PRNG (like `jax.random`).

    import fjit.random as jr
    key = jr.PRNGKey(0)
    key, sub = jr.split(key)
    x = jr.normal(sub, (3, 4))

Keys are raw `uint32[2]` arrays (`key` returns the same as `PRNGKey`), hashed with
threefry-2x32 as JAX does by default (`jax_threefry_partitionable=True`).  Against JAX 0.10.2
on CPU: keys, bits, uniform (float32, float16, bfloat16; float64 with the default bounds),
randint, bernoulli, rademacher, permutation and choice without p agree bit for bit
(float32 `a * b + c` steps are rounded once like XLA's FMA, see `_fma`).  Samplers that go
through log/log1p/exp/tan/erf (normal, truncated_normal, gumbel, exponential, laplace,
logistic, cauchy, lognormal) agree to an ulp or two, since XLA has its own approximations of
those functions; so do float64 samples with non-default bounds (no float64 FMA here), and
categorical and choice with p (argmax / top-k of Gumbel noise) agree unless a near-tie falls
within that ulp.
Everything is fjit meta-ops, so samplers work eagerly, under jit (same results) and under
vmap over keys.  Not implemented: gamma, beta, dirichlet, poisson, binomial and the other
samplers that need rejection loops, multivariate_normal and orthogonal.
"""
from .combinatorics import categorical, choice, permutation
from .distributions import (bernoulli, cauchy, exponential, gumbel, laplace, logistic,
                            lognormal, normal, rademacher, randint, truncated_normal, uniform)
from .prng import (PRNGKey, bits, clone, fold_in, key, key_data, split, threefry2x32,
                   wrap_key_data)

__all__ = ["PRNGKey", "key", "split", "fold_in", "bits", "key_data", "wrap_key_data", "clone",
           "threefry2x32", "uniform", "normal", "truncated_normal", "bernoulli", "rademacher",
           "randint", "gumbel", "exponential", "laplace", "logistic", "cauchy", "lognormal",
           "categorical", "permutation", "choice"]
