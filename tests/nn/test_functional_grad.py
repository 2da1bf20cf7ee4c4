"""nn.functional ops' gradients against finite differences.

Kernel ops (conv, pooling, relu) run in float32: conv and average pooling are
linear in each input, max pooling and relu piecewise linear, so a central
difference with a step well inside the linear pieces is exact up to float32
rounding. The numpy ops (linear, batch norm, losses) are checked in float64.
"""
import numpy as np
import pytest

from convcore.nn import Tensor
from convcore.nn import functional as F
from nn_gradcheck import assert_grads_close

rng = np.random.default_rng(2)


def f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def distinct(*shape, gap=0.05):
    """Values at least `gap` apart and away from 0, so max/relu have no ties or kinks nearby."""
    n = int(np.prod(shape))
    v = (rng.permutation(n) - n / 2 + 0.5) * gap
    return v.reshape(shape).astype(np.float32)


F32 = dict(eps=1e-2, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("stride, padding, dilation, groups, bias", [
    (1, 0, 1, 1, True),
    (2, 1, 1, 1, False),
    (1, (1, 2), 2, 1, True),
    (1, "same", 1, 2, True),
    (2, 0, 1, 4, True),   # depthwise
])
def test_conv2d(stride, padding, dilation, groups, bias):
    x, w = f32(2, 4, 7, 6), f32(4, 4 // groups, 3, 3)
    b = [f32(4)] if bias else []
    fn = lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, stride, padding, dilation, groups)
    assert_grads_close(fn, [x, w] + b, **F32)


def test_conv2d_fused_relu():
    x, w, b = distinct(2, 3, 5, 5, gap=0.01), f32(4, 3, 3, 3), f32(4)
    # keep pre-activations clear of the kink by more than a 1e-3 step can move them
    while np.abs(F.conv2d(x, w, b, 1, 1).numpy()).min() < 1e-2:
        b = f32(4)
    fn = lambda x, w, b: F.conv2d(x, w, b, 1, 1, activation="relu")
    assert_grads_close(fn, [x, w, b], eps=1e-3, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("k, s, p, d, ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, True),
                                               (2, 1, 0, 2, False)])
def test_max_pool2d(k, s, p, d, ceil):
    x = distinct(2, 3, 7, 7)
    assert_grads_close(lambda x: F.max_pool2d(x, k, s, p, d, ceil), [x], eps=1e-2, rtol=1e-3,
                       atol=1e-3)


@pytest.mark.parametrize("k, s, p, ceil, cip", [(2, None, 0, False, True), (3, 2, 1, True, False),
                                                 (3, 2, 1, False, True)])
def test_avg_pool2d(k, s, p, ceil, cip):
    assert_grads_close(lambda x: F.avg_pool2d(x, k, s, p, ceil, cip), [f32(2, 3, 7, 7)], **F32)


def test_global_avg_pool2d_and_adaptive():
    x = f32(2, 3, 5, 4)
    assert_grads_close(F.global_avg_pool2d, [x], **F32)
    assert_grads_close(lambda x: F.adaptive_avg_pool2d(x, 1), [x], **F32)


def test_relu_kernel_and_float64():
    assert_grads_close(F.relu, [distinct(3, 4, 5)], eps=1e-2, rtol=1e-3, atol=1e-3)
    assert_grads_close(F.relu, [distinct(3, 4).astype(np.float64)], eps=1e-4)


def test_linear_and_flatten():
    x, w, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((5, 6)), rng.standard_normal(5)
    assert_grads_close(lambda x, w, b: F.linear(F.flatten(x), w, b), [x, w, b])
    # 3-D input: linear over the last axis
    x3 = rng.standard_normal((2, 3, 6))
    assert_grads_close(lambda x, w, b: F.linear(x, w, b), [x3, w, b])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm(training):
    x = rng.standard_normal((4, 3, 3, 2)) * 2 + 1
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    fn = lambda x, w, b: F.batch_norm(x, None if training else rm, None if training else rv,
                                      w, b, training=training, eps=1e-5)
    assert_grads_close(fn, [x, w, b], eps=1e-6, rtol=1e-5, atol=1e-7)


def test_batch_norm_updates_running_stats_with_unbiased_variance():
    x = rng.standard_normal((5, 2, 3, 3)).astype(np.float32)
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    F.batch_norm(x, rm, rv, None, None, training=True, momentum=0.1)
    xs = x.transpose(1, 0, 2, 3).reshape(2, -1).astype(np.float64)
    np.testing.assert_allclose(rm, 0.1 * xs.mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * xs.var(1, ddof=1), rtol=1e-5)


@pytest.mark.parametrize("reduction, smoothing", [("mean", 0.0), ("sum", 0.0), ("none", 0.0),
                                                  ("mean", 0.1)])
def test_cross_entropy(reduction, smoothing):
    logits = rng.standard_normal((6, 5)) * 3
    y = rng.integers(0, 5, 6)
    assert_grads_close(lambda z: F.cross_entropy(z, y, reduction=reduction,
                                                        label_smoothing=smoothing), [logits])


def test_cross_entropy_value_and_stability():
    z = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]], np.float32)
    loss = F.cross_entropy(z, np.array([0, 2])).item()
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, np.log(3) / 2, rtol=1e-6)


def test_nll_loss_after_log_softmax_equals_cross_entropy():
    z = rng.standard_normal((5, 4))
    y = rng.integers(0, 4, 5)
    for red in ("mean", "sum", "none"):
        assert_grads_close(lambda z: F.nll_loss(F.log_softmax(z, dim=1), y, reduction=red), [z])
        z64 = Tensor(z, dtype=np.float64)  # both in numpy: the same maths to the last bit
        np.testing.assert_allclose(F.nll_loss(F.log_softmax(z64, dim=1), y, reduction=red).numpy(),
                                   F.cross_entropy(z64, y, reduction=red).numpy(), rtol=1e-12)
        # float32: cross_entropy is the compiled kernel (float64 sums), within rounding
        np.testing.assert_allclose(F.nll_loss(F.log_softmax(z, dim=1), y, reduction=red).numpy(),
                                   F.cross_entropy(z, y, reduction=red).numpy(), rtol=2e-6)
    with pytest.raises(ValueError, match="nll_loss: label 4 is out of range"):
        F.nll_loss(z, np.array([0, 1, 2, 3, 4]))


def test_torch_style_dim_names():
    t = rng.standard_normal((2, 3, 4))
    from convcore.nn import Tensor
    a = Tensor(t, dtype=np.float64)
    np.testing.assert_allclose(a.sum(dim=1, keepdim=True).numpy(), t.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(a.mean(dim=(0, 2)).numpy(), t.mean(axis=(0, 2)))
    np.testing.assert_allclose(F.softmax(a, dim=0).numpy(), F.softmax(a, axis=0).numpy())


def test_log_softmax_and_softmax():
    z = rng.standard_normal((3, 4))
    assert_grads_close(lambda z: F.log_softmax(z, axis=1), [z])
    assert_grads_close(lambda z: F.softmax(z, axis=0), [z])


def test_mse_loss_both_sides():
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    for red in ("mean", "sum", "none"):
        assert_grads_close(lambda a, b: F.mse_loss(a, b, reduction=red), [a, b])
    np.testing.assert_allclose(F.mse_loss(a, b).item(), ((a - b) ** 2).mean())
