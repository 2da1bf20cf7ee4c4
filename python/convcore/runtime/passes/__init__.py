"""Graph passes, run in order at load: bind ops, fold constants, fold BN into
Conv, fuse residual Adds and activations into Conv, a 1x1 Conv into the
depthwise Conv it feeds (CPU), drop dead nodes, mark
channel Concats of conv outputs to be written in place."""
from .bind import bind_ops
from .concat_in_place import mark_concat_in_place
from .dead import eliminate_dead
from .fold_bn import fold_batchnorm
from .fold_constants import fold_constants
from .fuse_conv import fuse_activations, fuse_residual
from .fuse_pw_dw import fuse_pointwise_depthwise

__all__ = ["bind_ops", "eliminate_dead", "mark_concat_in_place", "fold_batchnorm", "fold_constants", "fuse_activations",
           "fuse_residual", "fuse_pointwise_depthwise", "optimize"]


def optimize(graph, base_dir=None, level: int = 2, concat_in_place: bool = True,
             cpu_fusions: bool = True):
    """level 0: bind only; 1: + constant folding and dead nodes; 2: + fusions.
    concat_in_place=False keeps Concat a node of its own, cpu_fusions=False
    keeps the fusions only the CPU kernels have (1x1 + depthwise) out (GPU
    sessions)."""
    bind_ops(graph, base_dir)
    if level >= 1:
        fold_constants(graph)
        eliminate_dead(graph)
    if level >= 2:
        fold_batchnorm(graph)
        fuse_residual(graph)
        fuse_activations(graph)
        if cpu_fusions:
            fuse_pointwise_depthwise(graph)
        eliminate_dead(graph)
        if concat_in_place:
            mark_concat_in_place(graph)
    return graph
