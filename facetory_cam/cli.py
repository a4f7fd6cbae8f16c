"""The ``facetory`` command line. Machine-readable output goes to stdout; logs to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from facetory_cam.errors import FacetoryError

log = logging.getLogger("facetory")


def _settings(args: argparse.Namespace) -> Any:
    from facetory_cam.config import load_settings

    overrides: dict[str, Any] = {}
    if getattr(args, "cache_dir", None):
        overrides.setdefault("models", {})["cache_dir"] = args.cache_dir
    if getattr(args, "backend", None):
        overrides.setdefault("models", {})["backend"] = args.backend
    if getattr(args, "threads", None):
        overrides.setdefault("models", {})["threads"] = args.threads
    return load_settings(config_file=args.config, overrides=overrides)


def _store(settings: Any) -> Any:
    from facetory_cam.models.store import ModelStore

    return ModelStore(settings.models.cache_dir)


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    store = _store(_settings(args))
    with tqdm(total=len(store.manifest.models), desc="models", unit="model", file=sys.stderr) as bar:
        paths = store.fetch(Path(args.from_wheel) if args.from_wheel else None, progress=lambda e: bar.update(1))
    for p in paths:
        print(p)
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    store = _store(_settings(args))
    rows = [store.status(m.name) for m in store.manifest.models]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "path": str(r.path),
                        "present": r.present,
                        "verified": r.verified,
                        "detail": r.detail,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
    else:
        for r in rows:
            print(f"{'ok ' if r.verified else 'BAD'} {r.name:34s} {r.detail:24s} {r.path}")
    if not all(r.verified for r in rows):
        print("some models are missing or corrupt: run `facetory models fetch`", file=sys.stderr)
        return 1
    return 0


def cmd_models_bench(args: argparse.Namespace) -> int:
    from facetory_cam.models.bench import format_table, run_model_bench

    settings = _settings(args)
    results = run_model_bench(
        _store(settings),
        models=args.model or None,
        batches=tuple(args.batch),
        backends=args.backends or None,
        iters=args.iters,
        threads=settings.models.threads,
        litert=not args.no_litert,
    )
    print(json.dumps(results, indent=2) if args.json else format_table(results))
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from facetory_cam.errors import NoFaceError
    from facetory_cam.imageio import load_image
    from facetory_cam.vision.perception import Perception

    settings = _settings(args)
    image = load_image(args.image)
    perception = Perception(_store(settings), backend=settings.models.backend, threads=settings.models.threads)
    tracker = perception.tracker(
        static=True,
        max_faces=args.max_faces,
        detector=args.detector,
        min_detection_score=args.min_score,
        min_presence=settings.tracker.min_presence,
        refine_iris=settings.tracker.refine_iris,
    )
    faces = tracker.process(image)
    h, w = image.shape[:2]
    if args.draw:
        from facetory_cam.vision.draw import draw_faces

        draw_faces(image, faces, feather=settings.masks.feather_px, path=Path(args.draw))
    if not faces:
        raise NoFaceError(f"{args.image}: no face found")
    if args.json:
        out = {
            "faces": [
                {
                    "track_id": f.track_id,
                    "score": round(f.score, 4),
                    "presence": round(f.presence, 4),
                    "box": [round(v, 2) for v in f.box],
                    "landmarks": [[round(float(v), 2) for v in p] for p in f.landmarks],
                }
                for f in faces
            ],
            "image": {"width": w, "height": h},
        }
        print(json.dumps(out))
    else:
        for f in faces:
            x0, y0, x1, y1 = f.box
            print(
                f"face {f.track_id}: score {f.score:.3f}  box ({x0:.0f}, {y0:.0f}) - ({x1:.0f}, {y1:.0f})"
                f"  {len(f.landmarks)} landmarks"
            )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Track a public-domain portrait shipped with scikit-image and show it: before | mesh | look."""
    import cv2
    import numpy as np
    import skimage.data

    from facetory_cam.looks.library import resolve_look
    from facetory_cam.looks.renderer import LookRenderer
    from facetory_cam.models.store import ModelError
    from facetory_cam.vision.draw import draw_faces
    from facetory_cam.vision.perception import Perception

    settings = _settings(args)
    store = _store(settings)
    try:
        for m in store.manifest.models:
            store.require(m.name)
    except ModelError:
        log.info("fetching model weights first")
        store.fetch()
    image = skimage.data.astronaut()
    perception = Perception(store, backend=settings.models.backend, threads=settings.models.threads)
    faces = perception.tracker(static=True, max_faces=4).process(image)
    look = resolve_look(args.look)
    panels = [
        image,
        draw_faces(image, faces, feather=settings.masks.feather_px),
        LookRenderer(look).render(image, faces),
    ]
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(np.hstack(panels), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {out}")
    summary = {
        "faces": len(faces),
        "landmarks": [len(f.landmarks) for f in faces],
        "look": look.name,
        "output": str(out),
    }
    print(json.dumps(summary))
    return 0


def _intensity(text: str | None) -> float | None:
    from facetory_cam.looks.schema import LookError

    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise LookError(f"--intensity must be a number from 0 to 1, got {text!r}")
    return value


def _landscape(image: Any) -> bool:
    """The 256 x 144 segmentation model suits wide frames (16:9), the square one the rest."""
    h, w = image.shape[:2]
    return w >= 1.4 * h


def cmd_apply(args: argparse.Namespace) -> int:
    """Render a look onto every face of a photo or a video; the background too if the look says so."""
    import numpy as np

    from facetory_cam.imageio import load_image
    from facetory_cam.looks.background import BackgroundCompositor
    from facetory_cam.looks.library import resolve_look
    from facetory_cam.looks.renderer import LookRenderer
    from facetory_cam.media import MediaError, output_kind, probe, transcode_video, write_image
    from facetory_cam.vision.perception import Perception

    # everything a user can get wrong is checked before any model is loaded
    look = resolve_look(args.look)
    intensity = _intensity(args.intensity)
    if intensity is not None:
        look = look.model_copy(update={"intensity": intensity})
    if args.max_faces is not None and not 1 <= args.max_faces <= 32:
        raise ValueError(f"--max-faces must be from 1 to 32, got {args.max_faces}")
    kind = probe(args.input)
    if output_kind(args.output) != kind:
        raise MediaError(
            f"{args.output}: the input is {'an image' if kind == 'image' else 'a video'}, so the output must be one too"
        )
    look_file = Path(args.look).expanduser()
    compositor = BackgroundCompositor(look.background, base_dir=look_file.parent if look_file.is_file() else None)
    settings = _settings(args)
    if args.max_faces is not None:
        settings = settings.model_copy(
            update={"tracker": settings.tracker.model_copy(update={"max_faces": args.max_faces})}
        )
    perception = Perception(_store(settings), backend=settings.models.backend, threads=settings.models.threads)
    renderer = LookRenderer(look)
    try:
        if kind == "image":
            image = load_image(args.input)
            faces = perception.tracker_from_settings(settings, static=True).process(image)
            if not faces:
                log.warning("%s: no face found", args.input)
            out = renderer.render(image, faces)
            if compositor.needs_mask:
                mask = perception.segmenter(landscape=_landscape(image)).run([image])[0]
                out = compositor.apply(out, mask)
            written = np.hstack([image, out]) if args.compare else out
            write_image(args.output, written)
            h, w = written.shape[:2]
            print(
                json.dumps({"output": str(args.output), "kind": "image", "faces": len(faces), "width": w, "height": h})
            )
            return 0

        tracker = perception.tracker_from_settings(settings, live=False)
        segmenters: list[Any] = []
        seen: set[int] = set()

        def process(rgb: np.ndarray, t: float) -> np.ndarray:
            faces = tracker.process(rgb, t)
            if not seen:  # faces already there when the clip starts are not faded in
                renderer.render(rgb, faces, t - renderer.fade_s)
            seen.update(f.track_id for f in faces)
            out = renderer.render(rgb, faces, t)
            if compositor.needs_mask:
                if not segmenters:
                    segmenters.append(perception.segmenter(landscape=_landscape(rgb)))
                out = compositor.apply(out, segmenters[0].run([rgb])[0], t)
            return np.hstack([rgb, out]) if args.compare else out

        result = transcode_video(args.input, args.output, process, desc=Path(args.input).name)
        print(
            json.dumps(
                {
                    "output": str(args.output),
                    "kind": "video",
                    "frames": result.frames,
                    "width": result.width,
                    "height": result.height,
                    "fps": str(result.rate),
                    "codec": result.codec,
                    "audio": result.audio,
                    "faces": len(seen),
                }
            )
        )
        return 0
    finally:
        perception.close()


def cmd_looks_list(args: argparse.Namespace) -> int:
    from facetory_cam.looks.library import presets

    rows = presets()
    if args.json:
        docs = [
            {"id": key, "name": look.name, "tags": list(look.tags), "description": look.description}
            for key, look in rows
        ]
        print(json.dumps(docs, indent=2))
        return 0
    for key, look in rows:
        print(f"{key:16s} {look.name:22s} [{', '.join(look.tags)}]")
        if look.description:
            print(f"{'':16s} {look.description}")
    return 0


def cmd_looks_show(args: argparse.Namespace) -> int:
    from facetory_cam.looks.library import resolve_look
    from facetory_cam.looks.schema import dump_look

    print(dump_look(resolve_look(args.look)), end="")
    return 0


def cmd_looks_validate(args: argparse.Namespace) -> int:
    from facetory_cam.looks.schema import LookError, load_look_file

    failed = 0
    for name in args.files:
        try:
            look = load_look_file(Path(name))
        except LookError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        print(f"ok {name}: {look.name}")
    return 1 if failed else 0


def cmd_looks_schema(args: argparse.Namespace) -> int:
    from facetory_cam.looks.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720), for argparse."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (16 <= w <= 7680 and 16 <= h <= 4320):
        raise argparse.ArgumentTypeError(f"{text!r}: width 16..7680 and height 16..4320")
    return w, h


def _open_api(settings: Any, port: int | None) -> Any:
    """The control API for ``facetory run``, or None (with the reason printed) when it cannot be served."""
    from facetory_cam.api.service import ApiService

    return ApiService.try_open(settings, port=port)


def cmd_run(args: argparse.Namespace) -> int:
    """The daemon: sources in, filtered frames out to the virtual camera (or a file), until a signal."""
    from facetory_cam.daemon.runner import RunPlan, build_pipeline, run_pipeline
    from facetory_cam.looks.library import resolve_look

    settings = _settings(args)
    d = settings.daemon
    look_name = args.look if args.look is not None else d.look
    look = None if look_name in (None, "", "none") else resolve_look(look_name)
    plan = RunPlan(
        sources=tuple(args.source or d.sources),
        sinks=tuple(args.sink or [d.sink]),
        look=look,
        size=args.size,
        fps=args.fps or d.fps,
        paced=not args.offline,
        loop=args.loop if args.loop is not None else (d.loop and not args.offline),
    )
    api = None if args.no_api else _open_api(settings, args.port)
    try:
        pipeline = build_pipeline(settings, plan, extra_sinks=None if api is None else api.extra_sinks)
        if api is not None:
            api.start(pipeline, sources=plan.sources, look=look_name)
        log.info(
            "running: %s -> %s, look %s",
            ", ".join(plan.sources),
            ", ".join(s.name for o in pipeline.outputs for s in o.sinks),
            look.name if look else "none",
        )
        snap = run_pipeline(
            pipeline,
            stats_every=args.stats_every if args.stats_every is not None else d.stats_every,
            stop=None if api is None else api.stop_requested,
        )
    finally:
        if api is not None:
            api.close()
    if args.json:
        print(json.dumps(snap, indent=2))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Per-stage timings on one thread; with --source also the threaded pipeline, flat out and paced."""
    from facetory_cam.bench import (
        EVERY_LAYER_LOOK,
        bench_pipeline,
        format_bench,
        format_pipeline_bench,
        run_bench,
        synthetic_webcam_frames,
        video_frames,
    )
    from facetory_cam.looks.library import resolve_look
    from facetory_cam.looks.schema import parse_look
    from facetory_cam.vision.perception import Perception

    settings = _settings(args)
    look = resolve_look(args.look) if args.look else parse_look(EVERY_LAYER_LOOK)
    source = Path(args.source) if args.source else None
    if source is not None and not source.is_file():
        raise ValueError(f"{source}: no such file")
    frames = video_frames(source, args.frames) if source else synthetic_webcam_frames(args.frames)
    perception = Perception(_store(settings), backend=settings.models.backend, threads=settings.models.threads)
    result = run_bench(perception, frames, look, blur=not args.no_background)
    result["look"] = look.name
    report: dict[str, Any] = result
    if source is not None:
        report = {"stages_one_thread": result}
        for paced in (False, True):
            run = bench_pipeline(perception, settings, source, look, frames=args.frames, paced=paced)
            report["pipeline_paced" if paced else "pipeline_flat_out"] = run
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_bench(result))
        for key in ("pipeline_flat_out", "pipeline_paced"):
            if key in report:
                print(format_pipeline_bench(report[key]))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the machine (packages, models, GPU, virtual camera, camera) and say how to fix what is wrong."""
    from facetory_cam.config import ConfigError
    from facetory_cam.doctor import exit_code as doctor_exit_code
    from facetory_cam.doctor import format_json, format_report, run_doctor

    fields: dict[str, Any] = {}
    try:
        settings = _settings(args)
        fields["cache_dir"] = settings.models.resolved_cache_dir()
        fields["backend"] = settings.models.backend
        sources = settings.daemon.sources
        fields["camera"] = args.camera or next((s for s in sources if s.isdigit() or s.startswith("/dev/")), None)
    except ConfigError as exc:
        fields["config_error"] = str(exc)
        fields["cache_dir"] = args.cache_dir  # --cache-dir still counts when the config files are broken
        fields["camera"] = args.camera
    checks = run_doctor(**fields)
    print(format_json(checks) if args.json else format_report(checks))
    return doctor_exit_code(checks)


def _write_atomic(outputs: list[tuple[Path, bytes]]) -> None:
    """Write every file or none: each goes to a temporary file beside it, then all are renamed into place."""
    import os
    import tempfile

    staged: list[tuple[str, Path]] = []
    try:
        for path, data in outputs:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, 0o644)  # as a plain new file, not mkstemp's owner-only mode
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)


def cmd_extract(args: argparse.Namespace) -> int:
    """Read a makeup look from a photo into a look file; with --selfie, variants for the user's skin too."""
    import time

    import cv2
    import numpy as np

    from facetory_cam.errors import NoFaceError
    from facetory_cam.extract.extractor import extract_look
    from facetory_cam.extract.photo import decode_photo, read_photo
    from facetory_cam.looks.schema import dump_look
    from facetory_cam.vision.perception import Perception

    out = Path(args.output)
    if out.suffix.lower() != ".json":
        raise ValueError(f"{out}: the look file must end in .json")
    if args.preview and Path(args.preview).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise ValueError(f"{args.preview}: the preview must be a .png or .jpg file")
    if args.bench is not None and not 1 <= args.bench <= 1000:
        raise ValueError(f"--bench must be from 1 to 1000, got {args.bench}")
    settings = _settings(args)
    cfg = settings.extract
    photo = Path(args.photo)
    data = read_photo(photo, max_bytes=cfg.max_bytes)
    perception = Perception(_store(settings), backend=settings.models.backend, threads=settings.models.threads)
    try:
        extraction = extract_look(
            data,
            perception,
            face=args.face,
            settings=settings,
            name=args.name or f"From {photo.stem}",
            texture=args.texture,
        )
        report: dict[str, Any] = {"output": str(out), "look": extraction.look.name, **extraction.to_json()}
        outputs: list[tuple[Path, bytes]] = [(out, dump_look(extraction.look).encode("utf-8"))]
        target = None
        if args.selfie:
            from facetory_cam.extract.variants import complementary_variants, skin_tone

            selfie = decode_photo(
                read_photo(Path(args.selfie), max_bytes=cfg.max_bytes),
                max_bytes=cfg.max_bytes,
                max_pixels=cfg.max_pixels,
                work_side=cfg.work_side,
                name=str(args.selfie),
            )
            faces = perception.tracker(static=True, max_faces=1).process(selfie.rgb)
            if not faces:
                raise NoFaceError(f"{args.selfie}: no face found")
            target = (selfie.rgb, faces[0].landmarks)
            tone = skin_tone(selfie.rgb, faces[0].landmarks)
            names = []
            for i, variant in enumerate(complementary_variants(extraction.look, tone, n=3), start=1):
                path = out.with_name(f"{out.stem}.variant-{i}.json")
                outputs.append((path, dump_look(variant).encode("utf-8")))
                names.append(str(path))
            report["skin_tone"] = {"depth": tone.depth, "undertone": tone.undertone, "color": str(tone.color)}
            report["variants"] = names
        if args.preview:
            from facetory_cam.extract.preview import preview_panels

            panels = preview_panels(
                extraction.image,
                extraction.landmarks,
                extraction.look,
                *(target if target is not None else ()),
                confidences=extraction.confidences,
            )
            ok, encoded = cv2.imencode(Path(args.preview).suffix.lower(), cv2.cvtColor(panels, cv2.COLOR_RGB2BGR))
            if not ok:
                raise ValueError(f"{args.preview}: the preview could not be encoded")
            outputs.append((Path(args.preview), encoded.tobytes()))
            report["preview"] = str(args.preview)
        if args.bench:
            times = []
            for _ in range(args.bench):
                start = time.perf_counter()
                extract_look(data, perception, face=args.face, settings=settings, texture=args.texture)
                times.append((time.perf_counter() - start) * 1000.0)
            report["bench"] = {
                "runs": args.bench,
                "p50_ms": round(float(np.percentile(times, 50)), 1),
                "p95_ms": round(float(np.percentile(times, 95)), 1),
            }
    finally:
        perception.close()
    _write_atomic(outputs)
    print(json.dumps(report))
    return 0


def cmd_tray(args: argparse.Namespace) -> int:
    """The tray icon, as its own process, talking to a running daemon through the local API."""
    try:
        import pystray  # noqa: F401
    except ModuleNotFoundError as exc:
        print(f"error: the tray icon is unavailable ({exc}); pip install 'facetory-cam[tray]'", file=sys.stderr)
        return 1
    except Exception as exc:  # pystray picks its backend on import: no desktop session fails here
        print(f"error: no desktop to show a tray icon on ({exc}); is DISPLAY set?", file=sys.stderr)
        return 1
    from facetory_cam.tray.app import TrayApp
    from facetory_cam.tray.client import ApiClient

    port = args.port if args.port is not None else _settings(args).api.port
    TrayApp(ApiClient(port), interval=max(0.5, args.interval)).run()
    return 0


def _add_look_commands(sub: Any, common: Any) -> None:
    apply = sub.add_parser("apply", help="render a look onto the faces of a photo or a video")
    apply.add_argument("input", help="photo or video file")
    apply.add_argument("-o", "--output", required=True, help="output file; its extension picks the format")
    apply.add_argument(
        "--look", required=True, metavar="NAME_OR_FILE", help="preset name (see `facetory looks list`) or a .json file"
    )
    apply.add_argument("--intensity", default=None, metavar="X", help="overall strength 0..1, instead of the look's")
    apply.add_argument("--compare", action="store_true", help="write before | after side by side")
    apply.add_argument("--max-faces", type=int, default=None, help="most faces made up (default: tracker.max_faces)")
    common(apply)
    apply.set_defaults(func=cmd_apply)

    looks = sub.add_parser("looks", help="list, show and validate looks; print the look JSON Schema")
    lsub = looks.add_subparsers(dest="looks_command", required=True)
    lst = lsub.add_parser("list", help="the preset looks: id, name, tags and description")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_looks_list)
    show = lsub.add_parser("show", help="print a preset or look file as JSON")
    show.add_argument("look", metavar="NAME_OR_FILE")
    show.set_defaults(func=cmd_looks_show)
    validate = lsub.add_parser("validate", help="check look files against the schema")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(func=cmd_looks_validate)
    schema = lsub.add_parser("schema", help="print the JSON Schema of the look format")
    schema.set_defaults(func=cmd_looks_schema)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facetory", description="Face-filter virtual camera.")
    parser.add_argument("--config", type=Path, default=None, help="TOML config file (default: the user config dir)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--cache-dir", type=Path, default=None, help="model cache directory")
        p.add_argument(
            "--backend", default=None, help="auto, onnx-tensorrt, onnx-cuda, torch-cuda, onnx-cpu or torch-cpu"
        )
        p.add_argument("--threads", type=int, default=None, help="CPU threads per model")

    models = sub.add_parser("models", help="fetch, list and benchmark model weights")
    msub = models.add_subparsers(dest="models_command", required=True)
    fetch = msub.add_parser("fetch", help="download the MediaPipe wheel with pip and extract verified weights")
    fetch.add_argument("--from-wheel", default=None, help="use a wheel file you already have (offline)")
    common(fetch)
    fetch.set_defaults(func=cmd_models_fetch)
    lst = msub.add_parser("list", help="show which models are present and verified")
    lst.add_argument("--json", action="store_true")
    common(lst)
    lst.set_defaults(func=cmd_models_list)
    bench = msub.add_parser("bench", help="per-model latency on every backend, against LiteRT")
    bench.add_argument("--model", action="append", help="model name (repeatable; default: all)")
    bench.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    bench.add_argument("--backends", nargs="+", default=None)
    bench.add_argument("--iters", type=int, default=100)
    bench.add_argument("--no-litert", action="store_true", help="skip the LiteRT reference")
    bench.add_argument("--json", action="store_true")
    common(bench)
    bench.set_defaults(func=cmd_models_bench)

    detect = sub.add_parser("detect", help="find faces and their 478 landmarks in an image")
    detect.add_argument("image")
    detect.add_argument("--json", action="store_true", help="print faces as JSON")
    detect.add_argument(
        "--draw", default=None, metavar="OUT.png", help="write the image with boxes, landmarks and regions"
    )
    detect.add_argument("--max-faces", type=int, default=32)
    detect.add_argument("--detector", choices=["short", "full"], default="full")
    detect.add_argument("--min-score", type=float, default=None, help="detector score threshold")
    common(detect)
    detect.set_defaults(func=cmd_detect)

    demo = sub.add_parser("demo", help="track a bundled public-domain portrait and apply a look to it")
    demo.add_argument("-o", "--output", default="facetory-demo.png")
    demo.add_argument("--look", default="evening", help="preset or look file for the third panel")
    common(demo)
    demo.set_defaults(func=cmd_demo)
    _add_look_commands(sub, common)

    extract = sub.add_parser("extract", help="read a makeup look from a photo into a look file")
    extract.add_argument("photo", help="JPEG, PNG or WebP photo of a made-up face")
    extract.add_argument("-o", "--output", required=True, metavar="LOOK.json", help="look file to write")
    extract.add_argument("--face", type=int, default=None, help="which face, largest first from 0 (default: 0)")
    extract.add_argument("--name", default=None, help="the look's name (default: From <photo name>)")
    extract.add_argument("--preview", default=None, metavar="OUT.png", help="also write reference | layers | result")
    extract.add_argument(
        "--selfie", default=None, metavar="USER.jpg", help="also write LOOK.variant-N.json tuned to this face's skin"
    )
    extract.add_argument(
        "--texture",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also read a UV texture (extract.texture)",
    )
    extract.add_argument("--bench", type=int, default=None, metavar="N", help="time N more runs, print p50/p95 ms")
    common(extract)
    extract.set_defaults(func=cmd_extract)

    run = sub.add_parser("run", help="the live virtual camera: sources in, filtered frames out")
    run.add_argument(
        "--source",
        action="append",
        default=None,
        help="camera index or device, video file, image or 'scripted'; repeat for several sources",
    )
    run.add_argument(
        "--sink", action="append", default=None, help="virtualcam[:DEVICE], a video file or null; one per source"
    )
    run.add_argument("--look", default=None, help="preset id or look file ('none' for no makeup)")
    run.add_argument("--size", type=_size, default=None, help="output size WIDTHxHEIGHT (default: the source's)")
    run.add_argument("--fps", type=float, default=None, help="output frame rate")
    run.add_argument("--loop", action=argparse.BooleanOptionalAction, default=None, help="loop video file sources")
    run.add_argument("--stats-every", type=float, default=None, help="log statistics every N seconds")
    run.add_argument(
        "--offline", action="store_true", help="process every frame as fast as possible (files in, files out)"
    )
    run.add_argument("--json", action="store_true", help="print the final statistics as JSON")
    run.add_argument("--port", type=int, default=None, help="control API port on loopback (default: api.port)")
    run.add_argument("--no-api", action="store_true", help="do not serve the local control API")
    common(run)
    run.set_defaults(func=cmd_run)

    bench = sub.add_parser("bench", help="per-stage timings: tracking, makeup, background (one core)")
    bench.add_argument("--source", default=None, help="a video file (default: a built-in 1280x720 clip)")
    bench.add_argument("--look", default=None, help="preset or look file (default: every face layer on)")
    bench.add_argument("--frames", type=int, default=200)
    bench.add_argument("--no-background", action="store_true", help="leave the background stage out")
    bench.add_argument("--json", action="store_true")
    common(bench)
    bench.set_defaults(func=cmd_bench)

    doctor = sub.add_parser("doctor", help="check the setup (packages, models, GPU, virtual camera) and how to fix it")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--camera", default=None, help="camera index or device to try (default: the configured one)")
    common(doctor)
    doctor.set_defaults(func=cmd_doctor)

    tray = sub.add_parser("tray", help="tray icon: switch looks, intensity and bypass of a running daemon")
    tray.add_argument("--port", type=int, default=None, help="the daemon's API port (default: api.port)")
    tray.add_argument("--interval", type=float, default=3.0, help="seconds between state polls")
    tray.set_defaults(func=cmd_tray)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except FacetoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # output piped into head and the like
        return 0
    except Exception as exc:  # the CLI never shows a traceback for an operational failure
        from facetory_cam.models.backends import NoBackendError
        from facetory_cam.models.store import ModelError

        if isinstance(exc, (ModelError, NoBackendError, ValueError)):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.verbose:
            raise
        print(f"error: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
