"""Runs HERE: the network-only input batch of each task, made exactly as tftrt_yolo.benchmark does
(`network_batch`: Ultralytics' LetterBox to a square imgsz, classify: classify_transforms), from the
8 images in .gpu/images/<task>/, saved as .gpu/net/<task>.npz (NCHW RGB in [0, 1]; stored as uint8
x255 where that is exact, else float16) so that PyTorch and TensorFlow time the same tensor.

    .venv/bin/python benchmarks/gpu/net_batches.py [.gpu]
"""
import sys
from pathlib import Path

import numpy as np

from tftrt_yolo._ultralytics import configure
from tftrt_yolo.benchmark import network_batch
from tftrt_yolo.tasks import TASKS, task_spec

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else ".gpu")
configure()
(ROOT / "net").mkdir(parents=True, exist_ok=True)
for task in TASKS:
    files = sorted((ROOT / "images" / task).iterdir())
    x = network_batch(files, task, task_spec(task).demo_imgsz).astype(np.float32)
    u8 = np.round(x * 255.0)
    if np.abs(u8 / 255.0 - x).max() < 1e-6:
        np.savez_compressed(ROOT / "net" / f"{task}.npz", u8=u8.astype(np.uint8))
        kind = "uint8"
    else:
        np.savez_compressed(ROOT / "net" / f"{task}.npz", f16=x.astype(np.float16))
        kind = "float16"
    print(task, x.shape, x.dtype, kind, f"{x.min():.3f}..{x.max():.3f}", flush=True)
