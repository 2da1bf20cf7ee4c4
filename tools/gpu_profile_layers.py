"""A few conv layers, one launch per (layer, precision), for `ncu` to profile
(tools/gpu_check.sh --ncu); ncu replays each kernel, so no warm-up."""
import numpy as np

import convcore as cc
import convcore.cuda as ccu

LAYERS = [  # (name, N, C, H, W, K, k, stride, pad)
    ("r50.l3.3x3.256.b32", 32, 256, 14, 14, 256, 3, 1, 1),
    ("r50.l2.1x1.256-128.b32", 32, 256, 56, 56, 128, 1, 1, 0),
]

for name, N, C, H, W, K, k, s, p in LAYERS:
    rng = np.random.default_rng(0)
    x = ccu.asarray(rng.standard_normal((N, C, H, W), dtype=np.float32))
    w = ccu.asarray(rng.standard_normal((K, C, k, k), dtype=np.float32) * 0.05)
    for algo in ("fp32", "tf32"):
        print(name, algo, ccu.conv_algorithm((N, C, H, W), (K, C, k, k), s, p, tf32=algo == "tf32"))
        cc.functional.conv2d_fused(x, w, stride=s, padding=p, algo=algo)
    ccu.synchronize()
