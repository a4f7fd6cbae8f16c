"""Build a PyTorch module from a parsed TFLite graph, one real torch layer per op.

Activations flow in NCHW. TF "SAME" padding is reproduced exactly (the extra row
and column go at the bottom/right), TF DEPTH_TO_SPACE channel order is kept, and
MediaPipe's Convolution2DTransposeBias becomes a ConvTranspose2d. Graph outputs
are returned in the original NHWC layout so they compare 1:1 with LiteRT.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facetory_cam.models.tflite_graph import Graph, Op, TFLiteFormatError, parse_custom_conv_transpose

_SAME = 0


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _activation(name: str) -> nn.Module:
    table: dict[str, Callable[[], nn.Module]] = {
        "none": nn.Identity,
        "relu": nn.ReLU,
        "relu6": nn.ReLU6,
        "relu_n1_to_1": lambda: nn.Hardtanh(-1.0, 1.0),
        "tanh": nn.Tanh,
    }
    return table[name]()


def _nchw(array: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return t.permute(0, 3, 1, 2).contiguous() if t.ndim == 4 else t


class _Conv(nn.Module):
    """CONV_2D / DEPTHWISE_CONV_2D with exact TF padding and fused activation."""

    def __init__(self, op: Op, graph: Graph, pre_pad: tuple[int, int, int, int] = (0, 0, 0, 0)) -> None:
        super().__init__()
        x, w, b = (graph.tensors[i] for i in op.inputs[:3])
        assert w.data is not None
        o = op.options
        _, h_in, w_in, c_in = x.shape
        depthwise = op.kind == "DEPTHWISE_CONV_2D"
        if depthwise:  # [1, kh, kw, C*mult] -> [C*mult, 1, kh, kw]
            weight = w.data.transpose(3, 0, 1, 2)
            groups = c_in
        else:  # OHWI -> OIHW
            weight = w.data.transpose(0, 3, 1, 2)
            groups = 1
        kh, kw = weight.shape[2:]
        dh, dw = o["DilationHFactor"], o["DilationWFactor"]
        pads = (0, 0, 0, 0)
        if o["Padding"] == _SAME:
            top, bottom = _same_pads(h_in, kh, o["StrideH"], dh)
            left, right = _same_pads(w_in, kw, o["StrideW"], dw)
            pads = (left, right, top, bottom)
        elif any(pre_pad):  # a spatial PAD folded in from the op before (see TFLiteModule)
            pads = pre_pad
        symmetric = pads[0] == pads[1] and pads[2] == pads[3]
        self.pad = nn.Identity() if symmetric else nn.ZeroPad2d(pads)
        self.conv = nn.Conv2d(
            c_in,
            weight.shape[0],
            (kh, kw),
            stride=(o["StrideH"], o["StrideW"]),
            padding=(pads[2], pads[0]) if symmetric else 0,
            dilation=(dh, dw),
            groups=groups,
            bias=b.data is not None,
        )
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32)))
            if b.data is not None:
                self.conv.bias.copy_(torch.from_numpy(b.data.astype(np.float32)))
        self.act = _activation(o.get("activation", "none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.pad(x)))


class _ConvTransposeBias(nn.Module):
    """MediaPipe's custom Convolution2DTransposeBias: a transposed conv plus bias."""

    def __init__(self, op: Op, graph: Graph) -> None:
        super().__init__()
        x, k, b = (graph.tensors[i] for i in op.inputs[:3])
        assert k.data is not None and b.data is not None
        padding, sh, sw = parse_custom_conv_transpose(op.options["raw"])
        out_c, kh, kw, in_c = k.data.shape
        if padding == "SAME" and (kh, kw) != (sh, sw):
            raise TFLiteFormatError("only kernel == stride is supported for SAME transposed conv")
        self.conv = nn.ConvTranspose2d(in_c, out_c, (kh, kw), stride=(sh, sw))
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(k.data.transpose(3, 0, 1, 2))))
            self.conv.bias.copy_(torch.from_numpy(b.data.astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _Pool(nn.Module):
    def __init__(self, op: Op, graph: Graph) -> None:
        super().__init__()
        o = op.options
        _, h_in, w_in, _ = graph.tensors[op.inputs[0]].shape
        kh, kw, sh, sw = o["FilterHeight"], o["FilterWidth"], o["StrideH"], o["StrideW"]
        pads = (0, 0, 0, 0)
        if o["Padding"] == _SAME:
            top, bottom = _same_pads(h_in, kh, sh)
            left, right = _same_pads(w_in, kw, sw)
            pads = (left, right, top, bottom)
        if any(pads):
            raise TFLiteFormatError("padded pooling is not used by the supported models")
        self.mode = "max" if op.kind == "MAX_POOL_2D" else "avg"
        self.kernel, self.stride = (kh, kw), (sh, sw)
        self.act = _activation(o.get("activation", "none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = F.max_pool2d if self.mode == "max" else F.avg_pool2d
        return self.act(pool(x, self.kernel, self.stride))


class _Binary(nn.Module):
    """ADD / MUL of two activations or an activation and a constant."""

    def __init__(self, op: Op, graph: Graph) -> None:
        super().__init__()
        self.mul = op.kind == "MUL"
        self.const_index = -1
        for pos, idx in enumerate(op.inputs):
            data = graph.tensors[idx].data
            if data is not None:
                self.register_buffer("const", _nchw(data))
                self.const_index = pos
        self.act = _activation(op.options.get("activation", "none"))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        a, b = (xs[0], self.const) if self.const_index >= 0 else xs
        return self.act(a * b if self.mul else a + b)


class _PReLU(nn.Module):
    """Per-channel PReLU, in one of two equal forms chosen for the runtime.

    Eager torch: relu(x) + alpha * min(x, 0), cheap elementwise ops. For ONNX
    export (``as_conv``): x + (1 - alpha) * relu(-x) with both products as 1x1
    depthwise convs, because ONNX Runtime's CPU PRelu kernel breaks its blocked
    (NCHWc) conv layout and was the slowest op of the face mesh; as convs, with a
    fused Relu and a fused residual add, the block stays in ORT's fast conv path.
    """

    def __init__(self, op: Op, graph: Graph, as_conv: bool = False) -> None:
        super().__init__()
        alpha = graph.tensors[op.inputs[1]].data
        assert alpha is not None
        c = alpha.size
        self.as_conv = as_conv
        self.channels = int(c)  # a constant, so the exported graph has no shape arithmetic per activation
        self.alpha = nn.Parameter(torch.from_numpy(alpha.reshape(1, c, 1, 1).astype(np.float32)))
        self.register_buffer("negate", torch.full((c, 1, 1, 1), -1.0))
        self.register_buffer("rest", torch.from_numpy((1.0 - alpha.reshape(c, 1, 1, 1)).astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.as_conv:
            return torch.relu(x) + self.alpha * torch.clamp(x, max=0.0)
        neg = torch.relu(F.conv2d(x, self.negate, groups=self.channels))
        return F.conv2d(neg, self.rest, groups=self.channels) + x


class _Pad(nn.Module):
    """PAD in NHWC terms. For ONNX export (``as_conv``) a pure channel pad becomes a 1x1
    conv with identity weights: the same zeros, but ORT keeps its blocked conv layout
    through it, where a Pad node forces layout conversions for the rest of the network.
    """

    def __init__(self, op: Op, graph: Graph, as_conv: bool = False) -> None:
        super().__init__()
        p = graph.tensors[op.inputs[1]].data
        assert p is not None and p.shape == (4, 2)
        if p[0].any():
            raise TFLiteFormatError("batch padding is not supported")
        # NHWC [[n],[h],[w],[c]] -> F.pad order on NCHW: (w_l, w_r, h_t, h_b, c_0, c_1)
        self.pads = tuple(int(v) for v in (p[2, 0], p[2, 1], p[1, 0], p[1, 1], p[3, 0], p[3, 1]))
        self.conv: nn.Conv2d | None = None
        if as_conv and not any(self.pads[:5]):
            c_in = graph.tensors[op.inputs[0]].shape[3]
            c_out = c_in + self.pads[5]
            self.conv = nn.Conv2d(c_in, c_out, 1, bias=False)
            with torch.no_grad():
                self.conv.weight.zero_()
                self.conv.weight[:c_in, :, 0, 0] = torch.eye(c_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if self.conv is not None else F.pad(x, self.pads)


class _Resize(nn.Module):
    def __init__(self, op: Op, graph: Graph) -> None:
        super().__init__()
        size = graph.tensors[op.inputs[1]].data
        assert size is not None
        self.size = (int(size[0]), int(size[1]))
        self.align_corners = bool(op.options.get("AlignCorners"))
        if not self.align_corners and not op.options.get("HalfPixelCenters"):
            raise TFLiteFormatError("legacy (non half-pixel) bilinear resize is not supported")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=self.size, mode="bilinear", align_corners=self.align_corners)


class _DepthToSpace(nn.Module):
    """TF depth_to_space: channel index (i*bs + j)*C + c, unlike torch's pixel_shuffle."""

    def __init__(self, op: Op, graph: Graph) -> None:
        super().__init__()
        self.bs = int(op.options["BlockSize"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        bs = self.bs
        x = x.reshape(b, bs, bs, c // (bs * bs), h, w).permute(0, 3, 4, 1, 5, 2)
        return x.reshape(b, c // (bs * bs), h * bs, w * bs)


class _Mean(nn.Module):
    def __init__(self, op: Op, graph: Graph) -> None:
        super().__init__()
        axes = graph.tensors[op.inputs[1]].data
        assert axes is not None
        nhwc_to_nchw = {0: 0, 1: 2, 2: 3, 3: 1}
        self.dims = tuple(sorted(nhwc_to_nchw[int(a)] for a in axes.reshape(-1)))
        self.keep = bool(op.options.get("KeepDims"))
        if not self.keep:
            raise TFLiteFormatError("MEAN without keep_dims is not supported")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.dims, keepdim=True)


class _Reshape(nn.Module):
    """RESHAPE with TF (NHWC) element order; the leading batch dimension stays dynamic."""

    def __init__(self, op: Op, graph: Graph) -> None:
        super().__init__()
        self.in_rank = len(graph.tensors[op.inputs[0]].shape)
        self.out_shape = tuple(graph.tensors[op.outputs[0]].shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_rank == 4:
            x = x.permute(0, 2, 3, 1)
        y = x.reshape((x.shape[0], *self.out_shape))
        return y.permute(0, 3, 1, 2) if len(self.out_shape) == 3 else y


class _Concat(nn.Module):
    def __init__(self, op: Op, graph: Graph) -> None:
        super().__init__()
        rank = len(graph.tensors[op.inputs[0]].shape)
        axis = int(op.options["Axis"]) % rank
        self.axis = {0: 0, 1: 2, 2: 3, 3: 1}[axis] if rank == 4 else axis
        self.act = _activation(op.options.get("activation", "none"))

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.act(torch.cat(xs, dim=self.axis))


class _Unary(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


_BUILDERS: dict[str, Callable[[Op, Graph], nn.Module]] = {
    "CONV_2D": _Conv,
    "DEPTHWISE_CONV_2D": _Conv,
    "CUSTOM:Convolution2DTransposeBias": _ConvTransposeBias,
    "MAX_POOL_2D": _Pool,
    "AVERAGE_POOL_2D": _Pool,
    "ADD": _Binary,
    "MUL": _Binary,
    "PRELU": _PReLU,
    "PAD": _Pad,
    "RESIZE_BILINEAR": _Resize,
    "DEPTH_TO_SPACE": _DepthToSpace,
    "MEAN": _Mean,
    "RESHAPE": _Reshape,
    "CONCATENATION": _Concat,
    "RELU": lambda op, g: _Unary(F.relu),
    "HARD_SWISH": lambda op, g: _Unary(F.hardswish),
    "LOGISTIC": lambda op, g: _Unary(torch.sigmoid),
}


_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _spatial_pads(graph: Graph, op: Op) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) of a PAD that pads only height and width."""
    p = graph.tensors[op.inputs[1]].data
    assert p is not None
    return int(p[2, 0]), int(p[2, 1]), int(p[1, 0]), int(p[1, 1])


def _foldable_pads(graph: Graph) -> dict[int, int]:
    """Spatial PADs whose only reader is a VALID conv: the conv can pad by itself.

    Returns id(pad op) -> its output tensor index. Folding keeps the math and
    removes a copy of the activation per layer (the full-range detector has 43).
    """
    readers: dict[int, list[Op]] = {}
    for op in graph.ops:
        for i in op.inputs:
            readers.setdefault(i, []).append(op)
    out: dict[int, int] = {}
    for op in graph.ops:
        if op.kind != "PAD":
            continue
        p = graph.tensors[op.inputs[1]].data
        if p is None or p[0].any() or p[3].any():
            continue
        users = readers.get(op.outputs[0], [])
        if op.outputs[0] in graph.outputs or len(users) != 1:
            continue
        user = users[0]
        if user.kind in _CONVS and user.options.get("Padding") == 1 and user.inputs[0] == op.outputs[0]:
            out[id(op)] = op.outputs[0]
    return out


class TFLiteModule(nn.Module):
    """The whole graph as a torch module: input NHWC float32 batch, outputs as in the .tflite.

    ``for_export`` picks op forms that ONNX Runtime runs fastest (same function).
    """

    def __init__(self, graph: Graph, *, for_export: bool = False) -> None:
        super().__init__()
        if len(graph.inputs) != 1:
            raise TFLiteFormatError("expected a single-input model")
        self.layers = nn.ModuleList()
        self.wiring: list[tuple[list[int], int]] = []
        folded = _foldable_pads(graph)
        for op in graph.ops:
            builder = _BUILDERS.get(op.kind)
            if builder is None:
                raise TFLiteFormatError(f"unsupported TFLite op {op.kind}")
            if id(op) in folded:
                continue
            if op.kind in _CONVS and op.inputs[0] in folded.values():
                pad_op = next(p for p in graph.ops if id(p) in folded and p.outputs[0] == op.inputs[0])
                op = Op(op.kind, [pad_op.inputs[0], *op.inputs[1:]], op.outputs, op.options)
                pad_spec = _spatial_pads(graph, pad_op)
                self.layers.append(_Conv(op, graph, pre_pad=pad_spec))
                self.wiring.append(([op.inputs[0]], op.outputs[0]))
                continue
            live = [i for i in op.inputs if i >= 0 and graph.tensors[i].data is None]
            export_forms = {"PRELU": _PReLU, "PAD": _Pad}
            if for_export and op.kind in export_forms:
                layer = export_forms[op.kind](op, graph, as_conv=True)
            else:
                layer = builder(op, graph)
            self.layers.append(layer)
            self.wiring.append((live, op.outputs[0]))
        self.input_index = graph.inputs[0]
        self.output_indices = list(graph.outputs)
        self.output_names = [graph.tensors[i].name for i in graph.outputs]
        self.output_ranks = [len(graph.tensors[i].shape) for i in graph.outputs]
        self.input_shape = graph.tensors[self.input_index].shape

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env: dict[int, torch.Tensor] = {self.input_index: x.permute(0, 3, 1, 2)}
        for layer, (inputs, output) in zip(self.layers, self.wiring):
            env[output] = layer(*(env[i] for i in inputs))
        outs: Sequence[torch.Tensor] = [env[i] for i in self.output_indices]
        return tuple(o.permute(0, 2, 3, 1) if r == 4 else o for o, r in zip(outs, self.output_ranks))
