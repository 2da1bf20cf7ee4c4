"""conv2d_backward's direct grad_weight path (csrc/convcore/cpu/conv2d_backward.cpp).

Ungrouped convs with 3- or 5-wide kernels, output rows that fill at least half
of their vectors, and small channel counts take it: the shapes below are
chosen to reach its branches (pairs of output rows, odd row counts, partial
last vectors, output-channel blocks with a remainder, image blocks, image
slots, stride and dilation, kernel heights other than 3), against the float64
reference, torch, and across thread counts.
"""
from __future__ import annotations

import numpy as np
import pytest

import convcore as cc
from test_conv_backward import make_case, ref_backward

CASES = [
    # N, C, H, W, K, kh, kw, stride, pad (t,l,b,r), dil, groups
    (32, 16, 32, 32, 16, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),  # ResNet 16->16: pairs, blocks
    (5, 3, 17, 20, 7, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # tail lanes, odd rows, slots
    (9, 6, 12, 12, 16, 5, 5, (1, 1), (0, 0, 0, 0), (1, 1), 1),    # LeNet conv2: 8-wide rows
    (4, 1, 28, 28, 6, 5, 5, (1, 1), (2, 2, 2, 2), (1, 1), 1),     # LeNet conv1: one channel
    (3, 16, 32, 32, 32, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 1),   # stride 2
    (2, 4, 33, 33, 5, 3, 3, (2, 2), (2, 2, 2, 2), (2, 2), 1),     # stride = dilation: pairs
    (2, 3, 10, 18, 4, 4, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),     # kh = 4: rows 3 + 1
    (2, 5, 9, 30, 6, 3, 5, (1, 1), (0, 2, 1, 1), (1, 1), 1),      # asymmetric padding
    (3, 8, 14, 29, 9, 5, 3, (1, 2), (2, 1, 2, 1), (1, 1), 1),     # stride_w 2
    (2, 4, 13, 21, 3, 3, 3, (1, 1), (1, 1, 1, 1), (1, 2), 1),     # dilation_w 2
]


@pytest.mark.parametrize("case", CASES)
def test_against_float64_reference(case):
    rng = np.random.default_rng(abs(hash(case)) % 2**32)
    N, C, H, W, K, kh, kw, stride, pad, dil, groups = case
    gy, x, w = make_case(rng, *case)
    _, gw, _ = cc.conv2d_backward(gy, x, w, stride=stride, padding=pad, dilation=dil,
                                  groups=groups)
    _, rw, _ = ref_backward(gy, x, w, stride, pad, dil, groups)
    np.testing.assert_allclose(gw, rw, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(rw).max()))


@pytest.mark.parametrize("case", CASES[:4])
def test_against_torch(case):
    torch = pytest.importorskip("torch")
    N, C, H, W, K, kh, kw, stride, pad, dil, groups = case
    assert pad[:2] == pad[2:]
    gy, x, w = make_case(np.random.default_rng(5), *case)
    t = torch.ops.aten.convolution_backward(
        torch.from_numpy(gy), torch.from_numpy(x), torch.from_numpy(w), None, list(stride),
        list(pad[:2]), list(dil), False, [0, 0], groups, [False, True, False])[1].numpy()
    _, gw, _ = cc.conv2d_backward(gy, x, w, stride=stride, padding=pad, dilation=dil)
    np.testing.assert_allclose(gw, t, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(t).max()))


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[3], CASES[5]])
def test_thread_count_does_not_change_bits(case):
    gy, x, w = make_case(np.random.default_rng(4), *case)
    N, C, H, W, K, kh, kw, stride, pad, dil, groups = case
    old = cc.get_num_threads()
    try:
        out = []
        for t in (1, 2, 3, 5):
            cc.set_num_threads(t)
            out.append(cc.conv2d_backward(gy, x, w, stride=stride, padding=pad, dilation=dil)[1])
    finally:
        cc.set_num_threads(old)
    for other in out[1:]:
        assert np.array_equal(out[0], other)


def test_inf_beyond_the_last_output_column_stays_out():
    """Lanes past OW read real columns of x; they must not turn 0 * inf into NaN."""
    case = (2, 2, 6, 20, 3, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    gy, x, w = make_case(np.random.default_rng(8), *case)
    x[:, 0, :, -1] = np.inf  # column W-1: never read by tap kj = 0
    x[:, 1, 2, -1] = np.nan
    _, gw, _ = cc.conv2d_backward(gy, x, w, padding=1)
    _, rw, _ = ref_backward(gy, x, w, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    assert np.isfinite(gw[:, :, :, 0]).all()
    np.testing.assert_allclose(gw[:, :, :, 0], rw[:, :, :, 0], rtol=1e-4, atol=1e-4)
    assert not np.isfinite(gw[:, 0, :, 1:]).any()  # and the taps that do read it see it
    np.testing.assert_allclose(gw[:, 1, 0, 1:], rw[:, 1, 0, 1:], rtol=1e-4, atol=1e-4)
