"""Crash consistency: a process saving, importing, updating and deleting looks is killed with SIGKILL at
random moments, again and again; after every kill the library opens, every look is whole (its JSON
validates, its files exist and match their hashes) or absent, nothing is orphaned after start-up
cleanup, and every save the process reported as done is there."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facetory_cam.api.store import LibraryStore

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import io, os, random, sys
import numpy as np
from PIL import Image
from facetory_cam.api.bundles import export_bundle, read_bundle
from facetory_cam.api.store import TEXTURE_REF, LibraryStore, LookNotFound
from facetory_cam.looks.schema import parse_look

root, seed, ops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)

def png(side, mode):
    arr = np.random.default_rng(rng.randrange(1 << 30)).integers(0, 255, (side, side, len(mode)), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, format="PNG", compress_level=0)
    return buf.getvalue()

def look(name, texture):
    doc = {"schema_version": 1, "name": name, "tags": ["crash"],
           "layers": {"lipstick": {"color": "#%06x" % rng.randrange(1 << 24)}}}
    if texture:
        doc["layers"]["texture"] = {"image": TEXTURE_REF}
    return parse_look(doc)

def say(*words):
    sys.stdout.write(" ".join(words) + "\n")
    sys.stdout.flush()

store = LibraryStore(root)
mine = [r.id for r in store.list() if not r.read_only]
say("ready")
for i in range(ops):
    kind = rng.choice(["save", "save", "import", "update", "delete", "thumb"])
    if kind in ("update", "delete", "thumb") and not mine:
        kind = "save"
    if kind == "save":
        tex = rng.random() < 0.6
        rec = store.create(look(f"s{seed}-{i}", tex), texture_png=png(256, "RGBA") if tex else None,
                           thumbnail_png=png(128, "RGB"))
        mine.append(rec.id)
        say("saved", rec.id)
    elif kind == "import":
        data = export_bundle(look(f"i{seed}-{i}", True), texture_png=png(192, "RGBA"), thumbnail_png=png(96, "RGB"))
        b = read_bundle(data)
        rec = store.create(b.look, texture_png=b.texture_png, thumbnail_png=b.thumbnail_png)
        mine.append(rec.id)
        say("saved", rec.id)
    elif kind == "update":
        lid = rng.choice(mine)
        tex = rng.random() < 0.5
        say("updating", lid)
        store.update(lid, look(f"u{seed}-{i}", tex), texture_png=png(256, "RGBA") if tex else None,
                     thumbnail_png=png(128, "RGB"))
        say("updated", lid)
    elif kind == "thumb":
        lid = rng.choice(mine)
        store.set_thumbnail(lid, png(128, "RGB"))
        say("thumbed", lid)
    else:
        lid = mine.pop(rng.randrange(len(mine)))
        say("deleting", lid)
        store.delete(lid)
        say("deleted", lid)
say("finished")
"""

RUNS = 12
OPS = 200


def _run_once(root: Path, seed: int, kill_after: float) -> tuple[list[str], bool]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(seed), str(OPS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.strip() == "ready", first + (proc.stderr.read() if proc.stderr else "")
    time.sleep(kill_after)
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    if not killed:
        assert proc.returncode == 0, err
    return [first.strip(), *out.splitlines()], killed


def test_sigkill_at_random_points_never_breaks_the_library(tmp_path: Path) -> None:
    root = tmp_path / "lib"
    rng = random.Random(20240601)
    reported: set[str] = set()  # looks the child said were saved (and not since deleted)
    kills = 0
    done_ops = 0
    for run in range(RUNS):
        lines, killed = _run_once(root, seed=run, kill_after=rng.uniform(0.05, 1.2))
        kills += killed
        in_flight_delete: set[str] = set()
        for line in lines:
            word, _, lid = line.partition(" ")
            if word == "saved":
                reported.add(lid)
            elif word == "deleting":
                in_flight_delete.add(lid)
            elif word == "deleted":
                reported.discard(lid)
                in_flight_delete.discard(lid)
            done_ops += word in ("saved", "updated", "thumbed", "deleted")
        with LibraryStore(root) as store:  # start-up cleanup runs here
            assert store.integrity_ok()
            problems = store.verify()
            assert problems == [], (run, problems, store.cleanup_report)
            present = {r.id for r in store.list() if not r.read_only}
            # Every reported save is there, unless a delete of it had begun when the process died.
            missing = reported - present - in_flight_delete
            assert not missing, (run, missing)
            reported -= in_flight_delete - present
            for record in store.list():
                if record.read_only:
                    continue
                assert record.problem is None
                store.runtime_look(record.id)  # usable by the renderer
    assert kills >= RUNS // 2, kills  # most runs really were killed mid-work
    assert done_ops >= 100, done_ops
    print(f"crash test: {RUNS} runs, {kills} killed with SIGKILL, {done_ops} operations completed")


@pytest.mark.parametrize("leftover", ["temp", "orphan"])
def test_cleanup_after_a_kill_leaves_nothing_behind(tmp_path: Path, leftover: str) -> None:
    root = tmp_path / "lib"
    LibraryStore(root).close()
    if leftover == "temp":
        (root / "textures" / ".tmp-feedface").write_bytes(b"partial")
    else:
        (root / "thumbnails" / ("ab" * 32 + ".png")).write_bytes(b"never committed")
    with LibraryStore(root) as store:
        assert store.verify() == []
        report = store.cleanup_report
        assert len(report.temp_files) + len(report.orphans) == 1
