"""ON THE GPU MACHINE: a profiler trace of a SavedModel's `predict_images` calls (the batch through
`ImageBatchBuffer`, as `YoloModel.predict_arrays` sends it), per task and backend, for
`profile_gpu_idle.py` to read here: profile-<task>-<backend>.tar.gz next to --out, and the call's mean
without the profiler in --out.

    . /tmp/tfenv.sh; $TFPY benchmarks/gpu/experiments/profile_call.py --out $OUT/profile-call.json
"""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import tensorflow as tf

from common import run_per_task, task_batches, timed  # noqa: E402  (sets the import paths)
from tf_timing import on_host  # noqa: E402
from timing import TASKS  # noqa: E402

from tftrt_yolo.image_batch import ImageBatchBuffer  # noqa: E402


def one(root: Path, task: str, backend: str, out: Path) -> dict:
    _, numpy_batch, _, thresholds = task_batches(root, task)
    signature = tf.saved_model.load(str(root / "models" / f"{task}-{backend}" / "1")).signatures["predict_images"]
    image_batch = ImageBatchBuffer()
    call = lambda: on_host(signature(images=image_batch.tensor(numpy_batch, bgr=False), **thresholds))  # noqa: E731
    row = {"task": task, "backend": backend}
    timed(row, "predict_images_staged", call)
    logdir = Path("/tmp/prof") / f"{task}-{backend}"
    shutil.rmtree(logdir, ignore_errors=True)
    tf.profiler.experimental.start(str(logdir))
    for _ in range(3):
        call()
    tf.profiler.experimental.stop()
    with tarfile.open(out / f"profile-{task}-{backend}.tar.gz", "w:gz") as tar:
        tar.add(logdir, arcname=f"{task}-{backend}")
    print(task, backend, round(row["predict_images_staged"]["mean"], 3), "ms/img", flush=True)
    return row


if __name__ == "__main__":
    def arguments(parser):
        parser.add_argument("--backend", choices=("tensorflow", "xla"), default="tensorflow")

    run_per_task(lambda args, task: one(args.root, task, args.backend, args.out.parent), TASKS, arguments)
