"""The makeup layers, one file each, and the order they are painted in.

A layer is a function ``render(ctx, settings, strength)`` that changes the face's
ROI in place; ``strength`` is the look's intensity times the layer's intensity
times the face's fade-in, already folded into one number in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from facetory_cam.looks.context import FaceContext

LayerFn = Callable[[FaceContext, Any, float], None]

# Painting order: skin first, then colour on top of it, eyes, lips, and the iris last.
ORDER: tuple[str, ...] = (
    "foundation",
    "skin_smoothing",
    "contour",
    "blush",
    "texture",
    "eyeshadow",
    "eyeliner",
    "mascara",
    "brows",
    "lipstick",
    "lip_liner",
    "teeth_whitening",
    "iris",
)


def layer_functions() -> dict[str, LayerFn]:
    """Every implemented layer's render function, keyed by its field name in ``Layers``."""
    out: dict[str, LayerFn] = {}
    for key in ORDER:
        try:
            module = import_module(f"facetory_cam.looks.layers.{key}")
        except ModuleNotFoundError as exc:
            if exc.name != f"facetory_cam.looks.layers.{key}":
                raise
            continue
        out[key] = module.render
    return out
