"""``facetory doctor`` on fake machines: each problem is found and its fix names the exact command."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from facetory_cam import doctor
from facetory_cam.cli import main
from facetory_cam.doctor import Check, DoctorContext, run_doctor
from facetory_cam.models.manifest import load_manifest

REPO = Path(__file__).resolve().parents[1]
MODPROBE = 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="Facetory Camera"'
USERMOD = "sudo usermod -aG video $USER"


def _no_camera(spec: int | str, timeout: float) -> str:
    raise AssertionError(f"the camera {spec!r} should not have been opened")


def _ctx(root: Path, **fields: Any) -> DoctorContext:
    base: dict[str, Any] = {
        "platform": "linux",
        "sys_root": root,
        "access": lambda path, mode: True,
        "open_camera": _no_camera,
        "windows_registry_has": lambda key: False,
        "program_files": (),
        "macos_major": None,
    }
    base.update(fields)
    return DoctorContext(**base)


def _linux_root(
    root: Path,
    *,
    loaded: bool = True,
    caps: str | None = "Y,N,N,N,N,N,N,N",
    devices: dict[str, str] | None = None,
    nodes: tuple[str, ...] = ("video0", "video1", "video10"),
) -> Path:
    """A fake / with /sys for v4l2loopback and /dev/video* nodes (plain files stand in for devices)."""
    devices = {"video10": "Facetory Camera"} if devices is None else devices
    if loaded:
        module = root / "sys/module/v4l2loopback"
        (module / "parameters").mkdir(parents=True)
        (module / "version").write_text("0.13.2\n")
        if caps is not None:
            (module / "parameters/exclusive_caps").write_text(caps + "\n")
        for node, label in devices.items():
            d = root / "sys/devices/virtual/video4linux" / node
            d.mkdir(parents=True)
            (d / "name").write_text(label + "\n")
    (root / "dev").mkdir(parents=True, exist_ok=True)
    for node in nodes:
        (root / "dev" / node).touch()
    (root / "dev/video-not-a-node").touch()
    return root


# ------------------------------------------------------------------ Linux: v4l2loopback


def test_module_missing_fails_with_the_modprobe_fix(tmp_path: Path) -> None:
    ctx = _ctx(_linux_root(tmp_path, loaded=False))
    check = doctor.check_v4l2loopback_module(ctx)
    assert check.status == "fail" and "not loaded" in check.detail
    assert MODPROBE in check.fix and "config/v4l2loopback.conf" in check.fix and "/etc/modprobe.d/" in check.fix
    assert doctor.check_exclusive_caps(ctx).status == "skip"
    assert doctor.check_loopback_devices(ctx).status == "skip"


def test_module_loaded_and_persisted(tmp_path: Path) -> None:
    root = _linux_root(tmp_path)
    check = doctor.check_v4l2loopback_module(_ctx(root))
    assert check.status == "ok" and "0.13.2" in check.detail and "not set up to load at boot" in check.detail
    (root / "etc/modprobe.d").mkdir(parents=True)
    (root / "etc/modules-load.d").mkdir(parents=True)
    (root / "etc/modprobe.d/cam.conf").write_text((REPO / "config/v4l2loopback.conf").read_text())
    (root / "etc/modules-load.d/cam.conf").write_text((REPO / "config/v4l2loopback-load.conf").read_text())
    check = doctor.check_v4l2loopback_module(_ctx(root))
    assert check == Check("v4l2loopback module", "ok", "loaded (0.13.2)", "")


@pytest.mark.parametrize(
    ("caps", "devices", "status"),
    [
        ("Y,N,N,N,N,N,N,N", 1, "ok"),
        ("1", 1, "ok"),
        ("Y,Y,N", 2, "ok"),
        ("N,N,N,N,N,N,N,N", 1, "warn"),
        ("0", 1, "warn"),
        ("Y,N,N", 2, "warn"),
        ("", 1, "warn"),
    ],
)
def test_exclusive_caps(tmp_path: Path, caps: str, devices: int, status: str) -> None:
    labels = {f"video{10 + i}": f"cam {i}" for i in range(devices)}
    check = doctor.check_exclusive_caps(_ctx(_linux_root(tmp_path, caps=caps, devices=labels)))
    assert check.status == status
    if status == "warn":
        assert "Chrome" in check.detail and "sudo modprobe -r v4l2loopback" in check.fix and MODPROBE in check.fix
    else:
        assert check.fix == ""


def test_exclusive_caps_unreadable_warns(tmp_path: Path) -> None:
    check = doctor.check_exclusive_caps(_ctx(_linux_root(tmp_path, caps=None)))
    assert check.status == "warn" and "exclusive_caps=1" in check.fix


def test_loopback_devices(tmp_path: Path) -> None:
    ok = doctor.check_loopback_devices(_ctx(_linux_root(tmp_path / "a")))
    assert ok.status == "ok" and ok.detail == "/dev/video10 ('Facetory Camera')"
    other = doctor.check_loopback_devices(
        _ctx(_linux_root(tmp_path / "b", devices={"video3": "Dummy video device"}, nodes=("video3",)))
    )
    assert other.status == "ok" and "none is labelled 'Facetory Camera'" in other.detail
    none = doctor.check_loopback_devices(_ctx(_linux_root(tmp_path / "c", devices={})))
    assert none.status == "fail" and "no devices" in none.detail and MODPROBE in none.fix
    no_node = doctor.check_loopback_devices(_ctx(_linux_root(tmp_path / "d", nodes=("video0",))))
    assert no_node.status == "fail" and "no /dev node for video10" in no_node.detail


def test_device_without_permission_fails_with_usermod(tmp_path: Path) -> None:
    root = _linux_root(tmp_path)
    asked: list[tuple[str, int]] = []

    def access(path: Path, mode: int) -> bool:
        asked.append((path.name, mode))
        return path.name != "video10"

    check = doctor.check_video_permissions(_ctx(root, access=access))
    assert check.status == "fail" and check.detail == "no read/write access to /dev/video10"
    assert USERMOD in check.fix and "log out" in check.fix
    assert asked == [(n, os.R_OK | os.W_OK) for n in ("video0", "video1", "video10")]  # numeric order, no strays
    fine = doctor.check_video_permissions(_ctx(root))
    assert fine.status == "ok" and "/dev/video10" in fine.detail
    assert doctor.check_video_permissions(_ctx(_linux_root(tmp_path / "empty", nodes=()))).status == "skip"


# ------------------------------------------------------------------ camera


def test_camera_picks_the_first_real_webcam(tmp_path: Path) -> None:
    opened: list[Any] = []

    def open_camera(spec: int | str, timeout: float) -> str:
        opened.append((spec, timeout))
        return "1280x720"

    root = _linux_root(tmp_path, devices={"video0": "Facetory Camera"}, nodes=("video0", "video2", "video3"))
    check = doctor.check_camera(_ctx(root, open_camera=open_camera, camera_timeout_s=1.5))
    assert check == Check("camera", "ok", "first camera /dev/video2 delivers 1280x720")
    assert opened == [(2, 1.5)]


def test_camera_problems_are_warnings(tmp_path: Path) -> None:
    def hung(spec: int | str, timeout: float) -> str:
        raise TimeoutError(f"no answer within {timeout:g} s")

    root = _linux_root(tmp_path)
    slow = doctor.check_camera(_ctx(root, open_camera=hung, camera_timeout_s=2))
    assert slow.status == "warn" and "no answer within 2 s" in slow.detail and "close other apps" in slow.fix
    only_loopback = _linux_root(tmp_path / "b", nodes=("video10",))
    missing = doctor.check_camera(_ctx(only_loopback))
    assert missing.status == "warn" and "no webcam found" in missing.detail and "ls /dev/video*" in missing.fix
    ours = doctor.check_camera(_ctx(root, camera="10"))
    assert ours.status == "warn" and "/dev/video10 is a v4l2loopback device" in ours.detail
    absent = doctor.check_camera(_ctx(root, camera="/dev/video7"))
    assert absent.status == "warn" and "does not exist" in absent.detail
    assert doctor.check_camera(_ctx(root, camera="")).status == "skip"


def test_real_camera_probe_is_bounded(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="does not open"):
        doctor._open_camera(str(tmp_path / "no-such-camera.mp4"), 10.0)


# ------------------------------------------------------------------ models, packages, inference, python


def test_models_missing_fail_naming_fetch(tmp_path: Path) -> None:
    cache = tmp_path / "empty-cache"
    check = doctor.check_models(_ctx(tmp_path, cache_dir=cache))
    n = len(load_manifest().models)
    assert check.status == "fail" and f"{n} of {n} missing or corrupt" in check.detail
    assert "facetory models fetch" in check.fix and str(cache) in check.fix
    cache.mkdir()
    first = load_manifest().models[0].name
    (cache / f"{first}.tflite").write_bytes(b"not a model")
    corrupt = doctor.check_models(_ctx(tmp_path, cache_dir=cache))
    assert corrupt.status == "fail" and f"{first} (sha256 mismatch" in corrupt.detail


def test_models_present_are_ok(store: Any, tmp_path: Path) -> None:
    check = doctor.check_models(_ctx(tmp_path, cache_dir=store.cache_dir))
    assert check.status == "ok" and f"{len(store.manifest.models)} models verified" in check.detail


def _importer(missing: set[str], fakes: dict[str, Any] | None = None) -> Any:
    def import_module(name: str) -> Any:
        if name in missing:
            raise ImportError(f"No module named {name!r}")
        if fakes and name in fakes:
            return fakes[name]
        return types.SimpleNamespace(__version__="9.9.9")

    return import_module


def test_packages_required_fail_optional_warn(tmp_path: Path) -> None:
    results = run_doctor(
        _ctx(tmp_path, import_module=_importer({"pyvirtualcam", "pystray"})),
        checks=[*doctor.REQUIRED_PACKAGES, *doctor.OPTIONAL_PACKAGES],
    )
    by_name = {c.name: c for c in results}
    assert by_name["package pyvirtualcam"].status == "fail"
    assert by_name["package pyvirtualcam"].fix == "pip install pyvirtualcam"
    assert by_name["package pystray"].status == "warn" and '".[tray]"' in by_name["package pystray"].fix
    assert by_name["package numpy"].status == "ok" and by_name["package numpy"].detail.startswith("9.9.9")
    assert {c.name for c in results} >= {f"package {m}" for m in ("numpy", "cv2", "onnxruntime", "torch", "av")}
    assert {c.name for c in results} >= {"package pydantic", "package fastapi", "package cupy", "package tensorrt"}
    assert doctor.exit_code(results) == 1
    only_optional = run_doctor(_ctx(tmp_path, import_module=_importer({"tensorrt"})), checks=doctor.OPTIONAL_PACKAGES)
    assert doctor.exit_code(only_optional) == 0


def _inference_fakes(providers: list[str], cuda: bool) -> dict[str, Any]:
    ort = types.SimpleNamespace(get_available_providers=lambda: providers)
    torch = types.SimpleNamespace(
        cuda=types.SimpleNamespace(is_available=lambda: cuda, get_device_name=lambda i: "NVIDIA Test GPU")
    )
    return {"onnxruntime": ort, "torch": torch}


def test_inference_without_gpu_is_ok_unless_asked_for(tmp_path: Path) -> None:
    cpu = _importer(set(), _inference_fakes(["CPUExecutionProvider"], cuda=False))
    check = doctor.check_inference(_ctx(tmp_path, import_module=cpu))
    assert check.status == "ok" and "no GPU" in check.detail and "CPU" in check.detail
    wanted = doctor.check_inference(_ctx(tmp_path, import_module=cpu, backend="onnx-cuda"))
    assert wanted.status == "fail" and "CUDAExecutionProvider" in wanted.detail and "--backend auto" in wanted.fix
    gpu = _importer(set(), _inference_fakes(["CUDAExecutionProvider", "CPUExecutionProvider"], cuda=True))
    for backend in ("auto", "onnx-cuda", "torch-cuda"):
        check = doctor.check_inference(_ctx(tmp_path, import_module=gpu, backend=backend))
        assert check.status == "ok" and "NVIDIA Test GPU" in check.detail and "no GPU" not in check.detail
    trt = doctor.check_inference(_ctx(tmp_path, import_module=gpu, backend="onnx-tensorrt"))
    assert trt.status == "fail" and "TensorrtExecutionProvider" in trt.detail


def test_python_version_and_config(tmp_path: Path) -> None:
    assert doctor.check_python(_ctx(tmp_path, python_version=(3, 10, 14))).status == "fail"
    assert doctor.check_python(_ctx(tmp_path, python_version=(3, 11, 0))).status == "ok"
    assert doctor.check_config(_ctx(tmp_path)).status == "ok"
    bad = doctor.check_config(_ctx(tmp_path, config_error="invalid configuration in x: tracker.max_faces"))
    assert bad.status == "fail" and "tracker.max_faces" in bad.detail


# ------------------------------------------------------------------ Windows and macOS


def test_obs_windows(tmp_path: Path) -> None:
    keys: list[str] = []

    def registry(key: str) -> bool:
        keys.append(key)
        return True

    ok = doctor.check_obs_windows(_ctx(tmp_path, platform="win32", windows_registry_has=registry))
    assert ok.status == "ok" and keys == ["CLSID\\{A3FCE0F5-3493-419F-958A-ABA1250EC20B}"]
    pf = tmp_path / "Program Files"
    missing = doctor.check_obs_windows(_ctx(tmp_path, platform="win32", program_files=(pf,)))
    assert missing.status == "fail" and "not installed" in missing.detail
    assert "https://obsproject.com" in missing.fix and "Start Virtual Camera" in missing.fix
    module = pf / "obs-studio/data/obs-plugins/win-dshow/obs-virtualcam-module64.dll"
    module.parent.mkdir(parents=True)
    module.touch()
    unregistered = doctor.check_obs_windows(_ctx(tmp_path, platform="win32", program_files=(pf,)))
    assert unregistered.status == "warn" and "not registered" in unregistered.detail
    assert "Start Virtual Camera" in unregistered.fix


def test_obs_macos(tmp_path: Path) -> None:
    nothing = doctor.check_obs_macos(_ctx(tmp_path, platform="darwin", macos_major=14))
    assert nothing.status == "fail" and "OBS Studio 30" in nothing.fix and "Camera Extensions" in nothing.fix
    (tmp_path / "Applications/OBS.app").mkdir(parents=True)
    app_only = doctor.check_obs_macos(_ctx(tmp_path, platform="darwin", macos_major=14))
    assert app_only.status == "warn" and "not activated" in app_only.detail and "Start Virtual Camera" in app_only.fix
    dal = tmp_path / "Library/CoreMediaIO/Plug-Ins/DAL/obs-mac-virtualcam.plugin"
    dal.mkdir(parents=True)
    assert doctor.check_obs_macos(_ctx(tmp_path, platform="darwin", macos_major=12)).status == "ok"
    assert doctor.check_obs_macos(_ctx(tmp_path, platform="darwin", macos_major=14)).status == "warn"
    ext = tmp_path / "Library/SystemExtensions/0A1B2C3D/com.obsproject.obs-studio.mac-camera-extension.systemextension"
    ext.mkdir(parents=True)
    active = doctor.check_obs_macos(_ctx(tmp_path, platform="darwin", macos_major=14))
    assert active.status == "ok" and "0A1B2C3D" in active.detail


# ------------------------------------------------------------------ running, reporting, CLI


def test_checks_per_platform() -> None:
    names = {p: [doctor.check_name(fn) for fn in doctor.checks_for(p)] for p in ("linux", "win32", "darwin")}
    assert "v4l2loopback module" not in names["win32"] and "OBS Virtual Camera" in names["win32"]
    assert "OBS Virtual Camera" in names["darwin"] and "OBS Virtual Camera" not in names["linux"]
    assert names["linux"][-5:] == [
        "v4l2loopback module",
        "v4l2loopback exclusive_caps",
        "loopback devices",
        "video device permissions",
        "camera",
    ]


def test_run_doctor_survives_a_crashing_check_and_reports(tmp_path: Path) -> None:
    def check_boom(ctx: DoctorContext) -> Check:
        raise RuntimeError("kaput")

    def check_fine(ctx: DoctorContext) -> Check:
        return Check("fine", "ok", f"on {ctx.platform}")

    results = run_doctor(_ctx(tmp_path), checks=[check_boom, check_fine], platform="plan9")
    assert results == [
        Check("boom", "fail", "the check itself failed: RuntimeError: kaput"),
        Check("fine", "ok", "on plan9"),
    ]
    assert doctor.exit_code(results) == 1 and doctor.exit_code(results[1:]) == 0
    report = doctor.format_report([*results, Check("w", "warn", "meh", "do this")])
    assert "[FAIL] boom: the check itself failed" in report and "       fix: do this" in report
    assert report.splitlines()[-1] == "1 ok, 1 warning(s), 1 failed"
    data = json.loads(doctor.format_json(results))
    assert data["ok"] is False and data["summary"] == {"ok": 1, "warn": 0, "fail": 1, "skip": 0}
    assert data["checks"][1] == {"name": "fine", "status": "ok", "detail": "on plan9", "fix": ""}


def test_full_linux_run_on_a_fake_machine(tmp_path: Path) -> None:
    root = _linux_root(tmp_path / "root", caps="N,N,N,N,N,N,N,N")
    results = run_doctor(
        _ctx(
            root,
            cache_dir=tmp_path / "cache",
            import_module=_importer(set(), _inference_fakes(["CPUExecutionProvider"], cuda=False)),
            access=lambda path, mode: path.name != "video10",
            open_camera=lambda spec, timeout: "640x480",
        )
    )
    assert [c.name for c in results] == [doctor.check_name(fn) for fn in doctor.checks_for("linux")]
    status = {c.name: c.status for c in results}
    assert status["v4l2loopback module"] == "ok" and status["v4l2loopback exclusive_caps"] == "warn"
    assert status["loopback devices"] == "ok" and status["video device permissions"] == "fail"
    assert status["models"] == "fail" and status["camera"] == "ok"
    assert doctor.exit_code(results) == 1


def test_shipped_config_files() -> None:
    conf = (REPO / "config/v4l2loopback.conf").read_text()
    options = [line for line in conf.splitlines() if line and not line.startswith("#")]
    assert options == ['options v4l2loopback devices=1 exclusive_caps=1 card_label="Facetory Camera"']
    assert "/etc/modprobe.d/" in conf
    assert MODPROBE.endswith(options[0].removeprefix("options v4l2loopback "))  # the error and the file agree
    assert (REPO / "config/v4l2loopback-load.conf").read_text() == "v4l2loopback\n"
    unit = (REPO / "config/facetory-cam.service").read_text()
    settings = [line for line in unit.splitlines() if line and not line.startswith("#")]
    assert any(line.startswith("ExecStart=") and line.endswith("facetory run") for line in settings)
    assert "Restart=on-failure" in settings and any(line.startswith("RestartSec=") for line in settings)
    assert "WantedBy=default.target" in settings
    assert "~/.config/systemd/user/" in unit and "systemctl --user enable --now facetory-cam" in unit


def _cli_checks(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, Any]]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def test_cli_doctor_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["doctor", "--json", "--cache-dir", str(tmp_path / "cache"), "--camera", str(tmp_path / "none.mp4")]
    code, data = _cli_checks(capsys, argv)
    names = [c["name"] for c in data["checks"]]
    assert names == [doctor.check_name(fn) for fn in doctor.checks_for(sys.platform)]
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["models"]["status"] == "fail" and "facetory models fetch" in checks["models"]["fix"]
    assert checks["configuration"]["status"] == "ok" and checks["camera"]["status"] == "warn"
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in data["checks"])
    assert code == 1 and data["ok"] is False and data["summary"]["fail"] >= 1


def test_cli_doctor_reports_a_bad_config_and_still_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[tracker]\nmax_faces = 0\n")
    argv = ["--config", str(bad), "doctor", "--cache-dir", str(tmp_path / "cache"), "--camera", str(tmp_path / "x.mp4")]
    code = main(argv)
    out = capsys.readouterr().out
    assert code == 1
    assert "[FAIL] configuration:" in out and "tracker.max_faces" in out
    assert "[FAIL] models:" in out and "fix: facetory models fetch" in out
    assert "[WARN] camera: configured camera " in out and "x.mp4: it does not open" in out
