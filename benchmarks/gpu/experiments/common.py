"""What the experiment scripts share: the import paths, the call counts, the models' inputs, the command line;
the timing helpers come from ../tf_timing.py."""
import argparse
import json
import os
import sys
import traceback
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


def task_batches(root: Path, task: str):
    """(encoded files, uint8 numpy batch, the same on the GPU, thresholds): what the scripts feed a task's model."""
    from timing import CONF, IOU, MAX_DET, image_files, same_size_batch

    files = image_files(root, task)
    numpy_batch = same_size_batch(files)
    with tf.device("/GPU:0"):
        on_gpu = tf.identity(tf.constant(numpy_batch))
    thresholds = dict(conf=tf.constant([CONF] * BATCH), iou=tf.constant([IOU] * BATCH),
                      max_det=tf.constant([MAX_DET] * BATCH))
    encoded = tf.constant([f.read_bytes() for f in files])
    return encoded, numpy_batch, on_gpu, thresholds


def task_inputs(root: Path, task: str):
    """(model info, loaded tensorflow-backend SavedModel, *task_batches): what graph_ab.py and decompose.py feed
    one task's pieces."""
    from tftrt_yolo.metadata import read_metadata

    d = root / "models" / f"{task}-tensorflow" / "1"
    return (read_metadata(d).info, tf.saved_model.load(str(d)), *task_batches(root, task))


def run_per_task(one, tasks, add_arguments=lambda parser: None) -> None:
    """The scripts' command line: --root, --tasks, --out and what `add_arguments` adds; the rows of
    `one(args, task)` written to --out after every task, a task that failed recorded with its traceback."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=Path("/tmp/gpu"))
    parser.add_argument("--tasks", nargs="+", default=list(tasks))
    parser.add_argument("--out", type=Path, required=True)
    add_arguments(parser)
    args = parser.parse_args()
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    rows = []
    for task in args.tasks:
        try:
            rows.append(one(args, task))
        except Exception:
            traceback.print_exc()
            rows.append({"task": task, "status": traceback.format_exc()[-2000:]})
        args.out.write_text(json.dumps(rows, indent=1, default=str))
