"""Pooling and ReLU throughput (GB/s of memory traffic) of convcore vs torch,
next to a plain numpy copy of the same bytes (the memory-bandwidth yardstick).

Traffic counts every tensor an op must read or write once: forward reads x
and writes y; max-pool backward reads grad_out and x and writes grad_x;
avg-pool backward reads grad_out and writes grad_x; relu backward reads
grad_out and x and writes grad_x. Engines are timed in interleaved rounds,
best round kept, with a short pause between engines.

    PYTHONPATH=python python3 bench/bench_pool.py [--threads 2] [--rounds 5] [--cold-alloc]
    PYTHONPATH=python python3 bench/bench_pool.py --model-shapes [--threads 1,2] [--baseline DIR]

--model-shapes times the forward pooling layers of SqueezeNet, ResNet-50,
VGG-16, Inception and DenseNet at batch 1 (bench_pool_models.py).

Every op returns a fresh array. With glibc's defaults a large array is a
fresh mmap whose first touch page-faults (~1-2 us per 4 KiB page), which
costs more than the kernel itself and is the same for both engines. By
default the script tells glibc (mallopt) to keep freed blocks in the heap,
as a training loop's caching allocator would, so that the numbers measure
the kernels; --cold-alloc keeps glibc's defaults.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import convcore as cc
from convcore import functional as F


def best_of(fn, reps=5):
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    if "--model-shapes" in sys.argv:
        sys.argv.remove("--model-shapes")
        import bench_pool_models
        return bench_pool_models.main()
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shape", default="16,64,112,112")
    ap.add_argument("--cold-alloc", action="store_true")
    args = ap.parse_args()
    if not args.cold_alloc:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 31 - 1)
    import torch
    tf = torch.nn.functional
    torch.set_num_threads(args.threads)
    cc.set_num_threads(args.threads)

    shape = tuple(int(v) for v in args.shape.split(","))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    tx = torch.from_numpy(x)
    nbytes = x.nbytes

    def out_bytes(y):
        return y.nbytes

    ops = []
    for name, k, s, p in (("max 2x2/2", 2, 2, 0), ("max 3x3/2 p1", 3, 2, 1),
                          ("max 3x3/1 p1", 3, 1, 1)):
        y = cc.max_pool2d(x, k, s, p)
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        tgy = torch.from_numpy(gy)
        ty, tind = tf.max_pool2d(tx, k, s, p, return_indices=True)
        ops.append((f"{name} fwd", nbytes + y.nbytes,
                    lambda k=k, s=s, p=p: cc.max_pool2d(x, k, s, p),
                    lambda k=k, s=s, p=p: tf.max_pool2d(tx, k, s, p)))
        # torch's backward uses the saved indices; ours recomputes from x
        ops.append((f"{name} bwd", 2 * nbytes + gy.nbytes,
                    lambda k=k, s=s, p=p, gy=gy: cc.max_pool2d_backward(gy, x, k, s, p),
                    lambda k=k, s=s, p=p, tgy=tgy, tind=tind: torch.ops.aten.max_pool2d_with_indices_backward(
                        tgy, tx, [k, k], [s, s], [p, p], [1, 1], False, tind)))
    for name, k, s, p in (("avg 2x2/2", 2, 2, 0), ("avg 3x3/1 p1", 3, 1, 1)):
        y = cc.avg_pool2d(x, k, s, p)
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        tgy = torch.from_numpy(gy)
        ops.append((f"{name} fwd", nbytes + y.nbytes,
                    lambda k=k, s=s, p=p: cc.avg_pool2d(x, k, s, p),
                    lambda k=k, s=s, p=p: tf.avg_pool2d(tx, k, s, p)))
        ops.append((f"{name} bwd", nbytes + gy.nbytes,
                    lambda k=k, s=s, p=p, gy=gy: cc.avg_pool2d_backward(gy, x, k, s, p),
                    lambda k=k, s=s, p=p, tgy=tgy: torch.ops.aten.avg_pool2d_backward(
                        tgy, tx, [k, k], [s, s], [p, p], False, True, None)))
    ops.append(("global avg fwd", nbytes, lambda: cc.global_avg_pool2d(x),
                lambda: tf.adaptive_avg_pool2d(tx, 1)))
    ops.append(("global max fwd", nbytes, lambda: cc.global_max_pool2d(x),
                lambda: tf.adaptive_max_pool2d(tx, 1)))
    g1 = rng.standard_normal(shape[:2] + (1, 1), dtype=np.float32)
    ops.append(("global avg bwd", nbytes, lambda: F.global_avg_pool2d_backward(g1, x),
                lambda: torch.ops.aten._adaptive_avg_pool2d_backward(
                    torch.from_numpy(g1), tx)))
    gx = rng.standard_normal(shape, dtype=np.float32)
    tgx = torch.from_numpy(gx)
    ops.append(("relu fwd", 2 * nbytes, lambda: cc.relu(x), lambda: torch.relu(tx)))
    xb = x.copy()
    txb = torch.from_numpy(xb)
    ops.append(("relu_ in place", 2 * nbytes, lambda: cc.relu_(xb), lambda: torch.relu_(txb)))
    ops.append(("relu bwd", 3 * nbytes, lambda: cc.relu_backward(gx, x),
                lambda: torch.ops.aten.threshold_backward(tgx, tx, 0)))

    dst = np.empty_like(x)
    copy_gbs = 0.0
    for _ in range(args.rounds):
        copy_gbs = max(copy_gbs, 2 * nbytes / best_of(lambda: np.copyto(dst, x)) / 1e9)

    print(f"shape {shape} float32 ({nbytes / 2**20:.0f} MiB), {args.threads} threads, "
          f"isa {cc.cpu_info()['isa']}, "
          f"{'cold allocations' if args.cold_alloc else 'warm allocations (mallopt)'}")
    print(f"numpy copy (read+write): {copy_gbs:.1f} GB/s")
    print(f"{'op':22s} {'convcore':>9s} {'torch':>9s} {'cc/torch':>9s} {'cc/copy':>8s}   (GB/s)")
    for name, traffic, f_cc, f_t in ops:
        f_cc(); f_t()
        best = {"cc": math.inf, "t": math.inf}
        for _ in range(args.rounds):
            for eng, fn in (("cc", f_cc), ("t", f_t)):
                time.sleep(0.01)
                best[eng] = min(best[eng], best_of(fn, 3))
        gc, gt = traffic / best["cc"] / 1e9, traffic / best["t"] / 1e9
        print(f"{name:22s} {gc:9.1f} {gt:9.1f} {gc / gt:9.2f} {gc / copy_gbs:8.2f}", flush=True)


if __name__ == "__main__":
    main()
