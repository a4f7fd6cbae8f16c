"""Layered settings for facetory-cam, validated in one place.

Sources, highest precedence first:

1. overrides passed in by the command line (a dict, nested or with dotted keys);
2. environment variables ``FACETORY_<SECTION>__<KEY>``, e.g. ``FACETORY_TRACKER__MAX_FACES=2``;
3. the user TOML file: ``config_file`` if given, else the file named by ``FACETORY_CONFIG``,
   else ``config.toml`` in the per-user config directory (skipped when absent);
4. the project defaults file ``config/default.toml``, read through the package
   (``facetory_cam/data/default_config.toml`` links to it), so it ships with the wheel;
5. the field defaults below, which equal the defaults file (a test keeps them in step).

Each source is validated on its own before the sources are merged key by key, so an
error names the file, environment variable or override that holds the bad value.
"""

from __future__ import annotations

import os
import reprlib
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

__all__ = [
    "CONFIG_ENV_VAR",
    "ENV_PREFIX",
    "ApiSettings",
    "Backend",
    "ConfigError",
    "DaemonSettings",
    "Detector",
    "ExtractSettings",
    "MasksSettings",
    "ModelsSettings",
    "Settings",
    "SmoothingSettings",
    "TrackerSettings",
    "default_cache_dir",
    "load_settings",
    "project_defaults_file",
    "user_config_file",
]

APP_NAME = "facetory-cam"
ENV_PREFIX = "FACETORY_"
ENV_NESTED_DELIMITER = "__"
CONFIG_ENV_VAR = "FACETORY_CONFIG"

Backend = Literal["auto", "onnx-tensorrt", "onnx-cuda", "torch-cuda", "onnx-cpu", "torch-cpu"]
Detector = Literal["short", "full"]

_FieldNamer = Callable[[tuple[int | str, ...]], str]


class ConfigError(ValueError):
    """A settings source cannot be read or holds an invalid value; the message names the source and field."""


def user_config_file() -> Path:
    """Where the user TOML file is looked for when neither an argument nor FACETORY_CONFIG names one."""
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_cache_dir() -> Path:
    """Model cache used when ``models.cache_dir`` is unset."""
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "models"


def project_defaults_file() -> Traversable:
    """The packaged project defaults (a link to ``config/default.toml`` in a source checkout)."""
    return resources.files("facetory_cam") / "data" / "default_config.toml"


class _Section(BaseModel):
    """Common rules: unknown keys are typos, settings are immutable, NaN/inf are never meaningful."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, validate_default=True)


class ModelsSettings(_Section):
    """Where the neural network models are kept and how they are run."""

    cache_dir: Path | None = Field(
        default=None,
        description="Directory for downloaded and converted models; unset means the per-user cache.",
    )
    backend: Backend = Field(
        default="auto",
        description="Inference backend: auto, onnx-tensorrt, onnx-cuda, torch-cuda, onnx-cpu or torch-cpu.",
    )
    threads: int = Field(default=1, ge=1, le=64, description="CPU threads for the CPU backends.")

    @field_validator("cache_dir")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    def resolved_cache_dir(self) -> Path:
        """``cache_dir``, or the per-user cache directory when it is unset."""
        return self.cache_dir if self.cache_dir is not None else default_cache_dir()


class TrackerSettings(_Section):
    """Face detection and landmark tracking."""

    max_faces: int = Field(default=4, ge=1, le=32, description="Most faces tracked at once.")
    detector: Detector = Field(
        default="short",
        description='Face detector: "short" (faces within about 2 m) or "full" (up to about 5 m).',
    )
    min_detection_score: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Detections scoring below this are ignored."
    )
    min_presence: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="A track is dropped when the landmark model's face-presence score falls below this.",
    )
    detect_period: int = Field(
        default=15,
        ge=1,
        le=1000,
        description="Run the detector every this many frames to pick up faces entering the view.",
    )
    iou_new_track: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="A detection overlapping every existing track by less than this IoU starts a new track.",
    )
    refine_iris: bool = Field(default=True, description="Refine eye and iris landmarks (478 points instead of 468).")
    detect_tiles: tuple[int, int] = Field(
        default=(1, 1),
        description="Detector tile grid [columns, rows]; [3, 2] finds the small faces of a crowd in 1080p.",
    )
    iris_min_face_px: float = Field(
        default=96.0,
        ge=0.0,
        description="Faces narrower than this (px) get an estimated iris instead of the iris model (0: always run it).",
    )
    detect_async: bool = Field(
        default=True, description="Look for newcomers on a worker thread so detection never delays a live frame."
    )

    @field_validator("detect_tiles")
    @classmethod
    def _grid(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not (1 <= value[0] <= 8 and 1 <= value[1] <= 8):
            raise ValueError("detect_tiles is [columns, rows], each 1..8")
        return value


class SmoothingSettings(_Section):
    """One Euro landmark filter; speeds are measured in face sizes per second."""

    enabled: bool = Field(default=True, description="Smooth landmarks over time.")
    min_cutoff: float = Field(
        default=0.05, gt=0.0, description="Cutoff in Hz for a still face: lower is steadier but lags more."
    )
    beta: float = Field(default=80.0, ge=0.0, description="How fast the cutoff rises with speed: higher lags less.")
    d_cutoff: float = Field(default=1.0, gt=0.0, description="Cutoff in Hz of the speed estimate.")


class MasksSettings(_Section):
    """Rendering of the makeup masks."""

    feather_px: float = Field(
        default=2.0, ge=0.0, le=50.0, description="Width in pixels of the soft edge around each mask."
    )


class DaemonSettings(_Section):
    """The live pipeline: what it reads, what it publishes, at which rate."""

    sources: list[str] = Field(
        default_factory=lambda: ["0"],
        description='Sources: a camera index or device path, a video file, an image, or "scripted".',
    )
    sink: str = Field(default="virtualcam", description='Output: "virtualcam[:DEVICE]", a video file path, "null".')
    virtualcam_backend: str | None = Field(
        default=None, description="pyvirtualcam backend (v4l2loopback, obs, unitycapture); unset picks the OS default."
    )
    look: str | None = Field(default="natural", description="Look applied at start: a preset id or a look file.")
    width: int = Field(default=1280, ge=16, le=7680, description="Camera width asked for and output width.")
    height: int = Field(default=720, ge=16, le=4320, description="Camera height asked for and output height.")
    fps: float = Field(default=30.0, gt=0.0, le=240.0, description="Output frame rate (frames per second).")
    loop: bool = Field(default=True, description="Play a video file source in a loop.")
    placeholder_after: float = Field(
        default=0.5, gt=0.0, le=10.0, description="Seconds without camera frames before the placeholder shows."
    )
    hang_after: float = Field(
        default=2.0, gt=0.0, le=60.0, description="Seconds without frames before a camera is reopened."
    )
    stats_every: float = Field(default=0.0, ge=0.0, description="Log pipeline statistics every N seconds (0: never).")
    split_stages: bool = Field(
        default=False,
        description="Track the next frame while the makeup of the last one is drawn: more throughput "
        "for crowds and several sources, a little more delay per frame.",
    )


class ExtractSettings(_Section):
    """Making looks from photos: what photos are accepted and which faces can be read."""

    max_bytes: int = Field(
        default=25_000_000, ge=1024, le=500_000_000, description="Largest photo file accepted, in bytes."
    )
    max_pixels: int = Field(
        default=50_000_000, ge=10_000, le=170_000_000, description="Most pixels a photo may declare (bomb guard)."
    )
    work_side: int = Field(
        default=1280, ge=256, le=8192, description="Long side, in pixels, that a photo is decoded to for finding faces."
    )
    face_px: int = Field(
        default=256, ge=128, le=1024, description="Faces are analysed at most this many pixels across (tuned at 256)."
    )
    min_face_px: int = Field(
        default=96, ge=16, le=4000, description="Faces smaller than this many pixels across in the photo are refused."
    )
    max_faces: int = Field(default=8, ge=1, le=32, description="Most faces looked for in one photo.")
    min_frontal: float = Field(
        default=0.25,
        ge=0.0,
        le=0.5,
        description="Faces turned further than this (0.5 frontal, 0 full profile) are refused.",
    )
    presence: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Layers read with less confidence than this are left out of the look."
    )
    texture: bool = Field(
        default=False,
        description="Also read a UV texture of makeup no layer describes (face paint, graphic liner); ~0.2 s slower.",
    )
    texture_confidence: float = Field(
        default=0.5, ge=0.0, le=1.0, description="A texture less certain than this is left out of the look."
    )


class ApiSettings(_Section):
    """The local control API served by ``facetory run`` (loopback only) and the look library."""

    port: int = Field(default=8765, ge=0, le=65535, description="TCP port on 127.0.0.1 and ::1; 0 picks a free one.")
    library_dir: Path | None = Field(
        default=None, description="Where saved looks are kept; unset means <user data dir>/facetory-cam/library."
    )
    keep_reference_photos: bool = Field(
        default=False, description="Keep a stripped copy of each photo a look was made from (off: photos are dropped)."
    )
    max_upload_bytes: int = Field(
        default=20 * 2**20, ge=1024, le=512 * 2**20, description="Largest request body for uploads, in bytes."
    )
    max_parts: int = Field(default=4, ge=1, le=64, description="Most parts in one multipart upload.")
    extract_jobs: int = Field(default=1, ge=1, le=16, description="Photos turned into looks at the same time.")

    @field_validator("library_dir")
    @classmethod
    def _expand_home(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()


class Settings(BaseSettings):
    """All runtime settings. Use :func:`load_settings`; ``Settings()`` alone gives the code defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        validate_default=True,
    )

    models: ModelsSettings = Field(default_factory=ModelsSettings, description="Model storage and backend.")
    tracker: TrackerSettings = Field(default_factory=TrackerSettings, description="Face tracking.")
    smoothing: SmoothingSettings = Field(default_factory=SmoothingSettings, description="Landmark smoothing.")
    masks: MasksSettings = Field(default_factory=MasksSettings, description="Mask rendering.")
    daemon: DaemonSettings = Field(default_factory=DaemonSettings, description="The live pipeline.")
    api: ApiSettings = Field(default_factory=ApiSettings, description="The local control API and look library.")
    extract: ExtractSettings = Field(default_factory=ExtractSettings, description="Looks from photos.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings() runs the precedence chain itself so that every error can name its
        # source; building a Settings directly must not read the environment behind its back.
        return (init_settings,)


def load_settings(*, config_file: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Merge all settings sources (see the module docstring) into one validated :class:`Settings`.

    ``overrides`` may be nested (``{"tracker": {"max_faces": 2}}``) or use dotted keys
    (``{"tracker.max_faces": 2}``); strings are converted as for environment variables.
    A ``config_file`` given here or through FACETORY_CONFIG must exist; the default user
    file may be absent. Raises :class:`ConfigError` for any unreadable or invalid source.
    """
    defaults = project_defaults_file()
    user_file, user_origin, user_required = _choose_user_file(config_file)
    defaults_origin = f"defaults file '{defaults}'"
    sources: list[tuple[dict[str, Any], str, _FieldNamer]] = [
        (_read_toml(defaults, defaults_origin, required=True), defaults_origin, _dotted),
        (_read_toml(user_file, user_origin, required=user_required), user_origin, _dotted),
        (_read_environment(), "environment variables", _env_var_name),
        (_expand_dotted(overrides or {}), "command-line overrides", _dotted),
    ]
    merged: dict[str, Any] = {}
    for data, origin, namer in sources:
        _validate(data, origin, namer)
        merged = _deep_merge(merged, data)
    return _validate(merged, "merged configuration", _dotted)


def _choose_user_file(config_file: Path | None) -> tuple[Path, str, bool]:
    if config_file is not None:
        path = Path(config_file).expanduser()
        return path, f"config file '{path}'", True
    if named := os.environ.get(CONFIG_ENV_VAR):
        path = Path(named).expanduser()
        return path, f"config file '{path}' (from {CONFIG_ENV_VAR})", True
    path = user_config_file()
    return path, f"config file '{path}'", False


def _read_toml(source: Traversable, origin: str, *, required: bool) -> dict[str, Any]:
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{origin} does not exist") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {origin}: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{origin} is not UTF-8 text: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from None


def _read_environment() -> dict[str, Any]:
    try:
        return EnvSettingsSource(Settings)()
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration in environment variables: {exc}") from None


def _validate(data: Mapping[str, Any], origin: str, namer: _FieldNamer) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        short = reprlib.Repr()
        short.maxstring = short.maxother = 60
        problems = [
            f"{namer(err['loc'])}: {err['msg']} (got {short.repr(err['input'])})"
            for err in exc.errors(include_url=False)
        ]
        raise ConfigError(f"invalid configuration in {origin}:\n  " + "\n  ".join(problems)) from None


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(map(str, loc)) or "<top level>"


def _env_var_name(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(map(str, loc)).upper()


def _expand_dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in overrides.items():
        *parents, leaf = str(key).split(".")
        nested: dict[str, Any] = {leaf: value}
        for part in reversed(parents):
            nested = {part: nested}
        result = _deep_merge(result, nested)
    return result


def _deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``top``, tables merged key by key rather than replaced; inputs stay untouched."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = _deep_merge(below, value)
        else:
            merged[key] = value
    return merged
