#!/usr/bin/env python3
"""Training-step time (forward + backward + SGD step): convcore.nn against torch CPU.

Models (same architecture, same weights, same thread count in both):
  lenet5   LeNet-5 on 1x28x28, batch 64
  resnet   a small ResNet block stack (stem + 4 basic blocks with BatchNorm,
           one stride-2 stage) on 3x32x32, batch 32

Engines run interleaved in rounds (a short sleep between engines); each
round times `--steps` steps and the best round per engine is reported.
Afterwards one more convcore run splits its step time into: inside
convcore._core kernels (conv, pooling, relu, batch norm, Linear's GEMM, the
cross-entropy loss, residual adds, the SGD update) and the rest, the Python
layer (autograd bookkeeping, argument checks, small numpy ops).

Run:  PYTHONPATH=python python3 bench/bench_train.py --threads 2
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import convcore
from convcore import nn, optim
from convcore.nn import functional as F


# -- the two models, written once for both libraries -------------------------------------------
def lenet5(lib):
    return lib.Sequential(
        lib.Conv2d(1, 6, 5, padding=2), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(6, 16, 5), lib.ReLU(), lib.MaxPool2d(2), lib.Flatten(),
        lib.Linear(16 * 5 * 5, 120), lib.ReLU(), lib.Linear(120, 84), lib.ReLU(),
        lib.Linear(84, 10))


def resnet(lib):
    class BasicBlock(lib.Module):
        def __init__(self, cin, cout, stride=1):
            super().__init__()
            self.conv1 = lib.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = lib.BatchNorm2d(cout)
            self.conv2 = lib.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = lib.BatchNorm2d(cout)
            self.relu = lib.ReLU()
            self.down = None
            if stride != 1 or cin != cout:
                self.down = lib.Sequential(lib.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                           lib.BatchNorm2d(cout))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + (x if self.down is None else self.down(x)))

    return lib.Sequential(
        lib.Conv2d(3, 16, 3, padding=1, bias=False), lib.BatchNorm2d(16), lib.ReLU(),
        BasicBlock(16, 16), BasicBlock(16, 16), BasicBlock(16, 32, 2), BasicBlock(32, 32),
        lib.AdaptiveAvgPool2d(1), lib.Flatten(), lib.Linear(32, 10))


MODELS = {"lenet5": (lenet5, (64, 1, 28, 28)), "resnet": (resnet, (32, 3, 32, 32))}


# -- one training step per engine ------------------------------------------------------------
def convcore_stepper(model, x, y):
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return step


def torch_stepper(model, x, y):
    import torch
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
    return step


CLOCK = time.perf_counter


def time_steps(step, n):
    t0 = CLOCK()
    for _ in range(n):
        step()
    return (CLOCK() - t0) / n


# Every compute entry point of convcore._core that nn and optim call (tests/nn/
# test_bench_split.py checks that nn calls no other). Since 2026-11-26 02:00
# also gemm and linear_backward (Linear), cross_entropy (the loss), the
# multi-tensor optimiser updates and add (residual adds, gradient sums):
# before, Linear ran through conv2d_forward/backward, the loss and the adds
# were numpy (counted as Python) and SGD called sgd_step once per parameter.
KERNELS = ("conv2d_forward", "conv2d_backward", "max_pool2d_forward", "max_pool2d_backward",
           "avg_pool2d_forward", "avg_pool2d_backward", "global_avg_pool2d",
           "global_pool2d_backward", "relu", "relu_backward", "batch_norm_forward",
           "batch_norm_backward", "sgd_step", "gemm", "cross_entropy", "sgd_step_multi",
           "adam_step_multi", "add", "linear_backward")


def time_split(step, n):
    """Where one convcore run's step time goes: {kernels, rest, total, per_op}.

    kernels    inside convcore._core calls (every entry point nn uses is wrapped)
    rest       everything else: autograd bookkeeping, argument checks,
               small numpy ops (the "Python layer")
    """
    core = convcore._core
    per_op: dict[str, float] = {}
    saved = {}
    for name in KERNELS:
        fn = getattr(core, name, None)
        if fn is None:  # an older build (before batch norm was compiled): numpy, counted as Python
            continue
        saved[name] = fn

        def timed(*a, _fn=fn, _name=name):
            t = CLOCK()
            r = _fn(*a)
            per_op[_name] = per_op.get(_name, 0.0) + CLOCK() - t
            return r
        setattr(core, name, timed)
    try:
        t0 = CLOCK()
        for _ in range(n):
            step()
        total = CLOCK() - t0
    finally:
        for name, fn in saved.items():
            setattr(core, name, fn)
    kernels = sum(per_op.values())
    return dict(kernels=kernels / n, rest=(total - kernels) / n, total=total / n,
                per_op={k: v / n for k, v in per_op.items()})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--models", default="lenet5,resnet")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: process CPU time, steadier on a loaded machine; equals the "
                         "latency only with --threads 1")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    convcore.set_num_threads(args.threads)
    torch = None
    if not args.no_torch:
        import torch
        torch.set_num_threads(args.threads)
    print(f"convcore {convcore.__version__} ({convcore.cpu_info()['isa']}), threads={args.threads}, "
          f"clock={args.clock}"
          + (f", torch {torch.__version__}" if torch else "")
          + f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    rows = []
    for name in args.models.split(","):
        make, shape = MODELS[name]
        rng = np.random.default_rng(0)
        x = rng.standard_normal(shape).astype(np.float32)
        y = rng.integers(0, 10, shape[0]).astype(np.int64)
        nn.manual_seed(0)
        cm = make(nn)
        engines = {"convcore": convcore_stepper(cm, x, y)}
        if torch:
            tm = make(torch.nn)
            tm.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in cm.state_dict().items()})
            engines["torch"] = torch_stepper(tm, x, y)
        best = {k: float("inf") for k in engines}
        for step in engines.values():  # warm up
            time_steps(step, 3)
        for _ in range(args.rounds):
            for k, step in engines.items():
                best[k] = min(best[k], time_steps(step, args.steps))
                time.sleep(0.2)
        split = time_split(engines["convcore"], args.steps * 2)
        # The same split over rounds like the timing above, keeping the round
        # with the lowest total step time (not the lowest Python share): one run
        # also holds whatever else the machine did meanwhile, e.g. a slow first
        # step after the sleep, which the headline best-round times leave out.
        rounds = []
        for _ in range(args.rounds):
            time.sleep(0.2)
            rounds.append(time_split(engines["convcore"], args.steps))
        rows.append((name, shape, best, split, min(rounds, key=lambda r: r["total"])))

    print(f"\n{'model':8} {'input':>14} {'convcore ms':>12} {'torch ms':>9} {'speedup':>8}   "
          f"{'kernels':>8} {'Python':>7} {'Python, best round':>19}")
    for name, shape, best, sp, sb in rows:
        c, t = best["convcore"] * 1e3, best.get("torch", float("nan")) * 1e3
        tot = sp["total"]
        print(f"{name:8} {'x'.join(map(str, shape)):>14} {c:12.2f} {t:9.2f} {t / c:7.2f}x   "
              f"{sp['kernels'] / tot:8.0%} {sp['rest'] / tot:7.0%} "
              f"{sb['rest'] / sb['total']:6.1%} of {sb['total'] * 1e3:.2f} ms")
    print("\nspeedup = torch time / convcore time (>1: convcore faster). kernels / Python "
          "split convcore's step time (one extra timed run of 2x --steps steps, same clock): "
          "inside convcore._core kernels (the SGD update included), and the rest, the Python "
          "layer (autograd bookkeeping, checks, small numpy ops; the loss and the residual adds "
          "are kernels since 2026-11-26). 'Python, best round': the same split over --rounds "
          "rounds of --steps steps, the round with the lowest total step time.")
    print("\nconvcore kernel time per step (ms) in the one-run split:")
    for name, _, _, sp, _ in rows:
        parts = sorted(sp["per_op"].items(), key=lambda kv: -kv[1])
        print(f"  {name:8} " + ", ".join(f"{k} {v * 1e3:.2f}" for k, v in parts)
              + f"; Python {sp['rest'] * 1e3:.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
