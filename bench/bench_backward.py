"""conv2d backward (grad_input + grad_weight) of convcore vs torch.

The distinct conv layers of ResNet-50, MobileNetV2 and VGG-16 (224x224
input), timed in interleaved rounds (best round kept, a short pause between
engines so that neither engine's spinning workers steal the other's cores).
torch is called through aten.convolution_backward directly (no autograd
overhead); both compute grad_input and grad_weight (no bias).

    PYTHONPATH=python python3 bench/bench_backward.py [--batch 8] [--threads 2]
        [--rounds 3] [--net resnet50,mobilenetv2,vgg16] [--filter TEXT]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import convcore as cc


# (name, Cin, Cout, k, stride, pad, groups, H) ; square inputs, square kernels.
def resnet50():
    L = [("conv1", 3, 64, 7, 2, 3, 1, 224)]
    # (H, Cin of block, mid, out, stride of first block)
    stages = [(56, 64, 64, 256, 1), (56, 256, 128, 512, 2), (28, 512, 256, 1024, 2),
              (14, 1024, 512, 2048, 2)]
    for i, (H, cin, mid, out, s) in enumerate(stages, 1):
        Ho = H // s
        L.append((f"l{i}.reduce0", cin, mid, 1, 1, 0, 1, H))
        L.append((f"l{i}.3x3s{s}", mid, mid, 3, s, 1, 1, H))
        L.append((f"l{i}.expand", mid, out, 1, 1, 0, 1, Ho))
        L.append((f"l{i}.down", cin, out, 1, s, 0, 1, H))
        L.append((f"l{i}.reduce", out, mid, 1, 1, 0, 1, Ho))
        if s != 1:
            L.append((f"l{i}.3x3", mid, mid, 3, 1, 1, 1, Ho))
    seen, out = set(), []
    for l in L:  # layer1's reduce0 (64->64) and 3x3 are distinct; drop exact repeats
        if l[1:] not in seen:
            seen.add(l[1:])
            out.append(l)
    return out


def mobilenetv2():
    L = [("conv0", 3, 32, 3, 2, 1, 1, 224), ("dw32", 32, 32, 3, 1, 1, 32, 112),
         ("pw32-16", 32, 16, 1, 1, 0, 1, 112)]
    # (t, c, n, s) from the paper
    cfg = [(6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
           (6, 320, 1, 1)]
    cin, H = 16, 112
    for t, c, n, s in cfg:
        for i in range(n):
            st = s if i == 0 else 1
            hid = cin * t
            L.append((f"pw{cin}-{hid}", cin, hid, 1, 1, 0, 1, H))
            L.append((f"dw{hid}s{st}", hid, hid, 3, st, 1, hid, H))
            H = (H + 2 - 3) // st + 1
            L.append((f"pw{hid}-{c}", hid, c, 1, 1, 0, 1, H))
            cin = c
    L.append(("pw320-1280", 320, 1280, 1, 1, 0, 1, 7))
    seen, out = set(), []
    for l in L:
        if l[1:] not in seen:
            seen.add(l[1:])
            out.append(l)
    return out


def vgg16():
    L, H, cin = [], 224, 3
    for block, (c, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)], 1):
        for i in range(n):
            L.append((f"conv{block}_{i + 1}", cin, c, 3, 1, 1, 1, H))
            cin = c
        H //= 2
    seen, out = set(), []
    for l in L:
        if l[1:] not in seen:
            seen.add(l[1:])
            out.append(l)
    return out


NETS = {"resnet50": resnet50, "mobilenetv2": mobilenetv2, "vgg16": vgg16}


def flops(N, cin, cout, k, s, p, g, H):
    Ho = (H + 2 * p - k) // s + 1
    return 2.0 * N * cout * Ho * Ho * (cin // g) * k * k


def best_of(fn, reps, budget=1.0):
    """Best time of `reps` calls (fewer if they exceed `budget` seconds)."""
    best, t_start = math.inf, time.perf_counter()
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() - t_start > budget:
            break
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--net", default="resnet50,mobilenetv2,vgg16")
    ap.add_argument("--filter", default="")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    cc.set_num_threads(args.threads)
    aten = torch.ops.aten

    rng = np.random.default_rng(0)
    rows, ratios, per_net = [], [], {}
    print(f"conv2d backward (grad_input + grad_weight), batch {args.batch}, "
          f"{args.threads} threads, isa {cc.cpu_info()['isa']}; GFLOP/s counts 2x forward FLOPs")
    print(f"{'layer':28s} {'shape':>26s} {'convcore':>9s} {'torch':>9s} {'ratio':>6s}")
    for net in args.net.split(","):
        for (name, cin, cout, k, s, p, g, H) in NETS[net]():
            full = f"{net}.{name}"
            if args.filter and args.filter not in full:
                continue
            N = args.batch
            x = rng.standard_normal((N, cin, H, H), dtype=np.float32)
            w = rng.standard_normal((cout, cin // g, k, k), dtype=np.float32) * 0.1
            Ho = (H + 2 * p - k) // s + 1
            gy = rng.standard_normal((N, cout, Ho, Ho), dtype=np.float32)
            tx, tw, tgy = (torch.from_numpy(a) for a in (x, w, gy))

            def run_cc():
                cc.conv2d_backward(gy, x, w, stride=s, padding=p, groups=g, bias=False)

            def run_torch():
                aten.convolution_backward(tgy, tx, tw, None, [s, s], [p, p], [1, 1], False,
                                          [0, 0], g, [True, True, False])

            run_cc(); run_torch()  # warm up
            best = {"cc": math.inf, "torch": math.inf}
            for _ in range(args.rounds):
                for eng, fn in (("cc", run_cc), ("torch", run_torch)):
                    time.sleep(0.02)
                    best[eng] = min(best[eng], best_of(fn, args.reps))
            f = 2 * flops(N, cin, cout, k, s, p, g, H)
            gc, gt = f / best["cc"] / 1e9, f / best["torch"] / 1e9
            ratios.append(gc / gt)
            per_net.setdefault(net, []).append(gc / gt)
            shape = f"{cin}->{cout} k{k}s{s}g{g} @{H}"
            print(f"{full:28s} {shape:>26s} {gc:9.1f} {gt:9.1f} {gc / gt:6.2f}", flush=True)
            rows.append((full, gc, gt))
    def gmean(v):
        return math.exp(sum(math.log(r) for r in v) / len(v))
    for net, v in per_net.items():
        print(f"geometric mean convcore/torch, {net}: {gmean(v):.3f} over {len(v)} layers")
    print(f"geometric mean of convcore/torch speed over {len(ratios)} layers: {gmean(ratios):.3f}")


if __name__ == "__main__":
    main()
