"""ON THE GPU MACHINE: what moving a call's data between the host and the GPU costs in TensorFlow, for the
sizes the demo batches have (batch 8): detect's uint8 input [8, 747, 536, 3] to the GPU, from numpy and
from a host tensor; segment's masks [8, 10, 691, 760] to the host: by `.numpy()` of the GPU tensor, copied
inside a function (an Identity on the CPU: TensorFlow's executor receives a GPU tensor into pinned memory),
and bit-packed on the GPU (8 pixels a byte) then unpacked on the host, to see whether packing would pay.

    . /tmp/tfenv.sh; $TFPY benchmarks/gpu/experiments/transfer_probe.py --out $OUT/transfer.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from common import timed  # noqa: E402  (sets the import paths)
from tf_timing import touch  # noqa: E402

_BITS = tf.constant([128, 64, 32, 16, 8, 4, 2, 1], tf.uint8)


@tf.function
def pack(masks):  # uint8 0/1 [..., W] (W a multiple of 8) -> [..., W / 8], on the GPU
    shape = tf.concat([tf.shape(masks)[:-1], [-1, 8]], 0)
    return tf.cast(tf.reduce_sum(tf.cast(tf.reshape(masks, shape), tf.int32) * tf.cast(_BITS, tf.int32), -1), tf.uint8)


@tf.function
def unpack(packed):  # on the host
    with tf.device("/CPU:0"):
        bits = tf.cast(tf.bitwise.bitwise_and(packed[..., None], _BITS) > 0, tf.uint8)
        return tf.reshape(bits, tf.concat([tf.shape(packed)[:-1], [-1]], 0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    row = {}
    images = rng.integers(0, 256, (8, 747, 536, 3), np.uint8)
    host_tensor = tf.constant(images)
    to_gpu = tf.function(lambda x: tf.identity(x))

    @tf.function
    def to_host(x):
        with tf.device("/CPU:0"):
            return tf.identity(x)

    with tf.device("/GPU:0"):
        timed(row, "h2d_from_numpy", lambda: touch(to_gpu(images)))
        timed(row, "h2d_from_host_tensor", lambda: touch(to_gpu(host_tensor)))
        masks = tf.identity(tf.constant(rng.integers(0, 2, (8, 10, 691, 760), np.uint8)))
        timed(row, "d2h_masks", lambda: masks.numpy())
        timed(row, "d2h_masks_in_function", lambda: to_host(masks).numpy())
        packed = pack(masks)
        assert np.array_equal(unpack(packed).numpy(), masks.numpy())
        timed(row, "d2h_packed_then_unpacked", lambda: unpack(pack(masks)).numpy())
        timed(row, "d2h_packed_only", lambda: pack(masks).numpy())
    for k, v in row.items():
        print(f"{k:28s} {v.get('mean', v)} ms/img", flush=True)
    Path(a.out).write_text(json.dumps(row, indent=1, default=str))


if __name__ == "__main__":
    main()
