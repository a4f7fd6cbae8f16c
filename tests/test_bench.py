"""The benchmark commands report every stage and every backend with sane numbers."""

from __future__ import annotations

import json

from facetory_cam.cli import main


def test_pipeline_bench_reports_each_stage(store, capsys) -> None:
    assert main(["bench", "--frames", "6", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] == 6 and out["size"] == [1280, 720]
    assert out["mean_faces"] == 1.0
    stages = out["stages"]
    assert set(stages) == {"track", "render", "person_mask", "background", "total"}
    for st in stages.values():
        assert 0.0 < st["p50_ms"] <= st["p95_ms"]
    assert stages["total"]["p50_ms"] >= stages["render"]["p50_ms"]


def test_model_bench_compares_with_litert(store, capsys) -> None:
    assert main(["models", "bench", "--model", "iris_landmark", "--batch", "1", "2", "--iters", "10", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    backends = {r["backend"] for r in rows}
    assert {"litert", "onnx-cpu", "torch-cpu"} <= backends
    for r in rows:
        assert r["p50_ms"] > 0 and r["batch"] in (1, 2)
        if r["backend"] == "litert":
            assert r["ratio"] == 1.0
        else:
            assert r["ratio"] > 0
