"""conv2d forward and backward against the float64 reference (and torch)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcore as cc
import reference as ref


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def close(a, b, rtol=2e-4):
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.integers(1, 4))
    kg = draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    H = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 11))
    W = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 11))
    N = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    return dict(N=N, C=cg * groups, K=kg * groups, H=H, W=W, k=(kh, kw), s=(sh, sw), d=(dh, dw),
                pads=pads, groups=groups, bias=bias)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_case(), st.integers(0, 2**31 - 1))
def test_forward_and_grads_sweep(c, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, c["N"], c["C"], c["H"], c["W"])
    w = rand(rng, c["K"], c["C"] // c["groups"], *c["k"])
    b = rand(rng, c["K"]) if c["bias"] else None
    y = cc.conv2d(x, w, b, stride=c["s"], padding=c["pads"], dilation=c["d"], groups=c["groups"])
    yr = ref.conv2d(x, w, b, c["s"], c["pads"], c["d"], c["groups"])
    assert y.shape == yr.shape and y.dtype == np.float32
    close(y, yr)
    gy = rand(rng, *y.shape)
    gx, gw, gb = cc.conv2d_backward(gy, x, w, stride=c["s"], padding=c["pads"], dilation=c["d"],
                                    groups=c["groups"], bias=c["bias"])
    rx, rw, rb = ref.conv2d_backward(gy, x, w, c["s"], c["pads"], c["d"], c["groups"])
    close(gx, rx)
    close(gw, rw)
    if c["bias"]:
        close(gb, rb)
    else:
        assert gb is None


@pytest.mark.parametrize("groups,mult", [(8, 1), (8, 2), (6, 3)])
@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (5, 1, 2), (5, 2, 2), (1, 1, 0)])
def test_depthwise(groups, mult, k, s, p):
    rng = np.random.default_rng(0)
    x = rand(rng, 2, groups, 13, 10)
    w = rand(rng, groups * mult, 1, k, k)
    b = rand(rng, groups * mult)
    y = cc.conv2d(x, w, b, stride=s, padding=p, groups=groups)
    close(y, ref.conv2d(x, w, b, (s, s), (p, p, p, p), (1, 1), groups))
    gy = rand(rng, *y.shape)
    gx, gw, gb = cc.conv2d_backward(gy, x, w, stride=s, padding=p, groups=groups)
    rx, rw, rb = ref.conv2d_backward(gy, x, w, (s, s), (p, p, p, p), (1, 1), groups)
    close(gx, rx); close(gw, rw); close(gb, rb)


@pytest.mark.parametrize("shape,k", [((1, 64, 28, 28), (64, 64, 3, 3)), ((2, 32, 17, 9), (48, 32, 1, 1)),
                                     ((1, 3, 40, 40), (16, 3, 7, 7)), ((1, 16, 9, 30), (24, 16, 1, 5)),
                                     ((1, 16, 30, 9), (24, 16, 5, 1))])
def test_larger_layers(shape, k):
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, *shape), rand(rng, *k), rand(rng, k[0])
    p = (k[2] // 2, k[3] // 2)
    y = cc.conv2d(x, w, b, padding=p)
    close(y, ref.conv2d(x, w, b, (1, 1), (p[0], p[1], p[0], p[1])), rtol=1e-4)


def test_same_and_valid_padding():
    rng = np.random.default_rng(2)
    x, w = rand(rng, 1, 3, 10, 11), rand(rng, 4, 3, 4, 3)
    y = cc.conv2d(x, w, padding="same", dilation=(1, 2))
    assert y.shape == (1, 4, 10, 11)
    # dilation*(k-1): height 3 -> (1, 2), width 4 -> (2, 2); odd extra at bottom/right.
    close(y, ref.conv2d(x, w, None, (1, 1), (1, 2, 2, 2), (1, 2)))
    close(cc.conv2d(x, w, padding="valid"), ref.conv2d(x, w))
    with pytest.raises(ValueError, match="same"):
        cc.conv2d(x, w, padding="same", stride=2)


def test_fused_epilogues_and_residual():
    from convcore.functional import conv2d_fused
    rng = np.random.default_rng(3)
    x, w, b = rand(rng, 2, 8, 9, 9), rand(rng, 16, 8, 3, 3), rand(rng, 16)
    base = ref.conv2d(x, w, b, (1, 1), (1, 1, 1, 1))
    r = rand(rng, *base.shape)
    close(conv2d_fused(x, w, b, padding=1, activation="relu"), np.maximum(base, 0))
    close(conv2d_fused(x, w, b, padding=1, activation=("clip", 0.0, 6.0)), np.clip(base, 0, 6))
    close(conv2d_fused(x, w, b, padding=1, residual=r, activation="relu"), np.maximum(base + r, 0))
    wd = rand(rng, 8, 1, 3, 3)
    based = ref.conv2d(x, wd, None, (1, 1), (1, 1, 1, 1), groups=8)
    rd = rand(rng, *based.shape)
    close(conv2d_fused(x, wd, None, padding=1, groups=8, residual=rd, activation=("clip", -1.0, 1.0)),
          np.clip(based + rd, -1, 1))


def test_batch_zero_and_layouts():
    rng = np.random.default_rng(4)
    w = rand(rng, 4, 3, 3, 3)
    y = cc.conv2d(np.zeros((0, 3, 8, 8), np.float32), w)
    assert y.shape == (0, 4, 6, 6)
    gx, gw, gb = cc.conv2d_backward(np.zeros((0, 4, 6, 6), np.float32),
                                    np.zeros((0, 3, 8, 8), np.float32), w)
    assert gx.shape == (0, 3, 8, 8) and not gw.any() and not gb.any()
    # Non-contiguous and read-only inputs work.
    xb = rand(rng, 2, 6, 3, 10).transpose(0, 1, 3, 2)[:, ::2]
    xb.flags.writeable = False
    wr = w.copy(); wr.flags.writeable = False
    close(cc.conv2d(xb, wr), ref.conv2d(xb, w))
    # Fortran-ordered
    xf = np.asfortranarray(rand(rng, 1, 3, 7, 7))
    close(cc.conv2d(xf, w), ref.conv2d(xf, w))


def test_finite_differences():
    rng = np.random.default_rng(5)
    x, w, b = rand(rng, 1, 2, 5, 6), rand(rng, 4, 1, 3, 2), rand(rng, 4)
    kw = dict(stride=(2, 1), padding=(1, 0, 0, 1), dilation=(1, 2), groups=2)
    y = cc.conv2d(x, w, b, **kw)
    gy = rand(rng, *y.shape)
    gx, gw, gb = cc.conv2d_backward(gy, x, w, **kw)

    def loss(xx, ww, bb):
        return float((ref.conv2d(xx, ww, bb, (2, 1), (1, 0, 0, 1), (1, 2), 2) * gy).sum())

    eps = 1e-3
    for arr, g in ((x, gx), (w, gw), (b, gb)):
        a64 = arr.astype(np.float64)
        for idx in list(np.ndindex(arr.shape))[::3]:
            p, m = a64.copy(), a64.copy()
            p[idx] += eps; m[idx] -= eps
            args_p = [p if arr is t else t.astype(np.float64) for t in (x, w, b)]
            args_m = [m if arr is t else t.astype(np.float64) for t in (x, w, b)]
            fd = (loss(*args_p) - loss(*args_m)) / (2 * eps)
            assert abs(fd - g[idx]) < 1e-3 * max(1, abs(fd)), (idx, fd, g[idx])


def test_threads_identical():
    rng = np.random.default_rng(6)
    x, w, b = rand(rng, 3, 16, 23, 19), rand(rng, 32, 8, 3, 3), rand(rng, 32)
    old = cc.get_num_threads()
    try:
        out = []
        for t in (1, 2):
            cc.set_num_threads(t)
            y = cc.conv2d(x, w, b, padding=1, groups=2)
            g = cc.conv2d_backward(np.ones_like(y), x, w, padding=1, groups=2)
            out.append((y, *g))
        for name, a, c in zip(("y", "grad_x", "grad_w", "grad_b"), *out):
            np.testing.assert_array_equal(a, c, err_msg=name)
    finally:
        cc.set_num_threads(old)


def test_many_threads_same_result():
    """The job pool deals one contiguous range of jobs per thread (at most 64
    ranges); more threads than jobs or ranges, on any core count, still run
    every job once."""
    rng = np.random.default_rng(8)
    x, w, b = rand(rng, 2, 32, 40, 40), rand(rng, 48, 32, 3, 3), rand(rng, 48)
    old = cc.get_num_threads()
    try:
        cc.set_num_threads(1)
        ref = [cc.conv2d(x, w, b, padding=1), cc.conv2d(x, w[:, :, :1, :1], b, stride=2)]
        for t in (5, 64, 70):
            cc.set_num_threads(t)
            np.testing.assert_array_equal(cc.conv2d(x, w, b, padding=1), ref[0], err_msg=str(t))
            np.testing.assert_array_equal(cc.conv2d(x, w[:, :, :1, :1], b, stride=2), ref[1],
                                          err_msg=str(t))
    finally:
        cc.set_num_threads(old)


def test_against_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    x, w, b = rand(rng, 2, 6, 14, 15), rand(rng, 9, 2, 3, 5), rand(rng, 9)
    y = cc.conv2d(x, w, b, stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=3)
    xt = torch.from_numpy(x).requires_grad_()
    wt = torch.from_numpy(w).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()
    yt = F.conv2d(xt, wt, bt, stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=3)
    close(y, yt.detach().numpy())
    gy = rand(rng, *y.shape)
    yt.backward(torch.from_numpy(gy))
    gx, gw, gb = cc.conv2d_backward(gy, x, w, stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=3)
    close(gx, xt.grad.numpy()); close(gw, wt.grad.numpy()); close(gb, bt.grad.numpy())


def test_conv_output_shape():
    assert cc.conv_output_shape((224, 224), 7, stride=2, padding=3) == (112, 112)
    assert cc.conv_output_shape((10, 11), (3, 4), padding="same") == (10, 11)
    assert cc.conv_output_shape((10, 10), 3, stride=(2, 3), padding=(1, 0, 0, 2), dilation=2) == (4, 3)
    with pytest.raises(ValueError, match="conv_output_shape"):
        cc.conv_output_shape((2, 2), 5)


def test_small_plane_1x1_pixel_split_agrees():
    """7x7 1x1 layers whose channel panels split unevenly over the threads
    (160 channels: 5 panels of 32 on 2 threads) split their pixel tiles
    instead; with a residual, the result is the float64 reference and
    bitwise the same at every thread count (the reduction is never split)."""
    from convcore import _core
    rng = np.random.default_rng(9)
    x, w, b = rand(rng, 1, 96, 7, 7), rand(rng, 160, 96, 1, 1), rand(rng, 160)
    r = rand(rng, 1, 160, 7, 7)
    ref = np.einsum("kc,nchw->nkhw", w[:, :, 0, 0].astype(np.float64), x.astype(np.float64))
    ref = np.maximum(ref + b[None, :, None, None] + r, 0)
    pk = _core.PackedConv2d(w, b, [1, 1], [0, 0, 0, 0], [1, 1], 1, 0.0, np.inf)
    old = cc.get_num_threads()
    try:
        out = []
        for t in (1, 2, 3):
            cc.set_num_threads(t)
            out.append(pk.run(x, r))
    finally:
        cc.set_num_threads(old)
    np.testing.assert_allclose(out[0], ref, rtol=1e-5, atol=1e-4)
    for y in out[1:]:
        np.testing.assert_array_equal(y, out[0])
