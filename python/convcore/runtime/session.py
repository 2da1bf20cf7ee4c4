"""InferenceSession: onnxruntime's API shape over convcore's kernels."""
from __future__ import annotations

import ctypes
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np

from .. import _core
from . import cuda_ops
from .executor import run_nodes
from .loader import build_graph, load_model
from .memory import plan_memory
from .passes import optimize

_TYPE_NAMES = {np.dtype(np.float32): "tensor(float)", np.dtype(np.float64): "tensor(double)",
               np.dtype(np.float16): "tensor(float16)", np.dtype(np.int64): "tensor(int64)",
               np.dtype(np.int32): "tensor(int32)", np.dtype(np.int8): "tensor(int8)",
               np.dtype(np.uint8): "tensor(uint8)", np.dtype(np.bool_): "tensor(bool)",
               np.dtype(np.int16): "tensor(int16)", np.dtype(np.uint16): "tensor(uint16)",
               np.dtype(np.uint32): "tensor(uint32)", np.dtype(np.uint64): "tensor(uint64)"}


def _load_malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim   # glibc only
    except (OSError, AttributeError):
        return None


_malloc_trim = _load_malloc_trim()


@dataclass(frozen=True)
class NodeArg:
    """What get_inputs()/get_outputs() return (as onnxruntime's NodeArg)."""
    name: str
    shape: list     # ints, with symbolic dims as strings (None if unknown)
    type: str
    dtype: object = None


class InferenceSession:
    """Load an ONNX model (path, bytes or onnx.ModelProto) and run it.

    ``threads``: kernel threads for this session's runs (default: convcore's
    global setting). ``optimize``: 0 (none), 1 (constant folding) or 2 (all
    fusions, the default). ``device="cuda"`` (a CUDA build and a GPU): convs,
    pools, ReLU and Adds run on the GPU with weights uploaded once, other
    nodes on the CPU (a warning lists them); outputs are numpy arrays either
    way. TF32 follows ``convcore.cuda.set_allow_tf32`` (FP32 by default).
    """

    MAX_PLANS = 16

    def __init__(self, model, device: str = "cpu", threads: int | None = None,
                 optimize_level: int = 2, providers=None, **_ignored):
        device = "cpu" if device is None else device
        if device not in ("cpu", "cuda"):
            raise ValueError(f"InferenceSession: device must be 'cpu' or 'cuda', got {device!r}")
        if device == "cuda":
            cuda_ops.require_device("InferenceSession")
        self.device = device
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads <= 0):
            raise ValueError(f"InferenceSession: threads must be a positive int, got {threads!r}")
        self.threads = threads
        proto, base_dir = load_model(model)
        graph = build_graph(proto, base_dir, release_data=proto is not model)
        del proto
        self.graph = optimize(graph, base_dir, optimize_level, concat_in_place=device == "cpu",
                              cpu_fusions=device == "cpu")
        self.graph.device = device
        # Pack weights (or upload them, for nodes placed on the GPU); a float
        # weight no node reads any more is dropped at once, so load-time memory
        # peaks at one layer's extra copy, not the model's.
        uses = Counter(i for n in self.graph.nodes for i in n.inputs if i)
        uses.update(o.name for o in self.graph.outputs)
        host_ops = Counter()
        for n in self.graph.nodes:
            before = list(n.inputs)
            if device == "cuda":
                host_ops.update(cuda_ops.place_on_device([n], self.graph.constants))
            if not n.on_device and hasattr(n.op, "prepare"):
                n.op.prepare(self.graph.constants)
            if n.inputs != before:
                for name in before:
                    if name and name not in n.inputs:
                        uses[name] -= 1
                        if uses[name] <= 0:
                            self.graph.constants.pop(name, None)
        if device == "cuda":
            cuda_ops.warn_host_ops(host_ops)
        self.free_after = plan_memory(self.graph)
        if _malloc_trim is not None:
            _malloc_trim(0)   # the parsed model and unpacked weights are gone: return the pages
        for v in self.graph.constants.values():
            v.flags.writeable = False
        self._plans = OrderedDict()
        self._biggest_feed = 0
        self._lock = threading.Lock()
        self._inputs = [self._arg(s) for s in self.graph.inputs]
        self._outputs = [self._arg(s) for s in self.graph.outputs]
        self._output_names = [o.name for o in self._outputs]
        self._known = {a.name: a for a in self._inputs}
        self._accepted = {a.name: set() for a in self._inputs}   # (shape, dtype) checked
        self.opset = self.graph.opset

    @staticmethod
    def _arg(spec):
        shape = None if spec.shape is None else [d if d is not None else None for d in spec.shape]
        return NodeArg(spec.name, shape, _TYPE_NAMES.get(spec.dtype, "tensor(unknown)"), spec.dtype)

    def get_inputs(self):
        return list(self._inputs)

    def get_outputs(self):
        return list(self._outputs)

    def get_providers(self):
        if self.device == "cuda":
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    # ---- running --------------------------------------------------------------
    def _check_feeds(self, feeds) -> dict:
        if not isinstance(feeds, dict):
            raise TypeError(f"InferenceSession.run: feeds must be a dict of name -> numpy array, "
                            f"got {type(feeds).__name__}")
        known = self._known
        if len(feeds) != len(known) or any(k not in known for k in feeds):
            extra = [k for k in feeds if k not in known]
            if extra:
                raise ValueError(f"InferenceSession.run: unknown input name(s) {extra}; the "
                                 f"model's inputs are {list(known)}")
            raise ValueError(f"InferenceSession.run: missing input(s) "
                             f"{[k for k in known if k not in feeds]}")
        env = {}
        accepted = self._accepted
        for name, arr in feeds.items():
            # A shape and dtype already checked for this input skip the checks.
            if type(arr) is not np.ndarray or (arr.shape, arr.dtype) not in accepted[name]:
                arr = self._check_feed(name, arr)
            # Never write into the caller's array: in-place ops see a read-only view.
            arr = np.ascontiguousarray(arr).view()
            arr.flags.writeable = False
            env[name] = arr
        return env

    def _check_feed(self, name, arr):
        spec = self._known[name]
        if not isinstance(arr, np.ndarray):
            arr = np.asarray(arr)
        if spec.dtype is not None and arr.dtype != spec.dtype:
            raise TypeError(f"InferenceSession.run: input '{name}' must have dtype "
                            f"{np.dtype(spec.dtype)} ({spec.type}), got {arr.dtype}")
        if spec.shape is not None:
            if arr.ndim != len(spec.shape):
                raise ValueError(f"InferenceSession.run: input '{name}' must have rank "
                                 f"{len(spec.shape)} (shape {spec.shape}), got shape {arr.shape}")
            for i, (want, got) in enumerate(zip(spec.shape, arr.shape)):
                if isinstance(want, int) and want > 0 and want != got:
                    raise ValueError(f"InferenceSession.run: input '{name}' dim {i} must be "
                                     f"{want} (shape {spec.shape}), got shape {arr.shape}")
        accepted = self._accepted[name]
        if len(accepted) < self.MAX_PLANS:
            accepted.add((arr.shape, arr.dtype))
        return arr

    def run(self, output_names=None, input_feed=None, run_options=None):
        """-> list of numpy arrays, one per requested output (all if None)."""
        if input_feed is None:
            raise TypeError("InferenceSession.run: input_feed (a dict) is required")
        if output_names is None:
            names = self._output_names
        else:
            names = list(output_names)
            bad = [n for n in names if n not in self._output_names]
            if bad:
                raise ValueError(f"InferenceSession.run: unknown output name(s) {bad}; the "
                                 f"model's outputs are {self._output_names}")
        # Workers stay awake between this run's layers and sleep once it returns
        # (a 1-thread run leaves them asleep). Woken first: a sleeping worker
        # takes tens of microseconds to come back on a VM, which the checks
        # below now overlap.
        hold = self._threads_for_run() > 1
        if hold:
            _core.hold_workers(True)
        try:
            env = self._check_feeds(input_feed)
            key = tuple((k, v.shape, v.dtype.str) for k, v in sorted(env.items()))
            new_shape = self._plan_for(key, env) is None
            nbytes = sum(v.nbytes for v in env.values())
            env.update(self.graph.constants)
            env = self._run_with_threads(env)
        finally:
            if hold:
                _core.hold_workers(False)
        out = []
        for n in names:
            v = env[n]
            if type(v) is not np.ndarray:
                v = np.asarray(cuda_ops.to_host(v))
            if not (v.flags.writeable and v.flags.owndata):
                v = np.array(v, copy=True)   # detach views of constants/inputs
            out.append(v)
        del env
        self._give_back_memory(nbytes, new_shape)
        return out

    def _threads_for_run(self) -> int:
        return self.threads if self.threads is not None else _core.get_num_threads()

    def _run_with_threads(self, env):
        if self.threads is not None:
            # This session's thread count, for this Python thread and this
            # run only (as onnxruntime's per-session setting): neither the
            # global setting nor a session running in another thread sees it.
            previous = _core.get_local_num_threads()
            _core.set_local_num_threads(self.threads)
            try:
                env = run_nodes(self.graph, self.free_after, env)
            finally:
                _core.set_local_num_threads(previous)
        else:
            env = run_nodes(self.graph, self.free_after, env)
        return env

    def _give_back_memory(self, nbytes: int, new_shape: bool = False) -> None:
        """After a run at a smaller shape than the largest seen, hand freed heap
        pages back to the OS (glibc keeps them otherwise: the "arena never
        shrinks" complaint). Also after the first run at a shape, where
        kernels may have repacked weights for it (Winograd tile sizes) and
        freed the old copies. Cheap, and only on those runs."""
        with self._lock:
            biggest = self._biggest_feed
            self._biggest_feed = max(biggest, nbytes)
        if (nbytes < biggest or new_shape) and _malloc_trim is not None:
            _malloc_trim(0)

    def _plan_for(self, key, env):
        """Per input-shape plan: cached kernel choices for the node report.
        Bounded, so sessions that see many shapes do not grow without limit.
        Returns the plan, or None for a shape not seen before (now recorded)."""
        with self._lock:
            if key in self._plans:
                self._plans.move_to_end(key)
                return self._plans[key]
            self._plans[key] = {"shapes": {k: v.shape for k, v in env.items()}}
            while len(self._plans) > self.MAX_PLANS:
                self._plans.popitem(last=False)
            return None   # a shape not seen before

    # ---- introspection ----------------------------------------------------------
    def profile(self, feeds, runs: int = 3) -> list:
        """Per node of the optimised graph: name, op type, mean milliseconds
        over `runs` runs (after one warm-up)."""
        self.run(None, feeds)
        total = [0.0] * len(self.graph.nodes)
        previous = _core.get_local_num_threads()
        if self.threads is not None:   # as run(): this session's thread count
            _core.set_local_num_threads(self.threads)
        hold = self._threads_for_run() > 1
        if hold:
            _core.hold_workers(True)
        try:
            for _ in range(runs):
                env = self._check_feeds(feeds)
                env.update(self.graph.constants)
                t = []
                run_nodes(self.graph, self.free_after, env, timings=t)
                total = [a + b for a, b in zip(total, t)]
        finally:
            if hold:
                _core.hold_workers(False)
            _core.set_local_num_threads(previous)
        return [{"name": n.name, "op_type": n.op_type, "ms": 1e3 * v / runs}
                for n, v in zip(self.graph.nodes, total)]

    def node_report(self, feeds=None):
        """Per node: name, op type, what was fused into it, and for convs the
        kernel chosen (needs feeds, or uses shapes of the last run)."""
        shapes = {}
        if feeds is not None:
            env = self._check_feeds(feeds)
            env.update(self.graph.constants)
            shapes = _trace_shapes(self, env)
        rows = []
        for n in self.graph.nodes:
            row = {"name": n.name, "op_type": n.op_type, "fused": list(getattr(n.op, "folded", []))}
            if n.op_type == "Conv":
                act = n.op.act if n.op.act is None or isinstance(n.op.act, str) else \
                    f"clip({n.op.act[1]:g},{n.op.act[2]:g})"
                row["epilogue"] = act
                row["post"] = n.op.post[0] if n.op.post else None
                w_shape = shapes.get(n.inputs[1]) if n.inputs[1] else getattr(n.op, "w_shape", None)
                if n.inputs[0] in shapes and w_shape is not None:
                    row["kernel"] = n.op.describe(shapes[n.inputs[0]], w_shape)
            row["inplace"] = bool(n.op.inplace)
            if n.outputs[0] in shapes:
                row["out_shape"] = tuple(shapes[n.outputs[0]])
            rows.append(row)
        return rows


def _trace_shapes(sess, env):
    shapes = {k: np.shape(v) for k, v in env.items()}
    orig = sess.free_after
    # Run once without freeing so that every shape can be read back.
    full = run_nodes(sess.graph, [[] for _ in orig], dict(env))
    shapes.update({k: np.shape(v) for k, v in full.items()})
    return shapes

