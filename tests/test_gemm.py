"""_core.gemm (the runner's Gemm/MatMul) and PackedConv2d.run(out=) against
float64 references, and their bad-input errors."""
import math

import numpy as np
import pytest

import convcore as cc
from convcore import _core


# m <= 4 takes the GEMV path (B streamed, not packed): k and n with vector
# and 4-column tails, n over one job unit (64 columns).
@pytest.mark.parametrize("m,k,n", [(1, 1280, 10), (8, 2048, 1000), (7, 3, 5), (33, 65, 31), (0, 4, 3),
                                   (3, 0, 2), (1, 1283, 1001), (2, 37, 130), (3, 16, 67),
                                   (4, 2053, 203), (5, 40, 70)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_float64(m, k, n, ta, tb):
    rng = np.random.default_rng(m * 100 + k + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    A = np.ascontiguousarray(a.T) if ta else a
    B = np.ascontiguousarray(b.T) if tb else b
    c = _core.gemm(A, B, ta, tb)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert c.shape == (m, n) and c.dtype == np.float32
    if ref.size:
        np.testing.assert_allclose(c, ref, rtol=0, atol=1e-4 * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize("m,tb", [(37, False), (1, True), (3, False)])
def test_gemm_same_for_any_thread_count(m, tb):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, 3000)).astype(np.float32)
    b = rng.standard_normal((700, 3000) if tb else (3000, 700)).astype(np.float32)
    old = cc.get_num_threads()
    try:
        outs = []
        for t in (1, 2, 3):
            cc.set_num_threads(t)
            outs.append(_core.gemm(a, b, False, tb))
    finally:
        cc.set_num_threads(old)
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


@pytest.mark.parametrize("m", [1, 3, 6])
@pytest.mark.parametrize("tb", [False, True])
def test_gemm_bias_relu_epilogue(m, tb):
    rng = np.random.default_rng(m)
    a = rng.standard_normal((m, 300)).astype(np.float32)
    b = rng.standard_normal((300, 150)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    B = np.ascontiguousarray(b.T) if tb else b
    c = _core.gemm(a, B, False, tb, bias=bias, relu=True)
    ref = np.maximum(a.astype(np.float64) @ b + bias[:, None], 0)
    np.testing.assert_allclose(c, ref, rtol=0, atol=1e-4 * np.abs(ref).max())


def test_gemm_bad_input():
    a = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="gemm: cannot multiply"):
        _core.gemm(a, np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        _core.gemm(np.ones((2, 3, 1), np.float32), a)
    with pytest.raises(TypeError):
        _core.gemm(a.astype(np.float64), np.ones((3, 2)))


def test_packed_conv_out_argument():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    x = rng.standard_normal((1, 4, 9, 8)).astype(np.float32)
    pk = _core.PackedConv2d(w, None, [1, 1], [1, 1, 1, 1], [1, 1], 1, -math.inf, math.inf, "auto")
    base = np.full((1, 10, 9, 8), 7.0, np.float32)
    y = pk.run(x, None, base[:, 2:8])           # channels 2..7 of a larger array
    np.testing.assert_array_equal(y, base[:, 2:8])
    np.testing.assert_allclose(base[:, 2:8], pk.run(x), rtol=0, atol=0)
    assert (base[:, :2] == 7).all() and (base[:, 8:] == 7).all()   # untouched
    with pytest.raises(ValueError, match="shape"):
        pk.run(x, None, np.empty((1, 5, 9, 8), np.float32))
    with pytest.raises(TypeError):
        pk.run(x, None, np.empty((1, 6, 9, 8), np.float64))
    with pytest.raises(TypeError):
        pk.run(x, None, np.empty((1, 6, 8, 9), np.float32).transpose(0, 1, 3, 2))
    ro = np.empty((1, 6, 9, 8), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        pk.run(x, None, ro)
