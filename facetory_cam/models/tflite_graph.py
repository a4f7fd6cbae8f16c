"""Read a .tflite flatbuffer into a small, framework-free graph description.

The MediaPipe files store weights as fp16 (or sparse fp16) constants that feed
DEQUANTIZE / DENSIFY ops. Those are folded here into plain float32 constants, so
the torch builder only ever sees compute ops and dense weights.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tflite

_BUILTIN_NAMES: dict[int, str] = {
    v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)
}
_NP_TYPES: dict[int, Any] = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
_ACTIVATIONS = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh"}


class TFLiteFormatError(ValueError):
    """The file is not a .tflite model this reader understands."""


@dataclass
class Tensor:
    """One tensor of the graph; ``data`` is set for constants (already float32 if folded)."""

    name: str
    shape: tuple[int, ...]
    data: np.ndarray | None = None


@dataclass
class Op:
    """One operator: kind (builtin name or ``CUSTOM:<code>``), tensor indices, parsed options."""

    kind: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """A single-subgraph model after constant folding."""

    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    description: str

    def tensor_by_name(self, name: str) -> Tensor:
        for tensor in self.tensors:
            if tensor.name == name:
                return tensor
        raise KeyError(name)


def _vector(table: Any, kind: int) -> np.ndarray:
    cls = {1: tflite.Int32Vector, 2: tflite.Uint16Vector, 3: tflite.Uint8Vector}[kind]
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    return vec.ValuesAsNumpy().astype(np.int64)


def _densify(values: np.ndarray, shape: tuple[int, ...], sparsity: Any) -> np.ndarray:
    """Expand a TFLite sparse tensor (dense/CSR dimensions, no blocks) to dense."""
    if sparsity.BlockMapLength() > 0:
        raise TFLiteFormatError("block-sparse tensors are not supported")
    order = [int(sparsity.TraversalOrder(i)) for i in range(sparsity.TraversalOrderLength())]
    coords = np.zeros((1, 0), dtype=np.int64)  # one row per partial coordinate
    for level in range(len(order)):
        meta = sparsity.DimMetadata(level)
        if meta.Format() == 0:  # DENSE
            n = meta.DenseSize()
            coords = np.concatenate([np.repeat(coords, n, axis=0), np.tile(np.arange(n), len(coords))[:, None]], axis=1)
        else:  # SPARSE_CSR
            seg = _vector(meta.ArraySegments(), meta.ArraySegmentsType())
            idx = _vector(meta.ArrayIndices(), meta.ArrayIndicesType())
            counts = np.diff(seg)
            coords = np.concatenate([np.repeat(coords, counts, axis=0), idx[:, None]], axis=1)
    if len(coords) != values.size:
        raise TFLiteFormatError("sparse tensor metadata does not match its value count")
    dense = np.zeros(shape, dtype=values.dtype)
    index = [None] * len(order)
    for level, dim in enumerate(order):
        index[dim] = coords[:, level]
    dense[tuple(index)] = values.reshape(-1)
    return dense


def _options(op: Any, kind: str, custom: bytes | None) -> dict[str, Any]:
    table = op.BuiltinOptions()
    if kind.startswith("CUSTOM:"):
        return {"raw": custom or b""}
    cls_name = {
        "CONV_2D": "Conv2DOptions",
        "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
        "ADD": "AddOptions",
        "MUL": "MulOptions",
        "MAX_POOL_2D": "Pool2DOptions",
        "AVERAGE_POOL_2D": "Pool2DOptions",
        "CONCATENATION": "ConcatenationOptions",
        "RESIZE_BILINEAR": "ResizeBilinearOptions",
        "DEPTH_TO_SPACE": "DepthToSpaceOptions",
        "MEAN": "ReducerOptions",
    }.get(kind)
    if cls_name is None or table is None:
        return {}
    opts = getattr(tflite, cls_name)()
    opts.Init(table.Bytes, table.Pos)
    out: dict[str, Any] = {}
    for attr in (
        "Padding",
        "StrideH",
        "StrideW",
        "DilationHFactor",
        "DilationWFactor",
        "DepthMultiplier",
        "FilterHeight",
        "FilterWidth",
        "Axis",
        "AlignCorners",
        "HalfPixelCenters",
        "BlockSize",
        "KeepDims",
    ):
        if hasattr(opts, attr):
            out[attr] = getattr(opts, attr)()
    if hasattr(opts, "FusedActivationFunction"):
        out["activation"] = _ACTIVATIONS[opts.FusedActivationFunction()]
    return out


def parse_custom_conv_transpose(raw: bytes) -> tuple[str, int, int]:
    """Options of MediaPipe's Convolution2DTransposeBias: (padding, stride_h, stride_w)."""
    if len(raw) < 12:
        raise TFLiteFormatError("Convolution2DTransposeBias options are truncated")
    padding, stride_w, stride_h = struct.unpack("<iii", raw[:12])
    return ("SAME" if padding == 1 else "VALID"), stride_h, stride_w


def load_graph(source: Path | bytes) -> Graph:
    """Parse a .tflite file (path or bytes) and fold its DEQUANTIZE/DENSIFY constants."""
    buf = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise TFLiteFormatError("not a TFLite flatbuffer (missing TFL3 identifier)")
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise TFLiteFormatError("expected exactly one subgraph")
    sub = model.Subgraphs(0)
    tensors: list[Tensor] = []
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        data = None
        buffer = model.Buffers(t.Buffer())
        if buffer is not None and buffer.DataLength() > 0:
            raw = buffer.DataAsNumpy().view(_NP_TYPES[t.Type()])
            if t.Sparsity() is not None:
                dense_shape = tuple(int(s) for s in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else shape
                data = _densify(raw, dense_shape, t.Sparsity())
            else:
                data = raw.reshape(shape).copy()
        tensors.append(Tensor(t.Name().decode(), shape, data))

    ops: list[Op] = []
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = None
        if builtin == tflite.BuiltinOperator.CUSTOM:
            kind = "CUSTOM:" + code.CustomCode().decode()
            custom = op.CustomOptionsAsNumpy().tobytes() if op.CustomOptionsLength() else b""
        else:
            kind = _BUILTIN_NAMES.get(builtin, str(builtin))
        inputs = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        outputs = [int(x) for x in op.OutputsAsNumpy()]
        ops.append(Op(kind, inputs, outputs, _options(op, kind, custom)))

    # Fold constant conversions so only compute ops remain.
    compute: list[Op] = []
    for op in ops:
        if op.kind in ("DEQUANTIZE", "DENSIFY") and tensors[op.inputs[0]].data is not None:
            src = tensors[op.inputs[0]].data
            assert src is not None
            tensors[op.outputs[0]].data = src.astype(np.float32 if op.kind == "DEQUANTIZE" else src.dtype)
            continue
        compute.append(op)

    desc = model.Description().decode() if model.Description() else ""
    return Graph(
        tensors=tensors,
        ops=compute,
        inputs=[int(x) for x in sub.InputsAsNumpy()],
        outputs=[int(x) for x in sub.OutputsAsNumpy()],
        description=desc,
    )
