"""Conv and ConvTranspose on the compiled kernels.

Conv carries the fusions the graph passes attach to it: a clamp activation
(Relu, Clip) and a residual input inside the kernel's epilogue, and an
optional elementwise "post" op (HardSwish, SiLU, ...) applied in place.
"""
from __future__ import annotations

import numpy as np

from ... import _core
from .base import Op
from .registry import register
from .spatial import geometry, read_window_attrs


def _f32(op, name, a):
    if a.dtype != np.float32:
        raise TypeError(f"{op.label}: {name} must be float32, got {a.dtype}")
    return np.ascontiguousarray(a)


def apply_post(post, y):
    """Elementwise activations fused after a conv, computed in place on y."""
    if post is None:
        return y
    kind = post[0]
    if kind == "hardswish":   # x * clip(x/6 + 1/2, 0, 1)   (HardSigmoid form, alpha/beta)
        alpha, beta = post[1], post[2]
        t = y * np.float32(alpha)
        t += np.float32(beta)
        np.clip(t, 0.0, 1.0, out=t)
        y *= t
    elif kind == "silu":
        t = np.negative(y)
        np.exp(t, out=t)
        t += 1.0
        np.divide(y, t, out=y)
    elif kind == "sigmoid":
        np.negative(y, out=y)
        np.exp(y, out=y)
        y += 1.0
        np.reciprocal(y, out=y)
    elif kind == "leakyrelu":
        np.multiply(y, np.where(y < 0, np.float32(post[1]), np.float32(1.0)), out=y)
    elif kind == "tanh":
        np.tanh(y, out=y)
    else:  # pragma: no cover - passes only create the kinds above
        raise AssertionError(kind)
    return y


@register("Conv", since=1)
class Conv(Op):
    min_inputs = 2   # X and W (W may later be dropped from the node once packed)
    def setup(self):
        self.group = self.attr("group", "int", 1)
        if self.group <= 0:
            raise self.error(f"group must be positive, got {self.group}")
        self.win = read_window_attrs(self, None)
        self.act = None          # None | "relu" | ("clip", lo, hi): kernel epilogue
        self.post = None         # elementwise op applied in place after the kernel
        self.residual_index = None  # input index of a fused residual Add
        self.packed = None       # _core.PackedConv2d: weights packed once, at load
        # (concat output name, first channel, channels): write into that
        # Concat's output at batch 1 (passes/concat_in_place.py)
        self.concat_slot = None
        # A 1x1 Conv op fused in front of this depthwise one (passes/fuse_pw_dw.py):
        # inputs 4 and 5 are its weight and bias, x is its input.
        self.pre = None
        self._geo = {}           # input shape -> output geometry (dict ops are atomic)

    def prepare(self, constants):
        """Pack constant weights (after BN folding and fusions are final)."""
        if self.pre is not None:
            return self._prepare_fused(constants)
        packer = getattr(_core, "PackedConv2d", None)
        w = constants.get(self.node.inputs[1])
        b = constants.get(self.node.inputs[2]) if self.has_input(2) else None
        if packer is None or w is None or w.dtype != np.float32 or w.ndim not in (3, 4):
            return
        if self.has_input(2) and b is None:
            return
        nsp = w.ndim - 2
        from .spatial import check_lengths, to2d
        check_lengths(self, self.win, nsp)
        k_hw = [1, w.shape[2]] if nsp == 1 else list(w.shape[2:])
        if self.win["auto_pad"] in ("SAME_UPPER", "SAME_LOWER"):
            if any(v != 1 for v in (self.win["strides"] or [1])):
                return   # pads depend on the input size: unpacked path
        s, p, d = geometry(self, self.win, [64, 64], k_hw, nsp)
        w4 = np.ascontiguousarray(w.reshape(w.shape[0], w.shape[1], *k_hw))
        lo, hi = self._bounds()
        try:
            self.packed = packer(w4, None if b is None else np.ascontiguousarray(b, np.float32),
                                 s, p, d, self.group, lo, hi)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{self.label}: {e}") from None
        # The packed copy is all the kernel needs: stop reading the float weights
        # (and bias) so the session can drop them (weights held once, not twice).
        self.w_shape = tuple(w.shape)
        self.node.inputs = [self.node.inputs[0], "", ""] + list(self.node.inputs[3:])

    def _prepare_fused(self, constants):
        ins = self.node.inputs
        wd, we = constants.get(ins[1]), constants.get(ins[4])
        bd = constants.get(ins[2]) if ins[2] else None
        be = constants.get(ins[5]) if len(ins) > 5 and ins[5] else None
        if wd is None or we is None:
            return   # not constant after all: run() computes the two convs
        s, p, d = geometry(self, self.win, [64, 64], list(wd.shape[2:]), 2)
        lo1, hi1 = self.pre._bounds()
        lo, hi = self._bounds()
        try:
            self.packed = _core.PackedPwDw(
                np.ascontiguousarray(we), None if be is None else np.ascontiguousarray(be),
                lo1, hi1, np.ascontiguousarray(wd),
                None if bd is None else np.ascontiguousarray(bd), s, p, d, lo, hi)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{self.label}: {e}") from None
        self.w_shape = tuple(wd.shape)
        self.node.inputs = [ins[0], "", "", ins[3] if len(ins) > 3 else ""]

    def _bounds(self):
        if self.act == "relu":
            return 0.0, np.inf
        if self.act is not None:
            return self.act[1], self.act[2]
        return -np.inf, np.inf

    def params(self, xs, ws):
        nsp = len(xs) - 2
        if nsp not in (1, 2):
            raise self.unsupported(f"{nsp}-D convolution is not supported (1-D and 2-D only)")
        if len(ws) != len(xs):
            raise ValueError(f"{self.label}: weight rank {len(ws)} differs from input rank {len(xs)}")
        kernel = list(ws[2:])
        if self.win["kernel"] is not None and list(self.win["kernel"]) != kernel:
            raise ValueError(f"{self.label}: kernel_shape {self.win['kernel']} disagrees with the "
                             f"weight's shape {tuple(ws)}")
        from .spatial import check_lengths
        check_lengths(self, self.win, nsp)
        in_hw = [1] + list(xs[2:]) if nsp == 1 else list(xs[2:])
        k_hw = [1] + kernel if nsp == 1 else kernel
        s, p, d = geometry(self, self.win, in_hw, k_hw, nsp)
        if xs[1] != ws[1] * self.group:
            raise ValueError(f"{self.label}: input has {xs[1]} channels, weight expects "
                             f"{ws[1]} x group {self.group} = {ws[1] * self.group}")
        return nsp, s, p, d

    def run(self, x, w=None, b=None, *rest):
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = _f32(self, "input X", x)
        if w is None:
            if self.packed is None:
                raise ValueError(f"{self.label}: missing weight input W")
            return self.run_packed(x, rest[0] if rest else None)
        if self.pre is not None:   # fused 1x1 not packed: run it first
            x = self.pre.run(x, rest[1], rest[2] if len(rest) > 2 else None)[0]
            rest = rest[:1] if rest and rest[0] is not None else ()
        w = _f32(self, "weight W", w)
        nsp, s, p, d = self.params(x.shape, w.shape)
        if nsp == 1:
            x = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
            w = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])
        if b is not None:
            b = _f32(self, "bias B", b)
            if b.shape != (w.shape[0],):
                raise ValueError(f"{self.label}: bias must have shape ({w.shape[0]},), got {b.shape}")
        lo, hi = self._bounds()
        res = rest[0] if rest else None
        y_res_later = None
        if res is not None:
            res = _f32(self, "residual", res)
            oh = (x.shape[2] + p[0] + p[2] - d[0] * (w.shape[2] - 1) - 1) // s[0] + 1
            ow = (x.shape[3] + p[1] + p[3] - d[1] * (w.shape[3] - 1) - 1) // s[1] + 1
            oshape = (x.shape[0], w.shape[0], oh, ow) if nsp == 2 else (x.shape[0], w.shape[0], ow)
            if res.shape != oshape:   # broadcasting Add: not fusable, do it after
                y_res_later, res = res, None
            elif nsp == 1:
                res = res.reshape(x.shape[0], w.shape[0], 1, ow)
        if y_res_later is not None and self.act is not None:
            # A broadcasting residual cannot sit inside the kernel's clamp.
            y = _core.conv2d_forward(x, w, b, s, p, d, self.group, -np.inf, np.inf, None, "auto")
            y = np.clip(y + y_res_later, lo, hi).astype(np.float32)
            if nsp == 1:
                y = y.reshape(y.shape[0], y.shape[1], y.shape[3])
            return [apply_post(self.post, y)]
        try:   # (packed convs no longer receive W: run_packed)
            y = _core.conv2d_forward(x, w, b, s, p, d, self.group, lo, hi, res, "auto")
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{self.label}: {e}") from None
        if nsp == 1:
            y = y.reshape(y.shape[0], y.shape[1], y.shape[3])
        if y_res_later is not None:
            y = y + y_res_later
        return [apply_post(self.post, y)]

    @property
    def uses_env(self):
        return self.concat_slot is not None and self.packed is not None

    def run_in(self, env, x, w=None, b=None, *rest):
        """As run(); at batch 1 the output is a channel range of the marked
        Concat's output, allocated in this run's values by the first conv."""
        if w is not None or x.shape[0] != 1 or x.ndim != 4:
            return self.run(x, w, b, *rest)
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = _f32(self, "input X", x)
        key, c0, total = self.concat_slot
        _, oh, ow = self._geometry(x.shape)
        base = env.get(key)
        if base is None or base.shape != (1, total, oh, ow):
            base = np.empty((1, total, oh, ow), np.float32)
            env[key] = base
        out = base[:, c0:c0 + self.w_shape[0]]
        return self.run_packed(x, rest[0] if rest else None, out)

    def _geometry(self, shape):
        """(spatial dims, OH, OW) for this input shape, cached per shape."""
        geo = self._geo.get(shape)
        if geo is None:
            ws = self.w_shape
            xs = self._dw_input_shape(shape)
            nsp, s, p, d = self.params(xs, ws)
            h = 1 if nsp == 1 else xs[2]
            oh = (h + p[0] + p[2] - d[0] * ((ws[2] if nsp == 2 else 1) - 1) - 1) // s[0] + 1
            ow = (xs[-1] + p[1] + p[3] - d[1] * (ws[-1] - 1) - 1) // s[1] + 1
            geo = (nsp, oh, ow)
            if len(self._geo) > 64:
                self._geo.clear()
            self._geo[shape] = geo
        return geo

    def _dw_input_shape(self, shape):
        """With a fused 1x1 in front: the depthwise conv's input shape."""
        if self.pre is None:
            return shape
        cin = self.packed.in_channels
        if len(shape) != 4 or shape[1] != cin:
            raise ValueError(f"{self.label}: input must be 4-D with {cin} channels, got shape "
                             f"{tuple(shape)}")
        return (shape[0], self.w_shape[0]) + tuple(shape[2:])

    def run_packed(self, x, res, out=None):
        ws = self.w_shape
        # Geometry per input shape, cached (the per-shape plan of this node).
        nsp, oh, ow = self._geometry(x.shape)
        if nsp == 1:
            x = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
        later = None
        if res is not None:
            res = _f32(self, "residual", res)
            want = (x.shape[0], ws[0], oh, ow) if nsp == 2 else (x.shape[0], ws[0], ow)
            if res.shape != want:
                later, res = res, None       # broadcasting Add: after the kernel
            elif nsp == 1:
                res = res.reshape(x.shape[0], ws[0], 1, ow)
        try:
            if later is not None and self.act is not None:
                raise ValueError("a broadcasting residual cannot be fused with an activation")
            if later is not None:
                out = None   # the broadcast Add below may not write in place
            y = self.packed.run(x, res, out)
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{self.label}: {e}") from None
        if nsp == 1:
            y = y.reshape(y.shape[0], y.shape[1], y.shape[3])
        if later is not None:
            y = y + later
        return [apply_post(self.post, y)]

    def describe(self, x_shape, w_shape) -> str:
        """Kernel name chosen for these shapes (the per-node report)."""
        try:
            if self.pre is not None and self.packed is not None:
                return self.packed.algo(list(x_shape)) + " (packed)"
            nsp, s, p, d = self.params(x_shape, w_shape)
            xs, ws = list(x_shape), list(w_shape)
            if nsp == 1:
                xs = xs[:2] + [1] + xs[2:]
                ws = ws[:2] + [1] + ws[2:]
            if self.packed is not None:
                return self.packed.algo(xs) + " (packed)"
            return _core.conv_algo(xs, ws, s, p, d, self.group)
        except Exception as e:  # report only
            return f"? ({e})"


@register("ConvTranspose", since=1)
class ConvTranspose(Op):
    def setup(self):
        self.group = self.attr("group", "int", 1)
        if self.group <= 0:
            raise self.error(f"group must be positive, got {self.group}")
        self.win = read_window_attrs(self, None)
        self.output_padding = self.attr("output_padding", "ints", None)
        self.output_shape = self.attr("output_shape", "ints", None)

    def run(self, x, w, b=None):
        x = _f32(self, "input X", x)
        w = _f32(self, "weight W", w)
        nsp = x.ndim - 2
        if nsp not in (1, 2):
            raise self.unsupported(f"{nsp}-D transposed convolution is not supported")
        if w.ndim != x.ndim:
            raise ValueError(f"{self.label}: weight rank {w.ndim} differs from input rank {x.ndim}")
        if w.shape[0] != x.shape[1]:
            raise ValueError(f"{self.label}: weight has {w.shape[0]} input channels, input has {x.shape[1]}")
        from .spatial import check_lengths, to2d
        check_lengths(self, self.win, nsp)
        if nsp == 1:
            x = x.reshape(x.shape[0], x.shape[1], 1, x.shape[2])
            w = w.reshape(w.shape[0], w.shape[1], 1, w.shape[2])
        N, C, H, W = x.shape
        K = w.shape[1] * self.group
        kh, kw = w.shape[2], w.shape[3]
        s = to2d(self.win["strides"], nsp, 1)
        d = to2d(self.win["dilations"], nsp, 1)
        op_ = to2d(self.output_padding, nsp, 0)
        if len(op_) != 2:
            raise ValueError(f"{self.label}: output_padding {self.output_padding} has the wrong length")
        eff = [d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1]
        full = [s[0] * (H - 1) + eff[0], s[1] * (W - 1) + eff[1]]
        ap = self.win["auto_pad"]
        pads = [0, 0, 0, 0]
        if self.output_shape is not None:
            osh = list(self.output_shape)[-nsp:]
            osh = [1] + osh if nsp == 1 else osh
            for i in range(2):
                total = full[i] + op_[i] - osh[i]
                if ap == "SAME_UPPER":
                    pads[i], pads[i + 2] = total // 2, total - total // 2
                else:
                    pads[i], pads[i + 2] = total - total // 2, total // 2
        elif ap in ("SAME_UPPER", "SAME_LOWER"):
            for i, n in enumerate((H, W)):
                total = max(0, full[i] + op_[i] - n * s[i])
                if ap == "SAME_UPPER":
                    pads[i], pads[i + 2] = total // 2, total - total // 2
                else:
                    pads[i], pads[i + 2] = total - total // 2, total // 2
        elif ap == "NOTSET" and self.win["pads"] is not None:
            pads = list(self.win["pads"])
            if nsp == 1:
                pads = [0, pads[0], 0, pads[1]]
        out = [full[0] + op_[0] - pads[0] - pads[2], full[1] + op_[1] - pads[1] - pads[3]]
        if min(out) <= 0:
            raise ValueError(f"{self.label}: output size {out} is not positive")
        self.check_size((N, K, out[0], out[1]))
        try:
            if min(pads) >= 0 and op_[0] < s[0] and op_[1] < s[1]:
                # conv_transpose(x, W) is the input-gradient of conv2d(y, W) at grad_out=x.
                shape_only = np.empty((N, K, out[0], out[1]), np.float32)
                y = _core.conv2d_backward(x, shape_only, w, s, pads, d, self.group,
                                          True, False, False)[0]
            else:
                shape_only = np.empty((N, K, full[0], full[1]), np.float32)
                yf = _core.conv2d_backward(x, shape_only, w, s, [0, 0, 0, 0], d, self.group,
                                           True, False, False)[0]
                y = np.zeros((N, K, out[0], out[1]), np.float32)
                # out[o] = full[o + pad_begin], where it exists.
                sl_src, sl_dst = [], []
                for i in range(2):
                    lo = max(0, -pads[i])
                    hi = min(out[i], full[i] - pads[i])
                    sl_dst.append(slice(lo, max(lo, hi)))
                    sl_src.append(slice(lo + pads[i], max(lo, hi) + pads[i]))
                y[:, :, sl_dst[0], sl_dst[1]] = yf[:, :, sl_src[0], sl_src[1]]
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"{self.label}: {e}") from None
        if b is not None:
            b = _f32(self, "bias B", b)
            if b.shape != (K,):
                raise ValueError(f"{self.label}: bias must have shape ({K},), got {b.shape}")
            y += b.reshape(1, K, 1, 1)
        if nsp == 1:
            y = y.reshape(N, K, out[1])
        return [y]
