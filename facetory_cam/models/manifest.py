"""The model manifest (``models/manifest.json``): what each model is and where it comes from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its pixels: NHWC size, channel order and value range."""

    height: int
    width: int
    channels: int
    color: str
    range: tuple[float, float]

    def normalize_scale_offset(self) -> tuple[float, float]:
        """(scale, offset) mapping uint8 pixel values v to v*scale + offset in the model's range."""
        lo, hi = self.range
        return (hi - lo) / 255.0, lo


@dataclass(frozen=True)
class ModelEntry:
    name: str
    member: str
    sha256: str
    size: int
    license: str
    input: InputSpec
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Manifest:
    package: str
    version: str
    wheel: str
    wheel_sha256: str
    pip_platform: str
    pip_python_version: str
    models: tuple[ModelEntry, ...]

    def entry(self, name: str) -> ModelEntry:
        for model in self.models:
            if model.name == name:
                return model
        known = ", ".join(m.name for m in self.models)
        raise KeyError(f"unknown model {name!r} (known: {known})")


@cache
def load_manifest() -> Manifest:
    """Read the manifest shipped with the package (immutable, so caching is safe)."""
    text = resources.files("facetory_cam").joinpath("data/model_manifest.json").read_text()
    raw = json.loads(text)
    src = raw["source"]
    models = tuple(
        ModelEntry(
            name=m["name"],
            member=m["member"],
            sha256=m["sha256"],
            size=int(m["size"]),
            license=m["license"],
            input=InputSpec(
                height=m["input"]["height"],
                width=m["input"]["width"],
                channels=m["input"]["channels"],
                color=m["input"]["color"],
                range=(float(m["input"]["range"][0]), float(m["input"]["range"][1])),
            ),
            outputs=tuple(m["outputs"]),
        )
        for m in raw["models"]
    )
    return Manifest(
        package=src["package"],
        version=src["version"],
        wheel=src["wheel"],
        wheel_sha256=src["wheel_sha256"],
        pip_platform=src["pip_platform"],
        pip_python_version=src["pip_python_version"],
        models=models,
    )
