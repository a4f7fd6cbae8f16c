"""Background compositing: the person stays untouched, the room changes, the outline holds still."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facetory_cam.looks.background import BackgroundCompositor, cover_fit
from facetory_cam.looks.schema import Background, LookError

H, W = 360, 640


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def frame(astronaut: np.ndarray) -> np.ndarray:
    """A textured 16:9 frame (the astronaut picture stretched)."""
    return cv2.resize(astronaut, (W, H), interpolation=cv2.INTER_AREA)


def ellipse_mask(cx: float = W / 2, cy: float = H * 0.6, soft: float = 6.0) -> np.ndarray:
    """A person-like soft blob: 1 inside, 0 outside, with a ``soft``-pixel ramp between."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    r = np.hypot((xx - cx) / (0.22 * W), (yy - cy) / (0.5 * H))  # 1 on the outline
    return np.clip(0.5 - (r - 1.0) * (0.22 * W) / soft, 0.0, 1.0).astype(np.float32)


def far_outside(mask: np.ndarray, px: int = 40) -> np.ndarray:
    """Pixels at least ``px`` pixels from anything the mask calls person."""
    near = cv2.dilate((mask > 0.0).astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8))
    return near == 0


def test_none_is_identity(frame: np.ndarray) -> None:
    comp = BackgroundCompositor(Background(mode="none"))
    assert not comp.needs_mask
    out = comp.apply(frame, None)
    assert np.array_equal(out, frame)
    out = comp.apply(frame, ellipse_mask(), timestamp=0.5)
    assert np.array_equal(out, frame)


def test_blur_keeps_person_and_blurs_room(frame: np.ndarray) -> None:
    mask = ellipse_mask()
    original = frame.copy()
    out = BackgroundCompositor(Background(mode="blur", blur=0.6, edge=0.5)).apply(frame, mask)
    assert np.array_equal(frame, original), "the input frame must not be modified"
    assert out.shape == frame.shape and out.dtype == np.uint8
    person = mask > 0.98
    assert psnr(out[person], frame[person]) >= 45.0
    room = far_outside(mask)
    diff = np.abs(out.astype(int) - frame.astype(int)).mean(-1)
    assert diff[room].mean() > 8.0, "the background was not blurred"
    # blurred means smoother: much less high-frequency energy in the room
    lap_in = np.abs(cv2.Laplacian(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.CV_32F))[room].mean()
    lap_out = np.abs(cv2.Laplacian(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY), cv2.CV_32F))[room].mean()
    assert lap_out < 0.25 * lap_in


def test_blur_strength_scales(frame: np.ndarray) -> None:
    mask = ellipse_mask()
    room = far_outside(mask)
    changes = []
    for strength in (0.1, 0.5, 1.0):
        out = BackgroundCompositor(Background(mode="blur", blur=strength)).apply(frame, mask)
        changes.append(np.abs(out.astype(int) - frame.astype(int))[room].mean())
    assert changes[0] < changes[1] < changes[2]


def test_blur_does_not_bleed_person_into_room() -> None:
    """A bright person on a dark room: the blurred room next to the person stays dark."""
    mask = ellipse_mask(soft=2.0)
    img = np.full((H, W, 3), 20, np.uint8)
    img[mask > 0.5] = 240
    out = BackgroundCompositor(Background(mode="blur", blur=1.0, edge=0.0)).apply(img, mask)
    ring = (cv2.dilate((mask > 0).astype(np.uint8), np.ones((31, 31), np.uint8)) > 0) & (
        cv2.dilate((mask > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) == 0
    )
    assert out[ring].mean() < 40


def test_color_fills_room(frame: np.ndarray) -> None:
    mask = ellipse_mask()
    comp = BackgroundCompositor(Background(mode="color", color="#3366cc", edge=0.5))
    out = comp.apply(frame, mask)
    room = mask < 0.001
    room &= cv2.erode(room.astype(np.uint8), np.ones((41, 41), np.uint8)) > 0  # clear of the feathered edge
    assert np.abs(out[room].astype(int) - [0x33, 0x66, 0xCC]).max() <= 1
    person = mask > 0.98
    assert psnr(out[person], frame[person]) >= 45.0


def test_uint8_and_small_masks(frame: np.ndarray) -> None:
    """A mask may come as uint8 or at the model's own resolution."""
    mask = ellipse_mask()
    comp = BackgroundCompositor(Background(mode="color", color="#000000"), temporal=False)
    ref = comp.apply(frame, mask)
    as_u8 = comp.apply(frame, np.rint(mask * 255).astype(np.uint8))
    small = comp.apply(frame, cv2.resize(mask, (256, 144), interpolation=cv2.INTER_AREA))
    assert np.abs(as_u8.astype(int) - ref).mean() < 0.5
    assert np.abs(small.astype(int) - ref).mean() < 2.0


def test_mask_required(frame: np.ndarray) -> None:
    with pytest.raises(ValueError, match="mask"):
        BackgroundCompositor(Background(mode="blur")).apply(frame, None)


def test_image_background(tmp_path: Path, frame: np.ndarray) -> None:
    # a 4:3 picture with a red left half and a blue right half, put behind a 16:9 frame
    pic = np.zeros((300, 400, 3), np.uint8)
    pic[:, :200] = (200, 0, 0)
    pic[:, 200:] = (0, 0, 200)
    cv2.imwrite(str(tmp_path / "room.png"), cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))
    comp = BackgroundCompositor(Background(mode="image", image="room.png", edge=0.2), base_dir=tmp_path)
    mask = ellipse_mask()
    out = comp.apply(frame, mask)
    assert out.shape == frame.shape
    room = far_outside(mask)
    left = room.copy()
    left[:, W // 2 :] = False
    right = room.copy()
    right[:, : W // 2] = False
    assert np.abs(out[left].astype(int) - [200, 0, 0]).max() <= 2
    assert np.abs(out[right].astype(int) - [0, 0, 200]).max() <= 2
    person = mask > 0.98
    assert psnr(out[person], frame[person]) >= 45.0


def test_cover_fit_fills_without_distortion() -> None:
    pic = np.zeros((100, 100, 3), np.uint8)
    cv2.circle(pic, (50, 50), 40, (255, 255, 255), -1)
    fitted = cover_fit(pic, 90, 160)
    assert fitted.shape == (90, 160, 3)
    ys, xs = np.nonzero(fitted[..., 0] > 127)
    # the circle stays round: scaled by 1.6, so 128 px wide, cropped to 90 px tall
    assert abs((xs.max() - xs.min()) - 128) <= 3 and ys.max() - ys.min() >= 85


@pytest.mark.parametrize("content", [None, b"this is not a picture"])
def test_image_background_errors(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "bg.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LookError, match=r"background\.image"):
        BackgroundCompositor(Background(mode="image", image=str(path)))
    with pytest.raises(LookError, match=r"background\.image"):
        BackgroundCompositor(Background(mode="image"))


def _flicker(frames: list[np.ndarray], masks: list[np.ndarray], band: np.ndarray, temporal: bool) -> float:
    comp = BackgroundCompositor(Background(mode="color", color="#204080", edge=0.5), temporal=temporal)
    outs = [comp.apply(f, m, timestamp=i / 30.0).astype(np.float32) for i, (f, m) in enumerate(zip(frames, masks))]
    return float(np.mean([np.abs(b - a)[band].mean() for a, b in zip(outs[5:], outs[6:])]))


def test_temporal_smoothing_steadies_the_outline(frame: np.ndarray) -> None:
    """A still scene with a noisy mask (as the model gives on a noisy camera): the outline
    changes less from frame to frame with smoothing than without."""
    rng = np.random.default_rng(7)
    base = ellipse_mask(soft=8.0)
    frames, masks = [], []
    for _ in range(30):
        # smooth noise, strongest on the outline (about what the model shows on a still scene)
        noise = cv2.resize(rng.normal(0.0, 0.12, (18, 32)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
        masks.append(np.clip(base + noise * (base * (1 - base) * 4), 0.0, 1.0))
        frames.append(np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8))
    band = cv2.dilate(((base > 0.02) & (base < 0.98)).astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    steady = _flicker(frames, masks, band, temporal=True)
    raw = _flicker(frames, masks, band, temporal=False)
    assert steady < 0.6 * raw, (steady, raw)


def test_motion_is_followed_at_once(frame: np.ndarray) -> None:
    """When the person moves, the smoothing must not leave them behind: one frame after a
    jump the person's new place is shown untouched."""
    comp = BackgroundCompositor(Background(mode="color", color="#000000"))
    for i in range(10):
        comp.apply(frame, ellipse_mask(cx=W * 0.35), timestamp=i / 30)
    moved = ellipse_mask(cx=W * 0.65)
    out = comp.apply(frame, moved, timestamp=10 / 30)
    person = moved > 0.98
    assert psnr(out[person], frame[person]) >= 40.0
    old_place = (ellipse_mask(cx=W * 0.35) > 0.98) & (moved == 0)
    assert out[old_place].mean() < 5  # no ghost where the person was


def test_frame_size_change_resets(frame: np.ndarray) -> None:
    comp = BackgroundCompositor(Background(mode="blur"))
    comp.apply(frame, ellipse_mask(), timestamp=0.0)
    small = cv2.resize(frame, (320, 240))
    small_mask = cv2.resize(ellipse_mask(), (320, 240))
    out = comp.apply(small, small_mask, timestamp=1 / 30)
    fresh = BackgroundCompositor(Background(mode="blur")).apply(small, small_mask, timestamp=1 / 30)
    assert np.array_equal(out, fresh)
    comp.reset()
    assert np.array_equal(comp.apply(small, small_mask), fresh)


def test_real_segmenter_outline_is_steadier(perception, astronaut: np.ndarray) -> None:
    """The same check with the real person segmenter on a noisy still picture."""
    rng = np.random.default_rng(3)
    seg = perception.segmenter(landscape=False)
    frames = [np.clip(astronaut + rng.normal(0, 6, astronaut.shape), 0, 255).astype(np.uint8) for _ in range(24)]
    masks = seg.run(frames)
    mean = np.mean(masks, axis=0)
    band = cv2.dilate(((mean > 0.05) & (mean < 0.95)).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert band.any()
    steady = _flicker(frames, masks, band, temporal=True)
    raw = _flicker(frames, masks, band, temporal=False)
    assert steady < raw, (steady, raw)
    # the outline's own flicker (the noisy masks over the clean picture) drops by more than half
    clean = [astronaut] * len(masks)
    steady = _flicker(clean, masks, band, temporal=True)
    raw = _flicker(clean, masks, band, temporal=False)
    assert steady < 0.5 * raw, (steady, raw)
