"""ONNX export from the torch ports: dynamic batch, metadata embedded, cached by content."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import onnx
import torch

from facetory_cam.models.loader import build_torch_model, model_input_example
from facetory_cam.models.store import ModelStore

OPSET = 17
EXPORTER_VERSION = "5"


def onnx_path(store: ModelStore, name: str) -> Path:
    sha = store.manifest.entry(name).sha256[:16]
    return store.cache_dir / "onnx" / f"{name}-{sha}-e{EXPORTER_VERSION}-op{OPSET}.onnx"


def export_onnx(store: ModelStore, name: str, *, force: bool = False) -> Path:
    """Export (once) and return the path of the model's ONNX file.

    The file name carries the weights' hash and the exporter version, so a new
    model or exporter never reuses a stale file. Written atomically.
    """
    target = onnx_path(store, name)
    if target.is_file() and not force:
        return target
    entry = store.manifest.entry(name)
    module = build_torch_model(store, name, for_export=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    os.close(fd)
    try:
        axes = {"input": {0: "batch"}, **{out: {0: "batch"} for out in module.output_names}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (model_input_example(store, name, batch=2),),
                tmp,
                input_names=["input"],
                output_names=module.output_names,
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
        proto = onnx.load(tmp)
        meta = {
            "facetory.model": name,
            "facetory.source_sha256": entry.sha256,
            "facetory.source": f"{store.manifest.package}=={store.manifest.version}:{entry.member}",
            "facetory.license": entry.license,
            "facetory.input": json.dumps(
                {
                    "layout": "NHWC",
                    "height": entry.input.height,
                    "width": entry.input.width,
                    "color": entry.input.color,
                    "range": list(entry.input.range),
                }
            ),
            "facetory.outputs": json.dumps(list(entry.outputs)),
            "facetory.exporter": f"{EXPORTER_VERSION}/torch-{torch.__version__}",
        }
        for key, value in meta.items():
            prop = proto.metadata_props.add()
            prop.key, prop.value = key, value
        onnx.save(proto, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
