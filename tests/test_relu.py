"""ReLU forward / backward / in place, against numpy and torch semantics
(NaN and -0.0 included)."""
from __future__ import annotations

import numpy as np
import pytest

import convcore as cc


SPECIAL = np.array([np.nan, -0.0, 0.0, -1.0, 2.0, np.inf, -np.inf, 1e-45, -1e-45], np.float32)


@pytest.mark.parametrize("n", [0, 1, 7, 16, 33, 1000, 70_001])  # tails, vectors, >1 thread chunk
def test_forward_backward_sizes(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(np.float32)
    gy = rng.standard_normal(n).astype(np.float32)
    np.testing.assert_array_equal(cc.relu(x), np.where(x < 0, 0, x).astype(np.float32))
    np.testing.assert_array_equal(cc.relu_backward(gy, x), np.where(x > 0, gy, 0).astype(np.float32))


def test_shapes_and_noncontiguous():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    y = cc.relu(x)
    assert y.shape == x.shape and y.dtype == np.float32 and y is not x
    xt = x.transpose(0, 2, 3, 1)  # non-contiguous view: copied once
    np.testing.assert_array_equal(cc.relu(xt), np.maximum(xt, 0))
    ro = x.copy()
    ro.setflags(write=False)
    np.testing.assert_array_equal(cc.relu(ro), np.maximum(x, 0))


def test_in_place():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 50)).astype(np.float32)
    ref = np.maximum(x, 0)
    out = cc.relu_(x)
    assert out is x
    np.testing.assert_array_equal(x, ref)
    with pytest.raises(ValueError, match="relu_"):
        cc.relu_(np.zeros((4, 4), np.float32)[:, ::2])
    ro = np.zeros(4, np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="relu_"):
        cc.relu_(ro)
    with pytest.raises(TypeError, match="relu_"):
        cc.relu_(np.zeros(4, np.float64))


def test_special_values_like_torch():
    torch = pytest.importorskip("torch")
    x = np.tile(SPECIAL, 5)  # the vector body and the scalar tail both see them
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.relu(tx)
    gy = np.arange(1, x.size + 1, dtype=np.float32)
    ty.backward(torch.from_numpy(gy))
    y = cc.relu(x)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(np.signbit(y), np.signbit(ty.detach().numpy()))
    np.testing.assert_array_equal(cc.relu_backward(gy, x), tx.grad.numpy())
    x2 = x.copy()
    cc.relu_(x2)
    np.testing.assert_array_equal(x2, y)


def test_bad_input():
    with pytest.raises(TypeError, match="relu.*float64"):
        cc.relu(np.zeros(3))
    with pytest.raises(TypeError, match="relu"):
        cc.relu([1.0, 2.0])
    with pytest.raises(ValueError, match="relu_backward.*shape"):
        cc.relu_backward(np.zeros(3, np.float32), np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="relu_backward"):
        cc.relu_backward(np.zeros(3, np.int32), np.zeros(3, np.float32))
