"""Max / average / global pooling, forward and backward, against a float64
numpy reference written here, torch (when installed) and finite differences."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

import convcore as cc
from convcore import functional as F


# ---------------------------------------------------------------- reference

def _out_len(n, k, s, p0, p1, d, ceil):
    span = n + p0 + p1 - d * (k - 1) - 1
    o = (-(-span // s) if ceil else span // s) + 1
    if ceil and (o - 1) * s >= n + p0:
        o -= 1
    return o


def _windows(H, W, k, s, pad, dil, ceil):
    (kh, kw), (sh, sw), (dh, dw) = k, s, dil
    pt, pl, pb, pr = pad
    OH = _out_len(H, kh, sh, pt, pb, dh, ceil)
    OW = _out_len(W, kw, sw, pl, pr, dw, ceil)
    for oh in range(OH):
        for ow in range(OW):
            hs, ws = oh * sh - pt, ow * sw - pl
            rows = [hs + i * dh for i in range(kh) if 0 <= hs + i * dh < H]
            cols = [ws + j * dw for j in range(kw) if 0 <= ws + j * dw < W]
            yield oh, ow, hs, ws, rows, cols
    return OH, OW


def _shape(x, k, s, pad, dil, ceil):
    return (_out_len(x.shape[2], k[0], s[0], pad[0], pad[2], dil[0], ceil),
            _out_len(x.shape[3], k[1], s[1], pad[1], pad[3], dil[1], ceil))


def ref_max(x, k, s, pad, dil, ceil):
    """Values and torch-style indices (first max, or the last NaN)."""
    N, C, H, W = x.shape
    OH, OW = _shape(x, k, s, pad, dil, ceil)
    y = np.full((N, C, OH, OW), -np.inf)
    ind = np.zeros((N, C, OH, OW), np.int64)
    for oh, ow, hs, ws, rows, cols in _windows(H, W, k, s, pad, dil, ceil):
        for n in range(N):
            for c in range(C):
                best, arg = -np.inf, (rows[0] * W + cols[0]) if rows and cols else -1
                for ih in rows:
                    for iw in cols:
                        v = x[n, c, ih, iw]
                        if v > best or np.isnan(v):
                            best, arg = v, ih * W + iw
                y[n, c, oh, ow], ind[n, c, oh, ow] = best, arg
    return y, ind


def ref_max_backward(gy, x, k, s, pad, dil, ceil):
    _, ind = ref_max(x, k, s, pad, dil, ceil)
    N, C, H, W = x.shape
    gx = np.zeros((N, C, H * W))
    for n in range(N):
        for c in range(C):
            i, g = ind[n, c].ravel(), gy[n, c].astype(np.float64).ravel()
            # -1 marks an all-padding window (possible with dilation): no gradient.
            np.add.at(gx[n, c], i[i >= 0], g[i >= 0])
    return gx.reshape(x.shape)


def _divisor(H, W, k, pad, hs, ws, rows, cols, cip):
    if cip:
        return (min(hs + k[0], H + pad[2]) - hs) * (min(ws + k[1], W + pad[3]) - ws)
    return len(rows) * len(cols)


def ref_avg(x, k, s, pad, ceil, cip):
    N, C, H, W = x.shape
    x = x.astype(np.float64)
    OH, OW = _shape(x, k, s, pad, (1, 1), ceil)
    y = np.zeros((N, C, OH, OW))
    for oh, ow, hs, ws, rows, cols in _windows(H, W, k, s, pad, (1, 1), ceil):
        d = _divisor(H, W, k, pad, hs, ws, rows, cols, cip)
        if rows and cols and d:
            y[:, :, oh, ow] = x[:, :, rows][:, :, :, cols].sum(axis=(2, 3)) / d
    return y


def ref_avg_backward(gy, x, k, s, pad, ceil, cip):
    N, C, H, W = x.shape
    gx = np.zeros(x.shape)
    for oh, ow, hs, ws, rows, cols in _windows(H, W, k, s, pad, (1, 1), ceil):
        d = _divisor(H, W, k, pad, hs, ws, rows, cols, cip)
        if rows and cols and d:
            for ih in rows:
                for iw in cols:
                    gx[:, :, ih, iw] += gy[:, :, oh, ow] / d
    return gx


def pad4(p):
    if isinstance(p, int):
        return (p, p, p, p)
    if len(p) == 2:
        return (p[0], p[1], p[0], p[1])
    return tuple(p)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ------------------------------------------------------------------- cases

POOL_CASES = [
    # k, s, pad, dil, ceil
    (2, 2, 0, 1, False),
    (3, 2, 1, 1, False),
    (3, 2, 1, 1, True),
    (3, 1, 1, 1, False),
    ((2, 3), (1, 2), (1, 1), 1, True),
    (3, 2, 0, 2, False),          # dilation (max only)
    (2, 3, 1, 1, True),
    (5, 1, 2, 1, False),
    (7, 3, 3, 1, True),           # wide windows, stride 3
]


@pytest.mark.parametrize("k,s,p,d,ceil", POOL_CASES)
@pytest.mark.parametrize("W", [7, 24, 31, 37])  # rows narrower than a vector (one padded block), full vectors
def test_max_pool_against_reference(k, s, p, d, ceil, W):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, W)).astype(np.float32)
    k2, s2, p4, d2 = pair(k), pair(s), pad4(p), pair(d)
    y_ref, i_ref = ref_max(x, k2, s2, p4, d2, ceil)
    y = cc.max_pool2d(x, k, s, p, d, ceil)
    y2, ind = cc.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(y, y_ref.astype(np.float32))
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(ind, i_ref)
    assert ind.dtype == np.int64
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = cc.max_pool2d_backward(gy, x, k, s, p, d, ceil)
    np.testing.assert_allclose(gx, ref_max_backward(gy, x, k2, s2, p4, d2, ceil), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("k,s,p,d,ceil", [c for c in POOL_CASES if c[3] == 1])
@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("W", [8, 35])
def test_avg_pool_against_reference(k, s, p, d, ceil, cip, W):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 10, W)).astype(np.float32)
    k2, s2, p4 = pair(k), pair(s), pad4(p)
    y = cc.avg_pool2d(x, k, s, p, ceil, cip)
    np.testing.assert_allclose(y, ref_avg(x, k2, s2, p4, ceil, cip), rtol=1e-5, atol=1e-6)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    gx = cc.avg_pool2d_backward(gy, x, k, s, p, ceil, cip)
    np.testing.assert_allclose(gx, ref_avg_backward(gy, x, k2, s2, p4, ceil, cip), rtol=1e-5,
                               atol=1e-6)


def test_asymmetric_padding():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 8, 11)).astype(np.float32)
    p = (0, 1, 1, 0)  # top, left, bottom, right (ONNX order)
    y_ref, _ = ref_max(x, (3, 3), (2, 2), p, (1, 1), False)
    np.testing.assert_array_equal(cc.max_pool2d(x, 3, 2, p), y_ref.astype(np.float32))
    np.testing.assert_allclose(cc.avg_pool2d(x, 3, 2, p, count_include_pad=True),
                               ref_avg(x, (3, 3), (2, 2), p, False, True), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cc.avg_pool2d(x, 3, 2, p, count_include_pad=False),
                               ref_avg(x, (3, 3), (2, 2), p, False, False), rtol=1e-5, atol=1e-6)


def test_all_padding_windows_from_core():
    """The C++ kernels accept ONNX-style pads larger than half the kernel
    (functional.py refuses them, as torch): windows that hold only padding
    give -inf (max) / 0 (avg) and pass no gradient."""
    from convcore import _core
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    y = _core.max_pool2d_forward(x, [2, 2], [2, 2], [2, 2, 0, 0], [1, 1], False, False)
    assert y.shape == (1, 1, 2, 2)
    assert np.isneginf(y[0, 0, 0]).all() and np.isneginf(y[0, 0, :, 0]).all()
    assert y[0, 0, 1, 1] == 5.0  # window over x[0:2, 0:2]
    a = _core.avg_pool2d_forward(x, [2, 2], [2, 2], [2, 2, 0, 0], False, False)
    assert a[0, 0, 0, 0] == 0.0 and a[0, 0, 1, 1] == 3.0
    g = _core.max_pool2d_backward(np.ones_like(y), x, [2, 2], [2, 2], [2, 2, 0, 0], [1, 1], False)
    assert g.sum() == 1.0 and g[0, 0, 1, 1] == 1.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_sweep(data):
    d = data.draw
    kh, kw = d(st.integers(1, 4)), d(st.integers(1, 4))
    sh, sw = d(st.integers(1, 3)), d(st.integers(1, 3))
    ph, pw = d(st.integers(0, kh // 2)), d(st.integers(0, kw // 2))
    is_max = d(st.booleans())
    dh, dw = (d(st.integers(1, 2)), d(st.integers(1, 2))) if is_max else (1, 1)
    ceil = d(st.booleans())
    H = d(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 10))
    W = d(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 40))
    rng = np.random.default_rng(d(st.integers(0, 2**31)))
    x = rng.standard_normal((1, 2, H, W)).astype(np.float32)
    p4 = (ph, pw, ph, pw)
    if is_max:
        y = cc.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil)
        y_ref, _ = ref_max(x, (kh, kw), (sh, sw), p4, (dh, dw), ceil)
        np.testing.assert_array_equal(y, y_ref.astype(np.float32))
        gy = rng.standard_normal(y.shape).astype(np.float32)
        gx = cc.max_pool2d_backward(gy, x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil)
        np.testing.assert_allclose(
            gx, ref_max_backward(gy, x, (kh, kw), (sh, sw), p4, (dh, dw), ceil), atol=1e-6)
    else:
        cip = d(st.booleans())
        y = cc.avg_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil, cip)
        np.testing.assert_allclose(y, ref_avg(x, (kh, kw), (sh, sw), p4, ceil, cip), rtol=1e-5,
                                   atol=1e-6)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        gx = cc.avg_pool2d_backward(gy, x, (kh, kw), (sh, sw), (ph, pw), ceil, cip)
        np.testing.assert_allclose(gx, ref_avg_backward(gy, x, (kh, kw), (sh, sw), p4, ceil, cip),
                                   rtol=1e-5, atol=1e-6)


TORCH_CASES = [
    (2, 2, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 1, True),
    ((3, 2), (2, 1), (1, 0), (2, 1), True), (4, 3, 2, 1, True),
]


@pytest.mark.parametrize("k,s,p,d,ceil", TORCH_CASES)
def test_against_torch(k, s, p, d, ceil):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 13, 45)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    ty, tind = tf.max_pool2d(tx, k, s, p, d, ceil, return_indices=True)
    y, ind = cc.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(ind, tind.numpy())
    gy = rng.standard_normal(y.shape).astype(np.float32)
    ty.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(cc.max_pool2d_backward(gy, x, k, s, p, d, ceil), tx.grad.numpy(),
                               atol=1e-6)
    for cip in (True, False):
        tx = torch.tensor(x, requires_grad=True)
        ty = tf.avg_pool2d(tx, k, s, p, ceil, cip)
        gy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
        np.testing.assert_allclose(cc.avg_pool2d(x, k, s, p, ceil, cip), ty.detach().numpy(),
                                   rtol=1e-5, atol=1e-6)
        ty.backward(torch.from_numpy(gy))
        np.testing.assert_allclose(cc.avg_pool2d_backward(gy, x, k, s, p, ceil, cip),
                                   tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_nan_like_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 6, 20)).astype(np.float32)
    x[0, 0, 1, 3] = np.nan
    x[0, 0, 1, 4] = np.nan
    x[0, 1, 4, 17] = np.nan
    ty, tind = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 1, return_indices=True)
    y, ind = cc.max_pool2d(x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, ty.numpy())  # NaN positions equal too
    np.testing.assert_array_equal(ind, tind.numpy())
    np.testing.assert_array_equal(cc.max_pool2d(x, 3, 2, 1), y)
    np.testing.assert_array_equal(cc.global_max_pool2d(x).ravel(),
                                  np.array([np.nan, np.nan], np.float32))


def test_avg_pool_finite_differences():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 7, 9)).astype(np.float32)
    for ceil, cip in ((True, False), (False, True), (True, True)):
        gy = rng.standard_normal(cc.avg_pool2d(x, 3, 2, 1, ceil, cip).shape)
        gx = cc.avg_pool2d_backward(gy.astype(np.float32), x, 3, 2, 1, ceil, cip)
        for _ in range(3):
            dx = rng.standard_normal(x.shape).astype(np.float32)
            eps = 1e-2

            def f(xx):
                return float((cc.avg_pool2d(xx, 3, 2, 1, ceil, cip).astype(np.float64) * gy).sum())
            fd = (f(x + eps * dx) - f(x - eps * dx)) / (2 * eps)
            assert fd == pytest.approx(float((gx * dx).sum()), rel=1e-3, abs=1e-3)


def test_global_pools():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 5, 7, 9)).astype(np.float32)
    x[1, 2, 3, 4] = x[1, 2].max()  # a tie: the first maximum gets the gradient
    x[1, 2, 5, 6] = x[1, 2, 3, 4]
    ga = cc.global_avg_pool2d(x)
    gm = cc.global_max_pool2d(x)
    assert ga.shape == gm.shape == (3, 5, 1, 1)
    np.testing.assert_allclose(ga[..., 0, 0], x.astype(np.float64).mean(axis=(2, 3)), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(gm[..., 0, 0], x.max(axis=(2, 3)))
    gy = rng.standard_normal((3, 5, 1, 1)).astype(np.float32)
    gxa = F.global_avg_pool2d_backward(gy, x)
    np.testing.assert_allclose(gxa, np.broadcast_to(gy / 63.0, x.shape), rtol=1e-6)
    gxm = F.global_max_pool2d_backward(gy, x)
    ref = ref_max_backward(gy, x, (7, 9), (7, 9), (0, 0, 0, 0), (1, 1), False)
    np.testing.assert_array_equal(gxm, ref.astype(np.float32))
    assert gxm[1, 2, 3, 4] == gy[1, 2, 0, 0] and gxm[1, 2, 5, 6] == 0
    big = rng.standard_normal((1, 3, 33, 35)).astype(np.float32)  # vector body + tail
    np.testing.assert_allclose(cc.global_avg_pool2d(big)[0, :, 0, 0],
                               big.astype(np.float64).mean(axis=(2, 3))[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(cc.global_max_pool2d(big)[0, :, 0, 0], big.max(axis=(2, 3))[0])


def test_batch_zero_and_threads():
    x = np.zeros((0, 3, 8, 8), np.float32)
    assert cc.max_pool2d(x, 2).shape == (0, 3, 4, 4)
    assert cc.avg_pool2d(x, 2).shape == (0, 3, 4, 4)
    assert cc.global_avg_pool2d(x).shape == (0, 3, 1, 1)
    rng = np.random.default_rng(8)
    # 30x30 planes run inline; 130x130 ones are split over two threads.
    for hw in (30, 130):
        x = rng.standard_normal((2, 8, hw, hw)).astype(np.float32)
        g = np.ones((2, 8, (hw + 1) // 2, (hw + 1) // 2), np.float32)
        old = cc.get_num_threads()
        try:
            out = []
            for t in (1, 2):
                cc.set_num_threads(t)
                out.append((cc.max_pool2d(x, 3, 2, 1), cc.avg_pool2d(x, 3, 2, 1),
                            cc.avg_pool2d_backward(g, x, 3, 2, 1),
                            cc.max_pool2d_backward(g, x, 3, 2, 1),
                            cc.global_avg_pool2d(x), cc.global_max_pool2d(x)))
        finally:
            cc.set_num_threads(old)
        for a, b in zip(*out):
            assert np.array_equal(a, b)


def test_bad_input():
    x = np.zeros((1, 2, 8, 8), np.float32)
    with pytest.raises(TypeError, match="max_pool2d.*float64"):
        cc.max_pool2d(x.astype(np.float64), 2)
    with pytest.raises(ValueError, match="max_pool2d.*4-D"):
        cc.max_pool2d(np.zeros((2, 8, 8), np.float32), 2)
    with pytest.raises(ValueError, match="max_pool2d.*kernel_size"):
        cc.max_pool2d(x, 0)
    with pytest.raises(ValueError, match="avg_pool2d.*stride"):
        cc.avg_pool2d(x, 2, stride=-1)
    with pytest.raises(ValueError, match="avg_pool2d.*padding"):
        cc.avg_pool2d(x, 2, padding=-1)
    with pytest.raises(ValueError, match="max_pool2d.*half"):
        cc.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="max_pool2d.*larger"):
        cc.max_pool2d(x, 9)
    with pytest.raises(ValueError, match="max_pool2d_backward.*grad_out"):
        cc.max_pool2d_backward(np.zeros((1, 2, 3, 4), np.float32), x, 2)
    with pytest.raises(ValueError, match="avg_pool2d_backward.*grad_out"):
        cc.avg_pool2d_backward(np.zeros((1, 2, 4, 5), np.float32), x, 2)
    with pytest.raises(ValueError, match="global_avg_pool2d_backward"):
        F.global_avg_pool2d_backward(np.zeros((1, 3, 1, 1), np.float32), x)
    with pytest.raises(TypeError, match="global_max_pool2d"):
        cc.global_max_pool2d([[1.0]])


# ------------------------------------------- fused forward kernel (pool_fwd.h)

def ref_pool_fast(x, k, s, pad, ceil, is_max, cip=False):
    """Vectorised float64 reference (one strided slice per tap): fast enough
    for model-sized planes. Max propagates NaN (np.maximum)."""
    N, C, H, W = x.shape
    pt, pl, pb, pr = pad
    OH, OW = _shape(x, (k, k), (s, s), pad, (1, 1), ceil)
    eh = max(0, (OH - 1) * s + k - (H + pt + pb))
    ew = max(0, (OW - 1) * s + k - (W + pl + pr))
    width = ((0, 0), (0, 0), (pt, pb + eh), (pl, pr + ew))
    xp = np.pad(x.astype(np.float64), width, constant_values=-np.inf if is_max else 0.0)
    real = np.zeros(xp.shape[2:])
    if cip:
        real[:H + pt + pb, :W + pl + pr] = 1
    else:
        real[pt:pt + H, pl:pl + W] = 1
    acc, cnt = None, 0
    for i in range(k):
        for j in range(k):
            sl = (slice(i, i + (OH - 1) * s + 1, s), slice(j, j + (OW - 1) * s + 1, s))
            v = xp[:, :, sl[0], sl[1]]
            acc = v if acc is None else (np.maximum(acc, v) if is_max else acc + v)
            cnt = cnt + real[sl]
    return acc if is_max else acc / np.maximum(cnt, 1)


# kernel, stride, pads (t, l, b, r), ceil: the geometries the fused kernel
# takes (width 2 or 3, stride 1 or 2, dilation 1) as the usual CNNs use them.
FUSED_CASES = [
    (3, 2, (0, 0, 0, 0), True),    # SqueezeNet
    (3, 2, (1, 1, 1, 1), False),   # ResNet
    (3, 2, (1, 1, 1, 1), True),
    (2, 2, (0, 0, 0, 0), False),   # VGG, DenseNet
    (2, 2, (0, 0, 0, 0), True),
    (3, 1, (1, 1, 1, 1), False),   # Inception's 3x3/1 average
    (2, 1, (0, 0, 0, 0), False),
    (2, 1, (1, 1, 0, 0), False),
    (3, 2, (0, 1, 1, 0), False),   # asymmetric
    (3, 1, (0, 0, 0, 0), True),
]
# Output widths 1..3 (scalar), 4..15 (half-width blocks), one or more full
# vectors with a ragged end, and whole vectors.
FUSED_WIDTHS = [2, 5, 7, 9, 13, 17, 27, 33, 40, 56]


@pytest.mark.parametrize("k,s,pad,ceil", FUSED_CASES)
def test_fused_forward_widths(k, s, pad, ceil):
    from convcore import _core
    rng = np.random.default_rng(11)
    for W in FUSED_WIDTHS:
        if W + pad[1] + pad[3] < k:
            continue
        x = rng.standard_normal((1, 3, 7, W)).astype(np.float32)
        y = _core.max_pool2d_forward(x, [k, k], [s, s], list(pad), [1, 1], ceil, False)
        np.testing.assert_array_equal(y, ref_pool_fast(x, k, s, pad, ceil, True).astype(np.float32),
                                      err_msg=f"max W={W}")
        for cip in (False, True):
            a = _core.avg_pool2d_forward(x, [k, k], [s, s], list(pad), ceil, cip)
            np.testing.assert_allclose(a, ref_pool_fast(x, k, s, pad, ceil, False, cip),
                                       rtol=1e-5, atol=1e-6, err_msg=f"avg W={W} cip={cip}")


@pytest.mark.parametrize("shape,k,s,pad,ceil", [
    ((1, 8, 111, 111), 3, 2, (0, 0, 0, 0), True),
    ((1, 8, 112, 112), 3, 2, (1, 1, 1, 1), False),
    ((1, 8, 56, 56), 2, 2, (0, 0, 0, 0), False),
    ((1, 8, 35, 35), 3, 1, (1, 1, 1, 1), False),   # small padded map: copied with its padding
    ((1, 2, 70, 90), 3, 1, (1, 1, 1, 1), False),   # larger one: edge blocks
])
def test_fused_forward_model_shapes_like_torch(shape, k, s, pad, ceil):
    torch = pytest.importorskip("torch")
    from convcore import _core
    x = np.random.default_rng(12).standard_normal(shape).astype(np.float32)
    tx = torch.from_numpy(x)
    y = _core.max_pool2d_forward(x, [k, k], [s, s], list(pad), [1, 1], ceil, False)
    np.testing.assert_array_equal(y, torch.nn.functional.max_pool2d(tx, k, s, pad[0],
                                                                    ceil_mode=ceil).numpy())
    a = _core.avg_pool2d_forward(x, [k, k], [s, s], list(pad), ceil, False)
    np.testing.assert_allclose(a, torch.nn.functional.avg_pool2d(
        tx, k, s, pad[0], ceil_mode=ceil, count_include_pad=False).numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k,s,pad,ceil", FUSED_CASES)
def test_fused_max_nan_and_inf(k, s, pad, ceil):
    """A NaN anywhere in a window (edge columns, first and last rows, a
    block's ragged end) gives NaN; +-inf mix with NaN and each other as in
    np.maximum. Blocks without NaN take the fast max, the others the exact
    one: every position is checked against the reference."""
    from convcore import _core
    rng = np.random.default_rng(13)
    for W in (9, 17, 40, 77):
        if W + pad[1] + pad[3] < k:
            continue
        x = rng.standard_normal((2, 2, 9, W)).astype(np.float32)
        for (n, c, h, w) in [(0, 0, 0, 0), (0, 0, 8, W - 1), (0, 1, 4, W // 2), (1, 0, 0, W - 1),
                             (1, 1, 8, 0), (1, 1, 3, 1)]:
            x[n, c, h, w] = np.nan
        x[0, 1, 2, 3] = np.inf
        x[0, 1, 2, 4] = -np.inf
        x[1, 0, 5, :] = -np.inf
        x[1, 0, 6, W - 2] = np.inf
        y = _core.max_pool2d_forward(x, [k, k], [s, s], list(pad), [1, 1], ceil, False)
        ref = ref_pool_fast(x, k, s, pad, ceil, True).astype(np.float32)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref), err_msg=f"W={W}")
        np.testing.assert_array_equal(y, ref, err_msg=f"W={W}")  # NaN == NaN here


@pytest.mark.parametrize("k,pad", [(3, (1, 1, 1, 1)), (2, (1, 1, 0, 0)), (3, (0, 0, 0, 0))])
def test_fused_stride1_large_plane_nan(k, pad):
    """Stride 1 on planes too large for the padded copy: carried column
    vectors, edge blocks and the ragged end, with NaN at the edges."""
    from convcore import _core
    x = np.random.default_rng(16).standard_normal((1, 2, 70, 90)).astype(np.float32)
    for (c, h, w) in [(0, 0, 0), (0, 69, 89), (0, 30, 45), (1, 10, 88), (1, 69, 0), (1, 33, 16)]:
        x[0, c, h, w] = np.nan
    y = _core.max_pool2d_forward(x, [k, k], [1, 1], list(pad), [1, 1], False, False)
    np.testing.assert_array_equal(y, ref_pool_fast(x, k, 1, pad, False, True).astype(np.float32))
    a = _core.avg_pool2d_forward(x, [k, k], [1, 1], list(pad), False, False)
    np.testing.assert_allclose(a, ref_pool_fast(x, k, 1, pad, False, False), rtol=1e-5, atol=1e-6)


def test_fused_max_keeps_subnormals():
    """Max pooling returns its inputs unchanged, subnormals included (as
    torch), although the kernels run with denormals-are-zero."""
    from convcore import _core
    tiny = np.float32(1e-40)
    x = np.full((1, 2, 6, 20), -1.0, np.float32)
    x[0, 0, 1, 3] = tiny
    x[0, 1, :, :] = 0.0
    x[0, 1, 2, 7] = tiny  # 0 first in the window, then the subnormal
    for k, s, pad in ((3, 2, (1, 1, 1, 1)), (2, 2, (0, 0, 0, 0)), (3, 1, (1, 1, 1, 1))):
        y = _core.max_pool2d_forward(x, [k, k], [s, s], list(pad), [1, 1], False, False)
        ref = ref_pool_fast(x, k, s, pad, False, True).astype(np.float32)
        np.testing.assert_array_equal(y, ref)
        assert (y == tiny).any()


def _guarded(shape, at_end):
    """A float32 array of `shape` that starts right after, or ends right
    before, an inaccessible page (reading past the tensor would crash)."""
    import ctypes
    import mmap
    page = mmap.PAGESIZE
    nbytes = int(np.prod(shape)) * 4
    assert nbytes <= page
    buf = mmap.mmap(-1, 3 * page)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    for off in (0, 2 * page):
        assert libc.mprotect(addr + off, page, 0) == 0  # PROT_NONE
    offset = 2 * page - nbytes if at_end else page
    x = np.frombuffer(buf, np.float32, int(np.prod(shape)), offset).reshape(shape)
    return x, buf


@pytest.mark.parametrize("at_end", [False, True])
@pytest.mark.parametrize("k,s,pad,ceil", [c for c in FUSED_CASES])
def test_fused_forward_reads_stay_inside_the_tensor(at_end, k, s, pad, ceil):
    """Edge blocks read whole vectors next to the row and blend in the
    padding; at the tensor's first and last rows they must not (guard pages
    on both sides)."""
    from convcore import _core
    rng = np.random.default_rng(14)
    for shape in ((1, 1, 5, 40), (1, 2, 6, 19), (1, 1, 4, 9)):
        x, buf = _guarded(shape, at_end)
        x[...] = rng.standard_normal(shape).astype(np.float32)
        y = _core.max_pool2d_forward(x, [k, k], [s, s], list(pad), [1, 1], ceil, False)
        np.testing.assert_array_equal(y, ref_pool_fast(x, k, s, pad, ceil, True).astype(np.float32))
        a = _core.avg_pool2d_forward(x, [k, k], [s, s], list(pad), ceil, False)
        np.testing.assert_allclose(a, ref_pool_fast(x, k, s, pad, ceil, False), rtol=1e-5,
                                   atol=1e-6)
        del x, y, a


def test_fused_forward_threads_agree():
    from convcore import _core
    x = np.random.default_rng(15).standard_normal((2, 24, 57, 61)).astype(np.float32)
    x[1, 5, 10, 10] = np.nan
    old = cc.get_num_threads()
    try:
        out = []
        for t in (1, 2):
            cc.set_num_threads(t)
            out.append([_core.max_pool2d_forward(x, [3, 3], [2, 2], [1, 1, 1, 1], [1, 1], True, False),
                        _core.avg_pool2d_forward(x, [3, 3], [1, 1], [1, 1, 1, 1], False, True)])
    finally:
        cc.set_num_threads(old)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
