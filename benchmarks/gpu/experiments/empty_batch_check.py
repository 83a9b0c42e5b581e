"""ON THE GPU MACHINE: does every signature of every model (/tmp/gpu/models, both backends) take an empty batch
on a GPU, as the tests check on a CPU (tests/test_convert.py::test_empty_batch_gives_empty_results)? Also
records on which device each output comes back.

    . /tmp/tfenv.sh; $TFPY benchmarks/gpu/experiments/empty_batch_check.py --out $OUT/empty-batch.json
"""
from __future__ import annotations

import tensorflow as tf

from common import run_per_task  # noqa: E402  (sets the import paths)
from timing import TASKS  # noqa: E402


def one(root, task: str) -> dict:
    row = {"task": task}
    thresholds = dict(conf=tf.constant([0.25]), iou=tf.constant([0.7]), max_det=tf.constant([300]))
    inputs = {"serving_default": tf.constant([], tf.string), "predict_images": tf.zeros([0, 480, 640, 3], tf.uint8)}
    for backend in ("tensorflow", "xla"):
        model = tf.saved_model.load(str(root / "models" / f"{task}-{backend}" / "1"))
        for name, images in inputs.items():
            try:
                outputs = model.signatures[name](images=images, **thresholds)
                row[f"{backend}/{name}"] = {k: [list(v.shape), v.device] for k, v in outputs.items()}
            except Exception as e:  # record what failed and go on
                row[f"{backend}/{name}"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
            print(task, backend, name, row[f"{backend}/{name}"], flush=True)
    return row


if __name__ == "__main__":
    run_per_task(lambda args, task: one(args.root, task), TASKS)
