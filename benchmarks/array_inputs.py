"""`predict` on images that are already pixels: as pixels (what it does now) against BMP-encoded (what it did).

    .venv/bin/python benchmarks/array_inputs.py --models DIR [--tasks detect,pose] [--calls 10] [--json FILE]

DIR holds one converted model per task (DIR/<task>/1, as benchmarks/stages.py describes). The frames are the
task's first 8 demo val images resized (cv2) to the first one's size, BGR, as video frames are. Per task:
`model.predict(frames)` (one `predict_images` call through `ImageBatchBuffer`) and `model.predict` of the same
frames encoded as BMP (one `serving_default` call that decodes them, plus the encoding), called in turn
(A B A B ...), median ms per image over `--calls` calls after one warm-up call each; and whether both give the
same results.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from stages import TASKS, demo_batch

import tftrt_yolo
from tftrt_yolo.inputs import encode_bgr


def same_results(a, b) -> bool:
    fields = ("boxes", "scores", "classes", "masks", "keypoints", "rboxes", "probs")
    return all(np.array_equal(getattr(x, f), getattr(y, f)) for x, y in zip(a, b) for f in fields) and len(a) == len(b)


def compare(model_dir: Path, task: str, calls: int) -> dict:
    model = tftrt_yolo.load(model_dir)
    _, rgb, _ = demo_batch(task)
    frames = [cv2.cvtColor(image, cv2.COLOR_RGB2BGR) for image in np.asarray(rgb)]
    paths = {"pixels": lambda: model.predict(frames),
             "bmp_encoded": lambda: model.predict([encode_bgr(frame) for frame in frames])}
    first = {name: fn() for name, fn in paths.items()}
    times = {name: [] for name in paths}
    for _ in range(calls):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000 / len(frames))
    row = {"task": task, "frames": list(np.asarray(rgb).shape), "same_results": same_results(*first.values())}
    row |= {f"{name}_ms_per_image": statistics.median(t) for name, t in times.items()}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for task in args.tasks.split(","):
        rows.append(compare(args.models / task / "1", task, args.calls))
        r = rows[-1]
        print(f"{task:9s} pixels {r['pixels_ms_per_image']:7.2f}  bmp-encoded {r['bmp_encoded_ms_per_image']:7.2f} "
              f"ms/img  same results: {r['same_results']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
