"""ON THE GPU MACHINE: settings that act on a whole process, one process per setting, run alternately.

- `--layout off`: Grappler's layout optimizer off. For float32 convolutions it rewrites the network to NCHW,
  and cuDNN, running TF32 kernels that want NHWC, then transposes around every convolution (a profile of
  segment's `predict_images` showed about 125 nchwToNhwc/nhwcToNchw kernels per call).
- the environment the process starts with, recorded in each row: `TF_GPU_THREAD_MODE=gpu_private` (each GPU
  gets its own threads to launch kernels, instead of the shared inter-op pool: the plain graph is bound by the
  host launching small kernels) and `XLA_FLAGS` (`--xla_gpu_enable_command_buffer=...`: XLA replays a
  module's kernels as CUDA graphs).

Timed per process: the network alone (batch on the GPU), `predict_images` through `ImageBatchBuffer`,
`serving_default`; the outputs' sums are written per process, to see whether a setting changes them.

    . /tmp/tfenv.sh; cd benchmarks/gpu/experiments
    for i in 1 2; do for l in default off; do
      $TFPY process_probe.py --layout $l --out $OUT/layout-$l-$i.json; done; done
    TF_GPU_THREAD_MODE=gpu_private $TFPY process_probe.py --backend xla --out $OUT/private-xla.json
"""
from __future__ import annotations

import os
import sys

import numpy as np
import tensorflow as tf

if "off" in sys.argv:  # before any function is instantiated: Grappler reads the options then
    tf.config.optimizer.set_experimental_options({"layout_optimizer": False})

from common import run_per_task, task_batches, timed  # noqa: E402  (sets the import paths)
from tf_timing import on_host, touch  # noqa: E402
from timing import TASKS  # noqa: E402

from tftrt_yolo.image_batch import ImageBatchBuffer  # noqa: E402

ENVIRONMENT = ("TF_GPU_THREAD_MODE", "TF_GPU_THREAD_COUNT", "XLA_FLAGS", "TF_XLA_FLAGS")


def one(args, task: str) -> dict:
    encoded, numpy_batch, on_gpu, thresholds = task_batches(args.root, task)
    model = tf.saved_model.load(str(args.root / "models" / f"{task}-{args.backend}" / "1"))
    images, serving = model.signatures["predict_images"], model.signatures["serving_default"]
    with tf.device("/GPU:0"):
        floats = tf.identity(model.preprocess(encoded))
    image_batch = ImageBatchBuffer()
    row = {"task": task, "backend": args.backend, "layout": args.layout,
           "environment": {k: os.environ[k] for k in ENVIRONMENT if k in os.environ},
           "options": {k: str(v) for k, v in tf.config.optimizer.get_experimental_options().items()}}
    row["sums"] = {
        "network": [float(np.asarray(o, np.float64).sum()) for o in on_host(model.run_network(floats))],
        "predict_images": {k: float(np.asarray(v, np.float64).sum())
                           for k, v in on_host(images(images=on_gpu, **thresholds)).items()},
    }
    timed(row, "network", lambda: touch(model.run_network(floats)))
    timed(row, "predict_images_staged",
          lambda: on_host(images(images=image_batch.tensor(numpy_batch, bgr=False), **thresholds)))
    timed(row, "serving_default", lambda: on_host(serving(images=encoded, **thresholds)))
    return row


if __name__ == "__main__":
    run_per_task(one, TASKS, lambda parser: (
        parser.add_argument("--layout", choices=("default", "off"), default="default"),
        parser.add_argument("--backend", choices=("tensorflow", "xla"), default="tensorflow"),
    ))
