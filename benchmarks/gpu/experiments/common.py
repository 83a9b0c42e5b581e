"""What graph_ab.py and decompose.py share: the import paths, the call counts and the timing of one piece."""
import os
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).parent / "base"))  # the base commit's graph modules (README.md)
sys.path.insert(0, str(Path(__file__).parents[1]))  # benchmarks/gpu: timing
from timing import BATCH, time_calls  # noqa: E402

WARMUP, CALLS = (int(v) for v in os.environ.get("EXP_CALLS", "10,50").split(","))


def host(x):
    """Every output copied to the host."""
    return tf.nest.map_structure(lambda t: t.numpy(), x)


def touch(x):
    """Wait for outputs that stay on the GPU: read one value of each."""
    for o in tf.nest.flatten(x):
        tf.reshape(o, [-1])[:1].numpy()


def timed(row: dict, name: str, fn) -> None:
    """row[name]: mean and trimmed ms/img over CALLS calls after WARMUP (or why it failed), and the first call."""
    try:
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
        s = time_calls(fn, warmup=WARMUP, iterations=CALLS, batch=BATCH)
        row[name] = {"mean": s.mean, "trimmed": s.trimmed_mean, "first_s": first}
        print(f"    {name:40s} {s.mean:7.3f} trimmed {s.trimmed_mean:7.3f} ms/img", flush=True)
    except Exception as e:  # a piece that does not compile, say: record why and go on
        row[name] = {"status": f"failed: {type(e).__name__}: {str(e)[:300]}"}
        print(f"    {name}: failed {type(e).__name__}: {str(e)[:300]}", flush=True)


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
