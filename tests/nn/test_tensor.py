"""Tensor arithmetic and autograd against finite differences (float64)."""
import numpy as np
import pytest

import convcore
from convcore.nn import Tensor, functional, no_grad
from nn_gradcheck import assert_grads_close

rng = np.random.default_rng(1)


def r(*shape):
    return rng.standard_normal(shape)


def test_lazy_top_level_names():
    assert convcore.Tensor is Tensor
    assert convcore.no_grad is no_grad


@pytest.mark.parametrize("name, fn, shapes", [
    ("add broadcast", lambda a, b: a + b, [(3, 4), (4,)]),
    ("sub broadcast", lambda a, b: a - b, [(2, 1, 3), (4, 1)]),
    ("mul broadcast", lambda a, b: a * b, [(3, 4), (3, 1)]),
    ("div", lambda a, b: a / b, [(3, 4), (3, 4)]),
    ("matmul", lambda a, b: a @ b, [(3, 5), (5, 2)]),
    ("pow", lambda a: a ** 3, [(4, 3)]),
    ("neg", lambda a: -a, [(4,)]),
    ("exp/log", lambda a: (a * a + 1.0).log() + a.exp(), [(3, 3)]),
    ("reshape/transpose", lambda a: a.reshape(4, 6).T.reshape(2, 12), [(2, 3, 4)]),
    ("sum axis", lambda a: a.sum(axis=1), [(3, 4, 2)]),
    ("sum keepdims", lambda a: a.sum(axis=(0, 2), keepdims=True), [(3, 4, 2)]),
    ("mean", lambda a: a.mean(axis=-1) * a.mean(), [(3, 5)]),
    ("scalar ops", lambda a: 2.0 * a - 1.0 + a / 4.0 - 3.0 / (a * a + 1.0), [(5,)]),
    ("reused input", lambda a: a * a + a, [(4, 2)]),
    ("indexing", lambda a: a[1:, ::2] * a[np.array([0, 0, 2])][:, :2].sum(), [(3, 4)]),
])
def test_op_gradients_match_finite_differences(name, fn, shapes):
    inputs = [r(*s) + (3.0 if name == "div" else 0.0) for s in shapes]
    assert_grads_close(fn, inputs)


def test_gradients_accumulate_across_backward_calls():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (a * 3.0).sum().backward()
    (a * 2.0).sum().backward()
    np.testing.assert_allclose(a.grad, [5.0, 5.0])


def test_no_grad_builds_no_graph():
    a = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        b = a * 2.0
    assert not b.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        b.sum().backward()


def test_no_grad_as_decorator():
    a = Tensor(np.ones(3), requires_grad=True)

    @no_grad()
    def f(t):
        return t * 2.0
    assert not f(a).requires_grad
    assert (a * 2.0).requires_grad


def test_backward_twice_raises():
    a = Tensor(np.ones(3), requires_grad=True)
    loss = (a * a).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


def test_backward_non_scalar_needs_grad():
    a = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (a * 2.0).backward()


def test_item_shape_numpy():
    t = Tensor([[1.0, 2.0]])
    assert t.shape == (1, 2) and t.dtype == np.float32
    assert isinstance(t.numpy(), np.ndarray)
    assert Tensor(3.5).item() == 3.5
    with pytest.raises(ValueError, match="one-element"):
        t.item()


def test_deep_chain_does_not_recurse():
    a = Tensor(np.ones(2), requires_grad=True)
    y = a
    for _ in range(5000):
        y = y + 1.0
    y.sum().backward()
    np.testing.assert_allclose(a.grad, [1.0, 1.0])


def test_numpy_on_the_left():
    a = Tensor(np.ones(3), requires_grad=True)
    y = np.full(3, 2.0, np.float32) * a
    assert isinstance(y, Tensor)
    y.sum().backward()
    np.testing.assert_allclose(a.grad, [2.0, 2.0, 2.0])


def test_numpy_ufunc_on_tensor_is_refused():
    with pytest.raises(TypeError):
        np.exp(Tensor(np.ones(2)))
    assert isinstance(np.float32(2.0) * Tensor(np.ones(2)), Tensor)


def test_leaf_gradients_never_alias_each_other_or_the_callers_arrays():
    """backward() hands fresh kernel outputs to leaves without a copy; everything
    that could be seen elsewhere (add's shared g, views, the caller's grad) is copied."""
    a = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    b = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    g = np.full((2, 3), 2.0, np.float32)
    (a + b).backward(g)
    assert not np.shares_memory(a.grad, b.grad)
    assert not np.shares_memory(a.grad, g) and not np.shares_memory(b.grad, g)
    a.grad *= 10  # in-place edits of one gradient stay there
    np.testing.assert_array_equal(b.grad, g)
    np.testing.assert_array_equal(g, 2.0)

    x = Tensor(np.arange(6, dtype=np.float32), requires_grad=True)
    x.reshape(2, 3).sum().backward()  # sum's grad is a read-only broadcast view
    assert x.grad.flags.writeable and x.grad.base is None
    x.grad += 1
    np.testing.assert_array_equal(x.grad, 2.0)

    leaf = Tensor(np.zeros(4, np.float32), requires_grad=True)
    seed = np.arange(4, dtype=np.float32)
    leaf.backward(seed)
    assert not np.shares_memory(leaf.grad, seed)

    # a conv's weight gradient (a fresh kernel output) is kept as it is, and accumulates
    w = Tensor(np.ones((2, 1, 3, 3), np.float32), requires_grad=True)
    img = np.ones((1, 1, 5, 5), np.float32)
    functional.conv2d(img, w).sum().backward()
    first = w.grad.copy()
    functional.conv2d(img, w).sum().backward()
    np.testing.assert_array_equal(w.grad, 2 * first)
