"""The look format: versioned pydantic models, saved as JSON, with a published JSON Schema.

Presets, hand-edited looks, looks generated from photos and shared files all use
this one format. Every layer is optional and carries its own intensity; the
look's ``intensity`` scales them all. Unknown fields are errors, so a typo in a
hand-edited file is reported instead of silently ignored.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_VERSION = 1

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


class LookError(ValueError):
    """A look file or document is invalid; the message names the field."""


class Color(str):
    """An sRGB colour written as ``#rrggbb``."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(cls._validate, core_schema.str_schema(pattern=_HEX.pattern))

    @classmethod
    def _validate(cls, value: str) -> Color:
        return cls(value.lower())

    @property
    def rgb(self) -> tuple[float, float, float]:
        """The colour as sRGB floats in [0, 1]."""
        return (int(self[1:3], 16) / 255.0, int(self[3:5], 16) / 255.0, int(self[5:7], 16) / 255.0)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class _Layer(_Model):
    enabled: bool = True
    intensity: Unit = Field(1.0, description="This layer's strength, 0..1, multiplied by the look's intensity.")


class Lipstick(_Layer):
    color: Color = Field(description="Lip colour, #rrggbb.")
    opacity: Unit = Field(0.8, description="How much of the colour covers the bare lip.")
    finish: Literal["matte", "satin", "gloss"] = Field("satin", description="Surface finish.")
    gloss: Unit = Field(0.0, description="Extra specular shine on top of the finish.")


class LipLiner(_Layer):
    color: Color
    opacity: Unit = 0.6
    thickness: float = Field(0.012, ge=0.0, le=0.05, description="Line width as a fraction of face size.")


class Eyeshadow(_Layer):
    color: Color = Field(description="Colour at the lid (lash line).")
    crease_color: Color | None = Field(None, description="Second colour towards the crease; none = one colour.")
    opacity: Unit = 0.5
    extent: Unit = Field(0.6, description="How far the shadow reaches from the lid towards the brow.")


class Eyeliner(_Layer):
    color: Color = Color("#1a1414")
    opacity: Unit = 0.85
    thickness: float = Field(0.008, ge=0.0, le=0.04, description="Line width as a fraction of face size.")
    wing_length: float = Field(0.0, ge=0.0, le=0.15, description="Wing length as a fraction of face size.")
    wing_angle: float = Field(20.0, ge=-10.0, le=60.0, description="Wing angle above the eye line, degrees.")


class Mascara(_Layer):
    color: Color = Color("#0d0a0a")
    opacity: Unit = 0.6


class Brows(_Layer):
    color: Color
    opacity: Unit = 0.4
    fill: Unit = Field(0.5, description="0 tints only the hairs, 1 fills the brow shape evenly.")


class Blush(_Layer):
    color: Color
    opacity: Unit = 0.3
    size: float = Field(1.0, ge=0.5, le=1.6, description="Blob size relative to the default.")
    lift: float = Field(0.0, ge=-1.0, le=1.0, description="Placement: -1 lower on the cheek, +1 up towards the temple.")


class Contour(_Layer):
    contour_color: Color = Color("#8a6450")
    highlight_color: Color = Color("#fff3e6")
    contour: Unit = Field(0.25, description="Shade strength under cheekbones, at the jaw and nose sides.")
    highlight: Unit = Field(0.2, description="Light strength on cheekbones, nose bridge and brow bone.")


class Foundation(_Layer):
    tone: Color = Field(description="Target skin tone, #rrggbb.")
    coverage: Unit = Field(0.3, description="How far the skin's colour moves towards the tone.")


class SkinSmoothing(_Layer):
    strength: Unit = Field(0.4, description="How much blotchiness is smoothed; pores and edges are kept.")


class IrisColor(_Layer):
    color: Color
    opacity: Unit = 0.5
    keep_limbal_ring: bool = Field(True, description="Keep the darker ring around the iris.")


class TeethWhitening(_Layer):
    strength: Unit = 0.4


class Background(_Model):
    mode: Literal["none", "blur", "color", "image"] = "none"
    blur: Unit = Field(0.6, description="Blur strength for mode blur.")
    color: Color = Color("#2b2b2b")
    image: str | None = Field(None, description="Path of a background image for mode image.")
    edge: Unit = Field(0.5, description="Softness of the person's outline.")

    @field_validator("image")
    @classmethod
    def _image_path(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("an empty path is not an image")
        return value


class UVTexture(_Layer):
    """RGBA makeup painted in the canonical face UV space (used by looks made from photos)."""

    image: str = Field(description="PNG file (relative to the look file) or data: URI, RGBA, square.")
    blend: Literal["normal", "multiply", "soft_light"] = "normal"


class Layers(_Model):
    foundation: Foundation | None = None
    skin_smoothing: SkinSmoothing | None = None
    contour: Contour | None = None
    blush: Blush | None = None
    eyeshadow: Eyeshadow | None = None
    eyeliner: Eyeliner | None = None
    mascara: Mascara | None = None
    brows: Brows | None = None
    lipstick: Lipstick | None = None
    lip_liner: LipLiner | None = None
    teeth_whitening: TeethWhitening | None = None
    iris: IrisColor | None = None
    texture: UVTexture | None = None


class Provenance(_Model):
    source: Literal["preset", "manual", "photo", "shared"] = "manual"
    photo_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    extractor_version: str | None = None


class Look(_Model):
    """A complete look, as stored in a ``.json`` file."""

    schema_version: Literal[1] = Field(SCHEMA_VERSION, description="Format version of this document.")
    name: str = Field(min_length=1, max_length=80)
    author: str = Field("", max_length=80)
    created: datetime | None = None
    description: str = Field("", max_length=2000)
    tags: tuple[Annotated[str, Field(min_length=1, max_length=32)], ...] = ()
    provenance: Provenance = Provenance()
    intensity: Unit = Field(1.0, description="Global strength of every layer.")
    layers: Layers = Layers()
    background: Background = Background()


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"invalid look {source}:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(document)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_look(data: str | bytes | dict[str, Any], *, source: str = "document") -> Look:
    """Validate a look from JSON text or a dict; raise LookError naming each bad field."""
    try:
        if isinstance(data, (str, bytes)):
            data = json.loads(data)
    except json.JSONDecodeError as exc:
        raise LookError(f"invalid look {source}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise LookError(f"invalid look {source}: the document must be a JSON object")
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise LookError(
            f"invalid look {source}: schema_version {version!r} is not supported (this is {SCHEMA_VERSION})"
        )
    try:
        return Look.model_validate(data)
    except ValidationError as exc:
        raise LookError(_format_errors(exc, source)) from None


def _anchor(ref: str | None, base: Path) -> str | None:
    if ref is None or ref.startswith("data:") or Path(ref).is_absolute():
        return ref
    return str(base / ref)


def load_look_file(path: Path) -> Look:
    """Read a look file; image paths inside it are taken relative to the file's folder."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LookError(f"cannot read look file {path}: {exc}") from None
    look = parse_look(text, source=str(path))
    base = Path(path).resolve().parent
    update: dict[str, Any] = {}
    if look.background.image is not None:
        update["background"] = look.background.model_copy(update={"image": _anchor(look.background.image, base)})
    if look.layers.texture is not None:
        texture = look.layers.texture.model_copy(update={"image": _anchor(look.layers.texture.image, base)})
        update["layers"] = look.layers.model_copy(update={"texture": texture})
    return look.model_copy(update=update) if update else look


def dump_look(look: Look) -> str:
    return look.model_dump_json(indent=2, exclude_none=True) + "\n"


def json_schema() -> dict[str, Any]:
    schema = Look.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://facetory.invalid/look/v{SCHEMA_VERSION}.json"
    return schema
