"""convcore as an ``onnx.backend.base.Backend`` (so ONNX's own node tests run on it)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from .runtime import InferenceSession
from .runtime.ops import lookup


class ConvcoreRep(BackendRep):
    def __init__(self, session: InferenceSession):
        self.session = session

    def run(self, inputs, **kwargs):
        names = [i.name for i in self.session.get_inputs()]
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            if not isinstance(inputs, (list, tuple)):
                inputs = [inputs]
            feeds = dict(zip(names, inputs))
        return tuple(self.session.run(None, feeds))


class ConvcoreBackend(Backend):
    @classmethod
    def is_compatible(cls, model, device="CPU", **kwargs):
        opset = next((i.version for i in model.opset_import if i.domain in ("", "ai.onnx")), 1)
        return all(lookup(n.op_type, opset, n.domain) is not None for n in model.graph.node)

    @classmethod
    def prepare(cls, model, device="CPU", **kwargs):
        if not cls.supports_device(device):
            raise ValueError(f"convcore backend: device '{device}' is not supported (CPU only)")
        super().prepare(model, device, **kwargs)
        return ConvcoreRep(InferenceSession(model))

    @classmethod
    def run_model(cls, model, inputs, device="CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device="CPU", outputs_info=None, **kwargs):
        """Wrap one NodeProto into a model (inputs are numpy arrays, in order)."""
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        in_names = [n for n in node.input if n]
        vis = [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype),
                                                  np.asarray(v).shape)
               for n, v in zip(in_names, inputs)]
        outs = [onnx.helper.make_empty_tensor_value_info(o) for o in node.output if o]
        graph = onnx.helper.make_graph([node], "run_node", vis, outs)
        model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
        sess = InferenceSession(model)
        return tuple(sess.run(None, dict(zip(in_names, [np.asarray(v) for v in inputs]))))

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return str(device).upper().startswith("CPU")


prepare = ConvcoreBackend.prepare
run_model = ConvcoreBackend.run_model
run_node = ConvcoreBackend.run_node
supports_device = ConvcoreBackend.supports_device
