"""The training kernels behind nn's hot path, against float64 numpy references:
_core.cross_entropy (loss and gradient in one pass), _core.sgd_step_multi and
_core.adam_step_multi (a whole parameter group per call), _core.gemm's
bias/ReLU epilogue (Linear), and their bad-input errors."""
import numpy as np
import pytest

import convcore as cc
from convcore import _core, nn, optim
from convcore.nn import functional as F


# -- cross_entropy ---------------------------------------------------------------------------
def ce_reference(z, t, eps, reduction):
    """float64 loss and d loss / d z of softmax cross entropy with label smoothing."""
    z = z.astype(np.float64)
    n, c = z.shape
    lp = z - z.max(axis=1, keepdims=True)
    lp -= np.log(np.exp(lp).sum(axis=1, keepdims=True))
    per = -(1 - eps) * lp[np.arange(n), t] - eps / c * lp.sum(axis=1)
    d = np.exp(lp)
    d[np.arange(n), t] -= 1 - eps
    d -= eps / c
    if reduction == "mean":
        return per.mean(), d / max(n, 1)
    if reduction == "sum":
        return per.sum(), d
    return per, d


@pytest.mark.parametrize("n,c", [(1, 1), (64, 10), (7, 1000), (300, 3)])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("transposed", [False, True])
def test_cross_entropy_kernel_matches_float64(n, c, eps, reduction, transposed):
    rng = np.random.default_rng(n * 7 + c)
    z = (rng.standard_normal((c, n)).T if transposed else rng.standard_normal((n, c))) * 4
    z = z.astype(np.float32)  # transposed: a strided (Linear's output) view
    t = rng.integers(0, c, n)
    loss, d = _core.cross_entropy(z, t, eps, reduction)
    ref_loss, ref_d = ce_reference(z, t, eps, reduction)
    assert loss.dtype == np.float32 and d.dtype == np.float32 and d.shape == (n, c)
    assert loss.shape == ((n,) if reduction == "none" else ())
    np.testing.assert_allclose(loss, ref_loss, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(d, ref_d, rtol=0, atol=2e-7 * max(1, ref_d.shape[0] if
                                                                 reduction != "mean" else 1))


def test_cross_entropy_kernel_is_stable_and_thread_independent():
    z = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0], [-1e30, 0.0, 1e30]], np.float32)
    loss, d = _core.cross_entropy(z, np.array([0, 2, 2]), 0.0, "none")
    np.testing.assert_allclose(loss, [0.0, np.log(3), 0.0], atol=1e-6)
    assert np.isfinite(d).all()
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4000, 37)).astype(np.float32)  # several jobs
    t = rng.integers(0, 37, 4000)
    outs = []
    for threads in (1, 2, 3):
        with _Threads(threads):
            outs.append(_core.cross_entropy(z, t, 0.05, "mean"))
    for loss, d in outs[1:]:
        assert loss == outs[0][0]
        np.testing.assert_array_equal(d, outs[0][1])


class _Threads:
    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.prev = cc.get_num_threads()
        cc.set_num_threads(self.n)

    def __exit__(self, *exc):
        cc.set_num_threads(self.prev)


def test_cross_entropy_kernel_empty_batch():
    loss, d = _core.cross_entropy(np.zeros((0, 5), np.float32), np.zeros(0, np.int64), 0.0, "mean")
    assert np.isnan(loss) and d.shape == (0, 5)
    loss, _ = _core.cross_entropy(np.zeros((0, 5), np.float32), np.zeros(0, np.int64), 0.0, "sum")
    assert loss == 0.0


def test_cross_entropy_kernel_bad_input():
    z = np.zeros((3, 4), np.float32)
    t = np.array([0, 1, 2])
    with pytest.raises(TypeError, match="cross_entropy: logits must be float32"):
        _core.cross_entropy(z.astype(np.float64), t, 0.0, "mean")
    with pytest.raises(ValueError, match="cross_entropy: logits must be 2-D"):
        _core.cross_entropy(np.zeros((3, 4, 1), np.float32), t, 0.0, "mean")
    with pytest.raises(TypeError, match="cross_entropy: labels must be int64"):
        _core.cross_entropy(z, t.astype(np.float32), 0.0, "mean")
    with pytest.raises(ValueError, match=r"cross_entropy: labels must have shape \(3,\)"):
        _core.cross_entropy(z, np.array([0, 1]), 0.0, "mean")
    with pytest.raises(ValueError, match="cross_entropy: label 4 is out of range for 4 classes"):
        _core.cross_entropy(z, np.array([0, 4, 1]), 0.0, "mean")
    with pytest.raises(ValueError, match="cross_entropy: label -1 is out of range"):
        _core.cross_entropy(z, np.array([-1, 0, 1]), 0.0, "mean")
    with pytest.raises(ValueError, match="cross_entropy: reduction must be"):
        _core.cross_entropy(z, t, 0.0, "avg")
    with pytest.raises(ValueError, match="cross_entropy: label_smoothing must be in"):
        _core.cross_entropy(z, t, 1.0, "mean")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_functional_cross_entropy_float32_matches_float64_path(reduction):
    """nn's float32 loss (the kernel) and its float64 loss (numpy), values and gradients."""
    rng = np.random.default_rng(11)
    z = rng.standard_normal((9, 6))
    t = rng.integers(0, 6, 9)
    a = nn.Tensor(z.astype(np.float32), requires_grad=True)
    b = nn.Tensor(z.astype(np.float32), requires_grad=True, dtype=np.float64)
    la = F.cross_entropy(a, t, reduction=reduction, label_smoothing=0.2)
    lb = F.cross_entropy(b, t, reduction=reduction, label_smoothing=0.2)
    g = rng.standard_normal(la.shape).astype(np.float32) if reduction == "none" else None
    la.backward(g)
    lb.backward(g)
    np.testing.assert_allclose(la.numpy(), lb.numpy(), rtol=2e-6)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-5, atol=1e-7)
    # a scaled loss scales the stored gradient
    c = nn.Tensor(z.astype(np.float32), requires_grad=True)
    (F.cross_entropy(c, t, reduction="sum") * 3.0).backward()
    d = nn.Tensor(z.astype(np.float32), requires_grad=True)
    F.cross_entropy(d, t, reduction="sum").backward()
    np.testing.assert_allclose(c.grad, 3.0 * d.grad, rtol=1e-6)


# -- multi-tensor optimiser updates ----------------------------------------------------------
def sgd_reference(p, g, buf, lr, mom, damp, wd, nesterov, init):
    d = g + wd * p
    if mom:
        buf = d.copy() if init else mom * buf + (1 - damp) * d
        d = d + mom * buf if nesterov else buf
    return p - lr * d, buf


SIZES = [1, 5, 70001, 0, 33]  # 70001: more than one 64K chunk, both threads work


@pytest.mark.parametrize("hyper", [(0.1, 0.0, 0.0, 0.0, False), (0.05, 0.9, 0.0, 0.01, True),
                                   (0.2, 0.8, 0.3, 0.0, False)])
def test_sgd_step_multi_matches_float64(hyper):
    lr, mom, damp, wd, nesterov = hyper
    rng = np.random.default_rng(5)
    ps = [rng.standard_normal(n).astype(np.float32) for n in SIZES]
    ref_p = [p.astype(np.float64) for p in ps]
    bufs = [np.empty_like(p) for p in ps] if mom else None
    ref_b = [None] * len(ps)
    for step in range(3):
        gs = [rng.standard_normal(p.shape).astype(np.float32) for p in ps]
        _core.sgd_step_multi(ps, gs, bufs, lr, mom, damp, wd, nesterov, step == 0)
        for i, g in enumerate(gs):
            ref_p[i], ref_b[i] = sgd_reference(ref_p[i], g.astype(np.float64), ref_b[i], lr, mom,
                                               damp, wd, nesterov, step == 0)
    for i in range(len(ps)):
        np.testing.assert_allclose(ps[i], ref_p[i], rtol=1e-5, atol=1e-6)
        if mom:
            np.testing.assert_allclose(bufs[i], ref_b[i], rtol=1e-5, atol=1e-6)


def test_sgd_step_multi_equals_per_parameter_steps():
    rng = np.random.default_rng(6)
    a = [rng.standard_normal(n).astype(np.float32) for n in (17, 70001)]
    b = [x.copy() for x in a]
    ba, bb = [np.zeros_like(x) for x in a], [np.zeros_like(x) for x in a]
    g = [rng.standard_normal(x.shape).astype(np.float32) for x in a]
    _core.sgd_step_multi(a, g, ba, 0.1, 0.9, 0.0, 0.01, True, False)
    for p, gi, buf in zip(b, g, bb):
        _core.sgd_step(p, gi, buf, 0.1, 0.9, 0.0, 0.01, True, False)
    for x, y in zip(a + ba, b + bb):
        np.testing.assert_array_equal(x, y)


def adam_reference(p, g, m, v, vmax, t, lr, b1, b2, eps, wd, decoupled):
    if decoupled:
        p = p * (1 - lr * wd)
    else:
        g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    vv = v
    if vmax is not None:
        vmax = np.maximum(vmax, v)
        vv = vmax
    p = p - lr / (1 - b1 ** t) * m / (np.sqrt(vv) / np.sqrt(1 - b2 ** t) + eps)
    return p, m, v, vmax


@pytest.mark.parametrize("decoupled,amsgrad,wd", [(False, False, 0.0), (False, True, 0.1),
                                                  (True, False, 0.05), (True, True, 0.0)])
def test_adam_step_multi_matches_float64(decoupled, amsgrad, wd):
    rng = np.random.default_rng(8)
    lr, b1, b2, eps = 0.01, 0.85, 0.99, 1e-8
    ps = [rng.standard_normal(n).astype(np.float32) for n in SIZES]
    ms = [np.zeros_like(p) for p in ps]
    vs = [np.zeros_like(p) for p in ps]
    xs = [np.zeros_like(p) for p in ps] if amsgrad else None
    ref = [[p.astype(np.float64), np.zeros(p.shape), np.zeros(p.shape),
            np.zeros(p.shape) if amsgrad else None] for p in ps]
    # parameters at different step counts (one joined the group late)
    steps = [0, 0, 0, 2, 0]
    for _ in range(4):
        steps = [s + 1 for s in steps]
        gs = [rng.standard_normal(p.shape).astype(np.float32) for p in ps]
        _core.adam_step_multi(ps, gs, ms, vs, xs, steps, lr, b1, b2, eps, wd, decoupled)
        for r, g, t in zip(ref, gs, steps):
            r[:] = adam_reference(r[0], g.astype(np.float64), r[1], r[2], r[3], t, lr, b1, b2,
                                  eps, wd, decoupled)
    for i, r in enumerate(ref):
        np.testing.assert_allclose(ps[i], r[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ms[i], r[1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(vs[i], r[2], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_multi_updates_bad_input_change_nothing(name):
    p = [np.zeros(4, np.float32), np.zeros(3, np.float32)]
    g = [np.ones(4, np.float32), np.ones(3, np.float32)]
    s = [np.zeros(4, np.float32), np.zeros(3, np.float32)]
    op = f"{name}_step_multi"

    def call(params=p, grads=g, state=s):
        if name == "sgd":
            _core.sgd_step_multi(params, grads, state, 0.1, 0.9, 0.0, 0.0, False, False)
        else:
            _core.adam_step_multi(params, grads, state, [x.copy() for x in state], None, [1, 1],
                                  0.1, 0.9, 0.999, 1e-8, 0.0, False)
    with pytest.raises(TypeError, match=rf"{op}: params\[1\] must be a C-contiguous float32"):
        call(params=[p[0], np.zeros(3)])
    with pytest.raises(TypeError, match=rf"{op}: grads\[0\] must be a C-contiguous float32"):
        call(grads=[np.ones((4, 2), np.float32)[:, 0], g[1]])
    with pytest.raises(ValueError, match=rf"{op}: grads has 1 arrays for 2 parameters"):
        call(grads=g[:1])
    with pytest.raises(ValueError, match=rf"{op}: grads\[1\] has 4 elements, the parameter 3"):
        call(grads=[g[0], g[0]])
    with pytest.raises(TypeError, match=rf"{op}: params must be a list of arrays"):
        call(params=p[0])
    ro = np.zeros(3, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=rf"{op}: params\[1\] is read-only"):
        call(params=[p[0], ro])
    # everything is checked before anything is updated
    for x in p + s:
        assert not x.any()
    if name == "sgd":
        with pytest.raises(ValueError, match="sgd_step_multi: momentum needs momentum_buffers"):
            _core.sgd_step_multi(p, g, None, 0.1, 0.9, 0.0, 0.0, False, False)
    else:
        with pytest.raises(ValueError, match="adam_step_multi: steps has 1 counts for 2"):
            _core.adam_step_multi(p, g, s, s, None, [1], 0.1, 0.9, 0.999, 1e-8, 0.0, False)
        with pytest.raises(ValueError, match="adam_step_multi: step counts must be >= 1"):
            _core.adam_step_multi(p, g, s, s, None, [1, 0], 0.1, 0.9, 0.999, 1e-8, 0.0, False)


def test_optimizers_fall_back_per_parameter():
    """A float64 parameter in a float32 group: the kernel refuses the group, each goes its way."""
    rng = np.random.default_rng(12)
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                 lambda ps: optim.Adam(ps, lr=0.1)):
        a, b = nn.Parameter(np.zeros(5)), nn.Parameter(np.zeros(5))
        a_ref, b_ref = nn.Parameter(np.zeros(5)), nn.Parameter(np.zeros(5))
        a.data = rng.standard_normal(5).astype(np.float32)
        b.data = rng.standard_normal(5)  # float64: the numpy update
        a_ref.data, b_ref.data = a.data.astype(np.float64), b.data.copy()
        opt, opt_ref = make([a, b]), make([a_ref, b_ref])
        for _ in range(3):
            ga, gb = rng.standard_normal(5), rng.standard_normal(5)
            a.grad, b.grad = ga.astype(np.float32), gb
            a_ref.grad, b_ref.grad = ga.astype(np.float32).astype(np.float64), gb
            opt.step()
            opt_ref.step()
        assert a.data.dtype == np.float32 and b.data.dtype == np.float64
        np.testing.assert_allclose(a.data, a_ref.data, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.data, b_ref.data, rtol=1e-12)


# -- gemm epilogue and Linear's layouts ------------------------------------------------------
@pytest.mark.parametrize("m,k,n", [(10, 84, 64), (1, 1, 1), (120, 400, 3), (5, 0, 4)])
@pytest.mark.parametrize("relu", [False, True])
def test_gemm_bias_relu_matches_float64(m, k, n, relu):
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((n, k)).astype(np.float32)
    bias = rng.standard_normal(m).astype(np.float32)
    c = _core.gemm(a, b, False, True, bias, relu)
    ref = a.astype(np.float64) @ b.T.astype(np.float64) + bias[:, None]
    if relu:
        ref = np.maximum(ref, 0)
    np.testing.assert_allclose(c, ref, rtol=0, atol=1e-4 * max(1.0, np.abs(ref).max()))


def test_gemm_bias_bad_input():
    a, b = np.ones((3, 2), np.float32), np.ones((2, 4), np.float32)
    with pytest.raises(ValueError, match=r"gemm: bias must have shape \(3,\)"):
        _core.gemm(a, b, bias=np.ones(4, np.float32))
    with pytest.raises(TypeError, match="gemm: bias must be a C-contiguous float32"):
        _core.gemm(a, b, bias=np.ones(3))


@pytest.mark.parametrize("x_layout", ["rows", "transposed"])
@pytest.mark.parametrize("g_layout", ["rows", "transposed"])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_linear_every_layout_matches_float64(x_layout, g_layout, relu, bias):
    """Linear runs on whichever of x / x.T and g / g.T is contiguous (GEMM transpose
    flags instead of copies); each combination against float64 numpy."""
    rng = np.random.default_rng(21)
    rows, fin, fout = 13, 9, 7
    x = rng.standard_normal((rows, fin)).astype(np.float32)
    if x_layout == "transposed":
        x = np.ascontiguousarray(x.T).T
    w = rng.standard_normal((fout, fin)).astype(np.float32)
    b = rng.standard_normal(fout).astype(np.float32)
    g = rng.standard_normal((rows, fout)).astype(np.float32)
    if g_layout == "transposed":
        g = np.ascontiguousarray(g.T).T
    xt, wt = nn.Tensor(x, requires_grad=True), nn.Tensor(w, requires_grad=True)
    bt = nn.Tensor(b, requires_grad=True) if bias else None
    y = F.linear(xt, wt, bt, activation="relu" if relu else None)
    y.backward(g)
    x64, w64, g64 = x.astype(np.float64), w.astype(np.float64), g.astype(np.float64)
    ref = x64 @ w64.T + (b if bias else 0)
    if relu:
        g64 = g64 * (ref > 0)
        ref = np.maximum(ref, 0)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xt.grad, g64 @ w64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(wt.grad, g64.T @ x64, rtol=1e-5, atol=1e-5)
    if bias:
        np.testing.assert_allclose(bt.grad, g64.sum(axis=0), rtol=1e-5, atol=1e-5)
    assert xt.grad.shape == x.shape and wt.grad.flags.c_contiguous


# -- add (residual adds and gradient sums) ---------------------------------------------------
def test_add_kernel_matches_numpy_and_checks_shapes():
    rng = np.random.default_rng(30)
    for shape in [(0,), (7,), (3, 70001), (2, 16, 33, 31)]:
        a = rng.standard_normal(shape).astype(np.float32)
        b = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_array_equal(_core.add(a, b), a + b)  # float32 sums are exact ops
    a = rng.standard_normal((64, 300)).astype(np.float32)
    np.testing.assert_array_equal(_core.add(a.T, a.T), a.T + a.T)  # strided input
    with pytest.raises(ValueError, match="add: the two arrays differ in shape"):
        _core.add(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="add: the two arrays differ in shape"):
        _core.add(np.zeros((2, 3), np.float32), np.zeros(3, np.float32))


def test_residual_add_and_gradient_sum_on_large_tensors():
    """Above the kernel's size threshold: a residual add forward, and a node whose gradient
    arrives from two branches (summed in backward), against float64 numpy."""
    rng = np.random.default_rng(31)
    x0 = rng.standard_normal((4, 8, 32, 32)).astype(np.float32)  # 32K elements
    w0 = rng.standard_normal((4, 8, 32, 32)).astype(np.float32)
    x, w = nn.Tensor(x0, requires_grad=True), nn.Tensor(w0, requires_grad=True)
    h = F.relu(x)
    y = (h + h * w) + h  # h feeds three branches
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    h64 = np.maximum(x0.astype(np.float64), 0)
    np.testing.assert_allclose(y.numpy(), h64 + h64 * w0 + h64, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x.grad, g * (2 + w0) * (x0 > 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w.grad, g * h64, rtol=1e-6, atol=1e-6)


def test_linear_backward_bad_input():
    g, x, w = np.ones((4, 3), np.float32), np.ones((4, 5), np.float32), np.ones((3, 5), np.float32)
    _core.linear_backward(g, False, x, False, w, None, True, True, True)  # fits
    with pytest.raises(ValueError, match="linear_backward: grad_out has 4 features, the weight 3"):
        _core.linear_backward(g, True, x, False, w, None, True, True, True)
    with pytest.raises(ValueError, match="linear_backward: x does not match"):
        _core.linear_backward(g, False, x.T.copy(), False, w, None, True, True, True)
    with pytest.raises(ValueError, match="linear_backward: grad_out, x and weight must be 2-D"):
        _core.linear_backward(g, False, x, False, w[None], None, True, True, True)
    with pytest.raises(ValueError, match=r"linear_backward: y must have shape \(out, rows\)"):
        _core.linear_backward(g, False, x, False, w, np.ones((4, 3), np.float32), True, True, True)
    with pytest.raises(TypeError, match="linear_backward: y must be a C-contiguous float32"):
        _core.linear_backward(g, False, x, False, w, np.ones((3, 4)), True, True, True)
    gx, gw, gb = _core.linear_backward(g, False, x, False, w, None, False, True, False)
    assert gx is None and gb is None and gw.shape == (3, 5)
