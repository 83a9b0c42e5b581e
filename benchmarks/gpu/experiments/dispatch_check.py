"""ON THE GPU MACHINE: which branch of a DeviceIndex cond (preprocess.per_device) a loaded SavedModel takes,
with DeviceIndex left unplaced or asking for the first GPU; then detect and segment converted both ways
(/tmp/gpu/models and /tmp/gpu/fix/models) end to end. Writes the JSON named by its argument."""
import json
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.python.ops import gen_functional_ops

sys.path.insert(0, str(Path(__file__).parents[1]))
from timing import BATCH, CONF, IOU, MAX_DET, image_files, same_size_batch, time_calls  # noqa: E402

out = {}
W, IT = (int(v) for v in __import__("os").environ.get("EXP_CALLS", "20,100").split(","))


def dispatch(pinned):
    def choose(one, other):
        if pinned:
            with tf.device("/device:GPU:0"):
                index = gen_functional_ops.device_index(device_names=["CPU"])
        else:
            index = gen_functional_ops.device_index(device_names=["CPU"])
        return tf.cond(tf.equal(index, 0), one, other)
    return choose


for pinned in (False, True):
    choose = dispatch(pinned)

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def f(self, x):
            return choose(lambda: x + 1.0, lambda: x + 2.0)  # 1: CPU branch, 2: other

    m = M()
    path = f"/tmp/dispatch-{pinned}"
    tf.saved_model.save(m, path)
    loaded = tf.saved_model.load(path)
    with tf.device("/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"):
        on_gpu = tf.identity(tf.constant([0.0]))
    host = tf.constant([0.0])
    row = {
        "traced_host": float(m.f(host)[0]), "traced_gpu": float(m.f(on_gpu)[0]),
        "loaded_host": float(loaded.f(host)[0]), "loaded_gpu": float(loaded.f(on_gpu)[0]),
        "signature_host": float(loaded.signatures["serving_default"](x=host)["output_0"][0]),
    }
    out[f"pinned={pinned}"] = row
    print("pinned", pinned, row, "(1 = CPU branch, 2 = batched)", flush=True)

th = dict(conf=tf.constant([CONF] * BATCH), iou=tf.constant([IOU] * BATCH), max_det=tf.constant([MAX_DET] * BATCH))
for label, root in (("b3b2ceb (unpinned)", Path("/tmp/gpu")), ("fix (pinned)", Path("/tmp/gpu/fix"))):
    for task in ("detect", "segment"):
        m = tf.saved_model.load(str(root / "models" / f"{task}-tensorflow" / "1"))
        files = image_files(Path("/tmp/gpu"), task)
        encoded = tf.constant([f.read_bytes() for f in files])
        batch = same_size_batch(files)
        row = {}
        for name, fn in (
            ("predict_images", lambda: {k: v.numpy() for k, v in m.signatures["predict_images"](images=batch, **th).items()}),
            ("serving_default", lambda: {k: v.numpy() for k, v in m.signatures["serving_default"](images=encoded, **th).items()}),
        ):
            t0 = time.perf_counter()
            result = fn()
            first = time.perf_counter() - t0
            s = time_calls(fn, warmup=W, iterations=IT, batch=BATCH)
            row[name] = {"mean": s.mean, "trimmed": s.trimmed_mean, "first_s": first,
                         "num_detections": result["num_detections"].tolist(),
                         "sums": {k: float(np.asarray(v, np.float64).sum()) for k, v in result.items()}}
            print(f"  {label:20s} {task:8s} {name:16s} {s.mean:7.3f} ms/img (trimmed {s.trimmed_mean:.3f})", flush=True)
        out[f"{label} {task}"] = row
Path(sys.argv[1]).write_text(json.dumps(out, indent=1))
