"""CUDA build tests.

Two groups:
* tests that run everywhere: a CPU-only build says clearly that CUDA is not
  built in; a CUDA build on a machine without GPU/driver imports, reports
  is_available() == False with a reason, refuses device arrays clearly, and
  keeps the CPU path working;
* GPU tests (marked ``gpu``), skipped with the reason when no device is
  visible: device arrays, every op against the CPU kernels on the same inputs
  (the sweep mirrors the CPU conv tests: groups, dilation, stride, asymmetric
  padding, depthwise, 1x1, odd sizes) and against torch's cuDNN when
  torch.cuda is available.
"""
from __future__ import annotations

import numpy as np
import pytest

import convcore as cc
from convcore import _core
import convcore.cuda as ccu

BUILT = ccu.is_built()
AVAILABLE = ccu.is_available()
_skip_no_gpu = pytest.mark.skipif(not AVAILABLE,
                                  reason=f"no usable CUDA device: {ccu.unavailable_reason()}")


def gpu(f):
    """Marks a GPU test (`-m gpu` selects them) and skips it without a device."""
    return pytest.mark.gpu(_skip_no_gpu(f))


# --------------------------------------------------------------------------
# Everywhere
# --------------------------------------------------------------------------

def test_cpu_info_reports_cuda():
    info = cc.cpu_info()
    assert info["cuda_built"] is BUILT
    assert info["cuda"] is AVAILABLE


def test_not_built_message(monkeypatch):
    # The real check on a CPU-only build; simulated on a CUDA build.
    monkeypatch.setattr(ccu, "_BUILT", False)
    assert not ccu.is_available()
    assert ccu.device_count() == 0
    assert "CONVCORE_CUDA=ON" in ccu.unavailable_reason()
    with pytest.raises(RuntimeError, match=r"built without CUDA.*-Ccmake\.define\.CONVCORE_CUDA=ON"):
        ccu.asarray(np.zeros((2, 2), np.float32))
    with pytest.raises(RuntimeError, match="built without CUDA"):
        ccu.empty((2, 2))


@pytest.mark.skipif(BUILT, reason="checks the CPU-only build")
def test_cpu_only_build_has_no_device_array():
    assert _core.cuda_built is False
    with pytest.raises(RuntimeError, match="built without CUDA"):
        ccu.DeviceArray()
    with pytest.raises(RuntimeError, match="built without CUDA"):
        ccu.device_info()


@pytest.mark.skipif(not BUILT or AVAILABLE, reason="checks a CUDA build on a machine without a GPU")
def test_cuda_build_without_device():
    assert _core.cuda_built is True
    assert ccu.device_count() == 0
    assert not ccu.is_available()
    assert ccu.unavailable_reason()  # the CUDA error text, e.g. no driver
    with pytest.raises(RuntimeError, match="no usable CUDA device"):
        ccu.asarray(np.zeros((2, 2), np.float32))
    with pytest.raises(RuntimeError, match="no usable CUDA device"):
        ccu.synchronize()
    # The raw binding refuses too (no crash), and ops refuse host arrays.
    with pytest.raises(ValueError, match="does not exist"):
        _core.cuda.upload(np.zeros(3, np.float32), 0)
    with pytest.raises(TypeError, match="conv2d: input must be a convcore.cuda.DeviceArray"):
        _core.cuda.conv2d_forward(np.zeros((1, 1, 3, 3), np.float32),
                                  np.zeros((1, 1, 1, 1), np.float32), None, [1, 1],
                                  [0, 0, 0, 0], [1, 1], 1, 0.0, 0.0, None, False)


def test_cpu_path_unaffected():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 7, 7), dtype=np.float32)
    w = rng.standard_normal((6, 4, 3, 3), dtype=np.float32)
    y = cc.conv2d(x, w, padding=1)
    assert isinstance(y, np.ndarray) and y.shape == (2, 6, 7, 7)
    ref = _conv_ref(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    assert isinstance(cc.relu(x), np.ndarray)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

def _conv_ref(x, w, b, stride, pad, dil, groups):
    """float64 numpy conv2d (cross-correlation), pad = (top, left, bottom, right)."""
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[2]), (pad[1], pad[3])))
    OH = (H + pad[0] + pad[2] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    OW = (W + pad[1] + pad[3] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((N, K, OH, OW))
    Kg = K // groups
    for g in range(groups):
        xs = xp[:, g * Cg:(g + 1) * Cg]
        for r in range(kh):
            for s in range(kw):
                patch = xs[:, :, r * dil[0]: r * dil[0] + stride[0] * (OH - 1) + 1: stride[0],
                           s * dil[1]: s * dil[1] + stride[1] * (OW - 1) + 1: stride[1]]
                y[:, g * Kg:(g + 1) * Kg] += np.einsum("nchw,kc->nkhw", patch,
                                                       w[g * Kg:(g + 1) * Kg, :, r, s])
    if b is not None:
        y += b.astype(np.float64)[None, :, None, None]
    return y


def _close(dev, ref, rtol=1e-4, scale=None):
    got = dev.numpy() if isinstance(dev, ccu.DeviceArray) else dev
    ref = np.asarray(ref, dtype=np.float64)
    scale = scale if scale is not None else max(1.0, float(np.abs(ref).max(initial=0.0)))
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale)


def _rand(rng, shape):
    return rng.standard_normal(shape, dtype=np.float32)


# (N, C, H, W, K, kh, kw, stride, padding(t,l,b,r), dilation, groups)
CONV_CASES = [
    (2, 3, 11, 13, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (1, 16, 14, 14, 32, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),      # 1x1
    (2, 16, 15, 15, 24, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 1),      # strided 1x1
    (2, 8, 17, 9, 12, 3, 3, (2, 1), (1, 0, 2, 1), (1, 1), 1),        # asym padding/stride
    (1, 8, 16, 16, 8, 3, 3, (1, 1), (2, 2, 2, 2), (2, 2), 1),        # dilation
    (2, 12, 10, 10, 18, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 3),      # groups
    (2, 16, 12, 12, 16, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 16),     # depthwise
    (1, 8, 13, 13, 16, 5, 5, (2, 2), (2, 2, 2, 2), (1, 1), 8),       # depthwise x2 multiplier
    (2, 32, 9, 9, 32, 3, 3, (2, 2), (0, 1, 1, 0), (1, 2), 32),       # dw strided dilated asym
    (1, 3, 31, 29, 16, 7, 7, (2, 2), (3, 3, 3, 3), (1, 1), 1),       # stem-like 7x7
    (3, 130, 9, 9, 150, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),      # > 128 channels: tile edges
    (4, 64, 28, 28, 256, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),     # large tile path
    (2, 6, 8, 8, 4, 2, 4, (3, 2), (0, 3, 1, 0), (2, 1), 2),          # odd everything
    (1, 1, 12, 12, 5, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),        # one input channel
    (1, 256, 7, 7, 96, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),       # batch-1 deep: split-K
]


def _case_ids():
    return [f"N{c[0]}C{c[1]}H{c[2]}W{c[3]}K{c[4]}k{c[5]}x{c[6]}s{c[7]}p{c[8]}d{c[9]}g{c[10]}"
            for c in CONV_CASES]


def _make_case(case, seed=0):
    N, C, H, W, K, kh, kw, stride, pad, dil, groups = case
    rng = np.random.default_rng(seed)
    x = _rand(rng, (N, C, H, W))
    w = _rand(rng, (K, C // groups, kh, kw))
    b = _rand(rng, (K,))
    return x, w, b, dict(stride=stride, padding=pad, dilation=dil, groups=groups)


def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA")
    return torch


# --------------------------------------------------------------------------
# GPU: device arrays
# --------------------------------------------------------------------------

@gpu
def test_roundtrip_and_metadata():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    d = ccu.asarray(a)
    assert isinstance(d, ccu.DeviceArray)
    assert d.shape == (2, 3, 4) and d.dtype == np.float32 and d.ndim == 3 and d.size == 24
    assert d.nbytes == 96 and d.device == 0
    np.testing.assert_array_equal(d.numpy(), a)
    np.testing.assert_array_equal(ccu.asarray(a[:, ::2]).numpy(), a[:, ::2])  # non-contiguous
    i = ccu.asarray(np.arange(5, dtype=np.int64))
    assert i.dtype == np.int64
    np.testing.assert_array_equal(i.numpy(), np.arange(5))
    np.testing.assert_array_equal(d.reshape((4, -1)).numpy(), a.reshape(4, -1))
    np.testing.assert_array_equal(d.copy().numpy(), a)
    assert ccu.asarray(d) is d
    e = ccu.asarray(np.zeros((0, 3), np.float32))
    assert e.shape == (0, 3) and e.numpy().shape == (0, 3)
    with pytest.raises(TypeError, match="float32 or int64"):
        ccu.asarray(np.zeros(3, np.float64))
    with pytest.raises(TypeError, match="numpy array"):
        ccu.asarray([1.0, 2.0])
    with pytest.raises(ValueError, match="reshape"):
        d.reshape((5, 5))


@gpu
def test_cuda_array_interface():
    d = ccu.asarray(np.ones((2, 3), np.float32))
    cai = d.__cuda_array_interface__
    assert cai["version"] == 3 and cai["shape"] == (2, 3) and cai["typestr"] == "<f4"
    assert cai["data"][0] == d.data_ptr and cai["data"][1] is False
    assert cai["strides"] is None


@gpu
def test_torch_shares_memory_both_ways():
    torch = _torch_cuda()
    d = ccu.asarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    t = torch.from_dlpack(d)
    assert t.is_cuda and t.data_ptr() == d.data_ptr and tuple(t.shape) == (2, 3)
    t.mul_(2)  # a write through torch is visible to convcore: same memory
    np.testing.assert_array_equal(d.numpy(), 2 * np.arange(6, dtype=np.float32).reshape(2, 3))
    t2 = torch.as_tensor(d, device="cuda")  # through __cuda_array_interface__
    assert t2.data_ptr() == d.data_ptr
    # torch -> convcore without a copy; the view keeps the tensor alive.
    src = torch.arange(12, dtype=torch.float32, device="cuda").reshape(1, 3, 2, 2)
    v = ccu.asarray(src)
    assert v.data_ptr == src.data_ptr() and v.shape == (1, 3, 2, 2)
    del src
    np.testing.assert_array_equal(cc.relu(v).numpy(), np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2))
    with pytest.raises(ValueError, match="C-contiguous"):
        ccu.asarray(torch.zeros(4, 4, device="cuda").t())
    with pytest.raises(TypeError, match="float32"):
        ccu.asarray(torch.zeros(4, dtype=torch.float16, device="cuda"))


@gpu
def test_cupy_shares_memory():
    cp = pytest.importorskip("cupy")
    d = ccu.asarray(np.arange(4, dtype=np.float32))
    c = cp.asarray(d)
    assert c.data.ptr == d.data_ptr
    c += 1
    np.testing.assert_array_equal(d.numpy(), np.arange(4, dtype=np.float32) + 1)


@gpu
def test_mixing_host_and_device_is_a_type_error():
    x = ccu.asarray(np.zeros((1, 2, 5, 5), np.float32))
    w = np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(TypeError, match=r"conv2d: weight is a numpy array on the host"):
        cc.conv2d(x, w)
    with pytest.raises(TypeError, match=r"conv2d: input is a numpy array on the host"):
        cc.conv2d(x.numpy(), ccu.asarray(w))
    with pytest.raises(TypeError, match=r"conv2d: bias is a numpy array"):
        cc.conv2d(x, ccu.asarray(w), np.zeros(3, np.float32))
    with pytest.raises(TypeError, match=r"relu_backward: grad_out is a numpy array"):
        cc.relu_backward(np.zeros((1, 2, 5, 5), np.float32), x)
    with pytest.raises(TypeError, match=r"max_pool2d_backward: grad_out"):
        cc.max_pool2d_backward(np.zeros((1, 2, 2, 2), np.float32), x, 2)
    with pytest.raises(TypeError, match=r"conv2d: input must have dtype float32, got int64"):
        cc.conv2d(ccu.asarray(np.zeros((1, 2, 5, 5), np.int64)), ccu.asarray(w))


@gpu
def test_bad_shapes_are_value_errors():
    x = ccu.asarray(np.zeros((1, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match="conv2d: weight expects"):
        cc.conv2d(x, ccu.asarray(np.zeros((3, 3, 3, 3), np.float32)))
    with pytest.raises(ValueError, match="conv2d: kernel extent"):
        cc.conv2d(x, ccu.asarray(np.zeros((3, 4, 7, 7), np.float32)))
    with pytest.raises(ValueError, match="conv2d: bias must have 3 elements"):
        cc.conv2d(x, ccu.asarray(np.zeros((3, 4, 3, 3), np.float32)),
                  ccu.asarray(np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match="conv2d: input must be 4-D"):
        cc.conv2d(ccu.asarray(np.zeros((4, 5, 5), np.float32)),
                  ccu.asarray(np.zeros((3, 4, 3, 3), np.float32)))
    with pytest.raises(ValueError, match="max_pool2d: padding should be at most half"):
        cc.max_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="conv2d_backward: grad_out must have shape"):
        cc.conv2d_backward(ccu.asarray(np.zeros((1, 3, 4, 4), np.float32)), x,
                           ccu.asarray(np.zeros((3, 4, 3, 3), np.float32)))


# --------------------------------------------------------------------------
# GPU: conv2d against the CPU kernels, float64 numpy, and cuDNN
# --------------------------------------------------------------------------

@gpu
@pytest.mark.parametrize("case", CONV_CASES, ids=_case_ids())
def test_conv2d_forward_matches_cpu(case):
    x, w, b, kw = _make_case(case)
    ref = cc.conv2d(x, w, b, **kw)
    y = cc.conv2d(ccu.asarray(x), ccu.asarray(w), ccu.asarray(b), **kw)
    assert isinstance(y, ccu.DeviceArray) and y.shape == ref.shape
    _close(y, ref)
    _close(y, _conv_ref(x, w, b, kw["stride"], kw["padding"], kw["dilation"], kw["groups"]))


@gpu
@pytest.mark.parametrize("case", CONV_CASES, ids=_case_ids())
def test_conv2d_backward_matches_cpu(case):
    x, w, _, kw = _make_case(case, seed=1)
    gy = cc.conv2d(x, w, **kw)
    gy = np.random.default_rng(2).standard_normal(gy.shape, dtype=np.float32)
    rx, rw, rb = cc.conv2d_backward(gy, x, w, **kw)
    dx, dw, db = cc.conv2d_backward(ccu.asarray(gy), ccu.asarray(x), ccu.asarray(w), **kw)
    _close(dx, rx)
    _close(dw, rw, rtol=2e-4)  # long reductions, different summation order
    _close(db, rb, rtol=2e-4)
    _, _, none_b = cc.conv2d_backward(ccu.asarray(gy), ccu.asarray(x), ccu.asarray(w), bias=False,
                                      **kw)
    assert none_b is None


@gpu
@pytest.mark.parametrize("activation", [None, "relu", ("clip", -0.5, 0.75)])
@pytest.mark.parametrize("case", [CONV_CASES[0], CONV_CASES[6], CONV_CASES[10]],
                         ids=["dense", "depthwise", "wide"])
def test_conv2d_fused_epilogue(case, activation):
    x, w, b, kw = _make_case(case, seed=3)
    res = np.random.default_rng(4).standard_normal(cc.conv2d(x, w, **kw).shape, dtype=np.float32)
    ref = cc.functional.conv2d_fused(x, w, b, activation=activation, residual=res, **kw)
    y = cc.functional.conv2d_fused(ccu.asarray(x), ccu.asarray(w), ccu.asarray(b),
                                   activation=activation, residual=ccu.asarray(res), **kw)
    _close(y, ref)


@gpu
def test_conv2d_algorithm_names():
    # The last case has few output tiles and a long reduction: split-K.
    x, w, _, kw = _make_case(CONV_CASES[-1])
    assert ccu.conv_algorithm(x.shape, w.shape, tf32=False, **kw).endswith("-splitk")
    x, w, _, kw = _make_case(CONV_CASES[6])
    assert ccu.conv_algorithm(x.shape, w.shape, tf32=False, **kw) == "depthwise-direct"
    big = ccu.conv_algorithm((32, 256, 56, 56), (256, 256, 3, 3), padding=1, tf32=False)
    assert big in ("igemm-f32-128x128", "igemm-f32-64x128"), big   # no split-K when full
    # Few output channels: a tile that does not pad M to 128.
    narrow = ccu.conv_algorithm((32, 64, 56, 56), (32, 64, 1, 1), tf32=False)
    assert narrow in ("igemm-f32-32x256", "igemm-f32-64x128", "igemm-f32-64x64"), narrow
    if ccu.tf32_supported():
        assert ccu.conv_algorithm((32, 256, 56, 56), (256, 256, 3, 3), padding=1,
                                  tf32=True).startswith("igemm-tf32-wmma")


# Every forward kernel, forced onto every GEMM-shaped case (edge tiles,
# strides, groups, split-K), against the CPU kernels.
F32_KERNELS = ["igemm-f32-128x128", "igemm-f32-64x128", "igemm-f32-32x256", "igemm-f32-64x64",
               "igemm-f32-64x64-splitk"]
TF32_KERNELS = ["igemm-tf32-wmma-128x128", "igemm-tf32-wmma-64x128",
                "igemm-tf32-wmma-128x128-splitk", "igemm-tf32-wmma-64x128-splitk"]
GEMM_CASES = [c for c in CONV_CASES if c[1] // c[10] > 1]


@pytest.fixture
def forced_kernel():
    def force(name):
        _core.cuda._set_conv_kernel_override(name)
    yield force
    _core.cuda._set_conv_kernel_override("")


@gpu
@pytest.mark.parametrize("kernel", F32_KERNELS + TF32_KERNELS)
def test_conv2d_every_kernel(kernel, forced_kernel):
    tf32 = "tf32" in kernel
    if tf32 and not ccu.tf32_supported():
        pytest.skip("TF32 needs an sm_80+ GPU")
    forced_kernel(kernel)
    for i, case in enumerate(GEMM_CASES):
        x, w, b, kw = _make_case(case, seed=10 + i)
        res = np.random.default_rng(i).standard_normal(cc.conv2d(x, w, **kw).shape,
                                                       dtype=np.float32)
        ref = _conv_ref(x, w, b, kw["stride"], kw["padding"], kw["dilation"], kw["groups"])
        ref = np.clip(ref + res, -0.5, 2.0)
        y = cc.functional.conv2d_fused(ccu.asarray(x), ccu.asarray(w), ccu.asarray(b),
                                       activation=("clip", -0.5, 2.0), residual=ccu.asarray(res),
                                       algo="tf32" if tf32 else "fp32", **kw)
        name = ccu.conv_algorithm(x.shape, w.shape, tf32=tf32, **kw)
        # a reduction of one k-tile cannot be split
        assert name == kernel or (kernel.endswith("-splitk") and name == kernel[:-7]), name
        if tf32:
            err = np.linalg.norm(y.numpy() - ref) / np.linalg.norm(ref)
            assert err < 5e-3, (case, err)
        else:
            _close(y, ref)


@gpu
@pytest.mark.parametrize("kernel", TF32_KERNELS)
def test_tf32_rounds_to_nearest(kernel, forced_kernel):
    # Positive inputs: truncating operands to TF32 shrinks every product, a
    # mean relative error of about -1e-3 that compounds through deep nets;
    # rounding to nearest leaves no bias.
    if not ccu.tf32_supported():
        pytest.skip("TF32 needs an sm_80+ GPU")
    forced_kernel(kernel)
    rng = np.random.default_rng(9)
    x = rng.uniform(0.5, 1.5, (2, 64, 10, 10)).astype(np.float32)
    w = rng.uniform(0.5, 1.5, (48, 64, 3, 3)).astype(np.float32)
    y = cc.functional.conv2d_fused(ccu.asarray(x), ccu.asarray(w), padding=1, algo="tf32").numpy()
    ref = _conv_ref(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    bias = float(np.mean(y / ref - 1.0))
    assert abs(bias) < 3e-4, bias


@gpu
@pytest.mark.parametrize("kernel", ["igemm-f32-64x64-splitk", "igemm-tf32-wmma-64x128-splitk"])
def test_conv2d_split_k_is_deterministic(kernel, forced_kernel):
    # split-K sums per-split slices in a fixed order: no atomics, no timing
    if "tf32" in kernel and not ccu.tf32_supported():
        pytest.skip("TF32 needs an sm_80+ GPU")
    forced_kernel(kernel)
    x, w, b, kw = _make_case(CONV_CASES[-1], seed=7)
    dx, dw, db = ccu.asarray(x), ccu.asarray(w), ccu.asarray(b)
    algo = "tf32" if "tf32" in kernel else "fp32"
    ys = [cc.functional.conv2d_fused(dx, dw, db, algo=algo, **kw).numpy() for _ in range(4)]
    for y in ys[1:]:
        np.testing.assert_array_equal(y, ys[0])
    # grad_weight of a long reduction (N*OH*OW = 8192) runs split-K too
    rng = np.random.default_rng(8)
    x = ccu.asarray(rng.standard_normal((8, 16, 32, 32), dtype=np.float32))
    w = ccu.asarray(rng.standard_normal((16, 16, 3, 3), dtype=np.float32))
    gy = ccu.asarray(rng.standard_normal((8, 16, 32, 32), dtype=np.float32))
    gws = [cc.conv2d_backward(gy, x, w, padding=1)[1].numpy() for _ in range(4)]
    for g in gws[1:]:
        np.testing.assert_array_equal(g, gws[0])
    ref = cc.conv2d_backward(gy.numpy(), x.numpy(), w.numpy(), padding=1)[1]
    _close(gws[0], ref, rtol=2e-4)


@gpu
def test_conv2d_kernel_override_refuses_what_does_not_apply(forced_kernel):
    forced_kernel("igemm-f32-128x128-splitk")
    x = ccu.asarray(np.ones((1, 4, 6, 6), np.float32))
    w = ccu.asarray(np.ones((8, 4, 3, 3), np.float32))
    with pytest.raises(ValueError, match="override"):
        cc.conv2d(x, w)


@gpu
def test_conv2d_empty_batch():
    w = np.ones((4, 3, 3, 3), np.float32)
    x = np.zeros((0, 3, 8, 8), np.float32)
    y = cc.conv2d(ccu.asarray(x), ccu.asarray(w), padding=1)
    assert y.shape == (0, 4, 8, 8)
    gy = ccu.asarray(np.zeros((0, 4, 8, 8), np.float32))
    dx, dw, db = cc.conv2d_backward(gy, ccu.asarray(x), ccu.asarray(w), padding=1)
    assert dx.shape == (0, 3, 8, 8)
    np.testing.assert_array_equal(dw.numpy(), 0)
    np.testing.assert_array_equal(db.numpy(), 0)


@gpu
@pytest.mark.parametrize("case", [CONV_CASES[0], CONV_CASES[3], CONV_CASES[5], CONV_CASES[10],
                                  CONV_CASES[11]], ids=["dense", "asym", "groups", "wide", "1x1"])
def test_conv2d_tf32(case):
    if not ccu.tf32_supported():
        pytest.skip("TF32 needs an sm_80+ GPU")
    x, w, b, kw = _make_case(case, seed=5)
    ref = _conv_ref(x, w, b, kw["stride"], kw["padding"], kw["dilation"], kw["groups"])
    y = cc.functional.conv2d_fused(ccu.asarray(x), ccu.asarray(w), ccu.asarray(b), algo="tf32",
                                   **kw).numpy()
    # TF32 rounds inputs to 10 mantissa bits: ~1e-3 relative error per term.
    err = np.linalg.norm(y - ref) / np.linalg.norm(ref)
    assert err < 5e-3, err
    # Small layers may run on the FP32 tiles even in TF32 mode (faster there);
    # test_conv2d_every_kernel forces the tensor-core kernels onto these cases.
    assert ccu.conv_algorithm(x.shape, w.shape, tf32=True, **kw).startswith("igemm-")
    # Default stays FP32 (tight tolerance), and the global switch works.
    _close(cc.conv2d(ccu.asarray(x), ccu.asarray(w), ccu.asarray(b), **kw), ref)
    ccu.set_allow_tf32(True)
    try:
        y2 = cc.conv2d(ccu.asarray(x), ccu.asarray(w), ccu.asarray(b), **kw).numpy()
        np.testing.assert_array_equal(y2, y)
    finally:
        ccu.set_allow_tf32(False)


@gpu
@pytest.mark.parametrize("case", CONV_CASES, ids=_case_ids())
def test_conv2d_matches_cudnn(case):
    torch = _torch_cuda()
    F = torch.nn.functional
    x, w, b, kw = _make_case(case, seed=6)
    pt, pl, pb, pr = kw["padding"]
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        tx = torch.tensor(x, device="cuda", requires_grad=True)
        tw = torch.tensor(w, device="cuda", requires_grad=True)
        tb = torch.tensor(b, device="cuda", requires_grad=True)
        ty = F.conv2d(F.pad(tx, (pl, pr, pt, pb)), tw, tb, stride=kw["stride"],
                      dilation=kw["dilation"], groups=kw["groups"])
        gy = torch.randn_like(ty)
        ty.backward(gy)
    finally:
        torch.backends.cudnn.allow_tf32 = old
    # Inputs shared with torch without copies (the cuDNN results are torch's).
    dx_, dw_, gy_ = ccu.asarray(tx.detach()), ccu.asarray(tw.detach()), ccu.asarray(gy)
    y = cc.conv2d(dx_, dw_, ccu.asarray(tb.detach()), **kw)
    _close(y, ty.detach().cpu().numpy())
    gx, gw, gb = cc.conv2d_backward(gy_, dx_, dw_, **kw)
    _close(gx, tx.grad.cpu().numpy())
    _close(gw, tw.grad.cpu().numpy(), rtol=2e-4)
    _close(gb, tb.grad.cpu().numpy(), rtol=2e-4)


# --------------------------------------------------------------------------
# GPU: pooling and ReLU against the CPU kernels
# --------------------------------------------------------------------------

# (shape, kernel, stride, padding, dilation, ceil_mode)
POOL_CASES = [
    ((2, 3, 8, 8), 2, None, 0, 1, False),
    ((1, 4, 9, 11), 3, 2, 1, 1, False),
    ((1, 4, 9, 11), 3, 2, 1, 1, True),
    ((2, 2, 10, 7), (3, 2), (2, 1), (1, 0), (1, 1), True),
    ((1, 3, 12, 12), 3, 1, (1, 1, 0, 1), 1, False),      # asymmetric padding
    ((1, 2, 13, 13), 3, 2, 1, 2, False),                  # dilation (max only)
    ((3, 5, 7, 7), 7, 1, 0, 1, False),                   # whole-plane window
]


@gpu
@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_matches_cpu(case):
    shape, k, s, p, d, ceil = case
    rng = np.random.default_rng(7)
    x = _rand(rng, shape)
    x.reshape(-1)[::7] = x.reshape(-1)[1]  # ties: the first max must win
    y, ind = cc.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
    dy, dind = cc.max_pool2d(ccu.asarray(x), k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(dy.numpy(), y)
    np.testing.assert_array_equal(dind.numpy(), ind)
    gy = _rand(rng, y.shape)
    _close(cc.max_pool2d_backward(ccu.asarray(gy), ccu.asarray(x), k, s, p, d, ceil),
           cc.max_pool2d_backward(gy, x, k, s, p, d, ceil), rtol=1e-5)


@gpu
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[4] in (1, (1, 1))])
def test_avg_pool_matches_cpu(case, count_include_pad):
    shape, k, s, p, _, ceil = case
    rng = np.random.default_rng(8)
    x = _rand(rng, shape)
    y = cc.avg_pool2d(x, k, s, p, ceil, count_include_pad)
    _close(cc.avg_pool2d(ccu.asarray(x), k, s, p, ceil, count_include_pad), y, rtol=1e-5)
    gy = _rand(rng, y.shape)
    _close(cc.avg_pool2d_backward(ccu.asarray(gy), ccu.asarray(x), k, s, p, ceil,
                                  count_include_pad),
           cc.avg_pool2d_backward(gy, x, k, s, p, ceil, count_include_pad), rtol=1e-5)


@gpu
@pytest.mark.parametrize("shape", [(2, 3, 7, 7), (1, 5, 1, 1), (2, 4, 33, 35), (1, 1, 1, 100)])
def test_global_pools_match_cpu(shape):
    rng = np.random.default_rng(9)
    x = _rand(rng, shape)
    x.reshape(shape[0], shape[1], -1)[..., -1] = x.reshape(shape[0], shape[1], -1).max(-1)  # ties
    dx = ccu.asarray(x)
    _close(cc.global_avg_pool2d(dx), cc.global_avg_pool2d(x), rtol=1e-5)
    np.testing.assert_array_equal(cc.global_max_pool2d(dx).numpy(), cc.global_max_pool2d(x))
    gy = _rand(rng, (shape[0], shape[1], 1, 1))
    _close(cc.functional.global_avg_pool2d_backward(ccu.asarray(gy), dx),
           cc.functional.global_avg_pool2d_backward(gy, x), rtol=1e-6)
    np.testing.assert_array_equal(
        cc.functional.global_max_pool2d_backward(ccu.asarray(gy), dx).numpy(),
        cc.functional.global_max_pool2d_backward(gy, x))


@gpu
def test_nan_propagates_like_cpu():
    x = np.arange(2 * 3 * 6 * 6, dtype=np.float32).reshape(2, 3, 6, 6)
    x[0, 1, 2, 3] = np.nan
    dx = ccu.asarray(x)
    np.testing.assert_array_equal(cc.max_pool2d(dx, 2).numpy(), cc.max_pool2d(x, 2))
    np.testing.assert_array_equal(cc.global_max_pool2d(dx).numpy(), cc.global_max_pool2d(x))


@gpu
def test_relu_forward_backward():
    rng = np.random.default_rng(10)
    x = _rand(rng, (3, 5, 7, 9))
    x[0, 0, 0, :3] = 0.0
    gy = _rand(rng, x.shape)
    dx = ccu.asarray(x)
    np.testing.assert_array_equal(cc.relu(dx).numpy(), np.maximum(x, 0))
    np.testing.assert_array_equal(cc.relu_backward(ccu.asarray(gy), dx).numpy(),
                                  np.where(x > 0, gy, 0))
    same = cc.relu_(dx)
    assert same is dx
    np.testing.assert_array_equal(dx.numpy(), np.maximum(x, 0))
    odd = _rand(rng, (1000003,))
    np.testing.assert_array_equal(cc.relu(ccu.asarray(odd)).numpy(), np.maximum(odd, 0))


@gpu
def test_add():
    rng = np.random.default_rng(12)
    a, b = _rand(rng, (2, 3, 5, 5)), _rand(rng, (2, 3, 5, 5))
    da, db = ccu.asarray(a), ccu.asarray(b)
    np.testing.assert_array_equal(ccu.add(da, db).numpy(), a + b)
    np.testing.assert_array_equal(ccu.add(da, db, relu=True).numpy(), np.maximum(a + b, 0))
    with pytest.raises(ValueError, match="add: b must have shape"):
        ccu.add(da, ccu.asarray(np.zeros((2, 3), np.float32)))
    with pytest.raises(TypeError, match="add: b is a numpy array"):
        ccu.add(da, b)


@gpu
def test_pool_relu_match_cudnn():
    torch = _torch_cuda()
    F = torch.nn.functional
    rng = np.random.default_rng(11)
    x = _rand(rng, (2, 8, 15, 15))
    t = torch.tensor(x, device="cuda")
    dx = ccu.asarray(t)
    _close(cc.max_pool2d(dx, 3, 2, 1, ceil_mode=True), F.max_pool2d(t, 3, 2, 1, ceil_mode=True).cpu().numpy())
    _close(cc.avg_pool2d(dx, 3, 2, 1, count_include_pad=False),
           F.avg_pool2d(t, 3, 2, 1, count_include_pad=False).cpu().numpy(), rtol=1e-5)
    _close(cc.relu(dx), F.relu(t).cpu().numpy())


# --------------------------------------------------------------------------
# Everywhere: the Python routing layer against a fake device whose "kernels"
# are the CPU ones, so functional.py -> _cuda_functional.py -> binding calls
# are exercised without a GPU. On a CUDA build the fake's argument lists are
# checked against the real bindings' signatures.
# --------------------------------------------------------------------------

from fake_cuda import FakeDA as _FakeDA, FakeExt as _FakeExt  # noqa: E402


@pytest.fixture
def fake_device(monkeypatch):
    from convcore import _cuda_functional, functional
    ext = _FakeExt()
    monkeypatch.setattr(functional, "_DA", _FakeDA)
    monkeypatch.setattr(_cuda_functional, "_DA", _FakeDA)
    monkeypatch.setattr(_cuda_functional, "_ext", ext)
    return ext


@pytest.mark.skipif(not BUILT, reason="needs the CUDA bindings' signatures (CUDA build)")
def test_fake_device_matches_binding_signatures():
    import inspect
    for name, fn in inspect.getmembers(_FakeExt, inspect.isfunction):
        if name.startswith("_"):
            continue
        doc = getattr(_core.cuda, name).__doc__.splitlines()[0]
        real = doc[doc.index("(") + 1: doc.index(")")]
        n_real = len([a for a in real.split(",") if a.strip()])
        n_fake = len(inspect.signature(fn).parameters) - 1  # minus self
        assert n_real == n_fake, (name, doc)


def test_functional_routes_device_arrays(fake_device):
    for case in CONV_CASES:
        x, w, b, kw = _make_case(case)
        y = cc.conv2d(_FakeDA(x), _FakeDA(w), _FakeDA(b), **kw)
        assert isinstance(y, _FakeDA)
        np.testing.assert_array_equal(y.a, cc.conv2d(x, w, b, **kw))
        gy = np.ones(y.shape, np.float32)
        got = cc.conv2d_backward(_FakeDA(gy), _FakeDA(x), _FakeDA(w), **kw)
        for g, r in zip(got, cc.conv2d_backward(gy, x, w, **kw)):
            np.testing.assert_array_equal(g.a, r)
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9), dtype=np.float32)
    dx = _FakeDA(x)
    y, ind = cc.max_pool2d(dx, 3, 2, 1, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(ind.a, cc.max_pool2d(x, 3, 2, 1, ceil_mode=True,
                                                       return_indices=True)[1])
    gy = _FakeDA(np.ones(y.shape, np.float32))
    np.testing.assert_array_equal(cc.max_pool2d_backward(gy, dx, 3, 2, 1, ceil_mode=True).a,
                                  cc.max_pool2d_backward(gy.a, x, 3, 2, 1, ceil_mode=True))
    a = cc.avg_pool2d(dx, 2, padding=1, count_include_pad=False)
    np.testing.assert_array_equal(a.a, cc.avg_pool2d(x, 2, padding=1, count_include_pad=False))
    ga = _FakeDA(np.ones(a.shape, np.float32))
    np.testing.assert_array_equal(cc.avg_pool2d_backward(ga, dx, 2, padding=1).a,
                                  cc.avg_pool2d_backward(ga.a, x, 2, padding=1))
    np.testing.assert_array_equal(cc.global_max_pool2d(dx).a, cc.global_max_pool2d(x))
    np.testing.assert_array_equal(cc.global_avg_pool2d(dx).a, cc.global_avg_pool2d(x))
    g1 = _FakeDA(np.ones((2, 3, 1, 1), np.float32))
    np.testing.assert_array_equal(cc.functional.global_max_pool2d_backward(g1, dx).a,
                                  cc.functional.global_max_pool2d_backward(g1.a, x))
    np.testing.assert_array_equal(cc.relu(dx).a, cc.relu(x))
    np.testing.assert_array_equal(cc.relu_backward(dx, dx).a, cc.relu_backward(x, x))
    assert cc.relu_(dx) is dx and (dx.a >= 0).all()


def test_functional_device_errors(fake_device):
    x = _FakeDA(np.zeros((1, 2, 5, 5), np.float32))
    w = np.zeros((3, 2, 3, 3), np.float32)
    with pytest.raises(TypeError, match="conv2d: weight is a numpy array on the host"):
        cc.conv2d(x, w)
    with pytest.raises(TypeError, match="conv2d: input is a numpy array on the host"):
        cc.conv2d(x.a, _FakeDA(w))
    with pytest.raises(TypeError, match="conv2d: residual is a numpy array"):
        cc.functional.conv2d_fused(x, _FakeDA(w), residual=np.zeros((1, 3, 3, 3), np.float32))
    with pytest.raises(TypeError, match="relu_backward: input is a numpy array"):
        cc.relu_backward(x, x.a)
    with pytest.raises(TypeError, match="avg_pool2d_backward: input is a numpy array"):
        cc.avg_pool2d_backward(_FakeDA(np.zeros((1, 2, 2, 2), np.float32)), x.a, 2)
    with pytest.raises(TypeError, match="conv2d: input must have dtype float32, got float64"):
        cc.conv2d(_FakeDA(np.zeros((1, 2, 5, 5))), _FakeDA(w))
    with pytest.raises(ValueError, match="conv2d: weight expects 2 input channels"):
        cc.conv2d(_FakeDA(np.zeros((1, 4, 5, 5), np.float32)), _FakeDA(w))
    with pytest.raises(ValueError, match="max_pool2d_backward: grad_out must have shape"):
        cc.max_pool2d_backward(_FakeDA(np.zeros((1, 2, 3, 3), np.float32)), x, 2)


def test_tf32_opt_in_reaches_the_binding(fake_device):
    x = _FakeDA(np.ones((1, 2, 5, 5), np.float32))
    w = _FakeDA(np.ones((3, 2, 3, 3), np.float32))
    cc.conv2d(x, w)
    cc.functional.conv2d_fused(x, w, algo="tf32")
    cc.functional.conv2d_fused(x, w, algo="im2col_gemm")  # CPU names mean FP32 on the GPU
    ccu.set_allow_tf32(True)
    try:
        cc.conv2d(x, w)
        cc.functional.conv2d_fused(x, w, algo="fp32")
    finally:
        ccu.set_allow_tf32(False)
    assert [c[1] for c in fake_device.calls] == [False, True, False, True, False]
