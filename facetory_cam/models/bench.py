"""Per-model latency on every backend that opens here, next to Google's LiteRT on the same file."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from facetory_cam.models.backends import BACKENDS, BackendUnavailable
from facetory_cam.models.store import ModelStore


def _percentiles(fn: Callable[[], object], iters: int, warmup: int = 10) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 95) * 1e3)


def _litert_runner(store: ModelStore, model: str, batch: int, threads: int) -> Callable[[], object] | None:
    """LiteRT has no batch dimension for these files: a batch is that many invokes."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    interp = Interpreter(model_content=store.read_verified(model), num_threads=threads)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    x = np.random.default_rng(0).random(inp["shape"], dtype=np.float32)

    def run() -> None:
        for _ in range(batch):
            interp.set_tensor(inp["index"], x)
            interp.invoke()

    return run


def run_model_bench(
    store: ModelStore,
    *,
    models: Sequence[str] | None = None,
    batches: Sequence[int] = (1, 8),
    backends: Sequence[str] | None = None,
    iters: int = 100,
    threads: int = 1,
    litert: bool = True,
) -> list[dict[str, Any]]:
    """One row per (model, backend, batch): p50/p95 ms per call, and ours/LiteRT ratio of p50."""
    rows: list[dict[str, Any]] = []
    names = list(models) if models else [m.name for m in store.manifest.models]
    for name in names:
        entry = store.manifest.entry(name)
        spec = entry.input
        ref: dict[int, float] = {}
        if litert:
            for b in batches:
                runner = _litert_runner(store, name, b, threads)
                if runner is None:
                    break
                p50, p95 = _percentiles(runner, iters)
                ref[b] = p50
                rows.append(
                    {"model": name, "backend": "litert", "batch": b, "p50_ms": p50, "p95_ms": p95, "ratio": 1.0}
                )
        for backend_name in backends or list(BACKENDS):
            try:
                backend = BACKENDS[backend_name](store, name, threads)
            except BackendUnavailable:
                continue
            for b in batches:
                x = np.random.default_rng(0).random((b, spec.height, spec.width, spec.channels), dtype=np.float32)
                p50, p95 = _percentiles(lambda b=backend, x=x: b.run(x), iters)
                rows.append(
                    {
                        "model": name,
                        "backend": backend.name,
                        "batch": b,
                        "p50_ms": p50,
                        "p95_ms": p95,
                        "ratio": p50 / ref[b] if b in ref else None,
                    }
                )
            backend.close()
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'model':34s} {'backend':14s} {'batch':>5s} {'p50 ms':>8s} {'p95 ms':>8s} {'ms/img':>7s} {'vs LiteRT':>9s}"
    ]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        per_image = r["p50_ms"] / r["batch"]
        lines.append(
            f"{r['model']:34s} {r['backend']:14s} {r['batch']:5d} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f}"
            f" {per_image:7.2f} {ratio:>9s}"
        )
    return "\n".join(lines)
