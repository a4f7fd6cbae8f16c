"""Fidelity and speed figures of the look extractor, on real faces.

Run ``python -m facetory_cam.extract.evaluate`` (with the real face data set at ``../shared/data``)
to print them; the fidelity tests call the same functions and assert on the results.

- Closed loop: random known looks (lipstick, eyeshadow, blush with random colours, opacities,
  finishes, extents and placements) are rendered with the project's renderer onto bare faces,
  the photo goes through ``extract_look`` as PNG bytes, and the truth and the extracted look are
  both rendered onto the same bare face. Colour error is the CIEDE2000 distance between the two
  renders' colour of each region (the lips' body, the lid zone, the cheeks): that is the colour
  the renderer actually puts there, which is what "the same colour" has to mean for layers that
  keep the skin's own lightness and whose colour and opacity the output only shows as a product
  (eyeshadow and blush). Lipstick opacity, which the photo does show (see ``lips.py``), is
  compared as a parameter.
- Bare faces: how often a layer is reported present (confidence above 0.5) on bare faces.
- Transfer: every makeup reference's extracted look is applied to every bare face; the reference's
  lip colour (and lid colour, where the reference has eyeshadow) is compared with the result's.
- Speed: a 12-megapixel JPEG (a shared face upscaled to 4000 x 3000) to a look, decoding included.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from skimage.color import deltaE_ciede2000

from facetory_cam.config import ExtractSettings
from facetory_cam.extract.extractor import Extraction, extract_look
from facetory_cam.extract.eyes import band_strength, eye_bands
from facetory_cam.extract.forward import hex_of_lab, lab_of, rgb_of_lab
from facetory_cam.extract.lips import lip_stats
from facetory_cam.extract.view import face_size_of, make_view
from facetory_cam.imageio import encode_png
from facetory_cam.looks.renderer import LookRenderer
from facetory_cam.looks.schema import Blush, Eyeshadow, Layers, Lipstick, Look
from facetory_cam.vision.masks import face_region_masks

__all__ = [
    "ClosedLoop",
    "Transfer",
    "bare_faces",
    "closed_loop",
    "makeup_references",
    "percentiles",
    "random_look",
    "region_colours",
    "speed",
    "transfer",
]

REGIONS = ("lipstick", "eyeshadow", "blush")
_MIN_FOOTPRINT = 30  # px: a layer that changed fewer pixels than this is not scored
_FACE_PX = 256


def bare_faces(data: Path) -> list[Path]:
    """The bare faces of the makeup data set (its ``non-makeup`` / ``no_makeup`` folders), sorted."""
    return sorted(p for p in (data / "makeup").glob("*/no*makeup/*") if p.suffix.lower() in (".png", ".jpg"))


def makeup_references(data: Path) -> list[Path]:
    """The makeup references of the makeup data set (its ``makeup`` folders), sorted."""
    return sorted(p for p in (data / "makeup").glob("*/makeup/*") if p.suffix.lower() in (".png", ".jpg"))


def _load(path: Path) -> np.ndarray:
    from facetory_cam.imageio import load_image

    return load_image(path)


def _png(image: np.ndarray) -> bytes:
    return encode_png(Image.fromarray(image), compress_level=1)


def _random_colour(
    rng: np.random.Generator, light: tuple[float, float], chroma: tuple[float, float], hue: tuple[float, float]
) -> str:
    """A random sRGB colour from CIELAB ranges (hue in degrees), drawn again until it lies inside the gamut."""
    while True:
        c, h = rng.uniform(*chroma), np.radians(rng.uniform(*hue))
        lab = np.array([rng.uniform(*light), c * np.cos(h), c * np.sin(h)], np.float32)
        if float(np.linalg.norm(lab_of(rgb_of_lab(lab)) - lab)) < 1.0:
            return str(hex_of_lab(lab))


def random_look(rng: np.random.Generator) -> Look:
    """A random look of lipstick, eyeshadow and blush, in the ranges real products come in.

    Lipstick hues span reds, pinks, corals, browns and berries (about -40..90 degrees of CIELAB
    hue: the face tracker itself loses the lips under blue or green lipstick); eyeshadow may be
    any hue; blush is pink to peach. Opacities start at 0.4: fainter layers barely change the
    photo (a blush at 0.3 moves the cheek by about 2 CIEDE2000, less than cheeks differ between
    people), so there is nothing there to read.
    """
    lipstick = Lipstick(
        color=_random_colour(rng, (25.0, 75.0), (15.0, 70.0), (-40.0, 90.0)),
        opacity=round(float(rng.uniform(0.4, 1.0)), 3),
        finish=str(rng.choice(["matte", "satin", "gloss"])),
    )
    crease = _random_colour(rng, (20.0, 80.0), (10.0, 60.0), (0.0, 360.0)) if rng.random() < 0.4 else None
    eyeshadow = Eyeshadow(
        color=_random_colour(rng, (20.0, 80.0), (10.0, 60.0), (0.0, 360.0)),
        crease_color=crease,
        opacity=round(float(rng.uniform(0.4, 1.0)), 3),
        extent=round(float(rng.uniform(0.0, 1.0)), 3),
    )
    blush = Blush(
        color=_random_colour(rng, (45.0, 75.0), (25.0, 60.0), (-20.0, 70.0)),
        opacity=round(float(rng.uniform(0.4, 1.0)), 3),
        size=round(float(rng.uniform(0.7, 1.4)), 3),
        lift=round(float(rng.uniform(-0.7, 0.7)), 3),
    )
    return Look(name="truth", layers=Layers(lipstick=lipstick, eyeshadow=eyeshadow, blush=blush))


def region_colours(
    image: np.ndarray, landmarks: np.ndarray, *, shadow_extent: float | None = None
) -> dict[str, np.ndarray]:
    """CIELAB colour of the lips' body, the lid zone (both eyes) and the cheeks of one face.

    The same robust statistics the extractor reads with: teeth and highlights trimmed from the
    lips, lashes and liner (each band's darkest quarter) from the lids. With ``shadow_extent`` the
    lid colour is read only from the bands an eyeshadow of that extent covers at least half strength.
    """
    view = make_view(image, landmarks, _FACE_PX)
    bands = eye_bands(view)
    weight = bands.count[..., None] * np.isfinite(bands.colour)
    if shadow_extent is not None:
        alpha, _ = band_strength(view, bands, shadow_extent)
        weight = weight * (alpha >= 0.5)[..., None]
    lid = np.nansum(np.nan_to_num(bands.colour) * weight, axis=(0, 1)) / np.maximum(weight.sum(axis=(0, 1)), 1)
    cheeks = np.maximum(view.mask("left_cheek"), view.mask("right_cheek")) > 0.5
    return {
        "lipstick": lip_stats(view).colour,
        "eyeshadow": lab_of(lid.astype(np.float32)) if weight.sum() else np.full(3, np.nan, np.float32),
        "blush": np.median(view.lab[cheeks], axis=0) if cheeks.any() else np.full(3, np.nan, np.float32),
    }


_AREAS = {
    "lipstick": ("upper_lip", "lower_lip"),
    "eyeshadow": ("left_eyeshadow", "right_eyeshadow"),
    "blush": ("left_cheek", "right_cheek", "skin"),
}


def footprints(
    bare: np.ndarray, painted: np.ndarray, landmarks: np.ndarray, *, level: int = 3
) -> dict[str, np.ndarray]:
    """Where a look changed a face, per layer: pixels of the layer's area that moved by more than ``level``.

    Used to compare two renders only where the truth actually painted (a shadow of small extent or a
    faint blush changes a small part of its area; averaging over the whole area would hide it).
    """
    size = face_size_of(landmarks)
    masks = face_region_masks(landmarks, bare.shape[:2], feather=max(1.0, 0.012 * size))
    changed = np.abs(painted.astype(np.int16) - bare.astype(np.int16)).max(axis=2) > level
    out = {}
    grow = max(3, round(0.04 * size)) | 1
    for key, names in _AREAS.items():
        area = np.zeros(bare.shape[:2], np.float32)
        for name in names[:2]:
            np.maximum(area, masks.full(name, bare.shape), out=area)
        if key == "blush":  # the blob reaches past the cheek masks, over the skin
            area = np.minimum(cv2.dilate(area, np.ones((grow, grow), np.uint8)), masks.full("skin", bare.shape))
        elif key == "eyeshadow":
            area = cv2.dilate(area, np.ones((5, 5), np.uint8))
        out[key] = (area > 0.3) & changed
    return out


def footprint_colour(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """CIELAB of the mean colour of the pixels in ``where``."""
    if where.sum() == 0:
        return np.full(3, np.nan, np.float32)
    return lab_of(image[where].astype(np.float32).mean(axis=0) / 255.0)


def _render(image: np.ndarray, landmarks: np.ndarray, look: Look) -> np.ndarray:
    out = image.copy()
    LookRenderer(look, fade_s=0.0).render_face(out, landmarks)
    return out


def _de(a: np.ndarray, b: np.ndarray) -> float:
    return float(deltaE_ciede2000(np.asarray(a, np.float64), np.asarray(b, np.float64)))


def percentiles(values: Iterable[float], qs: Sequence[float] = (10, 25, 50, 75, 90)) -> dict[str, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
    if v.size == 0:
        return {}
    return {f"p{int(q)}": round(float(np.percentile(v, q)), 2) for q in qs} | {"n": int(v.size)}


@dataclass
class ClosedLoop:
    """Per-look results of the closed loop."""

    colour_error: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in REGIONS})
    effect: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in REGIONS})  # truth vs bare
    opacity: list[tuple[float, float]] = field(default_factory=list)  # lipstick (truth, extracted)
    finish: list[tuple[str, str]] = field(default_factory=list)
    bare_confidences: list[dict[str, float]] = field(default_factory=list)
    looks: int = 0

    def opacity_mae(self) -> float:
        return float(np.mean([abs(a - b) for a, b in self.opacity])) if self.opacity else float("nan")

    def constant_opacity_mae(self) -> float:
        """The error of always answering the truths' median: what an opacity estimate must beat."""
        truth = np.array([a for a, _ in self.opacity])
        return float(np.mean(np.abs(truth - np.median(truth)))) if truth.size else float("nan")

    def bare_false_positive_rate(self, threshold: float = 0.5) -> float:
        """Share of (bare face, layer) cases reported present with confidence above ``threshold``."""
        cases = [c for conf in self.bare_confidences for c in conf.values()]
        return float(np.mean([c > threshold for c in cases])) if cases else float("nan")

    def bare_faces_with_any(self, threshold: float = 0.5) -> float:
        """Share of bare faces on which any layer is reported present."""
        if not self.bare_confidences:
            return float("nan")
        return float(np.mean([any(c > threshold for c in conf.values()) for conf in self.bare_confidences]))

    def summary(self) -> dict[str, Any]:
        return {
            "looks": self.looks,
            "colour_error_de2000": {k: percentiles(v) for k, v in self.colour_error.items()},
            "truth_effect_de2000": {k: percentiles(v) for k, v in self.effect.items()},
            "lipstick_opacity_mae": round(self.opacity_mae(), 3),
            "lipstick_opacity_mae_of_a_constant": round(self.constant_opacity_mae(), 3),
            "lipstick_finish_accuracy": round(float(np.mean([a == b for a, b in self.finish])), 3)
            if self.finish
            else None,
            "bare_false_positive_rate": round(self.bare_false_positive_rate(), 3),
            "bare_faces_with_any_layer": round(self.bare_faces_with_any(), 3),
        }


def closed_loop(perception: Any, faces: Sequence[Path], *, per_face: int = 3, seed: int = 0) -> ClosedLoop:
    """Render ``per_face`` random looks onto each bare face, extract them back and compare (see the module)."""
    rng = np.random.default_rng(seed)
    tracker = perception.tracker(static=True, max_faces=1)
    result = ClosedLoop()
    for path in faces:
        image = _load(path)
        found = tracker.process(image)
        if not found:
            continue
        landmarks = found[0].landmarks
        bare = extract_look(_png(image), perception)
        result.bare_confidences.append(dict(bare.confidences))
        for _ in range(per_face):
            truth = random_look(rng)
            photo = _render(image, landmarks, truth)
            got = extract_look(_png(photo), perception).look
            back = _render(image, landmarks, got)
            for key, where in footprints(image, photo, landmarks).items():
                if where.sum() < _MIN_FOOTPRINT:  # the truth left this layer invisible here
                    continue
                want = footprint_colour(photo, where)
                result.colour_error[key].append(_de(want, footprint_colour(back, where)))
                result.effect[key].append(_de(want, footprint_colour(image, where)))
            extracted = got.layers.lipstick
            assert truth.layers.lipstick is not None
            result.opacity.append((truth.layers.lipstick.opacity, extracted.opacity if extracted else 0.0))
            result.finish.append((truth.layers.lipstick.finish, extracted.finish if extracted else "none"))
            result.looks += 1
    return result


@dataclass
class Transfer:
    lips: list[float] = field(default_factory=list)
    eyeshadow: list[float] = field(default_factory=list)
    references: dict[str, dict[str, float]] = field(default_factory=dict)  # confidences per reference

    def summary(self) -> dict[str, Any]:
        return {
            "lips_de2000": percentiles(self.lips),
            "eyeshadow_de2000": percentiles(self.eyeshadow),
            "references": len(self.references),
        }


def transfer(perception: Any, references: Sequence[Path], faces: Sequence[Path]) -> Transfer:
    """Apply each reference's extracted look to each bare face and compare lip and lid colours."""
    tracker = perception.tracker(static=True, max_faces=1)
    targets = []
    for path in faces:
        image = _load(path)
        found = tracker.process(image)
        if found:
            targets.append((image, found[0].landmarks))
    result = Transfer()
    for ref in references:
        image = _load(ref)
        found = tracker.process(image)
        if not found:
            continue
        extraction: Extraction = extract_look(_png(image), perception)
        result.references[ref.name] = dict(extraction.confidences)
        shadow = extraction.look.layers.eyeshadow
        extent = None if shadow is None else shadow.extent
        # Lids are compared where the reference's shadow is (as read): the bands its extent covers.
        want = region_colours(image, found[0].landmarks, shadow_extent=extent)
        for target, landmarks in targets:
            got = region_colours(_render(target, landmarks, extraction.look), landmarks, shadow_extent=extent)
            result.lips.append(_de(want["lipstick"], got["lipstick"]))
            if shadow is not None:
                result.eyeshadow.append(_de(want["eyeshadow"], got["eyeshadow"]))
    return result


def twelve_megapixel_jpeg(face: Path, quality: int = 90) -> bytes:
    """A 4000 x 3000 JPEG made from a shared face (upscaled, with a little sensor noise), in memory."""
    image = _load(face)
    big = cv2.resize(image, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, 0, 0, 500, 500, cv2.BORDER_REFLECT)
    noise = np.random.default_rng(0).normal(0.0, 2.0, big.shape)
    big = np.clip(big + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def speed(perception: Any, data: bytes, *, runs: int = 10, settings: ExtractSettings | None = None) -> dict[str, float]:
    """p50 / p95 wall time (ms) of bytes -> look, after one warm-up run."""
    extract_look(data, perception, settings=settings)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        extract_look(data, perception, settings=settings)
        times.append((time.perf_counter() - start) * 1000.0)
    return {
        "runs": runs,
        "p50_ms": round(float(np.percentile(times, 50)), 1),
        "p95_ms": round(float(np.percentile(times, 95)), 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facetory_cam.extract.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2].parent / "shared" / "data")
    parser.add_argument("--per-face", type=int, default=3, help="random looks per bare face in the closed loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=10, help="timed runs of the 12-megapixel benchmark")
    parser.add_argument("--skip", nargs="*", default=[], choices=["closed", "transfer", "speed"])
    args = parser.parse_args(argv)
    if not (args.data / "makeup").is_dir():
        print(f"error: no makeup data set under {args.data}", file=sys.stderr)
        return 2
    from facetory_cam.models.store import ModelStore
    from facetory_cam.vision.perception import Perception

    perception = Perception(ModelStore(), backend="onnx-cpu")
    faces, refs = bare_faces(args.data), makeup_references(args.data)
    report: dict[str, Any] = {}
    if "closed" not in args.skip:
        report["closed_loop"] = closed_loop(perception, faces, per_face=args.per_face, seed=args.seed).summary()
    if "transfer" not in args.skip:
        report["transfer"] = transfer(perception, refs, faces).summary()
    if "speed" not in args.skip:
        report["speed_12mp"] = speed(perception, twelve_megapixel_jpeg(faces[0]), runs=args.runs)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
