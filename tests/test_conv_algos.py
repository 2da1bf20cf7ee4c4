"""conv2d forward: every algorithm (forced with algo=, and auto) against a
float64 numpy reference, on odd sizes and edge tiles, with every fused
epilogue and a residual; PackedConv2d; 1 vs 2 threads bitwise; and the lower
ISAs in subprocesses (CONVCORE_ISA=baseline / avx2)."""
from __future__ import annotations

import math
import os
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcore as cc
from convcore import _core
from convcore.functional import conv2d_fused, conv_algorithm
from isa_subprocess import run_with_isa


def ref_conv(x, w, b, stride, pads, dil, groups):
    """float64 direct convolution over explicitly padded, strided windows."""
    t, l, bo, r = pads
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (0, 0), (t, bo), (l, r)))
    w = np.asarray(w, np.float64)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dil
    OH = (H - dh * (kh - 1) - 1) // sh + 1
    OW = (W - dw * (kw - 1) - 1) // sw + 1
    Kg = K // groups
    y = np.zeros((N, K, OH, OW))
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = x[:, g * Cg:(g + 1) * Cg, i * dh:i * dh + sh * (OH - 1) + 1:sh,
                          j * dw:j * dw + sw * (OW - 1) + 1:sw]
                y[:, g * Kg:(g + 1) * Kg] += np.einsum("nchw,kc->nkhw", patch,
                                                       w[g * Kg:(g + 1) * Kg, :, i, j])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def epilogue(y, act, residual):
    if residual is not None:
        y = y + residual
    if act == "relu":
        y = np.maximum(y, 0)
    elif isinstance(act, tuple):
        y = np.clip(y, act[1], act[2])
    return y


# (N, C, H, W, K, kh, kw, stride, pads(t,l,b,r), dilation, groups)
CASES = [
    (1, 16, 9, 11, 24, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # 1x1, cols not /NR
    (2, 13, 7, 5, 13, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),      # 1x1 stride 2, odd K
    (1, 8, 6, 6, 8, 1, 1, (1, 1), (1, 0, 2, 1), (1, 1), 1),        # 1x1 with padding
    (1, 48, 10, 9, 17, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # 3x3, 432 rows: two k blocks
    (2, 300, 5, 7, 33, 3, 3, (1, 1), (0, 1, 2, 1), (1, 1), 1),     # 3x3 C > one k block, odd out
    (1, 32, 30, 29, 40, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),    # 3x3 several tile rows
    (2, 6, 12, 13, 10, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 1),     # 3x3 stride 2
    (1, 3, 23, 21, 9, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1), 1),      # stem 7x7 stride 2
    (1, 5, 8, 14, 7, 1, 5, (1, 2), (0, 2, 0, 1), (1, 1), 1),       # 1xK, per-axis stride
    (1, 5, 14, 8, 7, 5, 1, (1, 1), (2, 0, 1, 0), (1, 1), 1),       # Kx1, asymmetric pad
    (1, 6, 15, 15, 4, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 1),      # dilation
    (2, 8, 9, 10, 12, 3, 3, (1, 2), (1, 0, 1, 2), (1, 1), 2),      # groups=2
    (1, 16, 20, 19, 16, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 16),   # depthwise narrow
    (1, 4, 9, 70, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 4),       # depthwise wide rows
    (1, 4, 11, 75, 4, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 4),      # depthwise wide, s2
    (2, 6, 13, 9, 12, 5, 5, (2, 2), (2, 2, 2, 2), (1, 1), 6),      # dw 5x5 s2, mult 2
    (1, 5, 12, 12, 5, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 5),      # dw 5x5 s1
    (1, 3, 10, 11, 3, 3, 3, (1, 1), (0, 2, 1, 0), (2, 1), 3),      # dw dilated, asym pad
    (1, 4, 6, 7, 4, 2, 4, (3, 1), (1, 1, 0, 2), (1, 1), 4),        # dw generic shape
    (1, 300, 7, 7, 130, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),    # 7x7 plane, pixels as rows
    (2, 20, 14, 14, 72, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 1),    # 14 -> 7, pixels as rows
    (1, 16, 14, 14, 96, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 2),    # 14x14, groups, rows
    (2, 24, 37, 41, 20, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),    # 1x1 in place, partial panel
    (1, 16, 45, 47, 40, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),    # shifted: many panels
    (2, 5, 31, 29, 11, 5, 5, (3, 2), (2, 1, 0, 3), (1, 1), 1),     # shifted: 6 phases, asym
    (1, 4, 19, 23, 6, 3, 3, (2, 2), (0, 0, 0, 0), (2, 3), 1),      # shifted: dilation vs stride
    (1, 3, 40, 40, 16, 11, 11, (4, 4), (2, 2, 2, 2), (1, 1), 1),   # AlexNet-like 11x11 s4
    (1, 16, 61, 130, 16, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 16),  # dw: many row bands, s2
    (2, 17, 40, 190, 17, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 17),  # dw 5x5 bands, partial block
    (1, 64, 21, 37, 70, 3, 3, (1, 1), (1, 0, 2, 1), (1, 1), 1),    # Winograd F(4x4) by auto
    (3, 64, 6, 7, 96, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # weights > input: channel blocks outer
    (2, 96, 9, 15, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # F(2x2) by auto (9 rows)
    (1, 36, 10, 9, 17, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # 324 rows: one long k block
    (1, 288, 6, 6, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # Winograd, C in one long block
    (2, 40, 28, 27, 72, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),    # 1x1 s2 -> 14x14: pixels as rows
    (1, 3, 9, 101, 5, 3, 3, (2, 2), (1, 0, 1, 1), (1, 1), 1),      # wide rows, s2: fill's vector tails
    (1, 4, 5, 83, 6, 3, 3, (1, 1), (1, 2, 1, 1), (1, 1), 1),       # wide rows, s1: fill's vector tails
    (2, 6, 9, 13, 10, 3, 5, (1, 1), (1, 2, 0, 1), (1, 2), 1),      # s1 taps wrap into the next row's pad
]


def algos_for(c):
    N, C, H, W, K, kh, kw, s, p, d, g = c
    out = ["auto", "implicit_gemm", "im2col_gemm", "shifted_gemm"]
    if kh == 1 and kw == 1:
        out.append("gemm1x1")
    if (kh, kw, s, d, g) == (3, 3, (1, 1), (1, 1), 1):
        out += ["winograd3x3", "winograd3x3_f4"]
    if g == C and g > 1:
        out = ["auto", "depthwise_direct", "implicit_gemm", "im2col_gemm", "shifted_gemm"]
    return out


def make(c, seed=0):
    N, C, H, W, K, kh, kw, s, p, d, g = c
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // g, kh, kw), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    return x, w, b


def check(y, expect, tol=1e-4, scale=None):
    """|y - expect| within tol of the scale (of the conv's own output where a
    clamp shrank `expect`: the kernels' rounding is relative to that)."""
    assert y.shape == expect.shape
    scale = max(1.0, float(np.abs(expect).max()) if scale is None else scale)
    err = float(np.abs(y - expect).max())
    assert err <= tol * scale, f"max error {err} (scale {scale})"


@pytest.mark.parametrize("c", CASES, ids=lambda c: "x".join(map(str, c[:7])) + f"_g{c[10]}")
def test_every_algorithm_and_epilogue(c):
    N, C, H, W, K, kh, kw, s, p, d, g = c
    x, w, b = make(c)
    base = ref_conv(x, w, b, s, p, d, g)
    res = np.random.default_rng(1).standard_normal(base.shape).astype(np.float32)
    for algo in algos_for(c):
        for act, r in [(None, None), ("relu", None), (("clip", -0.5, 0.75), res), ("relu", res)]:
            y = conv2d_fused(x, w, b, s, p, d, g, activation=act, residual=r, algo=algo)
            check(y, epilogue(base, act, r), scale=float(np.abs(epilogue(base, None, r)).max()))
    # no bias
    y = conv2d_fused(x, w, None, s, p, d, g)
    check(y, ref_conv(x, w, None, s, p, d, g))


def test_auto_choice():
    assert conv_algorithm((1, 64, 56, 56), (64, 64, 1, 1)) == "gemm1x1"
    assert conv_algorithm((1, 64, 56, 56), (128, 64, 1, 1), stride=2) == "gemm1x1"
    assert conv_algorithm((1, 32, 56, 56), (32, 1, 3, 3), padding=1, groups=32) == "depthwise_direct"
    assert conv_algorithm((1, 32, 56, 56), (64, 1, 3, 3), padding=1, groups=32) == "depthwise_direct"
    assert conv_algorithm((1, 64, 56, 56), (64, 64, 3, 3), padding=1) == "winograd3x3_f4"
    # 7x7 planes: direct on CPUs that say so (cpu_info()["winograd_small_direct"])
    small = "implicit_gemm" if cc.cpu_info()["winograd_small_direct"] else "winograd3x3"
    assert conv_algorithm((1, 512, 7, 7), (512, 512, 3, 3), padding=1) == small
    assert conv_algorithm((1, 512, 14, 14), (512, 512, 3, 3), padding=1) == "winograd3x3"
    assert conv_algorithm((1, 64, 56, 56), (64, 64, 3, 3), padding=1, stride=2) == "shifted_gemm"
    assert conv_algorithm((1, 32, 56, 56), (64, 32, 3, 3), padding=1) == "shifted_gemm"
    assert conv_algorithm((1, 3, 224, 224), (64, 3, 7, 7), padding=3, stride=2) == "shifted_gemm"
    assert conv_algorithm((1, 3, 224, 224), (32, 3, 3, 3), padding=1, stride=2) == "shifted_gemm"
    # many output channels (B packing cheap per channel) and many dropped columns
    assert conv_algorithm((1, 256, 28, 28), (256, 256, 3, 3), padding=1, stride=2) == "implicit_gemm"
    assert conv_algorithm((1, 512, 14, 14), (512, 512, 3, 3), padding=1, stride=2) == "implicit_gemm"


def test_forced_algorithm_that_does_not_apply():
    x, w, b = make(CASES[3])
    with pytest.raises(ValueError, match="gemm1x1"):
        conv2d_fused(x, w, b, 1, 1, algo="gemm1x1")
    with pytest.raises(ValueError, match="depthwise_direct"):
        conv2d_fused(x, w, b, 1, 1, algo="depthwise_direct")
    x2, w2, b2 = make(CASES[4])  # 3x3 stride 2
    for name in ("winograd3x3", "winograd3x3_f4"):
        with pytest.raises(ValueError, match=name):
            conv2d_fused(x2, w2, b2, 2, 1, algo=name)
    for name in ("direct", "fastest"):
        with pytest.raises(ValueError):
            conv2d_fused(x, w, b, 1, 1, algo=name)


def packed(w, b, s, p, d, g, act=None, algo="auto"):
    lo, hi = -math.inf, math.inf
    if act == "relu":
        lo = 0.0
    elif isinstance(act, tuple):
        lo, hi = act[1], act[2]
    return _core.PackedConv2d(w, b, list(s), list(p), list(d), g, lo, hi, algo)


@pytest.mark.parametrize("c", [CASES[0], CASES[3], CASES[4], CASES[5], CASES[11], CASES[15],
                               CASES[19], CASES[20]])
def test_packed_matches_functional_bitwise(c):
    N, C, H, W, K, kh, kw, s, p, d, g = c
    x, w, b = make(c)
    res = np.random.default_rng(2).standard_normal(
        ref_conv(x, w, b, s, p, d, g).shape).astype(np.float32)
    pk = packed(w, b, s, p, d, g, ("clip", -1.0, 1.0))
    y1 = pk.run(x, res)
    y2 = conv2d_fused(x, w, b, s, p, d, g, activation=("clip", -1.0, 1.0), residual=res)
    assert np.array_equal(y1, y2)
    # reused with another batch and spatial size
    x2 = np.random.default_rng(3).standard_normal((N + 1, C, H + 3, W + 2), dtype=np.float32)
    check(pk.run(x2), np.clip(ref_conv(x2, w, b, s, p, d, g), -1.0, 1.0))
    assert pk.algo(list(x2.shape)) == conv_algorithm(x2.shape, w.shape, s, p, d, g)


def test_packed_bad_input():
    x, w, b = make(CASES[3])
    pk = packed(w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    with pytest.raises(ValueError):
        pk.run(x[:, :5])                      # wrong channel count
    with pytest.raises(ValueError):
        pk.run(x, np.zeros((1, 2, 3, 4), np.float32))   # residual shape
    with pytest.raises(TypeError):
        pk.run(x.astype(np.float64))
    with pytest.raises(ValueError):
        _core.PackedConv2d(w, b[:3], [1, 1], [1, 1, 1, 1], [1, 1], 1, -math.inf, math.inf, "auto")
    with pytest.raises(ValueError):
        _core.PackedConv2d(w, b, [1, 1], [1, 1, 1, 1], [1, 1], 1, -math.inf, math.inf, "gemm1x1")
    y = pk.run(np.zeros((0, 48, 10, 9), np.float32))
    assert y.shape == (0, 17, 10, 9)


def test_large_k_blocks_and_columns():
    # rows = 96*9 = 864 (several k blocks), 33x31 columns (several column
    # blocks and edge panels), K = 70 (edge register tiles)
    c = (1, 96, 33, 31, 70, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    x, w, b = make(c)
    res = np.ones((1, 70, 33, 31), np.float32)
    y = conv2d_fused(x, w, b, 1, 1, activation="relu", residual=res)
    check(y, epilogue(ref_conv(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1), "relu", res))


@pytest.mark.parametrize("c", [CASES[3], CASES[4], CASES[5], CASES[7], CASES[11], CASES[13],
                               CASES[15], CASES[19], CASES[20], CASES[21],
                               (2, 64, 14, 14, 96, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
                               (1, 32, 28, 28, 48, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1)])
def test_threads_bitwise_identical(c):
    N, C, H, W, K, kh, kw, s, p, d, g = c
    x, w, b = make(c)
    old = cc.get_num_threads()
    try:
        for algo in algos_for(c):
            outs = []
            for t in (1, 2, 3):
                cc.set_num_threads(t)
                outs.append(conv2d_fused(x, w, b, s, p, d, g, activation="relu", algo=algo))
            assert np.array_equal(outs[0], outs[1]), algo
            assert np.array_equal(outs[0], outs[2]), algo
    finally:
        cc.set_num_threads(old)


_ISA_SCRIPT = textwrap.dedent("""
    import sys, numpy as np, convcore as cc
    sys.path.insert(0, {testdir!r})
    from test_conv_algos import CASES, algos_for, make, ref_conv, epilogue, check
    from convcore.functional import conv2d_fused
    assert cc.cpu_info()["isa"] == {isa!r}, cc.cpu_info()
    for c in CASES:
        N, C, H, W, K, kh, kw, s, p, d, g = c
        x, w, b = make(c)
        base = ref_conv(x, w, b, s, p, d, g)
        res = np.full(base.shape, 0.25, np.float32)
        for algo in algos_for(c):
            y = conv2d_fused(x, w, b, s, p, d, g, activation="relu", residual=res, algo=algo)
            check(y, epilogue(base, "relu", res))
    print("ok")
""")


@pytest.mark.parametrize("isa", ["baseline", "avx2"])
def test_lower_isas(isa):
    run_with_isa(_ISA_SCRIPT.format(testdir=os.path.dirname(__file__), isa=isa), isa)


def test_concurrent_python_threads_and_thread_changes():
    # The job pool serves one batch at a time; a second caller runs its
    # jobs itself. Results must not change either way.
    import threading
    c = (1, 32, 14, 14, 40, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    x, w, b = make(c)
    ref = conv2d_fused(x, w, b, 1, 1)
    bad = []

    def work():
        for _ in range(30):
            for algo in ("winograd3x3", "implicit_gemm"):
                y1 = conv2d_fused(x, w, b, 1, 1, algo=algo)
                if not np.array_equal(y1, conv2d_fused(x, w, b, 1, 1, algo=algo)):
                    bad.append(algo)
            if not np.array_equal(conv2d_fused(x, w, b, 1, 1), ref):
                bad.append("auto")

    old = cc.get_num_threads()
    try:
        cc.set_num_threads(2)
        ts = [threading.Thread(target=work) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for t in (1, 3, 2):
            cc.set_num_threads(t)
            assert np.array_equal(conv2d_fused(x, w, b, 1, 1), ref)
    finally:
        cc.set_num_threads(old)
    assert not bad


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31 - 1), st.sampled_from(["shifted_gemm", "implicit_gemm"]))
def test_forced_gemm_paths_sweep(seed, algo):
    # Random geometry (strides vs dilations, asymmetric pads, groups, tails
    # of panels and of register tiles) for the paths auto picks by size.
    rng = np.random.default_rng(seed)
    g = int(rng.choice([1, 1, 2, 3]))
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    s = tuple(int(v) for v in rng.integers(1, 4, 2))
    d = tuple(int(v) for v in rng.integers(1, 3, 2))
    p = tuple(int(v) for v in rng.integers(0, 3, 4))
    H = int(rng.integers(max(1, d[0] * (kh - 1) + 1 - p[0] - p[2]), 40))
    W = int(rng.integers(max(1, d[1] * (kw - 1) + 1 - p[1] - p[3]), 40))
    c = (int(rng.integers(1, 4)), g * int(rng.integers(1, 7)), H, W, g * int(rng.integers(1, 12)),
         kh, kw, s, p, d, g)
    x, w, b = make(c, seed % 1000)
    base = ref_conv(x, w, b, s, p, d, g)
    res = np.random.default_rng(seed).standard_normal(base.shape).astype(np.float32)
    y = conv2d_fused(x, w, b, s, p, d, g, activation="relu", residual=res, algo=algo)
    check(y, epilogue(base, "relu", res))


@pytest.mark.parametrize("algo", ["shifted_gemm", "gemm1x1"])
def test_shifted_threads_identical(algo):
    k = 1 if algo == "gemm1x1" else 3
    c = (2, 24, 29, 33, 40, k, k, (1, 1), (0,) * 4 if k == 1 else (1,) * 4, (1, 1), 1)
    x, w, b = make(c)
    old = cc.get_num_threads()
    try:
        ys = []
        for t in (1, 2, 3):
            cc.set_num_threads(t)
            ys.append(conv2d_fused(x, w, b, c[7], c[8], c[9], 1, activation="relu", algo=algo))
    finally:
        cc.set_num_threads(old)
    assert np.array_equal(ys[0], ys[1]) and np.array_equal(ys[0], ys[2])


def test_winograd_channel_blocks_threads():
    # A 7x7 plane is 16 F(2x2) tiles: at 2+ threads with many output
    # channels the jobs split channels (winograd_split), each with all the
    # tiles. Same result as one job, and right, with a residual and ReLU.
    c = (1, 32, 7, 7, 512, 3, 3, (1, 1), (1,) * 4, (1, 1), 1)
    x, w, b = make(c)
    base = ref_conv(x, w, b, c[7], c[8], c[9], 1)
    res = np.random.default_rng(3).standard_normal(base.shape).astype(np.float32)
    old = cc.get_num_threads()
    try:
        ys = []
        for t in (1, 2, 3):
            cc.set_num_threads(t)
            ys.append(conv2d_fused(x, w, b, c[7], c[8], c[9], 1, activation="relu", residual=res,
                                   algo="winograd3x3"))
    finally:
        cc.set_num_threads(old)
    for y in ys:
        check(y, epilogue(base, "relu", res))
    assert np.array_equal(ys[0], ys[1]) and np.array_equal(ys[0], ys[2])


def test_auto_winograd_tile_follows_plane_size():
    # One packed layer run on a large plane (F(4x4), packed on first use)
    # and on small ones (F(2x2); 7x7 directly where the CPU says so): all
    # right, all reported.
    c = (1, 64, 30, 30, 64, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    x, w, b = make(c)
    pk = packed(w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1, "relu")
    direct = cc.cpu_info()["winograd_small_direct"]
    for shape in [(1, 64, 30, 30), (2, 64, 7, 7), (1, 64, 16, 14), (1, 64, 8, 8)]:
        xs = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        check(pk.run(xs), np.maximum(ref_conv(xs, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1), 0))
        if min(shape[2:]) >= 14:
            want = "winograd3x3_f4"
        elif direct and shape[2] * shape[3] == 49:
            want = "implicit_gemm"
        else:
            want = "winograd3x3"
        assert pk.algo(list(shape)) == want
