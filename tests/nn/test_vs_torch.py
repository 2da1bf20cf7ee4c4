"""Modules, losses and optimisers against PyTorch with identical weights."""
import numpy as np
import pytest

from convcore import nn, optim
from convcore.nn import functional as F

torch = pytest.importorskip("torch")
tnn = torch.nn

rng = np.random.default_rng(3)


def build_pair(make_cc, make_torch, seed=0):
    """The same architecture in both; torch's init copied into convcore via load_state_dict."""
    torch.manual_seed(seed)
    tm = make_torch().double()  # float64 reference
    cm = make_cc()
    cm.load_state_dict({k: v.float() for k, v in tm.state_dict().items()})
    return cm, tm


def compare(cm, tm, x, y, train=True, rtol=2e-4, atol=2e-5):
    cm.train(train)
    tm.train(train)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    out_t = tm(xt)
    loss_t = tnn.functional.cross_entropy(out_t, torch.tensor(y))
    loss_t.backward()
    xc = nn.Tensor(x, requires_grad=True)
    out_c = cm(xc)
    loss_c = F.cross_entropy(out_c, y)
    loss_c.backward()
    np.testing.assert_allclose(out_c.numpy(), out_t.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(loss_c.item(), loss_t.item(), rtol=rtol)
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(tm.named_parameters())
    names = [n for n, _ in cm.named_parameters()]
    assert names == list(tparams)
    for n, p in cm.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[n].grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"grad of {n}")
    for n, b in cm.named_buffers():
        np.testing.assert_allclose(b, tm.state_dict()[n].numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"buffer {n}")


def lenet(lib):
    return lib.Sequential(
        lib.Conv2d(1, 6, 5, padding=2), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(6, 16, 5), lib.ReLU(), lib.AvgPool2d(2),
        lib.Flatten(), lib.Linear(16 * 5 * 5, 32), lib.ReLU(), lib.Linear(32, 10))


def test_lenet_outputs_and_gradients():
    cm, tm = build_pair(lambda: lenet(nn), lambda: lenet(tnn))
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    compare(cm, tm, x, rng.integers(0, 10, 8))


def odd_convs(lib):
    return lib.Sequential(
        lib.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), lib.BatchNorm2d(8), lib.ReLU(),
        lib.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2),
        lib.Conv2d(8, 8, 3, padding=1, groups=8), lib.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        lib.BatchNorm2d(8, affine=False), lib.AdaptiveAvgPool2d(1), lib.Flatten(), lib.Linear(8, 5))


@pytest.mark.parametrize("train", [True, False])
def test_strided_dilated_grouped_batchnorm(train):
    cm, tm = build_pair(lambda: odd_convs(nn), lambda: odd_convs(tnn))
    if not train:  # non-trivial running statistics
        for m in (cm, tm):
            m.train()
            for _ in range(2):
                m(torch.tensor(rng.standard_normal((4, 4, 11, 11))) if m is tm else
                  rng.standard_normal((4, 4, 11, 11)).astype(np.float32))
        cm.load_state_dict({k: v.float() for k, v in tm.state_dict().items()})
    x = rng.standard_normal((4, 4, 11, 11)).astype(np.float32)
    compare(cm, tm, x, rng.integers(0, 5, 4), train=train)


class ResBlock:
    """The same residual block for both libraries (attribute-registered submodules)."""

    @staticmethod
    def make(lib, base):
        class Block(base):
            def __init__(self, c):
                super().__init__()
                self.conv1 = lib.Conv2d(c, c, 3, padding=1, bias=False)
                self.bn1 = lib.BatchNorm2d(c)
                self.relu = lib.ReLU()
                self.conv2 = lib.Conv2d(c, c, 3, padding=1, bias=False)
                self.bn2 = lib.BatchNorm2d(c)

            def forward(self, x):
                out = self.relu(self.bn1(self.conv1(x)))
                out = self.bn2(self.conv2(out))
                return self.relu(out + x)
        return Block


def resnet(lib, base):
    Block = ResBlock.make(lib, base)
    return lib.Sequential(lib.Conv2d(3, 8, 3, padding=1), lib.ReLU(), Block(8), Block(8),
                          lib.AdaptiveAvgPool2d(1), lib.Flatten(), lib.Linear(8, 10))


def test_custom_residual_module():
    cm, tm = build_pair(lambda: resnet(nn, nn.Module), lambda: resnet(tnn, tnn.Module))
    assert list(cm.state_dict()) == list(tm.state_dict())
    x = rng.standard_normal((4, 3, 12, 12)).astype(np.float32)
    compare(cm, tm, x, rng.integers(0, 10, 4))


def test_state_dict_shapes_match_torch_and_load_back():
    cm = lenet(nn)
    tm = lenet(tnn)
    sd_c, sd_t = cm.state_dict(), tm.state_dict()
    assert list(sd_c) == list(sd_t)
    for k in sd_t:
        assert sd_c[k].shape == tuple(sd_t[k].shape), k
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in sd_c.items()})


def test_default_init_matches_torch_distribution():
    nn.manual_seed(0)
    conv, lin = nn.Conv2d(16, 32, 3), nn.Linear(200, 50)
    bound_conv = 1 / np.sqrt(16 * 9)
    assert np.abs(conv.weight.data).max() <= bound_conv
    assert np.abs(conv.weight.data).max() > 0.95 * bound_conv
    assert np.abs(conv.bias.data).max() <= bound_conv
    np.testing.assert_allclose(conv.weight.data.std(), bound_conv / np.sqrt(3), rtol=0.05)
    assert np.abs(lin.weight.data).max() <= 1 / np.sqrt(200)
    t = tnn.Conv2d(16, 32, 3)
    np.testing.assert_allclose(conv.weight.data.std(), t.weight.detach().numpy().std(), rtol=0.08)


@pytest.mark.parametrize("make", [
    lambda lib, ps: lib.SGD(ps, lr=0.1),
    lambda lib, ps: lib.SGD(ps, lr=0.1, momentum=0.9),
    lambda lib, ps: lib.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    lambda lib, ps: lib.SGD(ps, lr=0.1, momentum=0.5, dampening=0.3),
    lambda lib, ps: lib.Adam(ps, lr=1e-2),
    lambda lib, ps: lib.Adam(ps, lr=1e-2, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True),
    lambda lib, ps: lib.AdamW(ps, lr=1e-2, weight_decay=0.1),
])
def test_optimizers_match_torch(make):
    p0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(6)]
    pc = nn.Parameter(p0)
    pc.data = p0.copy()  # float64 for a tight comparison
    pt = torch.tensor(p0, requires_grad=True)
    oc, ot = make(optim, [pc]), make(torch.optim, [pt])
    for g in grads:
        oc.zero_grad()
        ot.zero_grad()
        pc.grad = g.copy()
        pt.grad = torch.tensor(g)
        oc.step()
        ot.step()
        np.testing.assert_allclose(pc.data, pt.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda lib, o: lib.StepLR(o, step_size=3, gamma=0.5),
    lambda lib, o: lib.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
])
def test_schedulers_match_torch(make):
    pc, pt = nn.Parameter(np.zeros(2)), torch.zeros(2, requires_grad=True)
    oc, ot = optim.SGD([pc], lr=0.3), torch.optim.SGD([pt], lr=0.3)
    sc, st = make(optim.lr_scheduler, oc), make(torch.optim.lr_scheduler, ot)
    for _ in range(12):
        np.testing.assert_allclose(sc.get_last_lr(), st.get_last_lr(), rtol=1e-12)
        oc.step()
        ot.step()
        sc.step()
        st.step()


def test_mse_loss_matches_torch():
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    at = torch.tensor(a, requires_grad=True)
    ac = nn.Tensor(a, requires_grad=True, dtype=np.float64)
    lt = tnn.functional.mse_loss(at, torch.tensor(b))
    lc = F.mse_loss(ac, b)
    lt.backward()
    lc.backward()
    np.testing.assert_allclose(lc.item(), lt.item(), rtol=1e-12)
    np.testing.assert_allclose(ac.grad, at.grad.numpy(), rtol=1e-12)
