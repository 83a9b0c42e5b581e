"""What graph_ab.py and decompose.py share: the import paths, the call counts, the models' inputs; the
timing helpers come from ../tf_timing.py."""
import os
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).parent / "base"))  # the base commit's graph modules (README.md)
sys.path.insert(0, str(Path(__file__).parents[1]))  # benchmarks/gpu: timing
import tf_timing  # noqa: E402
from timing import BATCH  # noqa: E402

WARMUP, CALLS = (int(v) for v in os.environ.get("EXP_CALLS", "10,50").split(","))


def timed(row: dict, name: str, fn) -> None:
    """`tf_timing.timed` with the call counts of EXP_CALLS."""
    tf_timing.timed(row, name, fn, WARMUP, CALLS)


def same(a, b) -> bool:
    """Bit-identical outputs."""
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(tf.nest.flatten(a), tf.nest.flatten(b)))


def task_inputs(root: Path, task: str):
    """(model info, loaded tensorflow-backend SavedModel, encoded files, uint8 numpy batch, the same on the GPU,
    thresholds): what both scripts feed one task's pieces."""
    from timing import CONF, IOU, MAX_DET, image_files, same_size_batch

    from tftrt_yolo.metadata import read_metadata

    d = root / "models" / f"{task}-tensorflow" / "1"
    files = image_files(root, task)
    numpy_batch = same_size_batch(files)
    with tf.device("/GPU:0"):
        on_gpu = tf.identity(tf.constant(numpy_batch))
    thresholds = dict(conf=tf.constant([CONF] * BATCH), iou=tf.constant([IOU] * BATCH),
                      max_det=tf.constant([MAX_DET] * BATCH))
    encoded = tf.constant([f.read_bytes() for f in files])
    return read_metadata(d).info, tf.saved_model.load(str(d)), encoded, numpy_batch, on_gpu, thresholds
