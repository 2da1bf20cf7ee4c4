"""Module mechanics: registration, names, modes, state dicts, save/load, Sequential."""
import numpy as np
import pytest

from convcore import nn

rng = np.random.default_rng(4)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Linear(4, 3)
        self.scale = nn.Parameter(np.ones(1, np.float32))
        self.not_a_param = np.zeros(2)

    def forward(self, x):
        h = nn.functional.global_avg_pool2d(self.features(x)).flatten()
        return self.head(h) * self.scale


def test_named_parameters_and_buffers():
    m = Net()
    assert [n for n, _ in m.named_parameters()] == [
        "scale", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "head.weight", "head.bias"]
    assert [n for n, _ in m.named_buffers()] == [
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"]
    assert len(list(m.children())) == 2
    assert len(list(m.modules())) == 6
    assert "not_a_param" not in m.state_dict()


def test_shared_parameter_listed_once():
    lin = nn.Linear(3, 3)
    m = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(m.parameters())) == 2


def test_train_eval_propagates():
    m = Net()
    m.eval()
    assert all(not s.training for s in m.modules())
    m.train()
    assert all(s.training for s in m.modules())


def test_state_dict_round_trip_and_save_load(tmp_path):
    m1, m2 = Net(), Net()
    x = rng.standard_normal((2, 1, 5, 5)).astype(np.float32)
    m1(x)  # updates running stats
    m1.save(tmp_path / "w.npz")
    m2.load(tmp_path / "w.npz")
    for (k1, v1), (k2, v2) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert k1 == k2
        np.testing.assert_array_equal(v1, v2)
    assert int(m2.features[1].num_batches_tracked) == 1
    m1.eval(), m2.eval()
    np.testing.assert_array_equal(m1(x).numpy(), m2(x).numpy())


def test_load_state_dict_keeps_parameter_objects():
    m = Net()
    w = m.head.weight
    sd = m.state_dict()
    sd["head.weight"] = np.full((3, 4), 0.5)
    m.load_state_dict(sd)
    assert m.head.weight is w and np.all(w.data == 0.5) and w.data.dtype == np.float32


def test_load_state_dict_errors():
    m = Net()
    sd = m.state_dict()
    del sd["head.bias"]
    with pytest.raises(ValueError, match="missing keys: head.bias"):
        m.load_state_dict(sd)
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.bias"]
    sd = m.state_dict()
    sd["extra.weight"] = np.zeros(1)
    with pytest.raises(ValueError, match="unexpected keys: extra.weight"):
        m.load_state_dict(sd)
    sd = m.state_dict()
    sd["head.weight"] = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"head.weight: expected shape \(3, 4\), got \(4, 3\)"):
        m.load_state_dict(sd)
    with pytest.raises(ValueError, match="mis-shaped"):
        m.load_state_dict(sd, strict=False)
    with pytest.raises(TypeError, match="mapping"):
        m.load_state_dict([1, 2])


def test_sequential_list_behaviour():
    s = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten())
    assert len(s) == 3
    assert isinstance(s[0], nn.Conv2d) and isinstance(s[-1], nn.Flatten)
    assert [type(m).__name__ for m in s] == ["Conv2d", "ReLU", "Flatten"]
    sub = s[:2]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and sub[0] is s[0]
    with pytest.raises(IndexError):
        s[3]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), 3)


def test_fused_conv_relu_in_sequential_matches_separate():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    xa, xb = nn.Tensor(x, requires_grad=True), nn.Tensor(x, requires_grad=True)
    fused = nn.Sequential(conv, nn.ReLU())(xa)
    separate = nn.ReLU()(conv(xb))
    np.testing.assert_array_equal(fused.numpy(), separate.numpy())
    fused.sum().backward()
    gw = conv.weight.grad.copy()
    conv.zero_grad()
    separate.sum().backward()
    np.testing.assert_allclose(xa.grad, xb.grad, rtol=1e-6)
    np.testing.assert_allclose(gw, conv.weight.grad, rtol=1e-6)


def test_sequential_fusion_plan_follows_changes():
    """The fused-ReLU plan is cached; changing the modules must change what runs."""
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin)
    x = rng.standard_normal((4, 3)).astype(np.float32) * 5
    np.testing.assert_allclose(seq(x).numpy(), lin(x).numpy())
    assert (seq(x).numpy() < 0).any()
    seq.append(nn.ReLU())  # now fused: Linear + ReLU
    np.testing.assert_allclose(seq(x).numpy(), np.maximum(lin(x).numpy(), 0))
    seq.add_module("1", nn.Identity())  # replaced: no ReLU any more
    np.testing.assert_allclose(seq(x).numpy(), lin(x).numpy())


def test_dropout_train_and_eval():
    nn.manual_seed(0)
    d = nn.Dropout(0.25)
    x = np.ones((200, 100), np.float32)
    y = d(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    d.eval()
    np.testing.assert_array_equal(d(x).numpy(), x)
    t = nn.Tensor(np.ones((4, 5), np.float32), requires_grad=True)
    d.train()
    out = d(t)
    out.sum().backward()
    np.testing.assert_array_equal(t.grad, out.numpy())  # grad is the (scaled) mask


def test_batchnorm_momentum_none_is_cumulative_average():
    bn = nn.BatchNorm2d(2, momentum=None)
    xs = [rng.standard_normal((3, 2, 4, 4)).astype(np.float32) for _ in range(3)]
    for x in xs:
        bn(x)
    means = np.mean([x.mean(axis=(0, 2, 3)) for x in xs], axis=0)
    np.testing.assert_allclose(bn.running_mean, means, rtol=1e-5, atol=1e-6)


def test_assigning_before_init_is_explained():
    class Bad(nn.Module):
        def __init__(self):
            self.lin = nn.Linear(2, 2)
    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_repr_names_layers():
    s = repr(nn.Sequential(nn.Conv2d(1, 2, 3, stride=2, bias=False), nn.Linear(3, 4)))
    assert "Conv2d(1, 2, kernel_size=(3, 3), stride=(2, 2), bias=False)" in s
    assert "Linear(in_features=3, out_features=4, bias=True)" in s


def test_malloc_tuning_is_idempotent_and_optional():
    from convcore.nn import _malloc
    first = _malloc.tune()
    assert _malloc.tune() == first  # second call changes nothing
    assert isinstance(first, bool)
