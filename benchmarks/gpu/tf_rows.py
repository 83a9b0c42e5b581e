"""Runs ON THE GPU MACHINE with the TensorFlow 2.17.1 bundle: times the SavedModels of .gpu/models.

    . /tmp/tfenv.sh; $TFPY benchmarks/gpu/tf_rows.py --root /tmp/gpu --backends tensorflow xla --out $OUT/tf.json

Per task and backend, batch 8, the same 8 images as the PyTorch rows (.gpu/images/<task>/), conf 0.25,
iou 0.7, max_det 300 per image; every output of a timed call is copied to the host (`.numpy()`):
- `serving_default`: the 8 encoded files (bytes) in;
- `predict_images`: the 8 images as one uint8 [8, H, W, 3] host array (resized to the first one's size);
- stages, each one tf.function over the batch, built from the graph modules of this tree (the same code the
  SavedModels were converted from) and traced, as the SavedModel's are, for any batch and image size (traced
  for the inputs' static shapes, Grappler would fold every size computation into constants): `decode` (encoded -> padded batch where the graph runs, decoded on the CPU), `preprocess_images` (uint8
  batch already on the GPU -> network input), `network` (the saved `run_network` on the float batch already
  on the GPU; synchronised by reading one value of each output), `postprocess` (raw heads on the GPU -> final
  results on the host), `nms` (its first part: the boxes kept), segment's `masks` (after NMS: the kept boxes'
  masks at letterbox size, then at each image's size, on the host; `masks_one_size`: the same for a batch of
  one image size, as `predict_images` has); `preprocess_images_xla` (the batched
  pre-processing that XLA models compile) and `postprocess_xla` (where it compiles).
Timing is tftrt_yolo.benchmark.stats' `time_calls` / `Stats` (warm-up not counted, ms per image = call / 8).
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
import tensorflow as tf
from tensorflow.python.ops import gen_functional_ops

from tf_timing import on_host, timed, touch
from timing import BATCH, CONF, IOU, MAX_DET, TASKS, image_files, same_size_batch
from tftrt_yolo.graph import nms, postprocess, preprocess
from tftrt_yolo.metadata import read_metadata
from tftrt_yolo.image_batch import ImageBatchBuffer
from tftrt_yolo.tasks import task_spec


def any_shape(fn, *examples, jit_compile: bool = False):
    """`fn` as a tf.function for inputs like `examples` with any batch size, and uint8 images of any size:
    the shapes a SavedModel's signatures leave open."""
    def spec(t):
        shape = [None, None, None, 3] if t.dtype == tf.uint8 else [None] + t.shape[1:].as_list()
        return tf.TensorSpec(shape, t.dtype)

    spec = tf.nest.map_structure(spec, list(examples))
    return tf.function(fn, input_signature=spec, jit_compile=jit_compile)


def one(root: Path, task: str, backend: str, warmup: int, iterations: int) -> dict:
    d = root / "models" / f"{task}-{backend}" / "1"
    meta = read_metadata(d)
    info, letterboxed = meta.info, task_spec(task).letterbox
    row = {"task": task, "backend": backend, "model": str(d.relative_to(root)), "imgsz": info.imgsz,
           "meta_backend": meta.backend, "meta_batch": meta.batch}
    t0 = time.perf_counter()
    m = tf.saved_model.load(str(d))
    row["load_s"] = time.perf_counter() - t0
    files = image_files(root, task)
    row["images"] = [f.name for f in files]
    thresholds = dict(conf=tf.constant([CONF] * BATCH), iou=tf.constant([IOU] * BATCH),
                      max_det=tf.constant([MAX_DET] * BATCH))
    encoded = tf.constant([f.read_bytes() for f in files])
    uint8_host = same_size_batch(files)
    row["predict_images_shape"] = list(uint8_host.shape)
    print(f"  {task}-{backend}", flush=True)

    last = {}
    serving, images_sig = m.signatures["serving_default"], m.signatures["predict_images"]
    timed(row, "serving_default", lambda: last.__setitem__("out", on_host(serving(images=encoded, **thresholds))),
          warmup, iterations)
    out = last["out"]
    row["outputs"] = {k: list(v.shape) for k, v in out.items()}
    if "num_detections" in out:
        row["num_detections"] = out["num_detections"].tolist()
    row["output_sums"] = {k: float(np.asarray(v, np.float64).sum()) for k, v in out.items()}
    timed(row, "predict_images", lambda: on_host(images_sig(images=uint8_host, **thresholds)), warmup, iterations)
    image_batch = ImageBatchBuffer()  # what `YoloModel.predict_arrays` sends: the batch without TensorFlow's copy
    timed(row, "predict_images_staged",
          lambda: on_host(images_sig(images=image_batch.tensor(uint8_host, bgr=False), **thresholds)), warmup, iterations)

    # stages
    size = info.imgsz
    with tf.device("/GPU:0"):
        uint8 = tf.identity(tf.constant(uint8_host))
    decode = any_shape(preprocess._decode_padded, encoded) if letterboxed else any_shape(
        lambda x: tf.map_fn(lambda e: tf.shape(preprocess.decode(e)), x, fn_output_signature=tf.int32), encoded)
    timed(row, "decode", lambda: touch(decode(encoded)), warmup, iterations)
    pre = any_shape(lambda x: preprocess.preprocess_images(x, size, letterboxed)[0], uint8)
    timed(row, "preprocess_images", lambda: touch(pre(uint8)), warmup, iterations)
    pre_xla = any_shape(lambda x: preprocess.preprocess_image_batch(x, size, letterboxed), uint8, jit_compile=True)
    timed(row, "preprocess_images_xla", lambda: touch(pre_xla(uint8)), warmup, iterations)
    floats, image_sizes = preprocess.preprocess_encoded(encoded, size, letterboxed)
    with tf.device("/GPU:0"):
        floats, image_sizes = tf.identity(floats), tf.identity(image_sizes)
    timed(row, "network", lambda: touch(m.run_network(floats)), warmup, iterations)
    raw = m.run_network(floats)
    if task != "classify":  # the NMS alone, the first part of `postprocess`; _xla: greedy NMS compiled by XLA
        nc, rotated = len(info.names), task == "obb"
        for suffix, compiled in (("", False), ("_xla", True)):
            if compiled and rotated:  # rotated NMS is never compiled
                continue
            select = any_shape(lambda pred, conf, iou, max_det: postprocess._select(
                pred, nc, conf, iou, max_det, rotated=rotated, compiled=compiled), raw[0], *thresholds.values())
            timed(row, "nms" + suffix, lambda: on_host(select(raw[0], *thresholds.values())), warmup, iterations)
    if task == "segment":  # after NMS: letterbox-size masks of the kept boxes, then back to the images' sizes
        kept = select(raw[0], *thresholds.values())
        boxes = nms.xywh_to_xyxy(kept["xywh"])
        masks = any_shape(lambda extra, protos, boxes, sizes: postprocess._masks_in_original(
            postprocess._letterbox_masks(extra, protos, boxes, size), sizes, size), kept["extra"], raw[1], boxes,
            image_sizes)
        with tf.device("/GPU:0"):
            one_size = tf.identity(tf.constant([uint8_host.shape[1:3]] * BATCH, tf.int32))
        timed(row, "masks", lambda: on_host([masks(kept["extra"], raw[1], boxes, image_sizes)]), warmup, iterations)
        timed(row, "masks_one_size", lambda: on_host([masks(kept["extra"], raw[1], boxes, one_size)]), warmup,
              iterations)
    for suffix, jit in (("", False), ("_xla", True)):
        post = any_shape(
            lambda outputs, sizes, conf, iou, max_det: postprocess.BY_TASK[task](
                outputs, sizes, info, imgsz=size, conf=conf, iou=iou, max_det=max_det),
            raw, image_sizes, *thresholds.values(), jit_compile=jit,
        )
        timed(row, "postprocess" + suffix, lambda: on_host(post(raw, image_sizes, *thresholds.values())), warmup,
              iterations)
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
    where = tf.function(lambda: gen_functional_ops.device_index(device_names=["CPU", "GPU"]))()
    res = {
        "environment": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
            "gpus": [g.name for g in gpus],
            "gpu_details": [tf.config.experimental.get_device_details(g) for g in gpus],
            "build_info": {k: v for k, v in tf.sysconfig.get_build_info().items() if k.startswith(("cuda", "cudnn", "is_"))},
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            # where a function's unplaced DeviceIndex runs (0 CPU, 1 GPU): `per_device` picks its branch by it
            "device_index_cpu_gpu": int(where),
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


if __name__ == "__main__":
    main()
