"""Stride-1 unpadded 1x1 convs have two GEMM paths: B read in place from x
(the shifted GEMM) or packed into panels. The kernel table picks one per CPU
(cpu_info()["shifted_1x1"]: packed on Intel AVX-512, in place elsewhere), so
the test suite would only ever see one of them on a given machine. This runs
the same checks in a child process with CONVCORE_SHIFTED_1X1 forced to each
setting, against a float64 reference."""
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
cases = [(1, 64, 256, 56, 56), (1, 256, 64, 28, 28), (1, 48, 200, 14, 14),
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
print("ok")
"""


@pytest.mark.parametrize("shifted", [0, 1])
def test_1x1_both_b_paths(shifted):
    env = dict(os.environ, CONVCORE_SHIFTED_1X1=str(shifted))
    r = subprocess.run([sys.executable, "-c", _SCRIPT.format(want=bool(shifted))], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
