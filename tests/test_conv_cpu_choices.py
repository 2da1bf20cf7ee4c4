"""Choices the kernel table makes per CPU, so that one machine's test run
would only ever see one side of them: stride-1 unpadded 1x1 convs read B in
place from x (the shifted GEMM) or pack it (cpu_info()["shifted_1x1"]:
packed on Intel AVX-512), the 7-row small-plane tiles loop over weight
panels outer or pixel tiles outer depending on the L1 size, and Winograd-
shaped layers run directly on planes of <= 49 outputs
(cpu_info()["winograd_small_direct"]). Each setting runs in a child process
(CONVCORE_SHIFTED_1X1, CONVCORE_L1D_BYTES, CONVCORE_WINOGRAD_SMALL_DIRECT)
against a float64 reference."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import convcore as cc

_SCRIPT = r"""
import numpy as np
import convcore as cc
from convcore.functional import conv2d_fused

want = {want}
assert cc.cpu_info()["shifted_1x1"] == want, cc.cpu_info()
rng = np.random.default_rng(0)
# (N, C, K, H, W): ResNet-like planes, 7-pixel tiles (196, 49), odd sizes,
# columns that leave ragged panels, and a batch
cases = [(1, 64, 256, 56, 56), (1, 256, 64, 28, 28), (1, 48, 200, 14, 14), (1, 96, 256, 14, 14),
         (1, 72, 300, 13, 15),
         (2, 33, 70, 13, 11), (1, 16, 40, 7, 7), (3, 20, 24, 9, 31), (1, 512, 96, 5, 5)]
for threads in (1, 2):
    cc.set_num_threads(threads)
    for N, C, K, H, W in cases:
        x = rng.standard_normal((N, C, H, W), dtype=np.float32)
        w = rng.standard_normal((K, C, 1, 1), dtype=np.float32)
        b = rng.standard_normal(K, dtype=np.float32)
        r = rng.standard_normal((N, K, H, W), dtype=np.float32)
        ref = np.einsum("nchw,kc->nkhw", x.astype(np.float64), w[:, :, 0, 0].astype(np.float64))
        ref += b[None, :, None, None]
        for act, res in ((None, None), ("relu", r), (("clip", 0.0, 6.0), None)):
            y = conv2d_fused(x, w, b, 1, 0, activation=act, residual=res)
            e = ref if res is None else ref + r
            if act == "relu":
                e = np.maximum(e, 0)
            elif act is not None:
                e = np.clip(e, 0, 6)
            scale = max(1.0, float(np.abs(ref).max()))
            err = float(np.abs(y - e).max()) / scale
            assert err < 1e-5, (N, C, K, H, W, act, threads, err)
    # 3x3 layers on the small-plane tiles (stride 2 to 7x7, stride 1 on 7x7
    # and on 14x14), weights wider than the pixels and narrower
    for N, C, K, H, s in [(1, 64, 96, 14, 2), (1, 40, 200, 7, 1), (2, 24, 40, 14, 1),
                          (1, 128, 48, 13, 2)]:
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        w = rng.standard_normal((K, C, 3, 3), dtype=np.float32)
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
        OH = (H - 1) // s + 1
        ref = np.zeros((N, K, OH, OH))
        for i in range(3):
            for j in range(3):
                patch = xp[:, :, i:i + s * (OH - 1) + 1:s, j:j + s * (OH - 1) + 1:s]
                ref += np.einsum("nchw,kc->nkhw", patch, w[:, :, i, j].astype(np.float64))
        for algo in ("auto", "implicit_gemm"):
            y = conv2d_fused(x, w, None, s, 1, algo=algo)
            err = float(np.abs(y - ref).max()) / max(1.0, float(np.abs(ref).max()))
            assert err < 1e-5, (N, C, K, H, s, algo, threads, err)
print("ok")
"""


@pytest.mark.parametrize("shifted,l1d", [(0, 0), (1, 0), (0, 1 << 20), (1, 1 << 20)])
def test_both_sides_of_cpu_choices(shifted, l1d):
    env = dict(os.environ, CONVCORE_SHIFTED_1X1=str(shifted), CONVCORE_L1D_BYTES=str(l1d))
    r = subprocess.run([sys.executable, "-c", _SCRIPT.format(want=bool(shifted))], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


_WINO_SCRIPT = r"""
import threading
import numpy as np
import convcore as cc
from convcore import _core

# (the direct path needs the 7-row tiles: AVX-512 tables only)
want = {want} and cc.cpu_info()["isa"] == "avx512"
assert cc.cpu_info()["winograd_small_direct"] == want, cc.cpu_info()
rng = np.random.default_rng(1)


def ref(x, w, b):
    N, C, H, W = x.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((N, w.shape[0], H, W))
    for i in range(3):
        for j in range(3):
            y += np.einsum("nchw,kc->nkhw", xp[:, :, i:i + H, j:j + W],
                           w[:, :, i, j].astype(np.float64))
    return y + b[None, :, None, None]


# One packed layer (Winograd-shaped: both channel counts >= 64) run on planes
# that take each path in turn: the small ones directly where the CPU says so,
# the larger ones by Winograd. 96x80 also has F(4x4) and keeps its original
# weights; 160x128 and 400x64 (two k blocks) take them back from the F(2x2)
# copy for the direct path.
for C, K in ((96, 80), (160, 128), (400, 64)):
    w = rng.standard_normal((K, C, 3, 3), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    pk = _core.PackedConv2d(w, b, [1, 1], [1, 1, 1, 1], [1, 1], 1, -np.inf, np.inf)
    seen = set()
    for H, W in ((7, 7), (14, 14), (7, 7), (1, 7), (6, 6), (5, 7), (12, 12)):
        x = rng.standard_normal((2, C, H, W), dtype=np.float32)
        e = ref(x, w, b)
        err = float(np.abs(pk.run(x) - e).max()) / float(np.abs(e).max())
        algo = pk.algo([2, C, H, W])
        seen.add(algo)
        assert err < 1e-5, (C, K, H, W, algo, err)
        if H * W in (7, 35, 49):
            assert (algo == "implicit_gemm") == want, (H, W, algo)
    assert any(a.startswith("winograd") for a in seen), seen

    # Python threads running both plane sizes on one packed layer at once
    xs = [rng.standard_normal((1, C, h, h), dtype=np.float32) for h in (7, 14)]
    refs = [ref(x, w, b) for x in xs]
    bad = []

    def work(i):
        for _ in range(20):
            x, e = xs[i % 2], refs[i % 2]
            if float(np.abs(pk.run(x) - e).max()) / float(np.abs(e).max()) > 1e-5:
                bad.append(i)

    cc.set_num_threads(2)
    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not bad, bad
print("ok")
"""


@pytest.mark.parametrize("direct", [0, 1])
def test_winograd_layers_on_small_planes(direct):
    env = dict(os.environ, CONVCORE_WINOGRAD_SMALL_DIRECT=str(direct))
    r = subprocess.run([sys.executable, "-c", _WINO_SCRIPT.format(want=bool(direct))], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
