"""ON THE GPU MACHINE: two SavedModels of each task (the previous commit's, /tmp/gpu/old_models, and this
tree's, /tmp/gpu/models; tensorflow backend, or --backend xla) timed in the same session, in alternating
blocks, with the same inputs: are their outputs identical, and which is faster? Sessions differ by 10-20 %,
so a change of the graph is judged here, not across sessions. The first call of each (where XLA compiles)
is timed too.

    . /tmp/tfenv.sh; $TFPY benchmarks/gpu/experiments/savedmodel_ab.py --out $OUT/savedmodel-ab.json
"""
from __future__ import annotations

import time
from pathlib import Path

import tensorflow as tf

from common import run_per_task, same, task_batches, timed  # noqa: E402  (sets the import paths)
from tf_timing import on_host  # noqa: E402
from timing import TASKS  # noqa: E402

from tftrt_yolo.image_batch import ImageBatchBuffer  # noqa: E402
from tftrt_yolo.inputs import encode_bgr  # noqa: E402


def calls(model, encoded, numpy_batch, on_gpu, thresholds) -> dict:
    """name -> one timed call: `predict_images` from numpy (converted by TensorFlow, or through the
    `ImageBatchBuffer` `YoloModel.predict_arrays` uses) and from the GPU, and
    `serving_default` with the encoded files and with the batch's frames BMP-encoded (how `predict` sent
    arrays and video frames before 5cc013c; now they go as pixels, `predict_images_staged`)."""
    images, serving = model.signatures["predict_images"], model.signatures["serving_default"]
    image_batch = ImageBatchBuffer()
    bmp = tf.constant([encode_bgr(frame[..., ::-1]) for frame in numpy_batch])
    return {
        "predict_images": lambda: on_host(images(images=numpy_batch, **thresholds)),
        "predict_images_staged": lambda: on_host(images(images=image_batch.tensor(numpy_batch, bgr=False), **thresholds)),
        "predict_images_gpu_input": lambda: on_host(images(images=on_gpu, **thresholds)),
        "serving_default": lambda: on_host(serving(images=encoded, **thresholds)),
        "serving_default_bmp_frames": lambda: on_host(serving(images=bmp, **thresholds)),
    }


def first_call(fn):
    """(outputs, seconds) of a function's first call."""
    start = time.perf_counter()
    outputs = fn()
    return outputs, time.perf_counter() - start


def one(root: Path, task: str, backend: str, blocks: int, folders: tuple[str, str]) -> dict:
    encoded, numpy_batch, on_gpu, thresholds = task_batches(root, task)
    models = {v: tf.saved_model.load(str(root / d / f"{task}-{backend}" / "1")) for v, d in zip(("old", "new"), folders)}
    fns = {v: calls(m, encoded, numpy_batch, on_gpu, thresholds) for v, m in models.items()}
    row = {"task": task, "backend": backend, "folders": folders, "equal": {}, "first_call_s": {}}
    for name in fns["new"]:
        (old, row["first_call_s"][f"{name}/old"]), (new, row["first_call_s"][f"{name}/new"]) = (
            first_call(fns[v][name]) for v in ("old", "new"))
        row["equal"][name] = same(old, new)
    print(task, backend, row["equal"], row["first_call_s"], flush=True)
    for block in range(blocks):
        for version in ("old", "new"):
            for name, fn in fns[version].items():
                timed(row, f"{name}/{version}/{block}", fn)
    for name in fns["new"]:
        for version in ("old", "new"):
            means = [row[f"{name}/{version}/{b}"]["mean"] for b in range(blocks)]
            row[f"{name}/{version}"] = sum(means) / len(means)
        print(f"  {name:26s} old {row[name + '/old']:.3f} new {row[name + '/new']:.3f} ms/img", flush=True)
    return row


if __name__ == "__main__":
    def arguments(parser):
        parser.add_argument("--blocks", type=int, default=3)
        parser.add_argument("--backend", choices=("tensorflow", "xla"), default="tensorflow")
        parser.add_argument("--folders", nargs=2, default=("old_models", "models"), help="old and new, under --root")

    run_per_task(lambda args, task: one(args.root, task, args.backend, args.blocks, tuple(args.folders)), TASKS,
                 arguments)
