"""The compiled float32 batch norm (forward, backward, fused ReLU, running stats).

Oracles: the same op run in float64 through nn's numpy path (itself checked
against finite differences in test_functional_grad.py), torch in float64
where installed, and float32 finite differences for the fused ReLU.
"""
import numpy as np
import pytest

import convcore
from convcore import _core, nn
from convcore.nn import Tensor
from convcore.nn import functional as F
from nn_gradcheck import assert_grads_close

rng = np.random.default_rng(11)


def run(x, w, b, rm, rv, training, relu=False, momentum=0.1, eps=1e-5, seed=0):
    """Output, grads (x, w, b) and the updated running stats of one pass with a random grad_out."""
    dt = x.dtype
    rm = None if rm is None else rm.copy()
    rv = None if rv is None else rv.copy()
    xt = Tensor(x, requires_grad=True, dtype=dt)
    wt = None if w is None else Tensor(w, requires_grad=True, dtype=dt)
    bt = None if b is None else Tensor(b, requires_grad=True, dtype=dt)
    y = F.batch_norm(xt, rm, rv, wt, bt, training=training, momentum=momentum, eps=eps,
                     activation="relu" if relu else None)
    g = np.random.default_rng(seed).standard_normal(x.shape).astype(dt)
    y.backward(g)
    grads = [xt.grad] + [t.grad for t in (wt, bt) if t is not None]
    return y.numpy(), grads, rm, rv


def as64(a):
    return None if a is None else a.astype(np.float64)


SHAPES = [(4, 3, 5, 5), (2, 16, 8, 8), (3, 5, 7, 9), (8, 4), (2, 3, 37), (1, 2, 33, 1)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_float32_kernel_matches_float64_reference(shape, training, affine, relu):
    C = shape[1]
    x = (rng.standard_normal(shape) * 1.5 + 0.7).astype(np.float32)
    w = rng.standard_normal(C).astype(np.float32) if affine else None
    b = rng.standard_normal(C).astype(np.float32) if affine else None
    rm = rng.standard_normal(C).astype(np.float32)
    rv = (rng.random(C) + 0.5).astype(np.float32)
    y, grads, rm1, rv1 = run(x, w, b, rm, rv, training, relu)
    y64, grads64, rm64, rv64 = run(x.astype(np.float64), as64(w), as64(b), rm, rv, training, relu)
    assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(y, y64, rtol=1e-5, atol=1e-5)
    for g, g64, name in zip(grads, grads64, ["x", "weight", "bias"]):
        np.testing.assert_allclose(g, g64, rtol=1e-4, atol=1e-4, err_msg=f"grad of {name}")
    np.testing.assert_allclose(rm1, rm64, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rv1, rv64, rtol=1e-6, atol=1e-6)
    if not training:  # eval mode leaves the buffers alone
        np.testing.assert_array_equal(rm1, rm)
        np.testing.assert_array_equal(rv1, rv)


def test_statistics_of_data_far_from_zero():
    """float64 sums of centred values: a 1e4 offset with unit spread still normalises exactly."""
    x = (1e4 + rng.standard_normal((16, 2, 16, 16))).astype(np.float32)
    y, _, rm, rv = run(x, None, None, np.zeros(2, np.float32), np.ones(2, np.float32), True,
                       momentum=1.0)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(0, 2, 3))
    var = x64.var(axis=(0, 2, 3))
    np.testing.assert_allclose(rm, mean, rtol=1e-7)
    np.testing.assert_allclose(rv, x64.var(axis=(0, 2, 3), ddof=1), rtol=1e-5)
    ref = (x64 - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    # y = x*a + b in float32 as torch computes it: the error is ~ulp(1e4)*a
    np.testing.assert_allclose(y, ref, atol=5e-3)
    assert abs(y.mean()) < 1e-3 and abs(y.std() - 1) < 1e-3


def test_fused_relu_gradients_finite_differences():
    # Values well away from the kink: the output is piecewise smooth there.
    x = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)
    w = np.array([1.5, -0.8], np.float32)
    b = np.array([0.3, 0.2], np.float32)
    rm, rv = np.array([0.1, -0.2], np.float32), np.array([0.9, 1.3], np.float32)
    y = F.batch_norm(x, rm, rv, w, b, training=False).numpy()
    x = np.where(np.abs(y) < 0.05, x + 0.2 * np.sign(w)[None, :, None, None], x)
    fn = lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False, activation="relu")
    assert_grads_close(fn, [x, w, b], eps=1e-3, rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("training", [True, False])
def test_sequential_fuses_batchnorm_relu(training):
    nn.manual_seed(1)
    fused = nn.Sequential(nn.BatchNorm2d(4), nn.ReLU())
    plain = nn.BatchNorm2d(4)
    # non-trivial affine parameters and running stats, the same in both
    state = {"weight": rng.standard_normal(4), "bias": rng.standard_normal(4),
             "running_mean": rng.standard_normal(4), "running_var": rng.random(4) + 0.5,
             "num_batches_tracked": np.array(3)}
    state = {k: np.asarray(v, np.float32 if v.ndim else np.int64) for k, v in state.items()}
    fused[0].load_state_dict(state)
    plain.load_state_dict(state)
    fused.train(training)
    plain.train(training)
    x = rng.standard_normal((3, 4, 6, 6)).astype(np.float32)
    xa, xb = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    ya, yb = fused(xa), F.relu(plain(xb))
    np.testing.assert_array_equal(ya.numpy(), yb.numpy())
    g = rng.standard_normal(x.shape).astype(np.float32)
    ya.backward(g)
    yb.backward(g)
    np.testing.assert_allclose(xa.grad, xb.grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused[0].weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused[0].running_var, plain.running_var)


@pytest.mark.parametrize("training", [True, False])
def test_against_torch(training):
    torch = pytest.importorskip("torch")
    x = (rng.standard_normal((6, 8, 9, 7)) * 3 - 2).astype(np.float32)
    w, b = rng.standard_normal(8).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    rm, rv = rng.standard_normal(8).astype(np.float32), (rng.random(8) + 0.5).astype(np.float32)
    y, grads, rm1, rv1 = run(x, w, b, rm, rv, training, momentum=0.3, eps=1e-3)
    ts = [torch.tensor(a.astype(np.float64), requires_grad=True) for a in (x, w, b)]
    trm, trv = torch.tensor(rm, dtype=torch.float64), torch.tensor(rv, dtype=torch.float64)
    yt = torch.nn.functional.batch_norm(ts[0], trm, trv, ts[1], ts[2], training=training,
                                        momentum=0.3, eps=1e-3)
    yt.backward(torch.tensor(np.random.default_rng(0).standard_normal(x.shape)))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    for g, t in zip(grads, ts):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rm1, trm.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rv1, trv.numpy(), rtol=1e-6, atol=1e-6)


def test_result_does_not_depend_on_thread_count():
    x = rng.standard_normal((8, 12, 20, 20)).astype(np.float32)
    w, b = rng.standard_normal(12).astype(np.float32), rng.standard_normal(12).astype(np.float32)
    prev = convcore.get_num_threads()
    out = []
    try:
        for t in (1, 2, 3):
            convcore.set_num_threads(t)
            y, grads, rm, rv = run(x, w, b, np.zeros(12, np.float32), np.ones(12, np.float32),
                                   True, relu=True)
            out.append((y, grads, rm, rv))
    finally:
        convcore.set_num_threads(prev)
    for other in out[1:]:
        np.testing.assert_array_equal(other[0], out[0][0])
        for a, b_ in zip(other[1], out[0][1]):
            np.testing.assert_array_equal(a, b_)
        np.testing.assert_array_equal(other[2], out[0][2])
        np.testing.assert_array_equal(other[3], out[0][3])


def test_float64_running_buffers_are_updated():
    x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    rm, rv = np.zeros(3), np.ones(3)  # float64: updated through a float32 copy
    F.batch_norm(x, rm, rv, training=True, momentum=0.5)
    xs = x.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    np.testing.assert_allclose(rm, 0.5 * xs.mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv, 0.5 + 0.5 * xs.var(1, ddof=1), rtol=1e-5)


def test_bad_input():
    x = np.zeros((2, 3, 4, 4), np.float32)
    three, four = np.ones(3, np.float32), np.ones(4, np.float32)
    with pytest.raises(ValueError, match=r"batch_norm: weight must have shape \(3,\).*got \(4,\)"):
        F.batch_norm(x, None, None, four, three, training=True)
    with pytest.raises(ValueError, match=r"batch_norm: running_var must have shape \(3,\)"):
        F.batch_norm(x, three.copy(), four.copy(), training=True)
    with pytest.raises(ValueError, match="needed when not training"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="both running_mean and running_var"):
        F.batch_norm(x, three.copy(), None, training=True)
    with pytest.raises(ValueError, match="at least 2-D"):
        F.batch_norm(np.zeros(5, np.float32), None, None, training=True)
    with pytest.raises(ValueError, match="activation must be None or 'relu'"):
        F.batch_norm(x, None, None, training=True, activation="gelu")
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(np.zeros((1, 3), np.float32), None, None, training=True)
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3.*expected 3 input channels, got 4"):
        nn.BatchNorm2d(3)(np.zeros((2, 4, 4, 4), np.float32))
    # the kernel entry points check on their own too
    with pytest.raises(ValueError, match=r"batch_norm: bias must have shape \(3,\)"):
        _core.batch_norm_forward(x, three, four, None, None, True, 0.1, 1e-5)
    with pytest.raises(TypeError, match="running_mean must be a C-contiguous float32"):
        _core.batch_norm_forward(x, None, None, np.zeros(3), np.ones(3), True, 0.1, 1e-5)
    _, mean, invstd = _core.batch_norm_forward(x, None, None, None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match="grad_out and input differ in shape"):
        _core.batch_norm_backward(x[:1], x, None, mean, invstd, None, True, True, False, False)
    with pytest.raises(ValueError, match=r"mean must have shape \(3,\)"):
        _core.batch_norm_backward(x, x, None, mean[:2], invstd, None, True, True, False, False)
