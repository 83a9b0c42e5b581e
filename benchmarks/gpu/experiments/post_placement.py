"""ON THE GPU MACHINE: would post-processing run faster on the host? The same pre-processing, network and
post-processing composed in a fresh tf.function traced for any image size (as a SavedModel is), once with
everything where TensorFlow places it (the GPU branch of `per_device`: batched NMS and masks on the GPU) and once
with the post-processing under tf.device("/CPU:0") (its CPU branch: NonMaxSuppressionV5 per image, after one
copy of the raw heads to the host). Same outputs? Which is faster? Alternating blocks, ms/img, outputs on the host.

    . /tmp/tfenv.sh; $TFPY benchmarks/gpu/experiments/post_placement.py --out $OUT/post-placement.json
"""
from __future__ import annotations

import tensorflow as tf

from common import run_per_task, same, task_inputs, timed  # noqa: E402  (sets the import paths)
from tf_timing import on_host  # noqa: E402

from tftrt_yolo.graph import postprocess, preprocess  # noqa: E402
from tftrt_yolo.tasks import task_spec  # noqa: E402


def one(root, task: str, blocks: int) -> dict:
    info, m, _, _, uint8, th = task_inputs(root, task)
    size, letterboxed = info.imgsz, task_spec(task).letterbox

    def composed(post_device):
        def e2e(images):
            floats, sizes = preprocess.preprocess_images(images, size, letterboxed)
            raw = m.run_network(floats)
            with tf.device(post_device):
                return postprocess.BY_TASK[task](raw, sizes, info, imgsz=size, **th)
        return tf.function(e2e, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])

    variants = {"post_on_device": composed(None), "post_on_host": composed("/CPU:0")}
    row = {"task": task, "equal": same(variants["post_on_device"](uint8), variants["post_on_host"](uint8))}
    print(task, "equal", row["equal"], flush=True)
    for block in range(blocks):
        for name, fn in variants.items():
            timed(row, f"{name}/{block}", lambda fn=fn: on_host(fn(uint8)))
    for name in variants:
        row[name] = sum(row[f"{name}/{b}"]["mean"] for b in range(blocks)) / blocks
        print(f"  {name:16s} {row[name]:.3f} ms/img", flush=True)
    return row


if __name__ == "__main__":
    run_per_task(lambda args, task: one(args.root, task, args.blocks), ["detect", "pose", "obb", "segment"],
                 lambda parser: parser.add_argument("--blocks", type=int, default=2))
