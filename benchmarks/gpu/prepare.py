"""Runs HERE (CPU machine): demo val images (8 per task) and the 10 SavedModels the GPU run measures.

    .venv/bin/python benchmarks/gpu/prepare.py [.gpu]

Writes .gpu/images/<task>/*.{jpg,png} (the first 8 val images, sorted by name) and
.gpu/models/<task>-<backend>/1 (tftrt_yolo.convert, batch 8, backends tensorflow and xla).
"""
import shutil
import sys
import time
from pathlib import Path

import yaml

import tftrt_yolo
from tftrt_yolo.demo import TASKS, demo_data, demo_model

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else ".gpu")
EXT = {".jpg", ".jpeg", ".png", ".bmp"}


def val_images(task: str) -> list[Path]:
    d = Path(demo_data(task, val_only=True))
    if task == "classify":
        folder = d / "val"
    else:
        cfg = yaml.safe_load(d.read_text())
        base = Path(cfg.get("path") or d.parent)
        base = base if base.is_absolute() else (d.parent / base)
        folder = base / cfg["val"]
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXT)


for task in TASKS:
    imgs = val_images(task)[:8]
    out = ROOT / "images" / task
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for i, p in enumerate(imgs):
        shutil.copy2(p, out / f"{i:02d}_{p.name}")
    print(task, len(imgs), "images from", imgs[0].parent, flush=True)

for task in TASKS:
    for backend in ("tensorflow", "xla"):
        t0 = time.time()
        name = f"{task}-{backend}"
        if (ROOT / "models" / name / "1" / "saved_model.pb").is_file():
            print("have", name, flush=True)
            continue
        p = tftrt_yolo.convert(demo_model(task), batch=8, backend=backend, output=ROOT / "models", name=name, verbose=False)
        print("converted", name, p, f"{time.time() - t0:.0f}s", flush=True)
