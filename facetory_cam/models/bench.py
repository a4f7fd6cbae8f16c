"""Per-model latency on every backend that opens here, next to Google's LiteRT on the same file."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from facetory_cam.models.backends import BACKENDS, BackendUnavailable
from facetory_cam.models.store import ModelStore


def _interleaved(
    runners: dict[str, Callable[[], object]], iters: int, rounds: int = 10
) -> dict[str, tuple[float, float]]:
    """p50/p95 ms per runner, timed in alternating rounds so machine drift hits all alike."""
    for fn in runners.values():
        for _ in range(5):
            fn()
    per_round = max(1, iters // rounds)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {
        name: (float(np.percentile(ts, 50) * 1e3), float(np.percentile(ts, 95) * 1e3)) for name, ts in times.items()
    }


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
        spec = store.manifest.entry(name).input
        opened = []
        for backend_name in backends or list(BACKENDS):
            try:
                opened.append(BACKENDS[backend_name](store, name, threads))
            except BackendUnavailable:
                continue
        for b in batches:
            x = np.random.default_rng(0).random((b, spec.height, spec.width, spec.channels), dtype=np.float32)
            runners: dict[str, Callable[[], object]] = {}
            ref = _litert_runner(store, name, b, threads) if litert else None
            if ref is not None:
                runners["litert"] = ref
            for backend in opened:
                runners[backend.name] = lambda be=backend, x=x: be.run(x)
            stats = _interleaved(runners, iters)
            base = stats["litert"][0] if "litert" in stats else None
            for runner_name, (p50, p95) in stats.items():
                rows.append(
                    {
                        "model": name,
                        "backend": runner_name,
                        "batch": b,
                        "p50_ms": p50,
                        "p95_ms": p95,
                        "ratio": p50 / base if base else None,
                    }
                )
        for backend in opened:
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
