"""ON THE GPU MACHINE: the base commit's graph pieces (base/, see README.md) against this tree's, timed and
compared for equality, per task: pre-processing (plain, XLA, tables built on the CPU), decoding,
post-processing, NMS with 1/2/4/8 rounds per loop check, mask resizes, the composed predict_images path.

    . /tmp/tfenv.sh; $TFPY benchmarks/gpu/experiments/graph_ab.py --out $OUT/graph_ab.json
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from common import run_per_task, same, task_inputs, timed  # noqa: E402  (sets the import paths)
from tf_timing import on_host, touch  # noqa: E402
import old_nms  # noqa: E402
import old_postprocess  # noqa: E402
import old_preprocess  # noqa: E402
import cpu_tables_preprocess  # noqa: E402
from timing import BATCH  # noqa: E402

from tftrt_yolo.graph import nms, postprocess, preprocess  # noqa: E402
from tftrt_yolo.tasks import task_spec  # noqa: E402


def rounds_needed(xyxy, scores, classes, conf, iou):
    order, valid = nms._candidates(scores, conf)
    boxes = nms._offset_by_class(xyxy, classes, order, 4)
    sup = ((nms._iou_matrix(boxes) > iou[:, None, None]) & nms._ranks_before(tf.shape(order)[1])).numpy()
    valid = valid.numpy()
    kept, n = valid.copy(), 0
    while True:
        new = valid & ~np.any(kept[:, :, None] & sup, axis=1)
        n += 1
        if np.array_equal(new, kept):
            return n, int(order.shape[1])
        kept = new


def one(root: Path, task: str) -> dict:
    info, m, encoded, _, uint8, th = task_inputs(root, task)
    size, letterboxed = info.imgsz, task_spec(task).letterbox
    row = {"task": task}
    print(task, flush=True)

    pre_old = tf.function(lambda x: old_preprocess.preprocess_image_batch(x, size, letterboxed))
    pre_new = tf.function(lambda x: preprocess.preprocess_image_batch(x, size, letterboxed))
    row["pre_equal"] = same(pre_old(uint8), pre_new(uint8))
    timed(row, "pre_old", lambda: touch(pre_old(uint8)))
    timed(row, "pre_new", lambda: touch(pre_new(uint8)))
    pre_cpu = tf.function(lambda x: cpu_tables_preprocess.preprocess_image_batch(x, size, letterboxed))
    row["pre_cputables_equal"] = same(pre_cpu(uint8), pre_new(uint8))
    timed(row, "pre_cputables", lambda: touch(pre_cpu(uint8)))
    for ver, mod in (("old", old_preprocess), ("new", preprocess), ("cputables", cpu_tables_preprocess)):
        fx = tf.function(lambda x, mod=mod: mod.preprocess_image_batch(x, size, letterboxed), jit_compile=True)
        try:
            row[f"pre_xla_{ver}_equal"] = same(fx(uint8), pre_new(uint8))
        except Exception as e:
            row[f"pre_xla_{ver}_equal"] = f"failed {e}"[:300]
        timed(row, f"pre_xla_{ver}", lambda fx=fx: touch(fx(uint8)))
    if letterboxed:
        enc_old = tf.function(lambda x: old_preprocess.letterbox_encoded_batch(x, size))
        enc_new = tf.function(lambda x: preprocess.letterbox_encoded_batch(x, size))
        enc_cpu = tf.function(lambda x: cpu_tables_preprocess.letterbox_encoded_batch(x, size))
        timed(row, "enc_pre_old", lambda: touch(enc_old(encoded)))
        timed(row, "enc_pre_new", lambda: touch(enc_new(encoded)))
        timed(row, "enc_pre_cputables", lambda: touch(enc_cpu(encoded)))
        with tf.device("/CPU:0"):
            dec_padded = tf.function(preprocess._decode_padded)
            dec_map = tf.function(lambda x: tf.map_fn(lambda e: tf.shape(preprocess.decode(e)), x,
                                                      fn_output_signature=tf.int32, parallel_iterations=16))
            dec_unrolled = tf.function(lambda x: tf.stack([tf.shape(preprocess.decode(x[i])) for i in range(BATCH)]))
            dec_jpeg = tf.function(lambda x: tf.stack([tf.shape(tf.io.decode_jpeg(x[i], channels=3, dct_method="INTEGER_ACCURATE")) for i in range(BATCH)]))
            dec_fast = tf.function(lambda x: tf.stack([tf.shape(tf.io.decode_jpeg(x[i], channels=3)) for i in range(BATCH)]))
        for name, f in (("decode_padded", dec_padded), ("decode_map_fn", dec_map), ("decode_unrolled", dec_unrolled),
                        ("decode_unrolled_jpeg_only", dec_jpeg), ("decode_unrolled_fast_idct", dec_fast)):
            timed(row, name, lambda f=f: touch(f(encoded)))
        timed(row, "decode_eager_sequential", lambda: [tf.io.decode_jpeg(encoded[i], channels=3, dct_method="INTEGER_ACCURATE").numpy() for i in range(BATCH)])
    floats = pre_new(uint8)
    raw = m.run_network(floats)
    hw = uint8.shape[1:3]
    with tf.device("/GPU:0"):
        uniform = tf.identity(tf.constant([hw] * BATCH, tf.int32))
    mixed = preprocess.preprocess_encoded(encoded, size, letterboxed)[1]

    for sizes_name, sizes in (("uniform", uniform), ("mixed", mixed)):
        outs = {}
        for ver, mod in (("old", old_postprocess), ("new", postprocess)):
            post = tf.function(lambda o, s, mod=mod: mod.BY_TASK[task](o, s, info, imgsz=size, **th))
            outs[ver] = on_host(post(raw, sizes))
            timed(row, f"post_{sizes_name}_{ver}", lambda post=post: on_host(post(raw, sizes)))
        row[f"post_{sizes_name}_equal"] = same(outs["old"], outs["new"])
        if "num_detections" in outs["new"]:
            row[f"num_detections_{sizes_name}"] = outs["new"]["num_detections"].tolist()
    print("   equal:", {k: v for k, v in row.items() if k.endswith("equal")}, flush=True)

    if task != "classify":
        nc, rotated = len(info.names), task == "obb"
        sel_old = tf.function(lambda p: old_postprocess._select(p, nc, th["conf"], th["iou"], th["max_det"], rotated))
        timed(row, "nms_old", lambda: on_host(sel_old(raw[0])))
        for r in (1, 2, 4, 8):
            nms._ROUNDS_PER_CHECK = r
            sel = tf.function(lambda p: postprocess._select(p, nc, th["conf"], th["iou"], th["max_det"], rotated))
            timed(row, f"nms_new_r{r}", lambda sel=sel: on_host(sel(raw[0])))
        nms._ROUNDS_PER_CHECK = 4
        if not rotated:
            pred = tf.transpose(raw[0], [0, 2, 1])
            xyxy = nms.xywh_to_xyxy(pred[..., :4])
            cls = pred[..., 4 : 4 + nc]
            scores, classes = tf.reduce_max(cls, -1), tf.argmax(cls, -1, output_type=tf.int32)
            row["rounds"], row["candidates_k"] = rounds_needed(xyxy, scores, classes, th["conf"], th["iou"])
            cand_old = tf.function(lambda s: old_nms._candidates(s, th["conf"]))
            cand_new = tf.function(lambda s: nms._candidates(s, th["conf"]))
            row["candidates_equal"] = same(cand_old(scores), cand_new(scores))
            timed(row, "candidates_old", lambda: touch(cand_old(scores)))
            timed(row, "candidates_new", lambda: touch(cand_new(scores)))
            print("   rounds", row["rounds"], "k", row["candidates_k"], flush=True)

    if task == "segment":
        det = tf.function(lambda p: postprocess._select(p, nc, th["conf"], th["iou"], th["max_det"], False))(raw[0])
        xyxy = nms.xywh_to_xyxy(det["xywh"])
        lbm = tf.function(lambda c, p, b: postprocess._letterbox_masks(c, p, b, size))
        timed(row, "masks_letterbox", lambda: touch(lbm(det["extra"], raw[1], xyxy)))
        masks_lb = lbm(det["extra"], raw[1], xyxy)
        row["masks_lb_shape"] = masks_lb.shape.as_list()
        for sizes_name, sizes in (("uniform", uniform), ("mixed", mixed)):
            for ver, mod in (("old", old_postprocess), ("new", postprocess)):
                f = tf.function(lambda m_, s, mod=mod: mod._masks_in_original(m_, s, size))
                timed(row, f"masks_original_{sizes_name}_{ver}", lambda f=f: touch(f(masks_lb, sizes)))
            g = preprocess.letterbox_geometry(sizes, size)
            fb = tf.function(postprocess._resize_masks_batched)
            timed(row, f"masks_batched_{sizes_name}", lambda: touch(fb(masks_lb, sizes, *g)))
        out = tf.function(lambda m_, s: postprocess._masks_in_original(m_, s, size))(masks_lb, uniform)
        row["masks_shape"] = out.shape.as_list()
        timed(row, "masks_to_host", lambda: out.numpy())
        with tf.device("/GPU:0"):
            big = tf.identity(out)
        timed(row, "masks_d2h_identity_cpu", lambda: _d2h(big))

    # composed predict_images path, outputs on host
    for ver, pre_mod, post_mod in (("old", old_preprocess, old_postprocess), ("new", preprocess, postprocess),
                                   ("cputables", cpu_tables_preprocess, postprocess)):
        def e2e(x, pre_mod=pre_mod, post_mod=post_mod):
            f, s = pre_mod.preprocess_images(x, size, letterboxed)
            return post_mod.BY_TASK[task](m.run_network(f), s, info, imgsz=size, **th)
        f = tf.function(e2e)
        timed(row, f"e2e_images_{ver}", lambda f=f: on_host(f(uint8)))
    return row


def _d2h(t):
    with tf.device("/CPU:0"):
        c = tf.identity(t)
    return c.numpy()


if __name__ == "__main__":
    run_per_task(lambda args, task: one(args.root, task), ["detect", "segment", "pose", "obb", "classify"])
