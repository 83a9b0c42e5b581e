"""Per-image non-maximum suppression with Ultralytics' semantics.

Ultralytics keeps, per candidate, only its best class (`multi_label=False`),
drops scores <= conf, and runs class-aware NMS by offsetting boxes by
class * 7680. Axis-aligned boxes use greedy NMS (NonMaxSuppressionV5, which has
CPU and GPU kernels); rotated boxes use Fast-NMS over the probabilistic IoU,
exactly as `TorchNMS.fast_nms(iou_func=batch_probiou)` does.
"""

from __future__ import annotations

import tensorflow as tf

CLASS_OFFSET = 7680.0  # Ultralytics' max_wh


def xywh_to_xyxy(xywh: tf.Tensor) -> tf.Tensor:
    xy, wh = xywh[..., :2], xywh[..., 2:4]
    return tf.concat([xy - wh / 2.0, xy + wh / 2.0], axis=-1)


def greedy_nms(boxes_xyxy, scores, classes, conf, iou, max_det):
    """Indices [max_det] (padded with 0) and the count kept, for one image."""
    offset = tf.cast(classes, tf.float32)[:, None] * CLASS_OFFSET
    selected, count = tf.raw_ops.NonMaxSuppressionV5(
        boxes=boxes_xyxy + offset,
        scores=scores,
        max_output_size=max_det,
        iou_threshold=iou,
        score_threshold=conf,
        soft_nms_sigma=0.0,
        pad_to_max_output_size=True,
    )[::2]
    return selected, count


def _covariance(rboxes):
    w2 = tf.square(rboxes[:, 2]) / 12.0
    h2 = tf.square(rboxes[:, 3]) / 12.0
    cos, sin = tf.cos(rboxes[:, 4]), tf.sin(rboxes[:, 4])
    return w2 * cos**2 + h2 * sin**2, w2 * sin**2 + h2 * cos**2, (w2 - h2) * cos * sin


def probiou_matrix(rboxes, eps: float = 1e-7):
    """Pairwise probabilistic IoU of xywhr boxes [n, 5] -> [n, n] (Ultralytics' batch_probiou)."""
    a, b, c = _covariance(rboxes)
    x, y = rboxes[:, 0], rboxes[:, 1]
    a1, b1, c1, x1, y1 = (v[:, None] for v in (a, b, c, x, y))
    a2, b2, c2, x2, y2 = (v[None, :] for v in (a, b, c, x, y))
    denom = (a1 + a2) * (b1 + b2) - tf.square(c1 + c2)
    t1 = ((a1 + a2) * tf.square(y1 - y2) + (b1 + b2) * tf.square(x1 - x2)) / (denom + eps) * 0.25
    t2 = ((c1 + c2) * (x2 - x1) * (y1 - y2)) / (denom + eps) * 0.5
    det1 = tf.maximum(a1 * b1 - tf.square(c1), 0.0)
    det2 = tf.maximum(a2 * b2 - tf.square(c2), 0.0)
    t3 = tf.math.log(denom / (4.0 * tf.sqrt(det1 * det2) + eps) + eps) * 0.5
    bd = tf.clip_by_value(t1 + t2 + t3, eps, 100.0)
    hd = tf.sqrt(1.0 - tf.exp(-bd) + eps)
    return 1.0 - hd


def rotated_nms(rboxes, scores, classes, conf, iou, max_det):
    """Fast-NMS over probabilistic IoU for one image; same return as `greedy_nms`."""
    candidates = tf.where(scores > conf)[:, 0]
    order = tf.gather(candidates, tf.argsort(tf.gather(scores, candidates), direction="DESCENDING", stable=True))
    boxes = tf.gather(rboxes, order)
    offset = tf.cast(tf.gather(classes, order), tf.float32)[:, None] * CLASS_OFFSET
    boxes = tf.concat([boxes[:, :2] + offset, boxes[:, 2:]], axis=-1)
    pairwise = probiou_matrix(boxes)
    ious = tf.linalg.band_part(pairwise, 0, -1) - tf.linalg.band_part(pairwise, 0, 0)  # i < j only
    suppressed = tf.reduce_any(ious > iou, axis=0)
    kept = tf.boolean_mask(order, tf.logical_not(suppressed))[:max_det]
    count = tf.shape(kept)[0]
    selected = tf.pad(tf.cast(kept, tf.int32), [[0, max_det - count]])
    return selected, count
