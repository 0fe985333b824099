"""Convolution, transposed convolution and pooling against direct loop-based NumPy
references (written from the definitions, not from fjit's formulation), and their
gradients by finite differences."""
import itertools
import math

import numpy as np
import pytest

import fjit
from fjit.nn import convolution as C
from fjit.test_util import check_grads


def direct_conv(x, w, stride, pads, dilation, groups):
    """out[n, o, p] = sum_{c in o's group, k} xpad[n, c, p*stride + k*dilation] w[o, c, k]."""
    N, Cin = x.shape[:2]
    O, Cg = w.shape[:2]
    K = w.shape[2:]
    nd = len(K)
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0)) + tuple(pads))
    outs = [(xp.shape[2 + j] - ((K[j] - 1) * dilation[j] + 1)) // stride[j] + 1
            for j in range(nd)]
    y = np.zeros((N, O) + tuple(outs))
    Og = O // groups
    for o in range(O):
        g = o // Og
        for pos in itertools.product(*[range(n) for n in outs]):
            acc = np.zeros(N)
            for k in itertools.product(*[range(n) for n in K]):
                src = tuple(pos[j] * stride[j] + k[j] * dilation[j] for j in range(nd))
                acc += (xp[(slice(None), slice(g * Cg, (g + 1) * Cg)) + src]
                        * w[(o, slice(None)) + k]).sum(axis=1)
            y[(slice(None), o) + pos] = acc
    return y


def direct_conv_transpose(x, w, stride, padding, output_padding, groups, dilation):
    """Scatter every input pixel through the kernel: the definition of a transposed conv."""
    N, Cin = x.shape[:2]
    Og = w.shape[1]
    K = w.shape[2:]
    nd = len(K)
    full = [(x.shape[2 + j] - 1) * stride[j] + dilation[j] * (K[j] - 1) + 1 + output_padding[j]
            for j in range(nd)]
    y = np.zeros((N, Og * groups) + tuple(full))
    Cg = Cin // groups
    for c in range(Cin):
        g = c // Cg
        for pos in itertools.product(*[range(n) for n in x.shape[2:]]):
            for k in itertools.product(*[range(n) for n in K]):
                dst = tuple(pos[j] * stride[j] + k[j] * dilation[j] for j in range(nd))
                y[(slice(None), slice(g * Og, (g + 1) * Og)) + dst] += \
                    x[(slice(None), c) + pos][:, None] * w[(c, slice(None)) + k][None, :]
    crop = tuple(slice(padding[j], full[j] - padding[j]) for j in range(nd))
    return y[(slice(None), slice(None)) + crop]


def direct_pool(x, window, stride, pads, reduce, fill):
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0)) + tuple(pads), constant_values=fill)
    nd = len(window)
    outs = [(xp.shape[2 + j] - window[j]) // stride[j] + 1 for j in range(nd)]
    y = np.zeros(x.shape[:2] + tuple(outs))
    for pos in itertools.product(*[range(n) for n in outs]):
        sl = tuple(slice(pos[j] * stride[j], pos[j] * stride[j] + window[j]) for j in range(nd))
        block = xp[(slice(None), slice(None)) + sl]
        y[(slice(None), slice(None)) + pos] = reduce(block.reshape(block.shape[:2] + (-1,)))
    return y


rng = np.random.default_rng(0)


def _data(*shape):
    return rng.standard_normal(shape).astype(np.float32)


CONV_CASES = [
    # (x shape, w shape, stride, padding, dilation, groups)
    ((2, 1, 7, 7), (3, 1, 3, 3), 1, 1, 1, 1),          # one input channel
    ((2, 3, 8, 9), (4, 3, 3, 2), 2, 0, 1, 1),          # stride, rectangular kernel
    ((1, 2, 9, 9), (2, 2, 3, 3), 1, 2, 2, 1),          # dilation and padding
    ((2, 4, 6, 6), (6, 2, 3, 3), 1, 1, 1, 2),          # groups
    ((2, 4, 5, 5), (4, 1, 3, 3), 1, 1, 1, 4),          # depthwise
    ((2, 4, 5, 5), (8, 4, 1, 1), 1, 0, 1, 1),          # pointwise
    ((2, 3, 10), (5, 3, 4), 3, ((2, 1),), 1, 1),       # 1-d, asymmetric padding
    ((1, 2, 4, 4, 4), (2, 2, 2, 2, 2), 1, 0, 1, 1),    # 3-d
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV_CASES)
def test_conv_matches_the_direct_loop(xs, ws, stride, padding, dilation, groups):
    x, w = _data(*xs), _data(*ws)
    nd = len(xs) - 2
    got = C.conv(x, w, stride, padding, dilation, groups)
    pads = C.normalize_padding("t", padding, xs[2:], ws[2:], (stride,) * nd,
                               (dilation,) * nd)
    want = direct_conv(x, w, (stride,) * nd, pads, (dilation,) * nd, groups)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def test_same_padding_keeps_the_size_at_stride_one_and_divides_it_otherwise():
    x, w = _data(1, 2, 9, 8), _data(3, 2, 4, 3)
    assert C.conv(x, w, 1, "SAME").shape == (1, 3, 9, 8)
    assert C.conv(x, w, 2, "same").shape == (1, 3, 5, 4)
    pads = C.normalize_padding("t", "SAME", (9, 8), (4, 3), (1, 1), (1, 1))
    np.testing.assert_allclose(np.asarray(C.conv(x, w, 1, "SAME")),
                               direct_conv(x, w, (1, 1), pads, (1, 1), 1), rtol=1e-4, atol=1e-4)


def test_conv_under_jit_reads_the_same_values():
    x, w = _data(4, 3, 8, 8), _data(5, 3, 3, 3)
    f = fjit.jit(lambda x, w: C.conv(x, w, 2, 1))
    np.testing.assert_allclose(np.asarray(f(x, w)), np.asarray(C.conv(x, w, 2, 1)),
                               rtol=1e-5, atol=1e-5)


TRANSPOSE_CASES = [
    # (x shape, w shape, stride, padding, output_padding, groups, dilation)
    ((2, 3, 4, 4), (3, 2, 3, 3), 2, 1, 1, 1, 1),
    ((1, 2, 3, 5), (2, 3, 2, 3), 3, 0, 0, 1, 1),
    ((2, 4, 3, 3), (4, 1, 3, 3), 1, 1, 0, 2, 2),
    ((2, 2, 5), (2, 3, 4), 2, 1, 1, 1, 1),
]


@pytest.mark.parametrize("xs, ws, stride, padding, output_padding, groups, dilation",
                         TRANSPOSE_CASES)
def test_conv_transpose_matches_scattering_each_pixel(xs, ws, stride, padding, output_padding,
                                                      groups, dilation):
    x, w = _data(*xs), _data(*ws)
    nd = len(xs) - 2
    got = C.conv_transpose(x, w, stride, padding, output_padding, groups, dilation)
    want = direct_conv_transpose(x, w, (stride,) * nd, (padding,) * nd,
                                 (output_padding,) * nd, groups, (dilation,) * nd)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def test_conv_transpose_is_the_gradient_of_conv():
    """<conv(x, w), y> = <x, conv_transpose(y, w)> for the same stride and padding."""
    x, w = _data(2, 3, 7, 7), _data(4, 3, 3, 3)
    y = _data(2, 4, 4, 4)
    lhs = float((np.asarray(C.conv(x, w, 2, 1)) * y).sum())
    back = C.conv_transpose(y, w, 2, 1, output_padding=0)
    assert back.shape == (2, 3, 7, 7)
    rhs = float((x * np.asarray(back)).sum())
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4)


@pytest.mark.parametrize("xs, window, stride, padding", [
    ((2, 3, 6, 6), 2, None, 0),
    ((1, 2, 7, 5), 3, 2, 1),
    ((2, 2, 9), 4, 3, 2),
])
def test_pooling_matches_the_direct_loop(xs, window, stride, padding):
    x = _data(*xs)
    nd = len(xs) - 2
    s = (stride or window,) * nd
    pads = ((padding, padding),) * nd
    np.testing.assert_allclose(np.asarray(C.max_pool(x, window, stride, padding)),
                               direct_pool(x, (window,) * nd, s, pads,
                                           lambda b: b.max(-1), -np.inf), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(C.avg_pool(x, window, stride, padding)),
                               direct_pool(x, (window,) * nd, s, pads,
                                           lambda b: b.mean(-1), 0.0), rtol=1e-5, atol=1e-6)
    counts = direct_pool(np.ones_like(x), (window,) * nd, s, pads, lambda b: b.sum(-1), 0.0)
    sums = direct_pool(x, (window,) * nd, s, pads, lambda b: b.sum(-1), 0.0)
    np.testing.assert_allclose(
        np.asarray(C.avg_pool(x, window, stride, padding, count_include_pad=False)),
        sums / counts, rtol=1e-5, atol=1e-6)


def test_max_pool_of_integers_pads_with_the_lowest_value():
    x = np.array([[[-5, -7, -3]]], np.int32)
    np.testing.assert_array_equal(np.asarray(C.max_pool(x, 2, 1, 1)), [[[-5, -5, -3, -3]]])


def test_gradients_by_finite_differences():
    x, w = _data(1, 2, 5, 5), _data(4, 1, 3, 3)
    check_grads(lambda x, w: C.conv(x, w, 2, 1, 1, 2), (x, w), order=1)
    check_grads(lambda x, w: C.conv_transpose(x, w, 2, 1, 1), (_data(1, 4, 3, 3), w), order=1)
    check_grads(lambda x: C.max_pool(x, 2, 1, 1), (x,), order=1)
    check_grads(lambda x: C.avg_pool(x, 3, 2, 1, count_include_pad=False), (x,), order=1)


def test_bad_arguments_raise_typed_errors_naming_the_operation():
    x = _data(2, 4, 6, 6)
    with pytest.raises(TypeError, match="conv: input .* 3 groups"):
        C.conv(x, _data(6, 2, 3, 3), groups=3)
    with pytest.raises(TypeError, match="conv: input"):
        C.conv(x, _data(6, 4, 3))
    with pytest.raises(ValueError, match="conv: input .* too small"):
        C.conv(x, _data(6, 4, 7, 7))
    with pytest.raises(ValueError, match="stride must be positive"):
        C.conv(x, _data(6, 4, 3, 3), stride=0)
    with pytest.raises(ValueError, match="padding must be 'VALID', 'SAME'"):
        C.conv(x, _data(6, 4, 3, 3), padding="full")
    with pytest.raises(TypeError, match="stride .* one entry per spatial dim"):
        C.conv(x, _data(6, 4, 3, 3), stride=(1, 1, 1))
    with pytest.raises(ValueError, match="max_pool: padding .* at most half"):
        C.max_pool(x, 2, padding=2)
    with pytest.raises(ValueError, match="output_padding"):
        C.conv_transpose(x, _data(4, 2, 3, 3), stride=2, output_padding=2)
    assert math.isfinite(float(C.avg_pool(x, 2).sum()))
