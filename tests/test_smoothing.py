from __future__ import annotations

import math

import numpy as np
import pytest

from facetory_cam.vision.smoothing import OneEuroFilter

FPS = 30.0


def _run(filt: OneEuroFilter, frames: np.ndarray, *, scale: float = 1.0) -> np.ndarray:
    return np.stack([filt(frame, i / FPS, scale=scale) for i, frame in enumerate(frames)])


def _reference(
    samples: list[float], times: list[float], min_cutoff: float, beta: float, d_cutoff: float
) -> list[float]:
    """Scalar 1-euro filter written straight from the paper, to check the vectorised one against."""

    def alpha(cutoff: float, dt: float) -> float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    out = [samples[0]]
    x_prev, x_hat, dx_hat = samples[0], samples[0], 0.0
    for x, t_prev, t in zip(samples[1:], times, times[1:], strict=False):
        dt = t - t_prev
        dx_hat += alpha(d_cutoff, dt) * ((x - x_prev) / dt - dx_hat)
        x_hat += alpha(min_cutoff + beta * abs(dx_hat), dt) * (x - x_hat)
        x_prev = x
        out.append(x_hat)
    return out


def test_matches_scalar_reference_elementwise() -> None:
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.uniform(0.01, 0.05, size=60)).tolist()  # irregular frame spacing
    frames = np.cumsum(rng.normal(0.0, 2.0, size=(60, 4, 3)), axis=0)
    filt = OneEuroFilter(min_cutoff=0.7, beta=0.3, d_cutoff=1.5)
    got = np.stack([filt(frame, t) for frame, t in zip(frames, times, strict=True)])
    for idx in np.ndindex(4, 3):
        want = _reference(frames[(slice(None), *idx)].tolist(), times, 0.7, 0.3, 1.5)
        np.testing.assert_allclose(got[(slice(None), *idx)], want, rtol=1e-12, atol=1e-12)


def test_constant_signal_noise_is_reduced() -> None:
    rng = np.random.default_rng(1)
    true_value = 5.0
    frames = true_value + rng.normal(0.0, 1.0, size=(300, 478, 3))
    out = _run(OneEuroFilter(min_cutoff=0.5, beta=0.0), frames)
    input_rms = np.sqrt(np.mean((frames - true_value) ** 2))
    output_rms = np.sqrt(np.mean((out - true_value) ** 2))  # start-up transient included
    assert input_rms == pytest.approx(1.0, abs=0.01)
    assert output_rms < 0.5 * input_rms
    # A 0.5 Hz exponential low-pass at 30 Hz keeps sqrt(a / (2 - a)) ~ 0.22 of white noise.
    assert output_rms == pytest.approx(0.22, abs=0.05)


def test_ramp_lag_is_below_one_frame_of_motion() -> None:
    speed = 200.0  # units per second
    times = np.arange(150) / FPS
    truth = np.stack([speed * times, -0.5 * speed * times], axis=1)  # a point moving diagonally
    tracking = _run(OneEuroFilter(min_cutoff=1.0, beta=0.05), truth)
    steady = slice(-30, None)  # the last second, after the speed estimate has settled
    lag = np.abs(truth[steady] - tracking[steady])
    frame_step = np.abs(truth[1] - truth[0])
    assert np.all(lag > 0.0)
    assert np.all(lag < frame_step)
    # Without the speed term the same minimum cutoff lags several frames behind.
    static = _run(OneEuroFilter(min_cutoff=1.0, beta=0.0), truth)
    assert np.all(np.abs(truth[steady] - static[steady]) > 3 * frame_step)


@pytest.mark.parametrize("bad_t", [1.0 / FPS, 0.0, -1.0, math.nan])
def test_out_of_order_timestamps_raise_and_leave_state_intact(bad_t: float) -> None:
    rng = np.random.default_rng(2)
    frames = rng.normal(size=(4, 5, 2))
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    clean = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    for i in range(2):
        filt(frames[i], i / FPS)
        clean(frames[i], i / FPS)
    with pytest.raises(ValueError):
        filt(frames[2] + 100.0, bad_t)
    np.testing.assert_array_equal(filt(frames[2], 2 / FPS), clean(frames[2], 2 / FPS))
    np.testing.assert_array_equal(filt(frames[3], 3 / FPS), clean(frames[3], 3 / FPS))


@pytest.mark.parametrize("shape", [(), (7,), (478, 3), (2, 478, 3)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_shape_and_dtype_preserved(shape: tuple[int, ...], dtype: type[np.floating]) -> None:
    rng = np.random.default_rng(3)
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.1)
    first = rng.normal(size=shape).astype(dtype)
    out = filt(first, 0.0)
    assert out.shape == shape and out.dtype == dtype
    np.testing.assert_array_equal(out, first)  # the first frame passes through
    assert not np.shares_memory(out, first)
    out = filt(rng.normal(size=shape).astype(dtype), 1 / FPS)
    assert out.shape == shape and out.dtype == dtype


def test_integer_input_comes_back_as_float64() -> None:
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    filt(np.array([0, 0]), 0.0)
    out = filt(np.array([10, 10]), 1 / FPS)
    assert out.dtype == np.float64
    assert 0.0 < out[0] < 10.0


def test_shape_change_raises() -> None:
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.1)
    filt(np.zeros((478, 3)), 0.0)
    with pytest.raises(ValueError, match="shape"):
        filt(np.zeros((468, 3)), 1 / FPS)


def test_reset_forgets_history() -> None:
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.1)
    filt(np.zeros(3), 5.0)
    filt(np.ones(3), 6.0)
    filt.reset()
    x = np.full(3, 42.0)
    np.testing.assert_array_equal(filt(x, 0.0), x)  # earlier time is fine after a reset


def test_scale_normalisation_gives_scale_invariant_output() -> None:
    rng = np.random.default_rng(4)
    times = np.arange(120) / FPS
    # In face-size units: a jittery head that starts moving at 1 face width per second.
    relative = np.maximum(times - 1.0, 0.0)[:, None] + rng.normal(0.0, 0.01, size=(120, 2))
    params = {"min_cutoff": 0.5, "beta": 0.5}

    out_10 = _run(OneEuroFilter(**params), 10.0 * relative, scale=10.0) / 10.0
    out_100 = _run(OneEuroFilter(**params), 100.0 * relative, scale=100.0) / 100.0
    np.testing.assert_allclose(out_10, out_100, rtol=1e-9, atol=1e-12)

    # The speed term is active here, so ignoring the scale would treat the two faces differently.
    raw_10 = _run(OneEuroFilter(**params), 10.0 * relative) / 10.0
    raw_100 = _run(OneEuroFilter(**params), 100.0 * relative) / 100.0
    assert np.max(np.abs(raw_10 - raw_100)) > 0.025
    assert np.max(np.abs(out_10 - _run(OneEuroFilter(min_cutoff=0.5, beta=0.0), relative))) > 0.05


def test_scale_change_between_frames_does_not_jump() -> None:
    filt = OneEuroFilter(min_cutoff=1.0, beta=1.0)
    x = np.full(3, 50.0)
    filt(x, 0.0, scale=100.0)
    np.testing.assert_allclose(filt(x, 1 / FPS, scale=10.0), x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_cutoff": 0.0, "beta": 0.0},
        {"min_cutoff": -1.0, "beta": 0.0},
        {"min_cutoff": 1.0, "beta": -0.1},
        {"min_cutoff": 1.0, "beta": math.inf},
        {"min_cutoff": 1.0, "beta": 0.0, "d_cutoff": 0.0},
        {"min_cutoff": math.nan, "beta": 0.0},
    ],
)
def test_invalid_parameters_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        OneEuroFilter(**kwargs)


@pytest.mark.parametrize("scale", [0.0, -2.0, math.inf, math.nan])
def test_invalid_scale_raises(scale: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        OneEuroFilter(min_cutoff=1.0, beta=0.0)(np.zeros(2), 0.0, scale=scale)


def test_non_finite_input_raises() -> None:
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    filt(np.zeros(2), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        filt(np.array([0.0, np.nan]), 1 / FPS)
    np.testing.assert_array_equal(filt(np.zeros(2), 2 / FPS), np.zeros(2))
