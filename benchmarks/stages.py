"""Where the end-to-end time goes: each signature, and each stage of the graph, on the same batch.

    .venv/bin/python benchmarks/stages.py --models DIR [--tasks detect,segment] [--calls 10] [--json FILE]

DIR holds one converted model per task, as `tftrt_yolo.convert(demo_model(task), batch=8, output=DIR,
name=task)` writes them (DIR/<task>/1). The batch is the task's first 8 demo val images (different sizes);
`predict_images` gets them resized (cv2) to the first image's size, as it needs one size per batch.
Rows, ms per image (median of `--calls` calls after two warm-up calls, outputs copied to the host):

- `serving_default`, `predict_images`: the saved signatures, end to end;
- `decode`, `preprocess_encoded`, `preprocess_images`, `postprocess`: the graph modules that are importable
  now (the working tree, or whatever PYTHONPATH puts first), each as one tf.function over the batch;
- `network`: the saved network alone on the pre-processed batch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import tensorflow as tf

from tftrt_yolo.demo import demo_data
from tftrt_yolo.graph import postprocess, preprocess
from tftrt_yolo.metadata import read_metadata
from tftrt_yolo.tasks import TASKS, task_spec

sys.path.insert(0, str(Path(__file__).parent / "gpu"))
from timing import same_size_batch  # noqa: E402  the GPU rows build their uint8 batch the same way


def demo_files(task: str, n: int) -> list[Path]:
    root = demo_data(task, val_only=True)
    folder = root / "val" if task_spec(task).class_folders else root.parent / "images" / "val"
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".png"})[:n]


def demo_batch(task: str, n: int = 8):
    """The task's first `n` demo val images: (encoded string [n], the same images as one uint8 [n, H, W, 3]
    RGB batch resized to the first one's size, per-image thresholds conf 0.25 / iou 0.7 / max_det 300)."""
    files = demo_files(task, n)
    count = len(files)
    thresholds = dict(conf=tf.fill([count], 0.25), iou=tf.fill([count], 0.7), max_det=tf.fill([count], 300))
    return tf.constant([f.read_bytes() for f in files]), tf.constant(same_size_batch(files)), thresholds


def ms_per_image(fn, calls: int, batch: int) -> float:
    def once():
        out = fn()
        for t in tf.nest.flatten(out):
            t.numpy()

    for _ in range(2):  # warm-up
        once()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / batch * 1000.0


def task_rows(model_dir: Path, calls: int) -> dict:
    info = read_metadata(model_dir).info
    letterboxed, size = task_spec(info.task).letterbox, info.imgsz
    saved = tf.saved_model.load(str(model_dir))
    encoded, uint8, thresholds = demo_batch(info.task)
    n = len(encoded)

    pre_encoded = tf.function(lambda x: preprocess.preprocess_encoded(x, size, letterboxed))
    pre_images = tf.function(lambda x: preprocess.preprocess_images(x, size, letterboxed))
    decode = tf.function(
        lambda x: tf.map_fn(lambda e: tf.shape(preprocess.decode(e)), x, fn_output_signature=tf.int32)
    )
    floats, image_sizes = pre_encoded(encoded)
    raw = saved.run_network(floats)  # a batch of 8: the models are converted for batch=8
    post = tf.function(
        lambda outputs, sizes: postprocess.BY_TASK[info.task](outputs, sizes, info, imgsz=size, **thresholds)
    )
    fns = {
        "serving_default": lambda: saved.signatures["serving_default"](images=encoded, **thresholds),
        "predict_images": lambda: saved.signatures["predict_images"](images=uint8, **thresholds),
        "decode": lambda: decode(encoded),
        "preprocess_encoded": lambda: pre_encoded(encoded),
        "preprocess_images": lambda: pre_images(uint8),
        "network": lambda: saved.run_network(floats),
        "postprocess": lambda: post(raw, image_sizes),
    }
    return {name: round(ms_per_image(fn, calls, n), 2) for name, fn in fns.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    rows = {}
    for task in a.tasks.split(","):
        rows[task] = task_rows(Path(a.models) / task / "1", a.calls)
        print(task, json.dumps(rows[task]), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
