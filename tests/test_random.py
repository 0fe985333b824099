"""fjit.random: bit-exact agreement with JAX 0.10.2 (recorded constants, threefry2x32 with
jax_threefry_partitionable=True, the default), jit/vmap consistency, and distribution checks
(moments and Kolmogorov-Smirnov statistics against exact CDFs).

The JAX* tables were produced by running jax.random in JAX 0.10.2 on x86-64 CPU; each entry
is (dtype, shape, values), floats as their bit patterns.  JAX is not a test dependency.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import fjit
import fjit.numpy as jnp
import fjit.random as jr
from fjit.test_util import check_grads

JAX32 = {
    'PRNGKey(0)': ('uint32', (2,), [0, 0]),
    'PRNGKey(42)': ('uint32', (2,), [0, 42]),
    'PRNGKey(-1)': ('uint32', (2,), [0, 4294967295]),
    'PRNGKey(2147483647)': ('uint32', (2,), [0, 2147483647]),
    'PRNGKey(123456789)': ('uint32', (2,), [0, 123456789]),
    'split(k0)': ('uint32', (2, 2), [1797259609, 2579123966, 928981903, 3453687069]),
    'split(k42,3)': ('uint32', (3, 2), [1832780943, 270669613, 64467757, 2916123636, 2465931498, 255383827]),
    'split(k42,(2,2))': ('uint32', (2, 2, 2), [1832780943, 270669613, 64467757, 2916123636, 2465931498, 255383827, 3134548294, 894150801]),
    'fold_in(k0,7)': ('uint32', (2,), [2716826189, 292468403]),
    'fold_in(k42,2**31+5)': ('uint32', (2,), [4006827317, 911798682]),
    'bits(k42,(5,))': ('uint32', (5,), [2098992034, 2919706841, 2646866425, 2409546199, 1935504149]),
    'bits(k42,(2,3),uint8)': ('uint8', (2, 3), [162, 217, 249, 215, 21, 216]),
    'bits(k42,(3,),uint16)': ('uint16', (3,), [5026, 12505, 63993]),
    'uniform(k42,(6,))': ('float32', (6,), [0x3efa3824, 0x3f2e0730, 0x3f1dc3f8, 0x3f0f9ec0, 0x3ee6bae4, 0x3f15fb4e]),
    'uniform(k0,(2,3),-2,3)': ('float32', (2, 3), [0x402f40e2, 0x40392544, 0xbead5574, 0x3eafca90, 0x3f597522, 0xbf9613fc]),
    'uniform(k42,(4,),float16)': ('float16', (4,), [0x2ce0, 0x3218, 0x3bce, 0x3a0e]),
    'uniform(k42,(4,),bfloat16)': ('bfloat16', (4,), [0.6328125, 0.84375, 0.96875, 0.8359375]),
    'normal(k42,(6,))': ('float32', (6,), [0xbce7df15, 0x3eef2be8, 0x3e976661, 0x3e1d3b24, 0xbdfe04eb, 0x3e5e211a]),
    'truncated_normal(k42,-1,2,(5,))': ('float32', (5,), [0x3e173eaf, 0x3f11859b, 0x3ed790a8, 0x3e9995ab, 0x3d8d8b8c]),
    'randint(k42,(6,),0,10)': ('int32', (6,), [4, 4, 1, 9, 9, 9]),
    'randint(k0,(5,),-5,1000)': ('int32', (5,), [554, 625, 417, 293, 951]),
    'randint(k0,(5,),0,256,uint8)': ('uint8', (5,), [101, 80, 200, 61, 3]),
    'randint(k0,(4,),-3,3,int8)': ('int8', (4,), [-2, -3, -1, -2]),
    'randint(k0,(4,),5,5)': ('int32', (4,), [5, 5, 5, 5]),
    'randint(k0,(3,),minmax)': ('int32', (3,), [-2116156571, -2057756336, 349724616]),
    'bernoulli(k42,0.3,(8,))': ('bool', (8,), [False, False, False, False, False, False, True, False]),
    'bernoulli(k42,p(3,))': ('bool', (3,), [False, False, True]),
    'bernoulli(k42,p(3,),(2,3))': ('bool', (2, 3), [False, False, True, False, True, True]),
    'categorical(k42,logits)': ('int32', (3,), [2, 0, 3]),
    'categorical(k42,logits,axis=0)': ('int32', (4,), [1, 0, 0, 2]),
    'categorical(k42,logits,shape=(5,3))': ('int32', (5, 3), [2, 0, 3, 1, 0, 3, 1, 0, 2, 2, 0, 3, 2, 0, 3]),
    'permutation(k42,10)': ('int32', (10,), [7, 4, 2, 5, 3, 6, 8, 9, 0, 1]),
    'permutation(k0,2000)[:20]': ('int32', (20,), [988, 23, 1144, 1675, 1700, 884, 311, 1604, 1450, 1655, 475, 1923, 717, 943, 1356, 782, 601, 1466, 114, 1474]),
    'permutation(k0,2000)sum': ('int32', (), [2016424664]),
    'permutation(k42,a,axis=1)': ('int32', (3, 4), [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9]),
    'permutation(k42,a,axis=1,independent)': ('int32', (3, 4), [2, 3, 0, 1, 7, 4, 5, 6, 10, 11, 8, 9]),
    'choice(k42,10,(3,))': ('int32', (3,), [4, 4, 1]),
    'choice(k42,10,(4,),replace=False)': ('int32', (4,), [7, 4, 2, 5]),
    'choice(k42,4,(6,),p)': ('int32', (6,), [2, 2, 2, 2, 2, 2]),
    'choice(k42,4,(3,),False,p)': ('int32', (3,), [3, 2, 1]),
    'choice(k42,a,(2,),axis=1)': ('int32', (3, 2), [0, 2, 4, 6, 8, 10]),
    'gumbel(k42,(6,))': ('float32', (6,), [0x3eab0e4a, 0x3f73b78c, 0x3f39bc5f, 0x3f0c54f8, 0x3e683f8f, 0x3f204922]),
    'gumbel(k42,(4,),high)': ('float32', (4,), [0x3ecc6b8b, 0xbe051854, 0x3d3084d1, 0x3e471c42]),
    'exponential(k42,(6,))': ('float32', (6,), [0x3f2bbab2, 0x3f91c438, 0x3f7533b1, 0x3f52c34c, 0x3f1958b3, 0x3f61ae44]),
    'laplace(k42,(6,))': ('float32', (6,), [0x3cbb1a39, 0xbee42cb4, 0xbe878335, 0xbe0544d5, 0x3dd4d8bb, 0xbe40f0b5]),
    'logistic(k42,(6,))': ('float32', (6,), [0xbd390390, 0x3f40ba1c, 0x3ef28faa, 0x3e7b2c74, 0xbe4ad1f4, 0x3eb19cfe]),
    'cauchy(k42,(6,))': ('float32', (6,), [0xbd115855, 0x3f223be0, 0x3ec3cf40, 0x3e46ba78, 0xbe200f78, 0x3e8d90c6]),
    'rademacher(k42,(6,))': ('int32', (6,), [1, -1, -1, -1, 1, -1]),
    'vmap_uniform': ('float32', (4, 3), [0x3f57a1e6, 0x3e3ac178, 0x3e68a160, 0x3bef0100, 0x3cab2400, 0x3f14d85e, 0x3f6706ee, 0x3f698c06, 0x3eae9dcc, 0x3e88b2d8, 0x3f3be428, 0x3f742732]),
}
JAX64 = {
    'PRNGKey(-1)': ('uint32', (2,), [4294967295, 4294967295]),
    'PRNGKey(2**40+3)': ('uint32', (2,), [256, 3]),
    'PRNGKey(-2)': ('uint32', (2,), [4294967295, 4294967294]),
    'bits(k42,(5,))': ('uint64', (5,), [7871734211187709741, 276886910877598708, 10591095138341673235, 13462782411356743825, 12687676868490354166]),
    'bits(k42,(3,),uint64)': ('uint64', (3,), [7871734211187709741, 276886910877598708, 10591095138341673235]),
    'uniform(k42,(4,),float64)': ('float64', (4,), [0x3fdb4f8123c40884, 0x3f8ebd996d6e8400, 0x3fe25f641d41e71a, 0x3fe75aad28c6a974]),
    'normal(k42,(6,),float64)': ('float64', (6,), [0xbfc7a4a26c962159, 0xc0015bccfaa7ba3a, 0x3fc7ed8110b50460, 0x3fe397ad84a04356, 0x3fdf5603e3665211, 0x3fd79dc43b3389fb]),
    'randint(k42,(6,),0,10)': ('int64', (6,), [5, 8, 3, 1, 5, 6]),
    'randint(k0,(5,),-5,1000)': ('int64', (5,), [175, 501, 375, 717, 928]),
    'randint(k0,(4,),5,5)': ('int64', (4,), [5, 5, 5, 5]),
    'randint(k0,(3,),minmax)': ('int64', (3,), [-765492353, 624300108, -1485585948]),
    'randint(k0,(4,),0,10**12,int64)': ('int64', (4,), [57961561871, 706803357823, 73035129551, 359437767637]),
    'bernoulli(k42,0.3,(8,))': ('bool', (8,), [False, True, False, False, False, False, False, False]),
    'categorical(k42,logits)': ('int64', (3,), [2, 0, 3]),
    'categorical(k42,logits,axis=0)': ('int64', (4,), [1, 0, 0, 2]),
    'categorical(k42,logits,shape=(5,3))': ('int64', (5, 3), [2, 0, 3, 1, 0, 3, 1, 0, 2, 2, 0, 3, 2, 0, 3]),
    'permutation(k42,10)': ('int64', (10,), [7, 4, 2, 5, 3, 6, 8, 9, 0, 1]),
    'permutation(k0,2000)[:20]': ('int64', (20,), [988, 23, 1144, 1675, 1700, 884, 311, 1604, 1450, 1655, 475, 1923, 717, 943, 1356, 782, 601, 1466, 114, 1474]),
    'permutation(k0,2000)sum': ('int64', (), [2016424664]),
    'permutation(k42,a,axis=1)': ('int64', (3, 4), [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9]),
    'permutation(k42,a,axis=1,independent)': ('int64', (3, 4), [2, 3, 0, 1, 7, 4, 5, 6, 10, 11, 8, 9]),
    'choice(k42,10,(3,))': ('int64', (3,), [5, 8, 3]),
    'choice(k42,10,(4,),replace=False)': ('int64', (4,), [7, 4, 2, 5]),
    'choice(k42,4,(6,),p)': ('int64', (6,), [2, 2, 2, 2, 2, 2]),
    'choice(k42,4,(3,),False,p)': ('int64', (3,), [3, 2, 1]),
    'choice(k42,a,(2,),axis=1)': ('int64', (3, 2), [1, 2, 5, 6, 9, 10]),
    'gumbel(k42,(6,))': ('float64', (6,), [0x3fc48f6eaaf61cee, 0xbff6f529fdd24e87, 0x3fe2d9332776f2e1, 0x3ff27c29bdd6aedd, 0x3fef7335130f98c7, 0x3fea429ecb086fa4]),
    'gumbel(k42,(4,),high)': ('float64', (4,), [0x3fe2c2ca7f8d3dee, 0x4010c413c0cc60f6, 0x3fc440d1ea4f0873, 0xbfd137644cb5038d]),
    'exponential(k42,(6,))': ('float64', (6,), [0x3fe1cdfb42ad6bbd, 0x3f8ef94239785787, 0x3feb51244a07debe, 0x3ff4f048657d925a, 0x3ff2a034493c5310, 0x3ff085bbac0d2764]),
    'laplace(k42,(6,))': ('float64', (6,), [0x3fc4487e2b042994, 0x400c0c0e63cf45a1, 0xbfc48b852c36933e, 0xbfe3b24dcc00eac7, 0xbfde244b26fcd855, 0xbfd5ba68b24029b5]),
    'logistic(k42,(6,))': ('float64', (6,), [0xbfd2e4ce8e1bb130, 0xc010bc52f0aa2de7, 0x3fd31f3904ca048e, 0x3fefcc6c2f7839e0, 0x3fe9467f6abedfb4, 0x3fe2f5bb1d3cc576]),
    'cauchy(k42,(6,))': ('float64', (6,), [0xbfcdff0d1835f7e4, 0xc03530d1de765139, 0x3fce5dcea9df179a, 0x3fec2df0ad8a1226, 0x3fe56ce82fc04f58, 0x3fdf16c028d08c0f]),
    'rademacher(k42,(6,))': ('int64', (6,), [1, 1, -1, -1, -1, -1]),
    'vmap_uniform': ('float64', (4, 3), [0x3fef09d06245fdec, 0x3fd42bf0891f87e4, 0x3fe527b39e1262b8, 0x3fb4a3cc6a157dc0, 0x3fed90fd25fd3bd8, 0x3fe77c89a0e5e782, 0x3fe4dc8c0fe83c50, 0x3fec253bf54114ba, 0x3fcb4a326830ed40, 0x3fe804a908b08f84, 0x3fdeb28832b04b80, 0x3fef4b178da1cff0]),
}


# Normal samples from JAX for PRNGKey(7), shape (16,), float32 (bit patterns).
JAX_NORMAL_K7 = [0x3ee7084b, 0x3ffa0aae, 0xbf042845, 0xbe1052a7, 0x3f1d9131, 0x3eab2b88,
                 0xbe046db0, 0xbe651b2e, 0xbfbd2061, 0xbfabd3f7, 0xbea84a7b, 0x3f7fe6a7,
                 0x3f073456, 0xbfdf8819, 0x3fbcabc4, 0xbd1a7aa7]


def _logits():
    return jnp.array([[0.0, 1.0, 2.0, -1.0], [3.0, 0.0, 0.0, 0.0], [-1.0, -2.0, 0.5, 0.25]],
                     jnp.float32)


def _p():
    return jnp.array([0.1, 0.2, 0.3, 0.4], jnp.float32)


def _a():
    return jnp.arange(12).reshape(3, 4)


K0, K42 = (lambda: jr.PRNGKey(0)), (lambda: jr.PRNGKey(42))
SAMPLERS = {
    "split(k0)": lambda: jr.split(K0()),
    "split(k42,3)": lambda: jr.split(K42(), 3),
    "split(k42,(2,2))": lambda: jr.split(K42(), (2, 2)),
    "fold_in(k0,7)": lambda: jr.fold_in(K0(), 7),
    "fold_in(k42,2**31+5)": lambda: jr.fold_in(K42(), 2 ** 31 + 5),
    "bits(k42,(5,))": lambda: jr.bits(K42(), (5,)),
    "bits(k42,(2,3),uint8)": lambda: jr.bits(K42(), (2, 3), jnp.uint8),
    "bits(k42,(3,),uint16)": lambda: jr.bits(K42(), (3,), jnp.uint16),
    "bits(k42,(3,),uint64)": lambda: jr.bits(K42(), (3,), jnp.uint64),
    "uniform(k42,(6,))": lambda: jr.uniform(K42(), (6,), jnp.float32),
    "uniform(k0,(2,3),-2,3)": lambda: jr.uniform(K0(), (2, 3), jnp.float32, -2.0, 3.0),
    "uniform(k42,(4,),float16)": lambda: jr.uniform(K42(), (4,), jnp.float16),
    "uniform(k42,(4,),bfloat16)": lambda: jr.uniform(K42(), (4,), "bfloat16"),
    "uniform(k42,(4,),float64)": lambda: jr.uniform(K42(), (4,), jnp.float64),
    "normal(k42,(6,))": lambda: jr.normal(K42(), (6,), jnp.float32),
    "normal(k42,(6,),float64)": lambda: jr.normal(K42(), (6,), jnp.float64),
    "truncated_normal(k42,-1,2,(5,))": lambda: jr.truncated_normal(K42(), -1.0, 2.0, (5,),
                                                                   jnp.float32),
    "randint(k42,(6,),0,10)": lambda: jr.randint(K42(), (6,), 0, 10),
    "randint(k0,(5,),-5,1000)": lambda: jr.randint(K0(), (5,), -5, 1000),
    "randint(k0,(5,),0,256,uint8)": lambda: jr.randint(K0(), (5,), 0, 256, jnp.uint8),
    "randint(k0,(4,),-3,3,int8)": lambda: jr.randint(K0(), (4,), -3, 3, jnp.int8),
    "randint(k0,(4,),5,5)": lambda: jr.randint(K0(), (4,), 5, 5),
    "randint(k0,(3,),minmax)": lambda: jr.randint(K0(), (3,), -2 ** 31, 2 ** 31 - 1),
    "randint(k0,(4,),0,10**12,int64)": lambda: jr.randint(K0(), (4,), 0, 10 ** 12, jnp.int64),
    "bernoulli(k42,0.3,(8,))": lambda: jr.bernoulli(K42(), 0.3, (8,)),
    "bernoulli(k42,p(3,))": lambda: jr.bernoulli(K42(), jnp.array([0.1, 0.5, 0.9],
                                                                  jnp.float32)),
    "bernoulli(k42,p(3,),(2,3))": lambda: jr.bernoulli(K42(), jnp.array([0.1, 0.5, 0.9],
                                                                        jnp.float32), (2, 3)),
    "categorical(k42,logits)": lambda: jr.categorical(K42(), _logits()),
    "categorical(k42,logits,axis=0)": lambda: jr.categorical(K42(), _logits(), axis=0),
    "categorical(k42,logits,shape=(5,3))": lambda: jr.categorical(K42(), _logits(),
                                                                  shape=(5, 3)),
    "permutation(k42,10)": lambda: jr.permutation(K42(), 10),
    "permutation(k0,2000)[:20]": lambda: jr.permutation(K0(), 2000)[:20],
    "permutation(k0,2000)sum": lambda: jnp.sum(jr.permutation(K0(), 2000) * jnp.arange(2000)),
    "permutation(k42,a,axis=1)": lambda: jr.permutation(K42(), _a(), axis=1),
    "permutation(k42,a,axis=1,independent)": lambda: jr.permutation(K42(), _a(), axis=1,
                                                                    independent=True),
    "choice(k42,10,(3,))": lambda: jr.choice(K42(), 10, (3,)),
    "choice(k42,10,(4,),replace=False)": lambda: jr.choice(K42(), 10, (4,), replace=False),
    "choice(k42,4,(6,),p)": lambda: jr.choice(K42(), 4, (6,), p=_p()),
    "choice(k42,4,(3,),False,p)": lambda: jr.choice(K42(), 4, (3,), replace=False, p=_p()),
    "choice(k42,a,(2,),axis=1)": lambda: jr.choice(K42(), _a(), (2,), axis=1),
    "gumbel(k42,(6,))": lambda: jr.gumbel(K42(), (6,)),
    "gumbel(k42,(4,),high)": lambda: jr.gumbel(K42(), (4,), mode="high"),
    "exponential(k42,(6,))": lambda: jr.exponential(K42(), (6,)),
    "laplace(k42,(6,))": lambda: jr.laplace(K42(), (6,)),
    "logistic(k42,(6,))": lambda: jr.logistic(K42(), (6,)),
    "cauchy(k42,(6,))": lambda: jr.cauchy(K42(), (6,)),
    "rademacher(k42,(6,))": lambda: jr.rademacher(K42(), (6,)),
    "vmap_uniform": lambda: fjit.vmap(lambda k: jr.uniform(k, (3,)))(jr.split(K0(), 4)),
}
for _s in (0, 42, -1, 2 ** 31 - 1, 123456789, 2 ** 40 + 3, -2):
    SAMPLERS[f"PRNGKey({_s})" if _s != 2 ** 40 + 3 else "PRNGKey(2**40+3)"] = \
        (lambda s=_s: jr.PRNGKey(s))

# Floats that only go through integer ops and IEEE arithmetic match bit for bit; those that go
# through log/log1p/tan/erf (XLA's own approximations there, the C library's here) within a
# few ulps.
BIT_EXACT_FLOATS = ("uniform", "vmap_uniform")


def _expected(entry):
    dtype, shape, values = entry
    if dtype in ("float16", "float32", "float64") and values and isinstance(values[0], int):
        bits = np.array(values, {"float16": np.uint16, "float32": np.uint32,
                                 "float64": np.uint64}[dtype])
        return bits.view(dtype).reshape(shape)
    if dtype == "bfloat16":
        return np.array(values, np.float32).reshape(shape)
    return np.array(values, dtype).reshape(shape)


def _compare(name, got, entry):
    got, want = np.asarray(got), _expected(entry)
    if want.dtype.kind == "f":
        assert got.dtype.name == entry[0], (name, got.dtype)
        got = got.astype(want.dtype)
        if name.startswith(BIT_EXACT_FLOATS):
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            rtol = 1e-6 if want.dtype == np.float32 else 1e-13
            np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-30, err_msg=name)
    else:
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("name", sorted(JAX32))
def test_matches_jax(name):
    _compare(name, SAMPLERS[name](), JAX32[name])


@pytest.mark.parametrize("name", sorted(JAX64))
def test_matches_jax_x64(x64, name):
    _compare(name, SAMPLERS[name](), JAX64[name])


def test_normal_matches_jax_within_an_ulp_or_two():
    got = np.asarray(jr.normal(jr.PRNGKey(7), (16,)))
    want = np.array(JAX_NORMAL_K7, np.uint32).view(np.float32)
    np.testing.assert_allclose(got, want, rtol=3e-7)


def test_key_is_raw_uint32_pair():
    k = jr.key(3)
    assert k.dtype == np.uint32 and k.shape == (2,)
    np.testing.assert_array_equal(np.asarray(k), np.asarray(jr.PRNGKey(3)))
    assert jr.key_data(k) is k and jr.wrap_key_data(k) is k
    keys = jr.split(k, 5)
    assert jr.key_data(keys).shape == (5, 2)


def test_traced_seed_matches_python_seed(x64):
    make = fjit.vmap(jr.PRNGKey)
    seeds = np.array([0, 42, -1, 2 ** 40 + 3], np.int64)
    got = np.asarray(make(jnp.asarray(seeds)))
    want = np.stack([np.asarray(jr.PRNGKey(int(s))) for s in seeds])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.asarray(jr.PRNGKey(jnp.asarray(np.uint32(7)))), [0, 7])


def test_jit_gives_the_eager_results():
    def draw(key):
        k1, k2, k3, k4 = jr.split(key, 4)
        return (jr.uniform(k1, (3, 2)), jr.normal(k2, (5,)), jr.randint(k3, (4,), -3, 9),
                jr.permutation(k4, 6), jr.bernoulli(k1, 0.25, (7,)), jr.fold_in(key, 5))
    key = jr.PRNGKey(11)
    for got, want in zip(fjit.jit(draw)(key), draw(key)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_vmap_over_keys_equals_stacking():
    keys = jr.split(jr.PRNGKey(1), 8)
    for sample in (lambda k: jr.uniform(k, (3,)), lambda k: jr.normal(k, (2, 2)),
                   lambda k: jr.split(k, 3), lambda k: jr.fold_in(k, 9),
                   lambda k: jr.permutation(k, 5), lambda k: jr.randint(k, (2,), 0, 7)):
        got = np.asarray(fjit.vmap(sample)(keys))
        want = np.stack([np.asarray(sample(keys[i])) for i in range(8)])
        np.testing.assert_array_equal(got, want)


def test_vmap_permutation_matches_jax():
    got = fjit.vmap(lambda k: jr.permutation(k, 5))(jr.split(jr.PRNGKey(3), 3))
    np.testing.assert_array_equal(np.asarray(got), [[2, 3, 0, 1, 4], [2, 4, 0, 1, 3],
                                                    [4, 1, 2, 3, 0]])


def test_same_key_same_numbers_and_split_keys_differ():
    key = jr.PRNGKey(5)
    a, b = np.asarray(jr.uniform(key, (10,))), np.asarray(jr.uniform(key, (10,)))
    np.testing.assert_array_equal(a, b)
    k1, k2 = jr.split(key)
    assert not np.array_equal(np.asarray(jr.uniform(k1, (10,))), np.asarray(jr.uniform(k2, (10,))))
    assert not np.array_equal(np.asarray(jr.fold_in(key, 1)), np.asarray(jr.fold_in(key, 2)))


def test_shapes_dtypes_and_ranges():
    key = jr.PRNGKey(2)
    assert jr.uniform(key).shape == () and jr.uniform(key).dtype == np.float32
    assert jr.normal(key, (2, 0)).shape == (2, 0)
    assert jr.split(key, 0).shape == (0, 2)
    assert jr.randint(key, (3,), 0, 5).dtype == np.int32
    assert jr.bits(key, (2,)).dtype == np.uint32
    u = np.asarray(jr.uniform(key, (1000,), minval=jnp.array([2.0]), maxval=3.0))
    assert u.min() >= 2.0 and u.max() < 3.0
    t = np.asarray(jr.truncated_normal(key, -0.5, 0.25, (1000,)))
    assert t.min() > -0.5 and t.max() < 0.25
    r = np.asarray(jr.randint(key, (2, 500), jnp.array([[0], [10]]), jnp.array([[3], [13]])))
    assert set(r[0]) == {0, 1, 2} and set(r[1]) == {10, 11, 12}
    assert jr.rademacher(key, (4,), jnp.float32).dtype == np.float32


def test_x64_defaults(x64):
    key = jr.PRNGKey(0)
    assert jr.uniform(key, (2,)).dtype == np.float64
    assert jr.normal(key, (2,)).dtype == np.float64
    assert jr.randint(key, (2,), 0, 3).dtype == np.int64
    assert jr.bits(key, (2,)).dtype == np.uint64
    u = np.asarray(jr.uniform(key, (4000,)))
    assert len(np.unique(u)) == 4000 and np.mean(u * 2 ** 32 % 1 != 0) > 0.99  # > 32 bits


def test_dropout_masks():
    key = jr.PRNGKey(4)
    x = jnp.ones((64, 32))
    keep = jr.bernoulli(key, 0.75, x.shape)
    assert keep.dtype == np.bool_ and keep.shape == (64, 32)
    y = np.asarray(jnp.where(keep, x / 0.75, 0.0))
    assert abs(np.mean(y) - 1.0) < 0.05
    per_column = jr.bernoulli(key, jnp.linspace(0.0, 1.0, 32), (64, 32))
    frac = np.asarray(per_column).mean(axis=0)
    assert frac[0] == 0.0 and frac[-1] == 1.0
    assert np.all(np.abs(frac - np.linspace(0, 1, 32)) < 0.25)
    high = np.asarray(jr.bernoulli(key, 0.3, (4000,), mode="high"))
    assert abs(high.mean() - 0.3) < 0.03


# --- distributions: moments and Kolmogorov-Smirnov --------------------------------------------

N = 20000
_erf = np.vectorize(math.erf)


def _ks(samples, cdf):
    """sup |F_n - F| for a sample and a CDF (NumPy)."""
    x = np.sort(np.asarray(samples, np.float64))
    f = cdf(x)
    n = len(x)
    return max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n))


KS_LIMIT = 1.63 / math.sqrt(N)  # the 1% critical value


def _normal_cdf(x):
    return 0.5 * (1 + _erf(x / math.sqrt(2)))


CONTINUOUS = [
    ("uniform", lambda k: jr.uniform(k, (N,), minval=-1.0, maxval=2.0),
     lambda x: np.clip((x + 1) / 3, 0, 1), 0.5, 0.75),
    ("normal", lambda k: jr.normal(k, (N,)), _normal_cdf, 0.0, 1.0),
    ("truncated_normal", lambda k: jr.truncated_normal(k, -1.0, 2.0, (N,)),
     lambda x: (_normal_cdf(x) - _normal_cdf(-1.0)) / (_normal_cdf(2.0) - _normal_cdf(-1.0)),
     None, None),
    ("exponential", lambda k: jr.exponential(k, (N,)), lambda x: 1 - np.exp(-x), 1.0, 1.0),
    ("gumbel", lambda k: jr.gumbel(k, (N,)), lambda x: np.exp(-np.exp(-x)), np.euler_gamma,
     np.pi ** 2 / 6),
    ("gumbel_high", lambda k: jr.gumbel(k, (N,), mode="high"), lambda x: np.exp(-np.exp(-x)),
     np.euler_gamma, np.pi ** 2 / 6),
    ("laplace", lambda k: jr.laplace(k, (N,)),
     lambda x: np.where(x < 0, 0.5 * np.exp(x), 1 - 0.5 * np.exp(-x)), 0.0, 2.0),
    ("logistic", lambda k: jr.logistic(k, (N,)), lambda x: 1 / (1 + np.exp(-x)), 0.0,
     np.pi ** 2 / 3),
    ("cauchy", lambda k: jr.cauchy(k, (N,)), lambda x: 0.5 + np.arctan(x) / np.pi, None, None),
    ("lognormal", lambda k: jr.lognormal(k, 0.5, (N,)),
     lambda x: _normal_cdf(np.log(x) / 0.5), math.exp(0.125), (math.exp(0.25) - 1) *
     math.exp(0.25)),
]


@pytest.mark.parametrize("name, sample, cdf, mean, var", CONTINUOUS,
                         ids=[c[0] for c in CONTINUOUS])
def test_continuous_distribution(name, sample, cdf, mean, var):
    x = np.asarray(sample(jr.PRNGKey(123)), np.float64)
    assert np.all(np.isfinite(x))
    assert _ks(x, cdf) < KS_LIMIT, name
    if mean is not None:
        assert abs(x.mean() - mean) < 5 * math.sqrt(var / N), name
        assert abs(x.var() / var - 1) < 0.1, name


def _chi2_ok(counts, probs):
    """Pearson's chi-square below the 0.1% critical value (Wilson-Hilferty)."""
    counts = np.asarray(counts, np.float64)
    expected = counts.sum() * np.asarray(probs, np.float64)
    stat = np.sum((counts - expected) ** 2 / expected)
    k = len(counts) - 1
    limit = k * (1 - 2 / (9 * k) + 3.09 * math.sqrt(2 / (9 * k))) ** 3
    return stat < limit


def test_randint_and_bernoulli_frequencies():
    key = jr.PRNGKey(9)
    r = np.asarray(jr.randint(key, (N,), -3, 4))
    assert r.min() == -3 and r.max() == 3
    assert _chi2_ok(np.bincount(r + 3), np.full(7, 1 / 7))
    b = np.asarray(jr.bernoulli(key, 0.3, (N,)))
    assert _chi2_ok([np.sum(~b), np.sum(b)], [0.7, 0.3])


def test_categorical_frequencies():
    logits = jnp.log(jnp.array([0.1, 0.2, 0.3, 0.4]))
    s = np.asarray(jr.categorical(jr.PRNGKey(8), logits, shape=(N,)))
    assert _chi2_ok(np.bincount(s, minlength=4), [0.1, 0.2, 0.3, 0.4])
    no_rep = np.asarray(jr.categorical(jr.PRNGKey(8), jnp.zeros((2, 6)), shape=(6, 2),
                                       replace=False))
    assert sorted(no_rep[:, 0]) == list(range(6)) and sorted(no_rep[:, 1]) == list(range(6))


def test_permutation_is_uniform():
    keys = jr.split(jr.PRNGKey(10), 1200)
    perms = np.asarray(fjit.vmap(lambda k: jr.permutation(k, 3))(keys))
    assert np.all(np.sort(perms, axis=1) == np.arange(3))
    codes = perms[:, 0] * 9 + perms[:, 1] * 3 + perms[:, 2]
    counts = np.array([np.sum(codes == c) for c in np.unique(codes)])
    assert len(counts) == 6 and _chi2_ok(counts, np.full(6, 1 / 6))
    big = np.asarray(jr.permutation(jr.PRNGKey(0), 3000))  # two sort rounds
    np.testing.assert_array_equal(np.sort(big), np.arange(3000))
    x = jnp.arange(20.0).reshape(4, 5)
    rows = np.asarray(jr.permutation(jr.PRNGKey(1), x, axis=1, independent=True))
    np.testing.assert_array_equal(np.sort(rows, axis=1), np.asarray(x))


def test_choice():
    key = jr.PRNGKey(6)
    s = np.asarray(jr.choice(key, 5, (N,), p=jnp.array([0.1, 0.0, 0.2, 0.3, 0.4])))
    assert _chi2_ok(np.bincount(s, minlength=5)[[0, 2, 3, 4]], [0.1, 0.2, 0.3, 0.4])
    w = np.asarray(jr.choice(key, jnp.arange(10.0) * 2, (3, 2), replace=False))
    assert w.shape == (3, 2) and len(set(w.ravel())) == 6
    assert jr.choice(key, 4, (0,)).shape == (0,)


# --- gradients ----------------------------------------------------------------------------------

def test_grad_through_samplers():
    key = jr.PRNGKey(3)
    unit = np.asarray(jr.uniform(key, (4,), jnp.float32))
    g = fjit.grad(lambda hi: jnp.sum(jr.uniform(key, (4,), jnp.float32, 0.0, hi)))(2.0)
    np.testing.assert_allclose(float(g), unit.sum(), rtol=1e-6)
    check_grads(lambda lo, hi: jr.uniform(key, (3,), minval=lo, maxval=hi), (-1.0, 2.0), 2)
    check_grads(lambda lo, hi: jr.truncated_normal(key, lo, hi, (3,)), (-0.7, 1.2), 1,
                rtol=1e-4)


# --- errors -------------------------------------------------------------------------------------

def test_errors_are_typed_and_named():
    key = jr.PRNGKey(0)
    with pytest.raises(TypeError, match="uniform.*uint32\\[2\\].*float32"):
        jr.uniform(jnp.zeros(2), (3,))
    with pytest.raises(TypeError, match="split.*vmap"):
        jr.split(jr.split(key, 3))
    with pytest.raises(TypeError, match="normal: shape"):
        jr.normal(key, 3)
    with pytest.raises(ValueError, match="uniform: dtype"):
        jr.uniform(key, (2,), jnp.int32)
    with pytest.raises(TypeError, match="randint: dtype"):
        jr.randint(key, (2,), 0, 3, jnp.float32)
    with pytest.raises(TypeError, match="bernoulli.*float"):
        jr.bernoulli(key, 1, (2,))
    with pytest.raises(ValueError, match="bernoulli.*broadcast"):
        jr.bernoulli(key, jnp.full((3,), 0.5), (2, 4))
    with pytest.raises(ValueError, match="choice.*population"):
        jr.choice(key, 3, (4,), replace=False)
    with pytest.raises(ValueError, match="choice: p"):
        jr.choice(key, 3, (2,), p=jnp.ones(4) / 4)
    with pytest.raises(TypeError, match="PRNGKey: the seed"):
        jr.PRNGKey(1.5)
    with pytest.raises(OverflowError, match="fold_in"):
        jr.fold_in(key, -1)
    with pytest.raises(ValueError, match="bits: dtype"):
        jr.bits(key, (2,), jnp.int32)
