"""ON THE GPU MACHINE: two SavedModels of each task (the previous commit's, /tmp/gpu/old_models, and this
tree's, /tmp/gpu/models; tensorflow backend) timed in the same session, in alternating blocks, with the
same inputs: are their outputs identical, and which is faster? Sessions differ by 10-20 %, so a change of
the graph is judged here, not across sessions.

    . /tmp/tfenv.sh; $TFPY benchmarks/gpu/experiments/savedmodel_ab.py --out $OUT/savedmodel-ab.json
"""
from __future__ import annotations

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


def one(root: Path, task: str, blocks: int) -> dict:
    encoded, numpy_batch, on_gpu, thresholds = task_batches(root, task)
    models = {v: tf.saved_model.load(str(root / d / f"{task}-tensorflow" / "1"))
              for v, d in (("old", "old_models"), ("new", "models"))}
    fns = {v: calls(m, encoded, numpy_batch, on_gpu, thresholds) for v, m in models.items()}
    row = {"task": task, "equal": {name: same(fns["old"][name](), fns["new"][name]()) for name in fns["new"]}}
    print(task, row["equal"], flush=True)
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
    run_per_task(lambda args, task: one(args.root, task, args.blocks), TASKS,
                 lambda parser: parser.add_argument("--blocks", type=int, default=3))
