from __future__ import annotations

import os
import tomllib
from pathlib import Path

import platformdirs
import pydantic
import pytest

from facetory_cam import config
from facetory_cam.config import ConfigError, Settings, load_settings

REPO_DEFAULTS = Path(__file__).resolve().parents[1] / "config" / "default.toml"


@pytest.fixture()
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default user config file into tmp_path and clear any FACETORY_* variables."""
    for name in list(os.environ):
        if name.upper().startswith("FACETORY_"):
            monkeypatch.delenv(name)
    path = tmp_path / "user" / "config.toml"
    monkeypatch.setattr(config, "user_config_file", lambda: path)
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_file_equals_code_defaults() -> None:
    with REPO_DEFAULTS.open("rb") as fh:
        from_file = tomllib.load(fh)
    # Same keys and values: fields left unset in code (None) are commented out in the file.
    assert from_file == Settings().model_dump(mode="json", exclude_none=True)
    assert Settings.model_validate(from_file) == Settings()


def test_packaged_defaults_are_the_repository_file() -> None:
    packaged = Path(str(config.project_defaults_file()))
    assert packaged.resolve() == REPO_DEFAULTS.resolve()


def test_no_user_file_and_no_environment_gives_defaults(user_file: Path) -> None:
    assert not user_file.exists()
    assert load_settings() == Settings()


def test_settings_alone_ignore_the_environment(user_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACETORY_TRACKER__MAX_FACES", "2")
    assert Settings().tracker.max_faces == 4


def test_precedence_chain_one_field_at_every_level(
    user_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    defaults = _write(tmp_path / "defaults.toml", "[tracker]\nmax_faces = 5\n")
    monkeypatch.setattr(config, "project_defaults_file", lambda: defaults)
    _write(user_file, "[tracker]\nmax_faces = 6\n")
    monkeypatch.setenv("FACETORY_TRACKER__MAX_FACES", "7")
    overrides = {"tracker": {"max_faces": 8}}

    assert load_settings(overrides=overrides).tracker.max_faces == 8
    assert load_settings().tracker.max_faces == 7
    monkeypatch.delenv("FACETORY_TRACKER__MAX_FACES")
    assert load_settings().tracker.max_faces == 6
    user_file.unlink()
    assert load_settings().tracker.max_faces == 5
    _write(defaults, "")
    assert load_settings().tracker.max_faces == 4


def test_layers_merge_key_by_key(user_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(user_file, '[tracker]\ndetector = "full"\nmax_faces = 3\n[masks]\nfeather_px = 4.5\n')
    monkeypatch.setenv("FACETORY_TRACKER__MAX_FACES", "2")
    settings = load_settings(overrides={"tracker.detect_period": 5})
    assert settings.tracker.detector == "full"  # user file
    assert settings.tracker.max_faces == 2  # environment
    assert settings.tracker.detect_period == 5  # override
    assert settings.masks.feather_px == 4.5
    assert settings.tracker.min_presence == Settings().tracker.min_presence  # defaults


def test_nested_environment_variables(user_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACETORY_TRACKER__MAX_FACES", "2")
    monkeypatch.setenv("FACETORY_SMOOTHING__ENABLED", "false")
    monkeypatch.setenv("FACETORY_SMOOTHING__BETA", "12.5")
    monkeypatch.setenv("FACETORY_MODELS__BACKEND", "onnx-cpu")
    monkeypatch.setenv("FACETORY_MODELS__CACHE_DIR", "~/facetory-models")
    monkeypatch.setenv("FACETORY_MASKS__FEATHER_PX", "")  # empty means unset
    settings = load_settings()
    assert settings.tracker.max_faces == 2
    assert settings.smoothing.enabled is False
    assert settings.smoothing.beta == 12.5
    assert settings.models.backend == "onnx-cpu"
    assert settings.models.cache_dir == Path.home() / "facetory-models"
    assert settings.masks.feather_px == 2.0


def test_dotted_and_nested_overrides_agree(user_file: Path) -> None:
    dotted = load_settings(overrides={"tracker.max_faces": "3", "models.threads": 8})
    nested = load_settings(overrides={"tracker": {"max_faces": 3}, "models": {"threads": "8"}})
    assert dotted == nested
    assert (dotted.tracker.max_faces, dotted.models.threads) == (3, 8)


def test_config_file_choice(user_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(user_file, "[models]\nthreads = 2\n")
    from_env = _write(tmp_path / "env.toml", "[models]\nthreads = 3\n")
    explicit = _write(tmp_path / "explicit.toml", "[models]\nthreads = 4\n")
    assert load_settings().models.threads == 2
    monkeypatch.setenv("FACETORY_CONFIG", str(from_env))
    assert load_settings().models.threads == 3
    assert load_settings(config_file=explicit).models.threads == 4


def test_named_config_file_must_exist(user_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match="missing.toml' does not exist"):
        load_settings(config_file=missing)
    monkeypatch.setenv("FACETORY_CONFIG", str(missing))
    with pytest.raises(ConfigError, match="FACETORY_CONFIG"):
        load_settings()


def test_malformed_toml_names_the_file_and_line(user_file: Path) -> None:
    _write(user_file, "[tracker]\nmax_faces = = 3\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert str(user_file) in message
    assert "not valid TOML" in message and "line 2" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_out_of_range_value_in_file_names_file_and_field(user_file: Path) -> None:
    _write(user_file, "[tracker]\nmax_faces = 99\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert str(user_file) in message
    assert "tracker.max_faces: Input should be less than or equal to 32 (got 99)" in message
    assert isinstance(info.value, ValueError)


def test_unknown_key_in_file_is_reported(user_file: Path) -> None:
    _write(user_file, "[tracker]\nmax_face = 2\n")
    with pytest.raises(ConfigError, match=r"tracker\.max_face: Extra inputs are not permitted"):
        load_settings()


def test_invalid_environment_value_names_the_variable(user_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACETORY_MODELS__BACKEND", "cuda")
    with pytest.raises(ConfigError, match="environment variables:\n  FACETORY_MODELS__BACKEND: Input should be"):
        load_settings()


def test_invalid_override_is_reported(user_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"command-line overrides:\n  smoothing\.min_cutoff: Input should be greater"):
        load_settings(overrides={"smoothing.min_cutoff": 0})


def test_bad_value_in_a_lower_layer_is_reported_even_if_overridden(user_file: Path) -> None:
    _write(user_file, '[tracker]\ndetector = "long"\n')
    with pytest.raises(ConfigError, match=r"tracker\.detector"):
        load_settings(overrides={"tracker.detector": "full"})


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("models", "threads", 0),
        ("models", "threads", 65),
        ("tracker", "max_faces", 0),
        ("tracker", "detect_period", 1001),
        ("tracker", "min_detection_score", 1.5),
        ("tracker", "iou_new_track", -0.1),
        ("smoothing", "min_cutoff", 0.0),
        ("smoothing", "beta", -1.0),
        ("smoothing", "d_cutoff", 0.0),
        ("smoothing", "beta", float("nan")),
        ("masks", "feather_px", 51.0),
    ],
)
def test_bounds(section: str, key: str, value: float) -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings.model_validate({section: {key: value}})


def test_cache_dir_defaults_to_user_cache(user_file: Path, tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.models.cache_dir is None
    expected = Path(platformdirs.user_cache_dir("facetory-cam")) / "models"
    assert settings.models.resolved_cache_dir() == expected
    chosen = load_settings(overrides={"models.cache_dir": str(tmp_path)})
    assert chosen.models.resolved_cache_dir() == tmp_path


def test_user_config_file_location() -> None:
    expected = Path(platformdirs.user_config_dir("facetory-cam")) / "config.toml"
    assert config.user_config_file() == expected


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(pydantic.ValidationError):
        settings.tracker.max_faces = 2  # type: ignore[misc]
