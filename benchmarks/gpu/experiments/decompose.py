"""ON THE GPU MACHINE: where a SavedModel's predict_images spends time next to the same graph composed in a
fresh tf.function (input on the GPU or the host, with or without per-device dispatch; traced for the input's
shape, where Grappler folds the size arithmetic, and for any image size as the SavedModel is), the base commit's
decoding against this tree's, and a profiler trace of the SavedModel call (profile-<task>.tar.gz).

    . /tmp/tfenv.sh; $TFPY benchmarks/gpu/experiments/decompose.py --out $OUT/decompose.json
"""
from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import tensorflow as tf

from common import run_per_task, same, task_inputs, timed  # noqa: E402  (sets the import paths)
from tf_timing import on_host, touch  # noqa: E402
import old_preprocess  # noqa: E402

from tftrt_yolo.graph import postprocess, preprocess  # noqa: E402
from tftrt_yolo.tasks import task_spec  # noqa: E402


def no_dispatch(one_by_one, batched):
    return batched()


def one(root: Path, task: str, out: Path) -> dict:
    info, m, encoded, numpy_batch, uint8, th = task_inputs(root, task)
    size, letterboxed = info.imgsz, task_spec(task).letterbox
    row = {"task": task}
    print(task, flush=True)

    if letterboxed:
        dec_old = tf.function(old_preprocess._decode_padded)
        dec_new = tf.function(preprocess._decode_padded)
        a, b = dec_old(encoded), dec_new(encoded)
        row["decode_equal"] = same((tf.cast(a[0], tf.float32), a[1]), b)
        row["decode_new_device"] = b[0].device
        timed(row, "decode_old", lambda: touch(dec_old(encoded)))
        timed(row, "decode_new", lambda: touch(dec_new(encoded)))
        enc_old = tf.function(lambda x: old_preprocess.letterbox_encoded_batch(x, size))
        enc_new = tf.function(lambda x: preprocess.letterbox_encoded_batch(x, size))
        row["enc_equal"] = same(enc_old(encoded), enc_new(encoded))
        timed(row, "enc_pre_old", lambda: touch(enc_old(encoded)))
        timed(row, "enc_pre_new", lambda: touch(enc_new(encoded)))

    def composed(pre, signature=None):
        def e2e(x):
            f, s = pre(x)
            return postprocess.BY_TASK[task](m.run_network(f), s, info, imgsz=size, **th)
        return tf.function(e2e, input_signature=signature)

    batch_pre = lambda x: (preprocess.preprocess_image_batch(x, size, letterboxed), preprocess.image_sizes_of(x))  # noqa: E731
    a = composed(batch_pre)
    c = composed(lambda x: preprocess.preprocess_images(x, size, letterboxed))
    timed(row, "A_composed_gpu_input", lambda: on_host(a(uint8)))
    timed(row, "B_composed_host_input", lambda: on_host(a(numpy_batch)))
    timed(row, "C_composed_per_device_pre", lambda: on_host(c(uint8)))
    any_size = composed(lambda x: preprocess.preprocess_images(x, size, letterboxed),
                        [tf.TensorSpec([None, None, None, 3], tf.uint8)])
    timed(row, "A2_composed_any_size_gpu_input", lambda: on_host(any_size(uint8)))
    saved = (postprocess.per_device, preprocess.per_device)
    postprocess.per_device = preprocess.per_device = no_dispatch
    try:
        f = composed(batch_pre)
        timed(row, "F_composed_no_dispatch", lambda: on_host(f(uint8)))
    finally:
        postprocess.per_device, preprocess.per_device = saved
    sig = m.signatures["predict_images"]
    timed(row, "D_saved_gpu_input", lambda: on_host(sig(images=uint8, **th)))
    timed(row, "E_saved_host_input", lambda: on_host(sig(images=numpy_batch, **th)))
    timed(row, "E2_saved_host_tensor", lambda: on_host(sig(images=tf.constant(numpy_batch), **th)))
    pi = m.predict_images
    timed(row, "H_saved_function_gpu_input", lambda: on_host(pi(uint8, th["conf"], th["iou"], th["max_det"])))
    serving = m.signatures["serving_default"]
    timed(row, "G_saved_serving", lambda: on_host(serving(images=encoded, **th)))

    if task in ("detect", "segment"):  # host-side trace of the SavedModel call (no CUPTI: no kernel times)
        logdir = Path("/tmp/prof") / task
        shutil.rmtree(logdir, ignore_errors=True)
        for _ in range(5):
            on_host(sig(images=numpy_batch, **th))
        tf.profiler.experimental.start(str(logdir))
        for _ in range(5):
            on_host(sig(images=numpy_batch, **th))
        tf.profiler.experimental.stop()
        with tarfile.open(out / f"profile-{task}.tar.gz", "w:gz") as tar:
            tar.add(logdir, arcname=task)
    return row


if __name__ == "__main__":
    run_per_task(lambda args, task: one(args.root, task, args.out.parent), ["detect", "segment", "obb", "classify"])
