"""conv2d_backward: all three gradients against a float64 numpy reference,
against torch (when installed), finite differences, determinism across
thread counts, N = 0 and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

import convcore as cc


# ---------------------------------------------------------------- reference

def _out_len(n, k, s, p0, p1, d):
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def ref_backward(gy, x, w, stride, pad, dil, groups):
    """float64 gradients of y = conv2d(x, w) (pad = top, left, bottom, right)."""
    gy, x, w = (a.astype(np.float64) for a in (gy, x, w))
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dil
    pt, pl, pb, pr = pad
    OH, OW = gy.shape[2:]
    Kg = K // groups
    xp = np.zeros((N, C, H + pt + pb, W + pl + pr))
    xp[:, :, pt:pt + H, pl:pl + W] = x
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for g in range(groups):
        ks, cs = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
        for i in range(kh):
            for j in range(kw):
                hs = slice(i * dh, i * dh + sh * (OH - 1) + 1, sh)
                ws = slice(j * dw, j * dw + sw * (OW - 1) + 1, sw)
                patch = xp[:, cs, hs, ws]                      # N, Cg, OH, OW
                gw[ks, :, i, j] = np.einsum("nkhw,nchw->kc", gy[:, ks], patch)
                gxp[:, cs, hs, ws] += np.einsum("nkhw,kc->nchw", gy[:, ks], w[ks, :, i, j])
    gx = gxp[:, :, pt:pt + H, pl:pl + W]
    gb = gy.sum(axis=(0, 2, 3))
    return gx, gw, gb


def make_case(rng, N, C, H, W, K, kh, kw, stride, pad, dil, groups):
    OH = _out_len(H, kh, stride[0], pad[0], pad[2], dil[0])
    OW = _out_len(W, kw, stride[1], pad[1], pad[3], dil[1])
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C // groups, kh, kw)).astype(np.float32)
    gy = rng.standard_normal((N, K, OH, OW)).astype(np.float32)
    return gy, x, w


def check_against_ref(gy, x, w, stride, pad, dil, groups):
    gx, gw, gb = cc.conv2d_backward(gy, x, w, stride=stride, padding=pad, dilation=dil,
                                    groups=groups)
    rx, rw, rb = ref_backward(gy, x, w, stride, pad, dil, groups)
    for got, ref, name in ((gx, rx, "grad_x"), (gw, rw, "grad_w"), (gb, rb, "grad_b")):
        assert got.dtype == np.float32 and got.shape == ref.shape, name
        scale = max(1.0, np.abs(ref).max())
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * scale, err_msg=name)


CASES = [
    # N, C, H, W, K, kh, kw, stride, pad (t,l,b,r), dil, groups
    (2, 3, 9, 8, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 4, 10, 7, 6, 3, 2, (2, 1), (0, 1, 2, 0), (1, 2), 1),
    (2, 8, 6, 6, 8, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),       # 1x1 GEMM path
    (2, 8, 7, 7, 12, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),      # 1x1 stride 2
    (1, 6, 9, 9, 6, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 6),       # depthwise
    (2, 4, 11, 9, 8, 3, 3, (2, 2), (1, 0, 1, 2), (1, 1), 4),      # depthwise x2, asym pad
    (1, 3, 12, 12, 9, 5, 3, (3, 2), (2, 1, 0, 1), (2, 1), 3),     # depthwise x3, dilated
    (2, 6, 8, 8, 4, 3, 3, (1, 2), (1, 1, 1, 1), (2, 1), 2),       # grouped
    (1, 5, 13, 4, 7, 1, 3, (1, 1), (0, 1, 0, 1), (1, 1), 1),      # 1xK
    (1, 5, 4, 13, 7, 3, 1, (1, 1), (1, 0, 1, 0), (1, 1), 1),      # Kx1
    (3, 2, 5, 5, 3, 5, 5, (1, 1), (0, 0, 0, 0), (1, 1), 1),       # kernel = input
    (1, 64, 6, 6, 96, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # blocked weight split
    (2, 64, 13, 13, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),    # several steps + remainder
    (3, 40, 5, 5, 24, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # images flattened
    (5, 8, 30, 30, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # slots over many steps
    (1, 64, 20, 20, 16, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),   # several steps per image
    (2, 8, 40, 40, 8, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # 1x1 read in place, 2 steps
    (2, 4, 12, 37, 8, 7, 7, (1, 2), (3, 3, 3, 3), (1, 1), 4),     # depthwise 49 taps, wide rows
    (1, 3, 40, 40, 3, 3, 3, (2, 2), (1, 1, 1, 1), (3, 3), 3),     # depthwise, dilation 3
    (2, 16, 24, 24, 16, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),   # grad_x via Winograd forward
    (3, 16, 19, 21, 24, 3, 3, (1, 1), (0, 2, 1, 0), (1, 1), 1),   # Winograd grad_x, asym pad
    (1, 32, 36, 34, 16, 3, 3, (1, 1), (2, 0, 0, 2), (1, 1), 1),   # Winograd grad_x, pad 0/2
]


@pytest.mark.parametrize("case", CASES)
def test_against_float64_reference(case):
    rng = np.random.default_rng(hash(case) % 2**32)
    N, C, H, W, K, kh, kw, stride, pad, dil, groups = case
    gy, x, w = make_case(rng, *case)
    check_against_ref(gy, x, w, stride, pad, dil, groups)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_hypothesis_sweep(data):
    d = data.draw
    groups = d(st.sampled_from([1, 1, 2, 3]))
    C = groups * d(st.integers(1, 3))
    depthwise = d(st.booleans())
    if depthwise:
        groups = C
    K = groups * d(st.integers(1, 3))
    kh, kw = d(st.integers(1, 4)), d(st.integers(1, 4))
    dil = (d(st.integers(1, 2)), d(st.integers(1, 2)))
    stride = (d(st.integers(1, 3)), d(st.integers(1, 3)))
    pad = tuple(d(st.integers(0, 2)) for _ in range(4))
    H = d(st.integers(max(1, dil[0] * (kh - 1) + 1 - pad[0] - pad[2]), 9))
    W = d(st.integers(max(1, dil[1] * (kw - 1) + 1 - pad[1] - pad[3]), 9))
    N = d(st.integers(1, 3))
    rng = np.random.default_rng(d(st.integers(0, 2**31)))
    gy, x, w = make_case(rng, N, C, H, W, K, kh, kw, stride, pad, dil, groups)
    check_against_ref(gy, x, w, stride, pad, dil, groups)


TORCH_CASES = [
    (2, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1),
    (2, 16, 15, 15, 32, 3, 3, 2, 1, 1, 1),
    (2, 32, 9, 9, 64, 1, 1, 1, 0, 1, 1),
    (2, 32, 10, 10, 32, 3, 3, 2, 1, 1, 32),
    (1, 16, 12, 12, 32, 5, 5, 1, 2, 2, 16),
    (2, 12, 8, 8, 12, 3, 3, 1, 2, 2, 3),
]


@pytest.mark.parametrize("case", TORCH_CASES)
def test_against_torch(case):
    torch = pytest.importorskip("torch")
    N, C, H, W, K, kh, kw, s, p, d, g = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C // g, kh, kw)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.zeros(K, requires_grad=True)
    y = torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p, dilation=d, groups=g)
    gy = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    y.backward(torch.from_numpy(gy))
    gx, gw, gb = cc.conv2d_backward(gy, x, w, stride=s, padding=p, dilation=d, groups=g)
    for got, ref in ((gx, tx.grad), (gw, tw.grad), (gb, tb.grad)):
        ref = ref.numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * max(1, np.abs(ref).max()))


@pytest.mark.parametrize("case", [
    (1, 2, 5, 6, 3, 3, 3, (1, 2), (1, 0, 2, 1), (1, 1), 1),
    (2, 4, 5, 5, 4, 3, 3, (2, 1), (1, 1, 1, 1), (1, 2), 4),
])
def test_finite_differences(case):
    """Directional derivatives of L = <gy, conv(x, w)> in float64 arithmetic."""
    rng = np.random.default_rng(7)
    N, C, H, W, K, kh, kw, stride, pad, dil, groups = case
    gy, x, w = make_case(rng, *case)
    gx, gw, _ = cc.conv2d_backward(gy, x, w, stride=stride, padding=pad, dilation=dil,
                                   groups=groups)

    def loss(xx, ww):
        y = cc.conv2d(xx.astype(np.float32), ww.astype(np.float32), stride=stride,
                      padding=pad, dilation=dil, groups=groups)
        return float((y.astype(np.float64) * gy).sum())

    eps = 1e-2
    for _ in range(3):
        dx = rng.standard_normal(x.shape).astype(np.float32)
        dw = rng.standard_normal(w.shape).astype(np.float32)
        # the loss is bilinear, so the central difference is exact up to rounding
        fd_x = (loss(x + eps * dx, w) - loss(x - eps * dx, w)) / (2 * eps)
        fd_w = (loss(x, w + eps * dw) - loss(x, w - eps * dw)) / (2 * eps)
        assert fd_x == pytest.approx(float((gx * dx).sum()), rel=2e-3, abs=1e-2)
        assert fd_w == pytest.approx(float((gw * dw).sum()), rel=2e-3, abs=1e-2)


@pytest.mark.parametrize("case", [
    (1, 64, 28, 28, 64, 3, 3, 1, 1, 1),       # batch 1: blocked weight split
    (4, 16, 16, 16, 32, 3, 3, 1, 1, 1),       # grad_x via the Winograd forward
    (4, 32, 16, 16, 64, 1, 1, 1, 0, 1),       # 1x1
    (3, 8, 20, 20, 16, 3, 3, 2, 1, 1),        # small weight: fixed reduction slots
    (2, 24, 17, 17, 48, 3, 3, 2, 1, 24),      # depthwise x2
    (2, 256, 7, 7, 512, 1, 1, 1, 0, 1),       # flattened columns across images
])
def test_one_vs_two_threads_bitwise(case):
    N, C, H, W, K, kh, kw, s, p, g = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C // g, kh, kw)).astype(np.float32)
    OH, OW = cc.conv_output_shape((H, W), (kh, kw), s, p)
    gy = rng.standard_normal((N, K, OH, OW)).astype(np.float32)
    old = cc.get_num_threads()
    try:
        results = []
        for t in (1, 2, 3):
            cc.set_num_threads(t)
            results.append(cc.conv2d_backward(gy, x, w, stride=s, padding=p, groups=g))
    finally:
        cc.set_num_threads(old)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


def test_batch_zero():
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    gy = np.zeros((0, 4, 6, 6), np.float32)
    gx, gw, gb = cc.conv2d_backward(gy, x, w)
    assert gx.shape == (0, 3, 8, 8)
    assert gw.shape == w.shape and not gw.any()
    assert gb.shape == (4,) and not gb.any()


def test_no_bias_grad_and_noncontiguous():
    rng = np.random.default_rng(0)
    gy, x, w = make_case(rng, 2, 4, 7, 7, 6, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    gx, gw, gb = cc.conv2d_backward(gy, x, w, padding=1, bias=False)
    assert gb is None
    xt = np.asfortranarray(x)
    gyr = gy.copy()
    gyr.setflags(write=False)
    gx2, gw2, _ = cc.conv2d_backward(gyr, xt, w, padding=1, bias=False)
    assert np.array_equal(gx, gx2) and np.array_equal(gw, gw2)


def test_bad_input():
    x = np.zeros((1, 4, 8, 8), np.float32)
    w = np.zeros((6, 4, 3, 3), np.float32)
    gy = np.zeros((1, 6, 6, 6), np.float32)
    with pytest.raises(ValueError, match="conv2d_backward.*grad_out"):
        cc.conv2d_backward(np.zeros((1, 6, 7, 6), np.float32), x, w)
    with pytest.raises(ValueError, match="conv2d_backward"):
        cc.conv2d_backward(np.zeros((6, 6, 6), np.float32), x, w)
    with pytest.raises(TypeError, match="conv2d_backward.*float64"):
        cc.conv2d_backward(gy.astype(np.float64), x, w)
    with pytest.raises(TypeError, match="conv2d_backward"):
        cc.conv2d_backward(gy, x.astype(np.int32), w)
    with pytest.raises(ValueError, match="conv2d_backward.*groups"):
        cc.conv2d_backward(gy, x, w, groups=3)
    with pytest.raises(ValueError, match="conv2d_backward"):
        cc.conv2d_backward(gy, x, np.zeros((6, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="conv2d_backward.*stride"):
        cc.conv2d_backward(gy, x, w, stride=0)
    with pytest.raises(ValueError, match="conv2d_backward.*padding"):
        cc.conv2d_backward(gy, x, w, padding=-1)
    with pytest.raises(ValueError, match="conv2d_backward.*larger"):
        cc.conv2d_backward(gy, np.zeros((1, 4, 2, 2), np.float32), w)
