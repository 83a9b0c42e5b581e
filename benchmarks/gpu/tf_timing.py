"""What the TensorFlow scripts run on the GPU machine share (tf_rows.py, experiments/): copying outputs to
the host, waiting for outputs that stay on the GPU, and timing one piece into a result row."""
from __future__ import annotations

import time

import tensorflow as tf

from timing import BATCH, stats_dict, time_calls


def on_host(outputs):
    """Every output copied to the host (`.numpy()`), in the same structure."""
    return tf.nest.map_structure(lambda t: t.numpy(), outputs)


def touch(outputs) -> None:
    """Wait for tensors that stay on the GPU: read one value of each."""
    for o in tf.nest.flatten(outputs):
        tf.reshape(o, [-1])[:1].numpy()


def timed(row: dict, name: str, fn, warmup: int, iterations: int) -> None:
    """row[name]: the statistics of `iterations` calls of `fn` after `warmup` (ms/img) and the first call's
    seconds, or why it failed."""
    try:
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
        s = time_calls(fn, warmup=warmup, iterations=iterations, batch=BATCH)
    except Exception as e:  # a stage that does not compile under XLA, say: record why and go on
        row[name] = {"status": f"failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}"}
        print(f"    {name}: {row[name]['status']}", flush=True)
        return
    row[name] = stats_dict(s) | {"first_call_s": first}
    print(f"    {name:24s} mean {s.mean:7.3f} trimmed {s.trimmed_mean:7.3f} ms/img (first call {first:.1f}s)", flush=True)
