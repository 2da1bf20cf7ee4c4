"""Sequential runs Conv2d / BatchNorm2d / Linear followed by ReLU as one fused
call: same outputs and gradients as the two modules run one after the other."""
import numpy as np
import pytest

from convcore import nn
from convcore.nn import Tensor
from convcore.nn import functional as F

rng = np.random.default_rng(21)


def layers():
    yield "conv", lambda: nn.Conv2d(3, 5, 3, padding=1), (2, 3, 6, 6)
    yield "batchnorm", lambda: nn.BatchNorm2d(3), (4, 3, 5, 5)
    yield "linear", lambda: nn.Linear(7, 6), (5, 7)
    yield "linear3d", lambda: nn.Linear(7, 6), (2, 3, 7)


@pytest.mark.parametrize("name, make, shape", list(layers()), ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_fused_relu_matches_separate_modules(name, make, shape, dtype, training):
    if name == "conv" and dtype == np.float64:
        pytest.skip("conv2d runs in float32 only (the compiled kernel)")
    nn.manual_seed(3)
    a = make()
    b = make()
    state = {k: rng.standard_normal(v.shape).astype(v.dtype) if v.ndim else v
             for k, v in a.state_dict().items()}
    if "running_var" in state:
        state["running_var"] = np.abs(state["running_var"]) + 0.5
    a.load_state_dict(state)
    b.load_state_dict(state)
    if dtype == np.float64:
        for m in (a, b):
            for p in m.parameters():
                p.data = p.data.astype(np.float64)
    fused = nn.Sequential(a, nn.ReLU()).train(training)
    b.train(training)
    x = rng.standard_normal(shape).astype(dtype)
    xa, xb = Tensor(x, requires_grad=True, dtype=dtype), Tensor(x, requires_grad=True, dtype=dtype)
    ya, yb = fused(xa), F.relu(b(xb))
    assert (ya.numpy() == 0).any() and (ya.numpy() > 0).any()
    np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=1e-6, atol=1e-6)
    g = rng.standard_normal(ya.shape).astype(dtype)
    ya.backward(g)
    yb.backward(g)
    np.testing.assert_allclose(xa.grad, xb.grad, rtol=1e-5, atol=1e-6)
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_allclose(pa.grad, pb.grad, rtol=1e-5, atol=1e-5, err_msg=n)


def test_bad_activation():
    with pytest.raises(ValueError, match="linear: activation must be None or 'relu'"):
        F.linear(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32), activation="tanh")
