"""In-graph post-processing: NMS, then boxes, masks, keypoints and rotated boxes in original pixels.

Mirrors Ultralytics' predictors (`construct_result` of detect, segment, pose,
obb and classify) so that results match `model.predict` with default arguments.
Detections come back padded to the largest count in the batch (D); entries at
or past `num_detections[i]` have score 0 and class -1.
"""

from __future__ import annotations

import tensorflow as tf

from tftrt_yolo.graph import nms
from tftrt_yolo.graph.preprocess import letterbox_geometry


def _select(pred, nc, conf, iou, max_det, rotated):
    """NMS over raw head output [N, 4+nc+extra, A] with thresholds [N] -> per-detection tensors [N, D, ...]."""
    pred = tf.transpose(pred, [0, 2, 1])
    xywh, cls, extra = pred[..., :4], pred[..., 4 : 4 + nc], pred[..., 4 + nc :]
    scores = tf.reduce_max(cls, axis=-1)
    classes = tf.argmax(cls, axis=-1, output_type=tf.int32)

    padded = tf.reduce_max(tf.concat([max_det, [1]], 0))  # every image's indices padded to the largest max_det

    def one_image(args):
        xywh_i, extra_i, scores_i, classes_i, conf_i, iou_i, max_det_i = args
        if rotated:
            rboxes = tf.concat([xywh_i, extra_i[:, -1:]], -1)
            selected, count = nms.rotated_nms(rboxes, scores_i, classes_i, conf_i, iou_i, padded)
        else:
            selected, count = nms.greedy_nms(nms.xywh_to_xyxy(xywh_i), scores_i, classes_i, conf_i, iou_i, padded)
        return selected, tf.minimum(count, max_det_i)

    selected, counts = tf.map_fn(
        one_image,
        (xywh, extra, scores, classes, conf, iou, max_det),
        fn_output_signature=(tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)),
    )
    most = tf.reduce_max(tf.concat([counts, [0]], 0))
    selected = selected[:, :most]
    valid = tf.range(most)[None, :] < counts[:, None]
    gather = lambda t: tf.gather(t, selected, batch_dims=1)  # noqa: E731
    return {
        "xywh": gather(xywh),
        "scores": tf.where(valid, gather(scores), 0.0),
        "classes": tf.where(valid, gather(classes), -1),
        "extra": gather(extra),
        "valid": valid,
        "num_detections": counts,
    }


def _scale_to_original(image_sizes, imgsz):
    """Per-image (pad_x, pad_y, gain_x, gain_y) as float32 [N, 1] each, like ultralytics.utils.ops.scale_boxes."""
    new_h, new_w, top, left = letterbox_geometry(image_sizes, imgsz)
    hw = tf.cast(image_sizes, tf.float32)
    as_col = lambda v: tf.cast(v, tf.float32)[:, None]  # noqa: E731
    return as_col(left), as_col(top), as_col(new_w) / hw[:, 1:2], as_col(new_h) / hw[:, 0:1]


def _boxes_in_original(xyxy, image_sizes, imgsz, valid):
    pad_x, pad_y, gain_x, gain_y = _scale_to_original(image_sizes, imgsz)
    hw = tf.cast(image_sizes, tf.float32)
    x1 = tf.clip_by_value((xyxy[..., 0] - pad_x) / gain_x, 0.0, hw[:, 1:2])
    y1 = tf.clip_by_value((xyxy[..., 1] - pad_y) / gain_y, 0.0, hw[:, 0:1])
    x2 = tf.clip_by_value((xyxy[..., 2] - pad_x) / gain_x, 0.0, hw[:, 1:2])
    y2 = tf.clip_by_value((xyxy[..., 3] - pad_y) / gain_y, 0.0, hw[:, 0:1])
    return tf.where(valid[..., None], tf.stack([x1, y1, x2, y2], -1), 0.0)


def detect(pred, image_sizes, *, nc, imgsz, conf, iou, max_det):
    det = _select(pred, nc, conf, iou, max_det, rotated=False)
    boxes = _boxes_in_original(nms.xywh_to_xyxy(det["xywh"]), image_sizes, imgsz, det["valid"])
    return {k: det[k] for k in ("scores", "classes", "num_detections")} | {"boxes": boxes}


def pose(pred, image_sizes, *, nc, kpt_shape, imgsz, conf, iou, max_det):
    det = _select(pred, nc, conf, iou, max_det, rotated=False)
    out = {k: det[k] for k in ("scores", "classes", "num_detections")}
    out["boxes"] = _boxes_in_original(nms.xywh_to_xyxy(det["xywh"]), image_sizes, imgsz, det["valid"])
    kpts = tf.reshape(det["extra"], tf.concat([tf.shape(det["extra"])[:2], list(kpt_shape)], 0))
    pad_x, pad_y, gain_x, gain_y = (v[..., None] for v in _scale_to_original(image_sizes, imgsz))
    hw = tf.cast(image_sizes, tf.float32)[:, None, None, :]
    x = tf.clip_by_value((kpts[..., 0] - pad_x) / gain_x, 0.0, hw[..., 1])
    y = tf.clip_by_value((kpts[..., 1] - pad_y) / gain_y, 0.0, hw[..., 0])
    kpts = tf.concat([tf.stack([x, y], -1), kpts[..., 2:]], -1)
    out["keypoints"] = tf.where(det["valid"][..., None, None], kpts, 0.0)
    return out


def _rbox_corners(rboxes):
    """xywhr [..., 5] -> corners [..., 4, 2] (ultralytics.utils.ops.xywhr2xyxyxyxy)."""
    ctr, w, h, angle = rboxes[..., :2], rboxes[..., 2:3], rboxes[..., 3:4], rboxes[..., 4:5]
    cos, sin = tf.cos(angle), tf.sin(angle)
    vec1 = tf.concat([w / 2 * cos, w / 2 * sin], -1)
    vec2 = tf.concat([-h / 2 * sin, h / 2 * cos], -1)
    return tf.stack([ctr + vec1 + vec2, ctr + vec1 - vec2, ctr - vec1 - vec2, ctr - vec1 + vec2], -2)


def obb(pred, image_sizes, *, nc, imgsz, conf, iou, max_det):
    det = _select(pred, nc, conf, iou, max_det, rotated=True)
    pad_x, pad_y, gain_x, gain_y = _scale_to_original(image_sizes, imgsz)
    xywh = det["xywh"]
    rboxes = tf.stack(
        [
            (xywh[..., 0] - pad_x) / gain_x,
            (xywh[..., 1] - pad_y) / gain_y,
            xywh[..., 2] / gain_x,
            xywh[..., 3] / gain_y,
            det["extra"][..., -1],
        ],
        -1,
    )
    corners = _rbox_corners(rboxes)
    hull = tf.concat([tf.reduce_min(corners, -2), tf.reduce_max(corners, -2)], -1)
    valid = det["valid"][..., None]
    out = {k: det[k] for k in ("scores", "classes", "num_detections")}
    out["rboxes"] = tf.where(valid, rboxes, 0.0)
    out["boxes"] = tf.where(valid, hull, 0.0)
    return out


def _letterbox_masks(coeffs, protos, xyxy, imgsz):
    """Binary masks at letterbox size [N, S, S, D] (ultralytics.utils.ops.process_mask, upsample=True)."""
    d = tf.shape(coeffs)[1]
    coeffs = tf.pad(coeffs, [[0, 0], [0, 1], [0, 0]])  # image resizes need >= 1 channel; dropped below
    xyxy = tf.pad(xyxy, [[0, 0], [0, 1], [0, 0]])
    logits = tf.einsum("ndc,nhwc->nhwd", coeffs, protos)
    up = tf.image.resize(logits, [imgsz, imgsz], method="bilinear")
    pixels = tf.range(imgsz, dtype=tf.float32)
    x1, y1, x2, y2 = (xyxy[..., i][:, None, :] for i in range(4))  # [N, 1, D]
    cols = (pixels[None, :, None] >= x1) & (pixels[None, :, None] < x2)  # [N, S(w), D]
    rows = (pixels[None, :, None] >= y1) & (pixels[None, :, None] < y2)  # [N, S(h), D]
    return ((up > 0.0) & rows[:, :, None, :] & cols[:, None, :, :])[..., :d]


def _masks_in_original(masks_lb, image_sizes, imgsz):
    """Crop the letterbox padding, resize each image's masks to its own size; uint8 [N, D, Hmax, Wmax]."""
    d = tf.shape(masks_lb)[-1]
    masks_lb = tf.pad(masks_lb, [[0, 0], [0, 0], [0, 0], [0, 1]])  # >= 1 channel to resize; dropped below
    new_h, new_w, top, left = letterbox_geometry(image_sizes, imgsz)
    h_max, w_max = tf.reduce_max(image_sizes[:, 0]), tf.reduce_max(image_sizes[:, 1])

    def one_image(args):
        mask, hw, nh, nw, t, l = args
        content = tf.cast(mask[t : t + nh, l : l + nw], tf.float32)
        resized = tf.image.resize(content, hw, method="bilinear") > 0.5
        return tf.pad(tf.cast(resized, tf.uint8), [[0, h_max - hw[0]], [0, w_max - hw[1]], [0, 0]])

    per_image = tf.map_fn(
        one_image,
        (masks_lb, image_sizes, new_h, new_w, top, left),
        fn_output_signature=tf.TensorSpec([None, None, None], tf.uint8),
    )
    return tf.transpose(per_image[..., :d], [0, 3, 1, 2])


def segment(pred, protos, image_sizes, *, nc, imgsz, conf, iou, max_det):
    det = _select(pred, nc, conf, iou, max_det, rotated=False)
    xyxy = nms.xywh_to_xyxy(det["xywh"])
    masks_lb = _letterbox_masks(det["extra"], protos, xyxy, imgsz)
    # Ultralytics drops detections whose mask is empty; move the kept ones to the front
    keep = det["valid"] & tf.reduce_any(masks_lb, axis=[1, 2])
    order = tf.argsort(tf.cast(tf.logical_not(keep), tf.int32), axis=1, stable=True)
    counts = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
    most = tf.reduce_max(tf.concat([counts, [0]], 0))
    order = order[:, :most]
    valid = tf.range(most)[None, :] < counts[:, None]
    gather = lambda t: tf.gather(t, order, batch_dims=1)  # noqa: E731
    masks_lb = tf.transpose(tf.gather(tf.transpose(masks_lb, [0, 3, 1, 2]), order, batch_dims=1), [0, 2, 3, 1])
    return {
        "boxes": _boxes_in_original(gather(xyxy), image_sizes, imgsz, valid),
        "scores": tf.where(valid, gather(det["scores"]), 0.0),
        "classes": tf.where(valid, gather(det["classes"]), -1),
        "num_detections": counts,
        "masks": _masks_in_original(masks_lb & valid[:, None, None, :], image_sizes, imgsz),
    }


def classify(probs, *, top_k: int = 5):
    k = min(top_k, probs.shape[-1])
    top = tf.math.top_k(probs, k=k)
    return {"probs": probs, "top5_classes": top.indices, "top5_scores": top.values}
