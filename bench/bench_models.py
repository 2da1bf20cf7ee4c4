"""Whole-model latency and memory: convcore vs onnxruntime (ORT_ENABLE_ALL,
same thread count) vs torch, on the reference architectures at realistic
sizes (224x224 classifiers, 320x320 detector/segmenter).

Engines are interleaved in rounds (short sleep between engines); each cell
keeps the best round's p50. With --isolate each engine lives in its own
process (blocked on a pipe between its turns), so one engine's thread pool
(affinity, spinning) cannot slow the other inside a shared process. Peak RSS is measured in a fresh child process
that loads and runs the model once (resource.getrusage in the child).

    PYTHONPATH=python python3 bench/bench_models.py                 # the issue's set
    PYTHONPATH=python python3 bench/bench_models.py --models resnet50 --batches 1 --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))


DEFAULT_MODELS = ["resnet50", "mobilenet_v2", "squeezenet", "efficientnet_lite", "vgg"]
CACHE = os.path.join(tempfile.gettempdir(), "convcore_bench_models")


def export_model(name: str, opset: int = 17) -> tuple[str, tuple]:
    from models.archs import build, export
    os.makedirs(CACHE, exist_ok=True)
    model, shape = build(name, size="bench")
    path = os.path.join(CACHE, f"{name}_op{opset}.onnx")
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(export(model, shape, opset, dynamic_batch=True))
    return path, shape


def make_engines(path: str, threads: int, want_torch: bool, name: str):
    import onnxruntime as ort
    import convcore
    convcore.set_num_threads(threads)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    cc = convcore.InferenceSession(path, threads=threads)
    ors = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    engines = {"convcore": lambda x: cc.run(None, {"input": x}),
               "onnxruntime": lambda x: ors.run(None, {"input": x})}
    if want_torch:
        try:
            import torch
            from models.archs import build
            torch.set_num_threads(threads)
            tm, _ = build(name, size="bench")

            def run_torch(x, tm=tm):
                with torch.inference_mode():
                    return tm(torch.from_numpy(x))
            engines["torch"] = run_torch
        except Exception as e:  # torch is optional
            print(f"  (torch skipped: {e})")
    return engines


_WORKER = r"""
import sys, time, numpy as np
sys.path.insert(0, sys.argv[5])
engine, path, threads, name = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if engine == "convcore":
    import convcore
    s = convcore.InferenceSession(path, threads=threads)
    fn = lambda x: s.run(None, {"input": x})
elif engine == "onnxruntime":
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    fn = lambda x: s.run(None, {"input": x})
else:
    import torch
    from models.archs import build
    torch.set_num_threads(threads)
    tm, _ = build(name, size="bench")
    def fn(x):
        with torch.inference_mode():
            return tm(torch.from_numpy(x))
print("ready", flush=True)
for line in sys.stdin:
    batch, runs, shape = line.split(" ", 2)
    shape = eval(shape)
    x = np.random.RandomState(0).randn(int(batch), *shape[1:]).astype(np.float32)
    fn(x)
    ts = []
    for _ in range(int(runs)):
        t0 = time.perf_counter(); fn(x); ts.append(time.perf_counter() - t0)
    print(float(np.median(ts) * 1e3), flush=True)
"""


class IsolatedEngine:
    """One engine in its own process; time(x, runs) -> p50 ms."""

    def __init__(self, engine, path, threads, name, shape):
        import convcore
        here = os.path.dirname(os.path.dirname(os.path.abspath(convcore.__file__)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
        self.shape = tuple(shape)
        self.p = subprocess.Popen([sys.executable, "-c", _WORKER, engine, path, str(threads), name,
                                   os.path.join(HERE, "..", "tests")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        if self.p.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{engine} worker failed to start")

    def __call__(self, x, runs=5):
        self.p.stdin.write(f"{x.shape[0]} {runs} {self.shape!r}\n")
        self.p.stdin.flush()
        return float(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)


def time_engine(fn, x, runs: int) -> float:
    if isinstance(fn, IsolatedEngine):
        return fn(x, runs)
    fn(x)  # warm-up
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(x)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e3)


_CHILD = r"""
import resource, sys, time, numpy as np
engine, path, batch, threads, shape = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), eval(sys.argv[5])
x = np.random.RandomState(0).randn(batch, *shape[1:]).astype(np.float32)
if engine == "convcore":
    import convcore
    s = convcore.InferenceSession(path, threads=threads)
    run = lambda: s.run(None, {"input": x})
else:
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    run = lambda: s.run(None, {"input": x})
for _ in range(3):
    run()
# VmHWM belongs to this exec'd image (ru_maxrss would inherit the parent's at fork).
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) / 1024.0)
"""


def peak_rss(engine: str, path: str, batch: int, threads: int, shape) -> float:
    import convcore
    here = os.path.dirname(os.path.dirname(os.path.abspath(convcore.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", _CHILD, engine, path, str(batch), str(threads),
                        repr(tuple(shape))], capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0:
        return float("nan")
    return float(r.stdout.strip().splitlines()[-1])


def session_creation(path: str, reps: int = 3) -> dict:
    import onnxruntime as ort
    import convcore
    out = {}
    for eng in ("convcore", "onnxruntime"):
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            if eng == "convcore":
                convcore.InferenceSession(path)
            else:
                so = ort.SessionOptions()
                so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            best = min(best, time.perf_counter() - t0)
        out[eng] = best
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--max-batch8-gflops", type=float, default=60.0,
                    help="skip batch 8 for models heavier than this per batch (slow machine)")
    ap.add_argument("--json", help="also write results here")
    ap.add_argument("--isolate", action="store_true",
                    help="each engine in its own process (no cross-engine thread interference)")
    args = ap.parse_args()
    import convcore
    print(f"convcore {convcore.__version__}, cpu_info {convcore.cpu_info()}")
    rows = []
    for name in args.models.split(","):
        path, shape = export_model(name)
        from convcore.runtime.info import summarize
        gflops = summarize(path, batch=1)["total_flops"] / 1e9
        print(f"\n== {name}: input {shape}, {gflops:.2f} GFLOPs/image")
        if name == "resnet50":
            sc = session_creation(path)
            print(f"  session creation: convcore {sc['convcore'] * 1e3:.0f} ms, "
                  f"onnxruntime {sc['onnxruntime'] * 1e3:.0f} ms")
            rows.append({"model": name, "session_creation_s": sc})
        for threads in [int(t) for t in args.threads.split(",")]:
            if args.isolate:
                names = ["convcore", "onnxruntime"] + ([] if args.no_torch else ["torch"])
                engines = {e: IsolatedEngine(e, path, threads, name, shape) for e in names}
            else:
                engines = make_engines(path, threads, not args.no_torch, name)
            for batch in [int(b) for b in args.batches.split(",")]:
                if batch > 1 and gflops * batch > args.max_batch8_gflops:
                    print(f"  batch {batch}: skipped ({gflops * batch:.0f} GFLOPs per run)")
                    continue
                x = np.random.RandomState(0).randn(batch, *shape[1:]).astype(np.float32)
                best = {}
                for _ in range(args.rounds):
                    for eng, fn in engines.items():
                        t = time_engine(fn, x, args.runs)
                        best[eng] = min(best.get(eng, float("inf")), t)
                        time.sleep(0.2)
                row = {"model": name, "threads": threads, "batch": batch, "p50_ms": best}
                if not args.no_rss:
                    row["peak_rss_mb"] = {e: peak_rss(e, path, batch, threads, shape)
                                          for e in ("convcore", "onnxruntime")}
                rows.append(row)
                ratio = best["onnxruntime"] / best["convcore"]
                rss = row.get("peak_rss_mb", {})
                print(f"  threads {threads} batch {batch}: " +
                      ", ".join(f"{e} {t:.1f} ms" for e, t in best.items()) +
                      f" | speed vs ORT {ratio:.2f}x" +
                      (f" | peak RSS convcore {rss['convcore']:.0f} MB, ORT {rss['onnxruntime']:.0f} MB"
                       if rss else ""))
            for eng in engines.values():
                if isinstance(eng, IsolatedEngine):
                    eng.close()
    lat = [(r["model"], r["p50_ms"]) for r in rows if r.get("threads") == 2 and r.get("batch") == 1]
    if lat:
        g = float(np.exp(np.mean([np.log(p["onnxruntime"] / p["convcore"]) for _, p in lat])))
        print(f"\ngeometric-mean speed vs onnxruntime at batch 1, 2 threads: {g:.2f}x "
              f"(>1 means convcore is faster) over {[m for m, _ in lat]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
