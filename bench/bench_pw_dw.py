"""The fused 1x1 + depthwise operator against the two convolutions it
replaces, on the MobileNetV2 / EfficientNet-Lite block shapes (batch 1).

    PYTHONPATH=python python3 bench/bench_pw_dw.py --threads 1 2

Times are the minimum over interleaved rounds (fused, 1x1, depthwise in
turn), weights packed once as the runner does (and hot in cache: inside a
model they come from memory, ~10-20% slower for the 7x7 shapes).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from convcore import _core  # noqa: E402

# (input channels, expanded channels, plane, depthwise kernel, stride)
SHAPES = [(16, 96, 112, 3, 2), (24, 144, 56, 3, 1), (24, 144, 56, 3, 2), (32, 192, 28, 3, 1),
          (40, 240, 28, 5, 1), (64, 384, 14, 3, 1), (96, 576, 14, 3, 1), (112, 672, 14, 5, 2),
          (160, 960, 7, 3, 1), (192, 1152, 7, 5, 1)]


def make(cin, e, h, k, s, rng):
    x = rng.standard_normal((1, cin, h, h)).astype(np.float32)
    w1 = (rng.standard_normal((e, cin, 1, 1)) / np.sqrt(cin)).astype(np.float32)
    b1 = rng.standard_normal(e).astype(np.float32)
    wd = rng.standard_normal((e, 1, k, k)).astype(np.float32)
    bd = rng.standard_normal(e).astype(np.float32)
    pad = [k // 2] * 4
    fused = _core.PackedPwDw(w1, b1, 0, 6, wd, bd, [s, s], pad, [1, 1], 0, 6)
    pw = _core.PackedConv2d(w1, b1, [1, 1], [0] * 4, [1, 1], 1, 0, 6)
    dw = _core.PackedConv2d(wd, bd, [s, s], pad, [1, 1], e, 0, 6)
    return x, fused, pw, dw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    fused = make(*SHAPES[1], rng)[1]
    print(f"cpu {_core.cpu_info()['isa']}: {fused.algo([1, 24, 56, 56])}")
    for th in args.threads:
        _core.set_num_threads(th)
        _core.hold_workers(True)
        cases = []
        for shape in SHAPES:
            x, fused, pw, dw = make(*shape, rng)
            e = pw.run(x)
            cases.append((shape, [lambda f=fused, x=x: f.run(x), lambda p=pw, x=x: p.run(x),
                                  lambda d=dw, e=e: d.run(e)]))
        best = {}
        for _ in range(args.rounds):
            for shape, fns in cases:
                for i, fn in enumerate(fns):
                    t = time.perf_counter()
                    for _ in range(5):
                        fn()
                    v = (time.perf_counter() - t) / 5 * 1e3
                    best[(shape, i)] = min(best.get((shape, i), 1e9), v)
        tf = ts = 0.0
        print(f"\nthreads {th}: ms, fused vs 1x1 + depthwise")
        for shape, _ in cases:
            f, a, b = best[(shape, 0)], best[(shape, 1)], best[(shape, 2)]
            tf += f
            ts += a + b
            cin, e, h, k, s = shape
            print(f"  {cin:4d}->{e:5d} {h:3d}x{h:<3d} dw {k}x{k}/{s}: fused {f:.3f}   "
                  f"1x1 {a:.3f} + dw {b:.3f} = {a + b:.3f}   {(a + b) / f:.2f}x")
        print(f"  all shapes: fused {tf:.3f} ms, separate {ts:.3f} ms, {ts / tf:.2f}x")
        _core.hold_workers(False)


if __name__ == "__main__":
    main()
