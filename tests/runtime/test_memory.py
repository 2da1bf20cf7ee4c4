"""Memory: a run at a small shape after one at a large shape gives the memory
back (measured in a fresh child process: VmRSS from /proc)."""
import os
import subprocess
import sys

import pytest

_CHILD = r"""
import numpy as np, convcore
from onnx import helper, TensorProto, numpy_helper
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
w = numpy_helper.from_array(np.random.randn(16, 16, 3, 3).astype(np.float32) * 0.1, "w")
nodes, prev = [], "x"
for i in range(6):
    nodes.append(helper.make_node("Conv", [prev, "w"], [f"c{i}"], pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Sigmoid", [f"c{i}"], [f"s{i}"]))
    prev = f"s{i}"
g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16, "H", "W"])],
                      [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)], [w])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
s = convcore.InferenceSession(m)
small = np.random.randn(1, 16, 32, 32).astype(np.float32)
s.run(None, {"x": small}); base = rss()
big = np.random.randn(1, 16, 500, 500).astype(np.float32)   # 16 MB per activation
s.run(None, {"x": big}); del big
after_big = rss()
for _ in range(3):
    s.run(None, {"x": small})
print(base, after_big, rss())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_memory_returned_after_large_shape():
    import convcore
    # The child must import the same convcore as this process (installed or source tree).
    here = os.path.dirname(os.path.dirname(os.path.abspath(convcore.__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    base, after_big, after_small = map(float, r.stdout.split())
    # After the small runs the process holds at most a few MB more than before the big run.
    assert after_big - base > 15, (base, after_big, after_small)   # the big run did hold memory
    assert after_small - base < 8, (base, after_big, after_small)
