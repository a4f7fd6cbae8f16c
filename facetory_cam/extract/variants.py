"""Variants of an extracted look that suit the user's own skin tone.

A look lifted from a reference photo was chosen for the reference's skin. The same lipstick can
vanish on deep skin or shout on fair skin, and a foundation matched to someone else is the wrong
colour. ``skin_tone`` reads the user's bare skin from a photo; ``complementary_variants`` moves
the look's colours in CIELCh (lightness, chroma, hue) towards what suits that tone:

- hue: lip, blush and eyeshadow colours turn part of the way towards the undertone's family
  (warm: coral and peach; cool: berry and rose; neutral: true red and rosy brown), by a capped
  angle so the colour stays recognisable;
- chroma and lightness follow the depth: deeper skin gets deeper, richer colour (chroma never below
  the reference's on deep skin, where sRGB allows), fairer skin lighter, calmer colour;
- foundation takes the user's own skin colour, contour and highlight are made from it.

Three styles are offered, in this order: true to the reference (only the adaptation above), softer
everyday (sheerer, calmer, lighter) and bolder evening (more opaque, richer, deeper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import cv2
import numpy as np

from facetory_cam.extract.texture import unwrap
from facetory_cam.looks.color import color_lab
from facetory_cam.looks.schema import Color, Look
from facetory_cam.looks.uv import canonical_layout
from facetory_cam.vision.regions import LEFT, RIGHT

__all__ = ["DEPTHS", "UNDERTONES", "SkinTone", "classify", "complementary_variants", "skin_tone"]

Depth = Literal["fair", "light", "medium", "tan", "deep"]
Undertone = Literal["warm", "neutral", "cool"]

# Depth from L*: the Individual Typology Angle class limits (Chardon et al. 1991; 55, 41, 28, 10 and
# -30 degrees, ITA = atan((L* - 50) / b*)) read at b* = 15, typical of skin in photos, with the two
# middle ITA classes merged: fair >= 71, light >= 63, medium >= 53, tan >= 41, deep below. Photos are
# not calibrated, so this orders skins more than it measures them.
DEPTHS: tuple[tuple[Depth, float], ...] = (("fair", 71.0), ("light", 63.0), ("medium", 53.0), ("tan", 41.0))
# Undertone from the hue angle of (a*, b*): redness (blood) pulls it down, yellowness (carotene and
# melanin) up. Skin in photos spans about 35-75 degrees; below 50 it reads pink (cool), above 62
# golden (warm). Below this chroma the hue is noise and the undertone neutral.
UNDERTONES: tuple[tuple[Undertone, float], ...] = (("cool", 50.0), ("neutral", 62.0))
_MIN_SKIN_CHROMA = 6.0
_MIN_SAMPLES = 40

_TRIM_L = (20.0, 80.0)  # percentiles of lightness kept: shadows below, shine above are not skin colour
_TRIM_C = (5.0, 95.0)  # and of chroma (stray hair, makeup)


@dataclass(frozen=True)
class SkinTone:
    """The colour of bare skin, with the depth and undertone classes that colour advice uses."""

    lab: tuple[float, float, float]  # median CIELAB (D65) of the trimmed samples
    depth: Depth
    undertone: Undertone
    samples: int = 0  # how many texels were measured

    @property
    def hue(self) -> float:
        """Hue angle of (a*, b*) in degrees."""
        return math.degrees(math.atan2(self.lab[2], self.lab[1])) % 360.0

    @property
    def chroma(self) -> float:
        return math.hypot(self.lab[1], self.lab[2])

    @property
    def ita(self) -> float:
        """Individual Typology Angle in degrees (higher is lighter)."""
        return math.degrees(math.atan2(self.lab[0] - 50.0, self.lab[2]))

    @property
    def color(self) -> Color:
        return Color(_hex(np.asarray(self.lab, np.float64)))


def classify(lab: tuple[float, float, float]) -> tuple[Depth, Undertone]:
    """Depth and undertone of a skin colour (see ``DEPTHS`` and ``UNDERTONES``)."""
    depth: Depth = "deep"
    for name, least in DEPTHS:
        if lab[0] >= least:
            depth = name
            break
    undertone: Undertone = "warm"
    if math.hypot(lab[1], lab[2]) < _MIN_SKIN_CHROMA:
        undertone = "neutral"
    else:
        hue = math.degrees(math.atan2(lab[2], lab[1])) % 360.0
        hue = hue - 360.0 if hue > 270.0 else hue  # magenta-ish pinks are cool, not "very warm"
        for name, below in UNDERTONES:
            if hue < below:
                undertone = name
                break
    return depth, undertone


@cache
def _zones_uv() -> tuple[tuple[tuple[float, float], float], ...]:
    """Sampling discs (centre, radius) in UV units: the middle of the forehead and both cheeks.

    The forehead disc sits centred above the brows, in the lower part of the forehead, to miss most
    fringes; the cheek discs sit on the cheek's apple, which faces the camera in most poses.
    """
    uv = canonical_layout().uv.astype(np.float64)
    brow_top = min(uv[i, 1] for i in LEFT.brow_upper + RIGHT.brow_upper)
    top = uv[10, 1]
    forehead = ((0.5, brow_top - 0.35 * (brow_top - top)), 0.3 * (brow_top - top))
    zones = [forehead]
    for side in (LEFT, RIGHT):
        centre = uv[list(side.cheek_centre)].mean(axis=0)
        across = float(np.linalg.norm(uv[side.cheek_across[0]] - uv[side.cheek_across[1]]))
        zones.append(((float(centre[0]), float(centre[1])), 0.35 * across))
    return tuple(zones)


def skin_tone(image: np.ndarray, landmarks: np.ndarray) -> SkinTone:
    """The bare skin tone of a face: median Lab of its forehead and cheeks, shadows and shine trimmed.

    The face is unwrapped into the canonical UV layout (so the zones are the same on any pose, and
    hidden parts are skipped); texels outside the 20th-80th lightness and 5th-95th chroma percentiles
    are dropped before the median. Raises ValueError when too little skin is visible.
    """
    size = 128
    un = unwrap(image, landmarks, size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)
    inside = np.zeros((size, size), bool)
    for (cu, cv), r in _zones_uv():
        inside |= (xx - cu) ** 2 + (yy - cv) ** 2 <= r * r
    take = inside & (un.weight > 0.5)
    if int(take.sum()) < _MIN_SAMPLES:
        raise ValueError("too little bare skin is visible to measure the skin tone")
    lab = cv2.cvtColor(un.rgb, cv2.COLOR_RGB2Lab)[take].astype(np.float64)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    lo_l, hi_l = np.percentile(lab[:, 0], _TRIM_L)
    lo_c, hi_c = np.percentile(chroma, _TRIM_C)
    keep = (lab[:, 0] >= lo_l) & (lab[:, 0] <= hi_l) & (chroma >= lo_c) & (chroma <= hi_c)
    if int(keep.sum()) < _MIN_SAMPLES // 2:
        keep = np.ones(len(lab), bool)
    med = np.median(lab[keep], axis=0)
    value = (round(float(med[0]), 2), round(float(med[1]), 2), round(float(med[2]), 2))
    depth, undertone = classify(value)
    return SkinTone(lab=value, depth=depth, undertone=undertone, samples=int(keep.sum()))


# ----------------------------------------------------------------------------------------------
# Colour moves

_FAMILY_HUE: dict[str, dict[Undertone, float]] = {
    # Lab hue angles: coral ~45, true red ~35 (a blue-red ~25), rose and berry ~0-10
    "lips": {"warm": 45.0, "neutral": 30.0, "cool": 5.0},
    "cheeks": {"warm": 50.0, "neutral": 35.0, "cool": 10.0},
    # shadows: bronze and gold ~70, taupe ~50, plum and mauve ~340
    "eyes": {"warm": 70.0, "neutral": 50.0, "cool": 340.0},
}
_MAX_TURN = {"lips": 20.0, "cheeks": 20.0, "eyes": 12.0}  # degrees at full strength
_ACHROMATIC = 8.0  # below this chroma a colour has no hue worth turning

_DEPTH_CHROMA: dict[Depth, float] = {"fair": 0.85, "light": 0.93, "medium": 1.0, "tan": 1.1, "deep": 1.2}
_DEPTH_LIGHT: dict[Depth, float] = {"fair": 4.0, "light": 2.0, "medium": 0.0, "tan": -3.0, "deep": -6.0}
_DEPTH_OPACITY: dict[Depth, float] = {"fair": 0.95, "light": 1.0, "medium": 1.0, "tan": 1.05, "deep": 1.1}
_PASTEL_ABOVE_SKIN = 10.0  # on tan and deep skin, lip and cheek colours stay at most this much lighter than it


@dataclass(frozen=True)
class _Style:
    title: str
    tag: str
    summary: str
    turn: float  # share of _MAX_TURN used
    chroma: float  # chroma factor, on top of the depth's
    light: float  # L* shift, on top of the depth's
    opacity: float  # colour layers' opacity factor, on top of the depth's
    coverage: float  # foundation, contour and highlight amounts
    lines: float  # eyeliner and mascara opacity
    texture: float  # UV texture intensity


_STYLES: tuple[_Style, ...] = (
    _Style(
        title="true to reference",
        tag="true-to-reference",
        summary="the reference's look with its colours adapted to this skin tone",
        turn=0.5,
        chroma=1.0,
        light=0.0,
        opacity=1.0,
        coverage=1.0,
        lines=1.0,
        texture=1.0,
    ),
    _Style(
        title="softer everyday",
        tag="everyday",
        summary="a sheerer, calmer everyday take: lighter, less saturated colour at lower opacity",
        turn=1.0,
        chroma=0.85,
        light=3.0,
        opacity=0.75,
        coverage=0.8,
        lines=0.85,
        texture=0.7,
    ),
    _Style(
        title="bolder evening",
        tag="evening",
        summary="a bolder evening take: richer, deeper colour at higher opacity",
        turn=0.75,
        chroma=1.15,
        light=-4.0,
        opacity=1.2,
        coverage=1.15,
        lines=1.1,
        texture=1.0,
    ),
)


def _lch(hex_colour: str) -> tuple[float, float, float]:
    lab = color_lab(Color(hex_colour).rgb)
    return float(lab[0]), float(math.hypot(lab[1], lab[2])), math.degrees(math.atan2(lab[2], lab[1])) % 360.0


def _lab_of(lightness: float, chroma: float, hue: float) -> np.ndarray:
    h = math.radians(hue)
    return np.array([lightness, chroma * math.cos(h), chroma * math.sin(h)], np.float64)


def _in_gamut(lab: np.ndarray) -> bool:
    rgb = cv2.cvtColor(lab.astype(np.float32).reshape(1, 1, 3), cv2.COLOR_Lab2RGB).reshape(3)
    return bool(np.all(rgb >= -1e-4) and np.all(rgb <= 1.0 + 1e-4))


def _max_chroma(lightness: float, hue: float, want: float) -> float:
    """The largest chroma up to ``want`` that sRGB can show at this lightness and hue (bisection)."""
    if _in_gamut(_lab_of(lightness, want, hue)):
        return want
    lo, hi = 0.0, want
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        if _in_gamut(_lab_of(lightness, mid, hue)):
            lo = mid
        else:
            hi = mid
    return lo


def _hex(lab: np.ndarray) -> str:
    rgb = cv2.cvtColor(np.asarray(lab, np.float32).reshape(1, 1, 3), cv2.COLOR_Lab2RGB).reshape(3)
    r, g, b = (int(round(float(np.clip(c, 0.0, 1.0)) * 255.0)) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _turn(hue: float, target: float, limit: float) -> float:
    """Signed degrees that move ``hue`` towards ``target`` by at most ``limit``."""
    delta = (target - hue + 180.0) % 360.0 - 180.0
    return max(-limit, min(limit, delta))


def _adapt_colour(hex_colour: str, kind: str, tone: SkinTone, style: _Style) -> tuple[str, str]:
    """A product colour moved for a skin tone and style; the new ``#rrggbb`` and a note of what changed."""
    lightness, chroma, hue = _lch(hex_colour)
    turn = 0.0
    if chroma >= _ACHROMATIC:
        turn = _turn(hue, _FAMILY_HUE[kind][tone.undertone], _MAX_TURN[kind] * style.turn)
    new_hue = (hue + turn) % 360.0
    gain = _DEPTH_CHROMA[tone.depth] * style.chroma
    new_light = lightness + _DEPTH_LIGHT[tone.depth] + style.light
    if kind != "eyes" and tone.depth in ("tan", "deep"):
        new_light = min(new_light, max(tone.lab[0] + _PASTEL_ABOVE_SKIN, lightness))
    new_light = float(np.clip(new_light, 5.0, 97.0))
    want = chroma * gain
    got = _max_chroma(new_light, new_hue, want)
    if got < min(want, chroma) - 0.5:
        # Out of gamut at this lightness: the nearest lightness that holds the reference's chroma.
        for step in (2.0, -2.0, 4.0, -4.0, 6.0, -6.0, 8.0, -8.0, 10.0, -10.0):
            candidate = float(np.clip(new_light + step, 5.0, 97.0))
            c = _max_chroma(candidate, new_hue, want)
            if c >= min(want, chroma) - 0.5:
                new_light, got = candidate, c
                break
    out = _hex(_lab_of(new_light, got, new_hue))
    if out == hex_colour.lower():
        return out, f"{hex_colour} unchanged"
    _, final_chroma, _ = _lch(out)
    parts = [f"hue {turn:+.0f} deg towards {tone.undertone}"] if abs(turn) >= 0.5 else []
    parts.append(f"chroma x{final_chroma / max(chroma, 1e-6):.2f}")
    if abs(new_light - lightness) >= 0.5:
        parts.append(f"L* {new_light - lightness:+.0f}")
    return out, f"{hex_colour} -> {out} ({', '.join(parts)})"


def _scaled(value: float, factor: float) -> float:
    return float(np.clip(value * factor, 0.0, 1.0))


def _shade_of_skin(tone: SkinTone, dl: float, chroma_gain: float, hue_turn: float = 0.0) -> str:
    lightness, a, b = tone.lab
    chroma = math.hypot(a, b) * chroma_gain
    hue = math.degrees(math.atan2(b, a)) + hue_turn
    return _hex(_lab_of(float(np.clip(lightness + dl, 5.0, 98.0)), chroma, hue))


def _variant(look: Look, tone: SkinTone, style: _Style) -> Look:
    layers = look.layers
    changes: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    opacity = style.opacity * _DEPTH_OPACITY[tone.depth]

    def colour(layer: str, field: str, kind: str) -> None:
        settings = getattr(layers, layer)
        value = getattr(settings, field)
        if value is None:
            return
        new, note = _adapt_colour(str(value), kind, tone, style)
        changes.setdefault(layer, {})[field] = new
        notes.append(f"{layer} {field.replace('_', ' ')} {note}")

    def amount(layer: str, field: str, factor: float) -> None:
        old = float(getattr(getattr(layers, layer), field))
        new = round(_scaled(old, factor), 3)
        changes.setdefault(layer, {})[field] = new
        if abs(new - old) > 5e-4:
            what = "amount" if field == layer else field
            notes.append(f"{layer} {what} {old:.2f} -> {new:.2f}")

    if layers.lipstick is not None:
        colour("lipstick", "color", "lips")
        amount("lipstick", "opacity", opacity)
    if layers.lip_liner is not None:
        colour("lip_liner", "color", "lips")
        amount("lip_liner", "opacity", opacity)
    if layers.blush is not None:
        colour("blush", "color", "cheeks")
        amount("blush", "opacity", opacity)
    if layers.eyeshadow is not None:
        colour("eyeshadow", "color", "eyes")
        colour("eyeshadow", "crease_color", "eyes")
        amount("eyeshadow", "opacity", opacity)
    if layers.foundation is not None:
        tone_hex = str(tone.color)
        changes["foundation"] = {"tone": tone_hex}
        notes.append(f"foundation tone {layers.foundation.tone} -> {tone_hex} (the user's own skin)")
        amount("foundation", "coverage", style.coverage)
    if layers.contour is not None:
        warmth = {"warm": 6.0, "neutral": 0.0, "cool": -8.0}[tone.undertone]
        contour = _shade_of_skin(tone, -16.0 if tone.depth not in ("tan", "deep") else -12.0, 0.9)
        light = _shade_of_skin(tone, 0.6 * (100.0 - tone.lab[0]), 0.45, warmth)
        changes["contour"] = {"contour_color": contour, "highlight_color": light}
        notes.append(
            f"contour {layers.contour.contour_color} -> {contour} and highlight "
            f"{layers.contour.highlight_color} -> {light}, made from the user's skin"
        )
        amount("contour", "contour", style.coverage)
        amount("contour", "highlight", style.coverage)
    for layer in ("eyeliner", "mascara"):
        if getattr(layers, layer) is not None:
            amount(layer, "opacity", style.lines)
    if layers.texture is not None and style.texture != 1.0:
        amount("texture", "intensity", style.texture)

    data = look.model_dump(mode="json")
    for layer, fields in changes.items():
        data["layers"][layer].update(fields)
    suffix = f" - {style.title}"
    data["name"] = look.name[: 80 - len(suffix)].rstrip() + suffix
    data["tags"] = list(
        dict.fromkeys([*look.tags, "variant", style.tag, f"{tone.depth}-skin", f"{tone.undertone}-undertone"])
    )
    head = (
        f"Variant of '{look.name}' for {tone.depth} skin with a {tone.undertone} undertone "
        f"(L* {tone.lab[0]:.0f}, hue {tone.hue:.0f} deg): {style.summary}."
    )
    body = "; ".join(notes) if notes else "no colour layer to adapt"
    description = f"{head} Changes: {body}."
    if look.description:
        description += f" Original: {look.description}"
    data["description"] = description[:2000]
    return Look.model_validate(data)


def complementary_variants(look: Look, tone: SkinTone, n: int = 3) -> list[Look]:
    """``n`` (1-3) variants of ``look`` for ``tone``: true to the reference, softer everyday, bolder evening.

    Each is a complete, valid look with its own name, tags naming the style and the tone, and a
    description listing every change; provenance and everything not listed are kept. Deterministic.
    """
    if not 1 <= n <= len(_STYLES):
        raise ValueError(f"n must be between 1 and {len(_STYLES)}, got {n}")
    return [_variant(look, tone, style) for style in _STYLES[:n]]
