"""The fused 1x1 + depthwise operator (`_core.PackedPwDw`, the runner's
MobileNet expand + depthwise pair) against a float64 numpy reference: both
kernel sizes and strides, odd channel counts and planes, asymmetric padding,
dilation, clamps, a residual, `out=`; 1 vs 2 threads bitwise; the unfused
fallback of the lower ISAs in subprocesses; bad input."""
from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest

import convcore as cc
from convcore import _core

from reference import conv2d as ref_conv2d
from isa_subprocess import run_with_isa

INF = float("inf")

# (N, cin, E, H, W, k, stride, pads (t, l, b, r), dilation)
CASES = [
    (1, 24, 144, 20, 20, 3, 1, (1, 1, 1, 1), 1),     # MobileNetV2 block, 9 channel blocks
    (1, 16, 96, 23, 21, 3, 2, (1, 1, 1, 1), 1),      # stride 2, odd plane
    (2, 5, 37, 9, 11, 3, 1, (1, 1, 1, 1), 1),        # batch 2, channels not a block multiple
    (1, 40, 240, 14, 14, 5, 2, (2, 2, 2, 2), 1),     # EfficientNet 5x5 stride 2
    (1, 80, 480, 7, 7, 5, 1, (2, 2, 2, 2), 1),       # 5x5 on 7x7
    (1, 8, 20, 6, 5, 5, 2, (1, 2, 3, 0), 1),         # asymmetric padding
    (1, 16, 33, 10, 12, 3, 1, (2, 2, 2, 2), 2),      # dilation 2
    (1, 7, 16, 1, 1, 3, 1, (1, 1, 1, 1), 1),         # 1x1 plane: taps all padding but one
    (1, 7, 48, 4, 3, 3, 2, (0, 0, 0, 0), 1),         # no padding, tiny output
    (1, 3, 17, 60, 4, 3, 1, (1, 1, 1, 1), 1),        # tall narrow plane (many bands)
]


def make(case, seed=0):
    N, cin, E, H, W, k, s, pads, d = case
    r = np.random.RandomState(seed)
    x = r.randn(N, cin, H, W).astype(np.float32)
    w1 = (r.randn(E, cin, 1, 1) / np.sqrt(cin)).astype(np.float32)
    b1 = r.randn(E).astype(np.float32)
    wd = r.randn(E, 1, k, k).astype(np.float32)
    bd = r.randn(E).astype(np.float32)
    return x, w1, b1, wd, bd


def reference(case, x, w1, b1, wd, bd, lo1, hi1, lo, hi, res=None):
    N, cin, E, H, W, k, s, pads, d = case
    e = np.clip(ref_conv2d(x, w1, b1), lo1, hi1)
    y = ref_conv2d(e, wd, bd, (s, s), pads, (d, d), groups=E)
    if res is not None:
        y = y + res
    return np.clip(y, lo, hi)


def packed(case, w1, b1, wd, bd, lo1, hi1, lo, hi):
    N, cin, E, H, W, k, s, pads, d = case
    return _core.PackedPwDw(w1, b1, lo1, hi1, wd, bd, [s, s], list(pads), [d, d], lo, hi)


def check(got, want):
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * scale)


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize("acts", [(-INF, INF, -INF, INF), (0, 6, 0, 6), (0, INF, -1, 1)])
def test_matches_reference(case, acts):
    x, w1, b1, wd, bd = make(case)
    lo1, hi1, lo, hi = acts
    pk = packed(case, w1, b1, wd, bd, *acts)
    want = reference(case, x, w1, b1, wd, bd, *acts)
    check(pk.run(x), want)
    res = np.random.RandomState(1).randn(*want.shape).astype(np.float32)
    check(pk.run(x, res), reference(case, x, w1, b1, wd, bd, *acts, res=res))
    out = np.full(want.shape, np.nan, np.float32)
    assert pk.run(x, None, out) is not None
    check(out, want)


def test_biases_optional():
    case = CASES[2]
    x, w1, b1, wd, bd = make(case)
    pk = packed(case, w1, None, wd, None, -INF, INF, -INF, INF)
    check(pk.run(x), reference(case, x, w1, None, wd, None, -INF, INF, -INF, INF))


def test_uses_the_fused_kernel_where_the_cpu_has_it():
    x, w1, b1, wd, bd = make(CASES[0])
    algo = packed(CASES[0], w1, b1, wd, bd, 0, 6, 0, 6).algo(list(x.shape))
    if cc.cpu_info()["isa"] == "avx512":
        assert algo == "pw_dw_fused"
    else:
        assert algo == "gemm1x1+depthwise_direct"


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[3], CASES[9]])
def test_thread_count_does_not_change_results(case):
    x, w1, b1, wd, bd = make(case)
    pk = packed(case, w1, b1, wd, bd, 0, 6, -INF, INF)
    before = cc.get_num_threads()
    try:
        cc.set_num_threads(1)
        y1 = pk.run(x)
        cc.set_num_threads(2)
        y2 = pk.run(x)
        cc.set_num_threads(3)
        y3 = pk.run(x)
    finally:
        cc.set_num_threads(before)
    assert np.array_equal(y1, y2) and np.array_equal(y1, y3)


_ISA_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, convcore as cc
    sys.path.insert(0, {testdir!r})
    from test_pw_dw import CASES, make, reference, packed, check
    assert cc.cpu_info()["isa"] == {isa!r}, cc.cpu_info()
    for case in CASES:
        x, w1, b1, wd, bd = make(case)
        pk = packed(case, w1, b1, wd, bd, 0, 6, -1, 1)
        assert pk.algo(list(x.shape)) == "gemm1x1+depthwise_direct"
        check(pk.run(x), reference(case, x, w1, b1, wd, bd, 0, 6, -1, 1))
    print("ok")
""")


@pytest.mark.parametrize("isa", ["baseline", "avx2"])
def test_lower_isas_run_the_two_convs(isa):
    run_with_isa(_ISA_SCRIPT.format(testdir=os.path.dirname(__file__), isa=isa), isa)


def test_bad_input():
    case = CASES[0]
    x, w1, b1, wd, bd = make(case)
    pk = packed(case, w1, b1, wd, bd, 0, 6, 0, 6)
    with pytest.raises(ValueError, match="conv2d.*24"):
        pk.run(x[:, :20])                       # wrong channel count
    with pytest.raises(ValueError, match="conv2d.*4-D"):
        pk.run(x[0])                            # wrong rank
    with pytest.raises(ValueError, match="conv2d.*residual"):
        pk.run(x, np.zeros((1, 144, 3, 3), np.float32))
    with pytest.raises(ValueError, match="conv2d.*out"):
        pk.run(x, None, np.zeros((1, 144, 3, 3), np.float32))
    with pytest.raises(ValueError, match="conv2d.*1x1 weight"):
        _core.PackedPwDw(wd, b1, 0, 6, wd, bd, [1, 1], [1] * 4, [1, 1], 0, 6)
    with pytest.raises(ValueError, match="conv2d.*depthwise weight"):
        _core.PackedPwDw(w1, b1, 0, 6, wd[:10], bd, [1, 1], [1] * 4, [1, 1], 0, 6)
    with pytest.raises(ValueError, match="conv2d.*bias"):
        _core.PackedPwDw(w1, b1[:3], 0, 6, wd, bd, [1, 1], [1] * 4, [1, 1], 0, 6)
    with pytest.raises(ValueError, match="conv2d"):
        _core.PackedPwDw(w1, b1, 0, 6, wd, bd, [0, 1], [1] * 4, [1, 1], 0, 6)   # stride 0
