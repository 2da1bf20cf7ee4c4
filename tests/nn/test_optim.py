"""Optimizer checkpointing and scheduler/optimizer interplay (torch comparisons live in test_vs_torch)."""
import numpy as np
import pytest

from convcore import nn, optim


def run(opt_factory, p0, grads, split=None):
    """Apply `grads` with a fresh optimizer; with `split`, checkpoint and resume midway."""
    p = nn.Parameter(p0.copy())
    opt = opt_factory([p])
    for i, g in enumerate(grads):
        if split is not None and i == split:
            sd = opt.state_dict()
            p2 = nn.Parameter(p.data.copy())
            opt = opt_factory([p2])
            opt.load_state_dict(sd)
            p = p2
        p.grad = g
        opt.step()
    return p.data


@pytest.mark.parametrize("factory", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: optim.AdamW(ps, lr=0.01),
])
def test_checkpoint_resume_matches_uninterrupted(factory):
    rng = np.random.default_rng(7)
    p0 = rng.standard_normal((3, 2)).astype(np.float32)
    grads = [rng.standard_normal((3, 2)).astype(np.float32) for _ in range(6)]
    np.testing.assert_array_equal(run(factory, p0, grads), run(factory, p0, grads, split=3))


def test_state_dict_is_a_copy_and_keeps_lr():
    p = nn.Parameter(np.ones(2, np.float32))
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    sched = optim.StepLR(opt, step_size=1, gamma=0.1)
    p.grad = np.ones(2, np.float32)
    opt.step()
    sched.step()
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"][:] = 123
    assert opt.state[id(p)]["momentum_buffer"][0] != 123
    opt2 = optim.SGD([nn.Parameter(np.ones(2, np.float32))], lr=0.5, momentum=0.9)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.05)


def test_load_state_dict_mismatch():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    sd = optim.SGD([a, b], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="do not match"):
        optim.SGD([a], lr=0.1).load_state_dict(sd)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    a.grad = np.ones(2)
    opt.step()
    with pytest.raises(ValueError, match="has shape"):
        optim.SGD([b], lr=0.1, momentum=0.9).load_state_dict(opt.state_dict())


def test_parameter_groups_with_their_own_lr():
    a, b = nn.Parameter(np.zeros(1)), nn.Parameter(np.zeros(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad = b.grad = np.ones(1)
    opt.step()
    assert a.data[0] == pytest.approx(-0.1) and b.data[0] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="more than one group"):
        optim.SGD([{"params": [a]}, {"params": [a]}], lr=0.1)


def test_step_skips_parameters_without_grad():
    a = nn.Parameter(np.ones(2))
    opt = optim.Adam([a], lr=0.1)
    opt.step()
    np.testing.assert_array_equal(a.data, np.ones(2))


@pytest.mark.parametrize("kw", [
    dict(momentum=0.0),
    dict(momentum=0.9),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.8, dampening=0.3, weight_decay=0.01),
    dict(momentum=0.9, nesterov=True, weight_decay=0.05),
    dict(weight_decay=0.1),
])
def test_sgd_float32_kernel_matches_float64_update(kw):
    """float32 parameters take the compiled one-pass update; float64 the numpy one."""
    rng = np.random.default_rng(9)
    p0 = rng.standard_normal(70001).astype(np.float32)  # > one 64K chunk: both threads work
    grads = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(4)]
    a = nn.Parameter(p0.copy())
    b = nn.Parameter(p0.astype(np.float64))
    oa, ob = optim.SGD([a], lr=0.05, **kw), optim.SGD([b], lr=0.05, **kw)
    for g in grads:
        a.grad, b.grad = g, g.astype(np.float64)
        oa.step()
        ob.step()
    assert a.data.dtype == np.float32
    np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-6)
    if kw.get("momentum"):
        np.testing.assert_allclose(oa.state[id(a)]["momentum_buffer"],
                                   ob.state[id(b)]["momentum_buffer"], rtol=1e-5, atol=1e-6)


def test_sgd_kernel_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    p0 = rng.standard_normal((30, 7)).astype(np.float32)
    grads = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(5)]
    a = nn.Parameter(p0.copy())
    t = torch.nn.Parameter(torch.tensor(p0))
    kw = dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    oa, ot = optim.SGD([a], **kw), torch.optim.SGD([t], **kw)
    for g in grads:
        a.grad, t.grad = g, torch.tensor(g)
        oa.step()
        ot.step()
    np.testing.assert_allclose(a.data, t.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_sgd_kernel_refuses_what_it_cannot_update_in_place():
    from convcore import _core
    p = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="the parameter must be a C-contiguous float32"):
        _core.sgd_step(np.zeros(4), p, None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match="momentum_buffer must be a C-contiguous float32"):
        _core.sgd_step(p, p, np.zeros(4), 0.1, 0.9, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match="differ in size"):
        _core.sgd_step(p, np.zeros(3, np.float32), None, 0.1, 0.0, 0.0, 0.0, False, False)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core.sgd_step(ro, p, None, 0.1, 0.0, 0.0, 0.0, False, False)
