"""Runs ON THE GPU MACHINE with the TensorFlow 2.17.1 bundle: times the SavedModels of .gpu/models.

    PYTHONPATH=/tmp/tfb/site:$PWD /usr/bin/python3 -s benchmarks/gpu/tf_rows.py \
        --root .gpu --backends tensorflow xla --out $OUT/tf.json

Per task and backend, batch 8, same 8 images as the PyTorch rows (.gpu/images/<task>/):
- end_to_end: the `serving_default` signature on the 8 encoded files (bytes), conf 0.25, iou 0.7,
  max_det 300 per image, every output copied to host with .numpy();
- network: `run_network(x)` on the [8, S, S, 3] float32 batch of .gpu/net/<task>.npz already on the GPU,
  synchronised by reading one value of each output (the raw heads stay on the GPU).
Timing is tftrt_yolo.benchmark's `time_calls` / `Stats` (warm-up not counted, ms per image = call / 8).
It imports tftrt_yolo.benchmark without running tftrt_yolo/__init__.py, which pulls in cv2 (not in the bundle).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
import traceback
from pathlib import Path

import numpy as np

from timing import BATCH, CONF, IOU, MAX_DET, TASKS, stats_dict, time_calls  # noqa: E402
import tensorflow as tf  # noqa: E402


def load_net(path: Path) -> np.ndarray:
    z = np.load(path)
    x = z["u8"].astype(np.float32) / 255.0 if "u8" in z.files else z["f16"].astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # NCHW -> NHWC


def one(root: Path, task: str, backend: str, warmup: int, iterations: int) -> dict:
    d = root / "models" / f"{task}-{backend}" / "1"
    meta = json.loads((d / "assets.extra" / "tftrt_yolo.json").read_text())
    row = {"task": task, "backend": backend, "model": str(d.relative_to(root)), "imgsz": meta["info"]["imgsz"],
           "meta_backend": meta.get("backend"), "meta_batch": meta.get("batch")}
    t0 = time.perf_counter()
    m = tf.saved_model.load(str(d))
    row["load_s"] = time.perf_counter() - t0
    files = sorted((root / "images" / task).iterdir())
    assert len(files) == BATCH, files
    row["images"] = [f.name for f in files]

    # end to end
    sig = m.signatures["serving_default"]
    feeds = dict(
        images=tf.constant([f.read_bytes() for f in files]),
        conf=tf.constant([CONF] * BATCH, tf.float32),
        iou=tf.constant([IOU] * BATCH, tf.float32),
        max_det=tf.constant([MAX_DET] * BATCH, tf.int32),
    )
    last = {}

    def e2e():
        out = sig(**feeds)
        last["out"] = {k: v.numpy() for k, v in out.items()}

    t0 = time.perf_counter()
    e2e()
    row["end_to_end_first_call_s"] = time.perf_counter() - t0
    s = time_calls(e2e, warmup=warmup, iterations=iterations, batch=BATCH)
    row["end_to_end"] = stats_dict(s)
    out = last["out"]
    row["outputs"] = {k: list(v.shape) for k, v in out.items()}
    if "num_detections" in out:
        row["num_detections"] = out["num_detections"].tolist()
    for k, v in out.items():
        if v.dtype.kind == "f":
            row.setdefault("output_sums", {})[k] = float(np.asarray(v, np.float64).sum())
    print(f"  {task}-{backend} e2e mean {s.mean:.3f} trimmed {s.trimmed_mean:.3f} ms/img "
          f"(first call {row['end_to_end_first_call_s']:.1f}s)", flush=True)

    # network only
    with tf.device("/GPU:0"):
        x = tf.identity(tf.constant(load_net(root / "net" / f"{task}.npz")))
    row["network_input"] = {"shape": list(x.shape), "device": x.device}

    def net():
        for o in tf.nest.flatten(m.run_network(x)):
            tf.reshape(o, [-1])[0].numpy()

    t0 = time.perf_counter()
    outs = tf.nest.flatten(m.run_network(x))
    row["network_outputs"] = [{"shape": list(o.shape), "device": o.device} for o in outs]
    row["network_first_call_s"] = time.perf_counter() - t0
    s = time_calls(net, warmup=warmup, iterations=iterations, batch=BATCH)
    row["network"] = stats_dict(s)
    print(f"  {task}-{backend} net mean {s.mean:.3f} trimmed {s.trimmed_mean:.3f} ms/img "
          f"(first call {row['network_first_call_s']:.1f}s)", flush=True)
    del m, sig
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=".gpu")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--backends", nargs="+", default=["tensorflow", "xla"])
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    root = Path(a.root)
    gpus = tf.config.list_physical_devices("GPU")
    for g in gpus:
        tf.config.experimental.set_memory_growth(g, True)
    res = {
        "environment": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
            "gpus": [g.name for g in gpus],
            "gpu_details": [tf.config.experimental.get_device_details(g) for g in gpus],
            "build_info": {k: v for k, v in tf.sysconfig.get_build_info().items() if k.startswith(("cuda", "cudnn", "is_"))},
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        },
        "settings": {"batch": BATCH, "warmup": a.warmup, "iterations": a.iterations, "conf": CONF, "iou": IOU,
                     "max_det": MAX_DET},
        "rows": [],
    }
    print(json.dumps(res["environment"], default=str), flush=True)
    if not gpus:
        res["error"] = "TensorFlow sees no GPU"
    out = Path(a.out)
    for backend in a.backends:
        for task in a.tasks:
            try:
                res["rows"].append(one(root, task, backend, a.warmup, a.iterations))
            except Exception as e:  # record and go on with the next model
                traceback.print_exc()
                res["rows"].append({"task": task, "backend": backend, "status": f"failed: {type(e).__name__}: {str(e)[:2000]}"})
            out.write_text(json.dumps(res, indent=1, default=str))
    out.write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
