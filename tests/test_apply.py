"""``facetory apply`` and ``facetory looks``: photos, videos with sound, and clear errors."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facetory_cam.cli import main
from facetory_cam.media import transcode_video

FACE = (160, 50, 290, 200)  # the astronaut's face (x0, y0, x1, y1), as checked in test_cli
FPS = 25
N_FRAMES = 20
SAMPLE_RATE = 44100


def _write_png(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _read(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _near_face(changed: np.ndarray, margin: int = 40) -> bool:
    ys, xs = np.nonzero(changed)
    x0, y0, x1, y1 = FACE
    return bool(
        xs.min() >= x0 - margin and xs.max() <= x1 + margin and ys.min() >= y0 - margin and ys.max() <= y1 + margin
    )


def make_clip(path: Path, image: np.ndarray, *, frames: int = N_FRAMES, audio: str | None = "aac") -> Path:
    """A short clip of ``image`` drifting sideways one pixel a frame, with a 440 Hz tone."""
    h, w = image.shape[:2]
    with av.open(str(path), mode="w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        sound = None
        if audio is not None:
            sound = out.add_stream(audio, rate=SAMPLE_RATE)
            sound.layout = "mono"
        for i in range(frames):
            shifted = cv2.warpAffine(image, np.float32([[1, 0, i], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_REFLECT)
            frame = av.VideoFrame.from_ndarray(shifted, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            total = SAMPLE_RATE * frames // FPS
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / SAMPLE_RATE)).astype(np.float32)
            pcm = sound.codec_context.format.name.startswith("s16")
            for start in range(0, total, 1024):
                chunk = tone[start : start + 1024]
                if pcm:
                    af = av.AudioFrame.from_ndarray((chunk * 32767).astype(np.int16)[None], format="s16", layout="mono")
                else:
                    af = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
                af.sample_rate = SAMPLE_RATE
                af.pts = start
                out.mux(sound.encode(af))
            out.mux(sound.encode(None))
    return path


def probe_clip(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        info = {
            "width": v.width,
            "height": v.height,
            "rate": v.average_rate,
            "codec": v.codec_context.name,
            "pix_fmt": v.codec_context.pix_fmt,
            "audio": None if a is None else a.codec_context.name,
            "audio_s": None if a is None or a.duration is None else float(a.duration * a.time_base),
        }
        info["frames"] = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return info


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.fixture()
def astronaut_png(tmp_path: Path, astronaut: np.ndarray) -> Path:
    return _write_png(tmp_path / "astronaut.png", astronaut)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "talk.mp4", astronaut)


# photos


def test_apply_image(store, astronaut_png: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "after.png"
    assert main(["apply", str(astronaut_png), "-o", str(out), "--look", "bold-red-lip"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["faces"] == 1 and report["width"] == 512
    before, after = _read(astronaut_png), _read(out)
    assert after.shape == before.shape
    changed = np.abs(after.astype(int) - before.astype(int)).max(-1) > 2
    assert changed.sum() > 300
    assert _near_face(changed)
    assert _leftovers(tmp_path, {"astronaut.png", "after.png"}) == []


def test_apply_image_compare_and_jpeg(store, astronaut_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "compare.jpg"
    assert main(["apply", str(astronaut_png), "-o", str(out), "--look", "glam", "--compare"]) == 0
    pair = _read(out)
    before = _read(astronaut_png)
    assert pair.shape == (512, 1024, 3)
    assert np.abs(pair[:, :512].astype(int) - before).mean() < 2.0  # before on the left (JPEG-close)
    assert np.abs(pair[:, 512:].astype(int) - before)[FACE[1] : FACE[3], FACE[0] : FACE[2]].mean() > 2.0


def test_apply_intensity(store, astronaut_png: Path, tmp_path: Path) -> None:
    diffs = []
    for x in ("0", "0.5", "1"):
        out = tmp_path / f"i{x}.png"
        assert main(["apply", str(astronaut_png), "-o", str(out), "--look", "berry-lip", "--intensity", x]) == 0
        diffs.append(np.abs(_read(out).astype(int) - _read(astronaut_png)).sum())
    assert diffs[0] == 0 and 0 < diffs[1] < diffs[2]


def test_apply_image_background(store, astronaut_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "grey.png"
    assert main(["apply", str(astronaut_png), "-o", str(out), "--look", "studio-grey"]) == 0
    after = _read(out)
    # the top-right corner is the room (the shuttle): now the studio grey
    assert np.abs(after[:60, 420:].astype(int) - [0x34, 0x38, 0x3D]).max() <= 2


def test_apply_look_file_with_image_background(store, astronaut_png: Path, tmp_path: Path) -> None:
    backdrop = np.zeros((90, 160, 3), np.uint8)
    backdrop[:] = (10, 200, 30)
    _write_png(tmp_path / "green.png", backdrop)
    look = {"name": "Green room", "background": {"mode": "image", "image": "green.png", "edge": 0.3}}
    (tmp_path / "green.json").write_text(json.dumps(look), encoding="utf-8")
    out = tmp_path / "green-out.png"
    assert main(["apply", str(astronaut_png), "-o", str(out), "--look", str(tmp_path / "green.json")]) == 0
    assert np.abs(_read(out)[:60, 420:].astype(int) - [10, 200, 30]).max() <= 2


# videos


def test_apply_video_keeps_frames_rate_and_sound(store, clip: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "made-up.mp4"
    assert main(["apply", str(clip), "-o", str(out), "--look", "evening"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == N_FRAMES and report["audio"] == "copied" and report["faces"] >= 1
    src, dst = probe_clip(clip), probe_clip(out)
    assert len(dst["frames"]) == len(src["frames"]) == N_FRAMES
    assert (dst["width"], dst["height"]) == (src["width"], src["height"])
    assert dst["rate"] == Fraction(FPS) == src["rate"]
    assert dst["codec"] == "h264" and dst["pix_fmt"] == "yuv420p"
    assert dst["audio"] == "aac" and dst["audio_s"] == pytest.approx(N_FRAMES / FPS, abs=0.1)
    # against the same clip passed through unchanged, so that coding noise cancels out
    plain = tmp_path / "plain.mp4"
    transcode_video(clip, plain, lambda rgb, t: rgb, progress=False)
    ref = probe_clip(plain)["frames"]
    x0, y0, x1, y1 = FACE
    for i in (0, N_FRAMES // 2, N_FRAMES - 1):  # made up on every frame, the first one included
        a, b = (cv2.GaussianBlur(f.astype(np.float32), (0, 0), 2.0) for f in (ref[i], dst["frames"][i]))
        changed = np.abs(a - b).max(-1) > 4
        changed[:, :32] = False  # new picture enters at the left edge: its coding noise differs run to run
        face = np.zeros_like(changed)
        face[y0 - 40 : y1 + 40, x0 - 40 : x1 + 40 + i] = True
        assert changed[face].sum() > 200, f"frame {i} has no makeup"
        assert changed[~face].sum() <= 0.02 * changed.sum(), f"frame {i} changed away from the face"
    assert _leftovers(tmp_path, {"made-up.mp4", "plain.mp4"}) == []


def test_apply_video_compare_and_background(store, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "side-by-side.mkv"
    assert main(["apply", str(clip), "-o", str(out), "--look", "soft-blur", "--compare"]) == 0
    dst = probe_clip(out)
    assert (dst["width"], dst["height"]) == (1024, 512) and len(dst["frames"]) == N_FRAMES
    src = probe_clip(clip)["frames"][5].astype(int)
    after = dst["frames"][5].astype(int)
    assert np.abs(after[:, :512] - src).mean() < 2.0
    # the room (top right) is blurred: much less detail than the source there
    detail = [
        np.abs(cv2.Laplacian(x[:120, 380:500].astype(np.float32), cv2.CV_32F)).mean() for x in (src, after[:, 512:])
    ]
    assert detail[1] < 0.5 * detail[0]


def test_apply_video_reencodes_sound_the_container_cannot_hold(store, astronaut: np.ndarray, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "pcm.mkv", astronaut[::2, ::2].copy(), frames=8, audio="pcm_u8")
    out = tmp_path / "out.mp4"
    assert main(["apply", str(src), "-o", str(out), "--look", "natural"]) == 0
    dst = probe_clip(out)
    assert len(dst["frames"]) == 8 and dst["audio"] == "aac"
    assert dst["audio_s"] == pytest.approx(8 / FPS, abs=0.1)


def test_apply_video_without_sound(store, astronaut: np.ndarray, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "silent.mp4", astronaut, frames=5, audio=None)
    out = tmp_path / "out.mov"
    assert main(["apply", str(src), "-o", str(out), "--look", "office", "--max-faces", "1"]) == 0
    dst = probe_clip(out)
    assert len(dst["frames"]) == 5 and dst["audio"] is None


def test_failed_video_leaves_nothing(store, clip: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    from facetory_cam.looks.renderer import LookRenderer

    calls = {"n": 0}
    original = LookRenderer.render

    def broken(self, frame, faces, timestamp=None):
        calls["n"] += 1
        if calls["n"] > 6:
            raise RuntimeError("disk on fire")
        return original(self, frame, faces, timestamp)

    monkeypatch.setattr(LookRenderer, "render", broken)
    out = tmp_path / "never.mp4"
    assert main(["apply", str(clip), "-o", str(out), "--look", "natural"]) == 1
    assert "disk on fire" in capsys.readouterr().err
    assert _leftovers(tmp_path, set()) == []


# errors


@pytest.mark.parametrize(
    ("content", "output", "code", "message"),
    [
        (b"hello, not a picture", "out.png", 2, "not an image or a video"),
        (b"", "out.png", 2, "empty"),
        (None, "out.png", 2, "no such file"),
        ("png", "out.mp4", 2, "the input is an image"),
        ("png", "out.xyz", 2, "unknown output type"),
        ("png", "missing-folder/out.png", 2, "does not exist"),
    ],
)
def test_apply_bad_input(
    tmp_path: Path, astronaut: np.ndarray, capsys, content: bytes | str | None, output: str, code: int, message: str
) -> None:
    src = tmp_path / "input.png"
    if content == "png":
        _write_png(src, astronaut)
    elif content is not None:
        src.write_bytes(content)
    assert main(["apply", str(src), "-o", str(tmp_path / output), "--look", "natural"]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / output).exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--look", "purple-haze"], "presets: "),
        (["--look", "natural", "--intensity", "1.5"], "--intensity must be a number from 0 to 1"),
        (["--look", "natural", "--intensity", "abc"], "--intensity"),
        (["--look", "natural", "--intensity", "nan"], "--intensity"),
        (["--look", "natural", "--max-faces", "0"], "--max-faces"),
        (["--look", "missing.json"], "no such file"),
    ],
)
def test_apply_bad_options(astronaut_png: Path, tmp_path: Path, capsys, args: list[str], message: str) -> None:
    out = tmp_path / "out.png"
    assert main(["apply", str(astronaut_png), "-o", str(out), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_apply_missing_background_image(astronaut_png: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "look.json").write_text(
        json.dumps({"name": "x", "background": {"mode": "image", "image": "nowhere.png"}}), encoding="utf-8"
    )
    out = tmp_path / "out.png"
    assert main(["apply", str(astronaut_png), "-o", str(out), "--look", str(tmp_path / "look.json")]) == 1
    assert "background.image" in capsys.readouterr().err
    assert not out.exists()


# looks


def test_looks_list(capsys) -> None:
    assert main(["looks", "list"]) == 0
    out = capsys.readouterr().out
    assert "bold-red-lip" in out and "Bold Red Lip" in out and "everyday" in out
    assert main(["looks", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) >= 10 and {"id", "name", "tags", "description"} <= set(rows[0])


def test_looks_show(capsys) -> None:
    assert main(["looks", "show", "Smoky Eye"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["name"] == "Smoky Eye" and doc["layers"]["eyeshadow"]["color"].startswith("#")
    assert main(["looks", "show", "nope"]) == 1
    assert "presets:" in capsys.readouterr().err


def test_looks_validate(tmp_path: Path, capsys) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"name": "Good", "layers": {"lipstick": {"color": "#aa3344"}}}), encoding="utf-8")
    assert main(["looks", "validate", str(good)]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"name": "Bad", "layers": {"lipstick": {"color": "red"}, "blush": {"color": "#ff0000", "size": 9}}}),
        encoding="utf-8",
    )
    assert main(["looks", "validate", str(good), str(bad)]) == 1
    captured = capsys.readouterr()
    assert "good.json" in captured.out
    assert "layers.lipstick.color" in captured.err and "layers.blush.size" in captured.err
    presets = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "filters").glob("*.json"))
    assert main(["looks", "validate", *presets]) == 0


def test_looks_schema(capsys) -> None:
    assert main(["looks", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "layers" in schema["properties"] and "background" in schema["properties"]
