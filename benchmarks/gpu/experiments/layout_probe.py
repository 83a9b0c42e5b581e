"""ON THE GPU MACHINE: does Grappler's layout optimizer cost the plain TensorFlow graph time on the GPU?

For float32 convolutions it rewrites the network to NCHW, and cuDNN, running TF32 kernels that want NHWC,
then transposes around every convolution (a profile of segment's `predict_images` showed about 125
nchwToNhwc/nhwcToNchw kernels per call). A process runs with the optimizer as TensorFlow sets it or turned
off (`--layout off`, before anything is traced); run them alternately and compare: the network alone
(batch on the GPU), `predict_images` through `ImageBatchBuffer`, `serving_default`, and whether the outputs
stay the same (sums written per process).

    . /tmp/tfenv.sh; cd benchmarks/gpu/experiments
    for i in 1 2; do for l in default off; do
      $TFPY layout_probe.py --layout $l --out $OUT/layout-$l-$i.json; done; done
"""
from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf

if "off" in sys.argv:  # before any function is instantiated: Grappler reads the options then
    tf.config.optimizer.set_experimental_options({"layout_optimizer": False})

from common import run_per_task, task_batches, timed  # noqa: E402  (sets the import paths)
from tf_timing import on_host, touch  # noqa: E402
from timing import TASKS  # noqa: E402

from tftrt_yolo.image_batch import ImageBatchBuffer  # noqa: E402


def one(args, task: str) -> dict:
    encoded, numpy_batch, on_gpu, thresholds = task_batches(args.root, task)
    model = tf.saved_model.load(str(args.root / "models" / f"{task}-tensorflow" / "1"))
    images, serving = model.signatures["predict_images"], model.signatures["serving_default"]
    with tf.device("/GPU:0"):
        floats = tf.identity(model.preprocess(encoded))
    image_batch = ImageBatchBuffer()
    row = {"task": task, "layout": args.layout,
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
    run_per_task(one, TASKS, lambda parser: parser.add_argument("--layout", choices=("default", "off"), required=True))
