"""Forward pooling at batch 1 on the pooling layers of real models, as the
ONNX runner calls it (_core.max_pool2d_forward / avg_pool2d_forward with
explicit pads, no indices), next to:

  ort        onnxruntime, a one-node MaxPool/AveragePool model (its NCHW
             kernel), timed around session.run like the others;
  ort-nchwc  onnxruntime's NCHWc pooling kernel, the one it runs inside a
             real model (Conv -> pool -> Conv, ORT_ENABLE_ALL): the pool
             node's own time from ORT's profiler (min over the runs; the
             profiler rounds to whole microseconds, and the node's input is
             whatever the Conv left in cache);
  torch      torch.nn.functional.max_pool2d / avg_pool2d;
  base       (with --baseline DIR) the convcore build in DIR, e.g. the
             commit before a change, loaded under another package name.

Milliseconds, best round; engines interleaved in rounds with a short sleep
between them. ORT sessions run with spinning off so that their idle workers
do not take the cores from the others; convcore's rounds hold its workers
awake (hold_workers), as the runner does during a model run (--no-hold: not).
Run via bench_pool.py --model-shapes.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import tempfile
import time

import numpy as np

import convcore as cc
from convcore import _core

# name, op, input shape, kernel, stride, pads (t, l, b, r), ceil_mode, count_include_pad
LAYERS = [
    ("squeezenet pool1", "max", (1, 64, 111, 111), 3, 2, (0, 0, 0, 0), True, False),
    ("squeezenet pool2", "max", (1, 128, 55, 55), 3, 2, (0, 0, 0, 0), True, False),
    ("squeezenet pool3", "max", (1, 256, 27, 27), 3, 2, (0, 0, 0, 0), True, False),
    ("resnet50 pool", "max", (1, 64, 112, 112), 3, 2, (1, 1, 1, 1), False, False),
    ("vgg16 pool1", "max", (1, 64, 224, 224), 2, 2, (0, 0, 0, 0), False, False),
    ("vgg16 pool2", "max", (1, 128, 112, 112), 2, 2, (0, 0, 0, 0), False, False),
    ("vgg16 pool3", "max", (1, 256, 56, 56), 2, 2, (0, 0, 0, 0), False, False),
    ("vgg16 pool4", "max", (1, 512, 28, 28), 2, 2, (0, 0, 0, 0), False, False),
    ("vgg16 pool5", "max", (1, 512, 14, 14), 2, 2, (0, 0, 0, 0), False, False),
    ("inception avg 3x3/1", "avg", (1, 192, 35, 35), 3, 1, (1, 1, 1, 1), False, False),
    ("densenet avg 2x2/2", "avg", (1, 128, 56, 56), 2, 2, (0, 0, 0, 0), False, False),
    ("densenet avg 2x2/2 b", "avg", (1, 256, 28, 28), 2, 2, (0, 0, 0, 0), False, False),
]


from bench_pool import best_of  # noqa: E402  (shared timing helper)


def load_baseline(root):
    """The _core extension of another build, as package `ccbase`."""
    pkg = os.path.join(root, "python", "convcore")
    so = [f for f in os.listdir(pkg) if f.startswith("_core") and f.endswith(".so")]
    if not so:
        raise SystemExit(f"no _core*.so under {pkg}: build it first (tools/dev_build.sh)")
    spec = importlib.util.spec_from_file_location("ccbase._core", os.path.join(pkg, so[0]))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def onnx_pool(layer, with_convs):
    from onnx import TensorProto, helper, numpy_helper
    _, op, shape, k, s, pads, ceil, cip = layer
    attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=list(pads), ceil_mode=int(ceil))
    if op == "avg":
        attrs["count_include_pad"] = int(cip)
    kind = "MaxPool" if op == "max" else "AveragePool"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    if not with_convs:
        nodes, inits = [helper.make_node(kind, ["x"], ["y"], name="pool", **attrs)], []
    else:
        C = shape[1]
        w = numpy_helper.from_array(np.eye(C, dtype=np.float32).reshape(C, C, 1, 1), "w")
        nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="c1"),
                 helper.make_node(kind, ["a"], ["b"], name="pool", **attrs),
                 helper.make_node("Conv", ["b", "w"], ["y"], name="c2")]
        inits = [w]
    g = helper.make_graph(nodes, "g", [x], [y], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


def ort_session(model, threads, profile=False):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tempfile.gettempdir(), "cc_bench_pool")
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def ort_nchwc_ms(layer, x, threads, runs):
    """The pool node's time inside Conv -> pool -> Conv, from ORT's profiler."""
    sess = ort_session(onnx_pool(layer, True), threads, profile=True)
    for _ in range(runs):
        sess.run(None, {"x": x})
    path = sess.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    durs, ops = [], set()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            op = e["args"].get("op_name")
            if op in ("MaxPool", "AveragePool"):
                durs.append(e["dur"])
                ops.add(e["args"].get("provider", "") + ":" + e["name"])
    if not durs:
        return math.nan, ""
    return min(durs) / 1e3, "nchwc" if any("nchwc" in o for o in ops) else "nchw"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20, help="calls per engine per round")
    ap.add_argument("--layers", default="", help="substring filter on the layer names")
    ap.add_argument("--baseline", default="", help="root of another convcore build")
    ap.add_argument("--no-nchwc", action="store_true")
    ap.add_argument("--no-hold", dest="hold", action="store_false",
                    help="do not hold the kernel workers awake around convcore's rounds "
                         "(the ONNX runner holds them for the length of a run)")
    args = ap.parse_args()
    import torch
    tf = torch.nn.functional
    base = load_baseline(args.baseline) if args.baseline else None
    rng = np.random.default_rng(0)
    layers = [l for l in LAYERS if args.layers in l[0]]
    print(f"isa {cc.cpu_info()['isa']}; ms per call, best of {args.rounds} rounds x {args.reps} calls;"
          f" workers {'held' if args.hold else 'not held'} in convcore's rounds")
    for threads in [int(t) for t in args.threads.split(",")]:
        cc.set_num_threads(threads)
        if base:
            base.set_num_threads(threads)
        torch.set_num_threads(threads)
        names = ["convcore"] + (["base"] if base else []) + ["ort", "ort-nchwc", "torch"]
        print(f"\n{threads} thread(s)")
        print(f"{'layer':22s} {'shape':>18s} " + " ".join(f"{n:>9s}" for n in names)
              + "  cc/ort cc/nchwc")
        for layer in layers:
            name, op, shape, k, s, pads, ceil, cip = layer
            x = rng.standard_normal(shape, dtype=np.float32)
            tx = torch.from_numpy(x)
            p4 = list(pads)
            if op == "max":
                f_cc = lambda c=_core: c.max_pool2d_forward(x, [k, k], [s, s], p4, [1, 1], ceil, False)
                f_t = lambda: tf.max_pool2d(tx, k, s, pads[0], ceil_mode=ceil)
            else:
                f_cc = lambda c=_core: c.avg_pool2d_forward(x, [k, k], [s, s], p4, ceil, cip)
                f_t = lambda: tf.avg_pool2d(tx, k, s, pads[0], ceil_mode=ceil,
                                            count_include_pad=cip)
            sess = ort_session(onnx_pool(layer, False), threads)
            f_ort = lambda: sess.run(None, {"x": x})
            engines = {"convcore": f_cc, "ort": f_ort, "torch": f_t}
            if base:
                engines["base"] = lambda: f_cc(base)
            ref = f_ort()[0]
            for e, fn in engines.items():
                out = fn()
                out = out.numpy() if hasattr(out, "numpy") else (out[0] if isinstance(out, list) else out)
                if not np.allclose(out, ref, rtol=1e-5, atol=1e-6):
                    raise SystemExit(f"{name}: {e} disagrees with onnxruntime")
            best = {e: math.inf for e in engines}
            for _ in range(args.rounds):
                for e, fn in engines.items():
                    time.sleep(0.01)
                    hold = {"convcore": _core, "base": base}.get(e) if args.hold else None
                    if hold:  # as the runner does for the length of a model run
                        hold.hold_workers(True)
                    try:
                        best[e] = min(best[e], best_of(fn, args.reps))
                    finally:
                        if hold:
                            hold.hold_workers(False)
            best = {e: v * 1e3 for e, v in best.items()}
            best["ort-nchwc"] = math.nan
            if not args.no_nchwc:
                best["ort-nchwc"], kind = ort_nchwc_ms(layer, x, threads, 20 * args.rounds)
                if kind != "nchwc":
                    best["ort-nchwc"] = math.nan  # ORT kept NCHW here: nothing to compare
            row = " ".join(f"{best[n]:9.4f}" for n in names)
            print(f"{name:22s} {str(shape[1:]):>18s} {row}  {best['convcore'] / best['ort']:6.2f}"
                  f" {best['convcore'] / best['ort-nchwc']:7.2f}", flush=True)


if __name__ == "__main__":
    main()
