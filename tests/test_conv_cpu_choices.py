"""Choices the kernel table makes per CPU, so that one machine's test run
would only ever see one side of them: stride-1 unpadded 1x1 convs read B in
place from x (the shifted GEMM) or pack it (cpu_info()["shifted_1x1"]:
packed on Intel AVX-512), and the 7-row small-plane tiles loop over weight
panels outer or pixel tiles outer depending on the L1 size. Each setting
runs in a child process (CONVCORE_SHIFTED_1X1, CONVCORE_L1D_BYTES) against a
float64 reference."""
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
