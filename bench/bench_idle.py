"""Do idle worker threads steal the cores after a call returns?

For each "engine" (convcore conv2d, onnxruntime one-node Conv session,
torch conv2d) the script runs the conv and then, immediately, one
"follow-up" operation from another library (numpy matmul on OpenBLAS's
threads, torch.mm on torch's threads, a single-threaded numpy ufunc), and
times only the follow-up. The baseline is the same follow-up after the
machine has been idle for 50 ms. A ratio near 1.0 means the engine's workers
went quiet; onnxruntime's spinning thread pool is the well-known contrast.

convcore's policy: python/convcore/__init__.py sets GOMP_SPINCOUNT=10000
(unless the user set it) before the OpenMP runtime loads, so libgomp workers
spin briefly after each parallel region, then sleep on a
futex: at most 10^4 pause iterations, tens to a couple of hundred
microseconds. (libgomp's default is 300000 iterations when no wait policy
is set, 30x longer; OMP_WAIT_POLICY=active spins far longer still.)

    PYTHONPATH=python python3 bench/bench_idle.py [--samples 30] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def conv_model_bytes(x_shape, w):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    g = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                        list(x_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m.SerializeToString()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import convcore as cc
    import torch
    import onnxruntime as ort

    cc.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 64, 56, 56), dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32) * 0.05
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(conv_model_bytes(x.shape, w), so,
                                providers=["CPUExecutionProvider"])

    engines = {
        "convcore conv2d": lambda: cc.conv2d(x, w, padding=1),
        "onnxruntime Conv": lambda: sess.run(None, {"x": x}),
        "torch conv2d": lambda: torch.nn.functional.conv2d(tx, tw, padding=1),
    }
    a = rng.standard_normal((384, 384), dtype=np.float32)
    ta = torch.from_numpy(a.copy())
    big = rng.random(2_000_000, dtype=np.float32)
    follow = {
        "numpy matmul 384^2 (OpenBLAS threads)": lambda: a @ a,
        "torch.mm 384^2 (torch threads)": lambda: torch.mm(ta, ta),
        "numpy sqrt 2M (1 thread)": lambda: np.sqrt(big),
    }
    for f in list(engines.values()) + list(follow.values()):
        f(); f()

    print(f"follow-up op time (median of {args.samples}, ms): idle vs right after each engine's "
          f"call; {args.threads} threads; GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}")
    header = f"{'follow-up':40s} {'idle':>7s}" + "".join(f" {e:>22s}" for e in engines)
    print(header)
    for fname, f in follow.items():
        idle, after = [], {e: [] for e in engines}
        for _ in range(args.samples):
            # interleave: idle baseline, then each engine followed by the op
            time.sleep(0.05)
            t0 = time.perf_counter(); f(); idle.append(time.perf_counter() - t0)
            for ename, e in engines.items():
                time.sleep(0.05)
                e()
                t0 = time.perf_counter(); f(); after[ename].append(time.perf_counter() - t0)
        base = statistics.median(idle)
        row = f"{fname:40s} {base * 1e3:7.3f}"
        for ename in engines:
            m = statistics.median(after[ename])
            row += f" {m * 1e3:9.3f} ({m / base:5.2f}x)   "
        print(row, flush=True)


if __name__ == "__main__":
    main()
