"""Non-maximum suppression with Ultralytics' semantics, per image or for a whole batch.

Ultralytics keeps, per candidate, only its best class (`multi_label=False`),
drops scores <= conf, and runs class-aware NMS by offsetting boxes by
class * 7680. Axis-aligned boxes use greedy NMS: per image with
NonMaxSuppressionV5 (`greedy_nms`), or for the batch at once with the same IoU
arithmetic and the same kept sets (`batched_greedy_nms`). Rotated boxes use
Fast-NMS over the probabilistic IoU, exactly as
`TorchNMS.fast_nms(iou_func=batch_probiou)` does, for the batch at once.
In the XLA backend, greedy NMS on a GPU runs compiled by XLA over each image's
best candidates (`compiled_greedy_nms`), falling back to the dynamic version
where that is not exact.
"""

from __future__ import annotations

import tensorflow as tf

from tftrt_yolo.graph.reductions import largest

CLASS_OFFSET = 7680.0  # Ultralytics' max_wh
_ROUNDS_PER_CHECK = 4  # suppression rounds per loop iteration of `_greedy_kept`


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
    w2 = tf.square(rboxes[..., 2]) / 12.0
    h2 = tf.square(rboxes[..., 3]) / 12.0
    cos, sin = tf.cos(rboxes[..., 4]), tf.sin(rboxes[..., 4])
    return w2 * cos**2 + h2 * sin**2, w2 * sin**2 + h2 * cos**2, (w2 - h2) * cos * sin


def probiou_matrix(rboxes, eps: float = 1e-7):
    """Pairwise probabilistic IoU of xywhr boxes [..., n, 5] -> [..., n, n] (Ultralytics' batch_probiou)."""
    a, b, c = _covariance(rboxes)
    x, y = rboxes[..., 0], rboxes[..., 1]
    a1, b1, c1, x1, y1 = (v[..., :, None] for v in (a, b, c, x, y))
    a2, b2, c2, x2, y2 = (v[..., None, :] for v in (a, b, c, x, y))
    denom = (a1 + a2) * (b1 + b2) - tf.square(c1 + c2)
    t1 = ((a1 + a2) * tf.square(y1 - y2) + (b1 + b2) * tf.square(x1 - x2)) / (denom + eps) * 0.25
    t2 = ((c1 + c2) * (x2 - x1) * (y1 - y2)) / (denom + eps) * 0.5
    det1 = tf.maximum(a1 * b1 - tf.square(c1), 0.0)
    det2 = tf.maximum(a2 * b2 - tf.square(c2), 0.0)
    t3 = tf.math.log(denom / (4.0 * tf.sqrt(det1 * det2) + eps) + eps) * 0.5
    bd = tf.clip_by_value(t1 + t2 + t3, eps, 100.0)
    hd = tf.sqrt(1.0 - tf.exp(-bd) + eps)
    return 1.0 - hd


def _count(flags, axis=None):
    """How many are true, as int32. Counted in float32 (exact below 2**24): on a GPU, int32 arithmetic runs
    on the host, which would copy the flags there."""
    return tf.cast(tf.reduce_sum(tf.cast(flags, tf.float32), axis=axis), tf.int32)


def _ranks_before(k):
    """[j, i]: rank j comes before rank i, for k ranks (float ranges: no int32 matrix on the host)."""
    ranks = tf.range(tf.cast(k, tf.float32))
    return ranks[:, None] < ranks[None, :]


def _candidates(scores, conf):
    """Per image, the candidates (score > conf) by descending score, ties by index as the NMS kernels order
    them: (anchor indices [N, K], valid [N, K]); K is the most candidates of any image, the rest is padding."""
    is_candidate = scores > conf[:, None]
    k = largest(_count(is_candidate, axis=1), 0)
    ranked = tf.where(is_candidate, scores, -float("inf"))
    # all anchors sorted: on an H200 this was faster than TopK of the k candidates (0.23 vs 0.25 ms/img)
    order = tf.argsort(ranked, axis=1, direction="DESCENDING", stable=True)[:, :k]
    return order, tf.gather(is_candidate, order, batch_dims=1)


def kept_first(kept):
    """(positions [N, K]: the kept ones first, each group in order; how many are kept [N]). The flags are
    sorted as floats: a GPU sorts int32 on the host."""
    positions = tf.argsort(tf.cast(tf.logical_not(kept), tf.float32), axis=1, stable=True)
    return positions, _count(kept, axis=1)


def _first_kept(order, kept, max_det):
    """(indices [N, K]: the kept anchors first, in order; count [N], at most max_det): `greedy_nms`'s return."""
    positions, count = kept_first(kept)
    return tf.gather(order, positions, batch_dims=1), tf.minimum(count, max_det)


def _offset_by_class(boxes, classes, order, coordinates: int):
    """The candidates' boxes [N, K, B], their first `coordinates` values shifted by class * 7680 (class-aware
    NMS in one pass): 4 for corners, 2 (the centre) for rotated boxes."""
    offset = tf.cast(tf.gather(classes, order, batch_dims=1), tf.float32)[..., None] * CLASS_OFFSET
    boxes = tf.gather(boxes, order, batch_dims=1)
    return tf.concat([boxes[..., :coordinates] + offset, boxes[..., coordinates:]], axis=-1)


def _iou_matrix(boxes):
    """IoU [N, K, K] of corner boxes [N, K, 4] with NonMaxSuppressionV5's arithmetic (corners ordered,
    0 for empty boxes), so that thresholding it keeps exactly what that kernel keeps."""
    lo = tf.minimum(boxes[..., :2], boxes[..., 2:])
    hi = tf.maximum(boxes[..., :2], boxes[..., 2:])
    area = (hi[..., 1] - lo[..., 1]) * (hi[..., 0] - lo[..., 0])
    side = tf.maximum(
        tf.minimum(hi[..., :, None, :], hi[..., None, :, :]) - tf.maximum(lo[..., :, None, :], lo[..., None, :, :]), 0.0
    )
    inter = side[..., 1] * side[..., 0]
    iou = inter / (area[..., :, None] + area[..., None, :] - inter)
    return tf.where((area[..., :, None] <= 0.0) | (area[..., None, :] <= 0.0), 0.0, iou)


def _greedy_kept(boxes, valid, iou):
    """Greedy NMS over ranked candidates [N, K, 4] (class-offset corners; `valid` [N, K]): kept flags [N, K].

    Greedy NMS keeps a box when no kept, higher-ranked box overlaps it by more than `iou`. That rule,
    applied to every box at once and repeated until nothing changes, settles on exactly the greedy kept
    set (the first k boxes are final after k rounds; in practice a few rounds suffice). Each loop
    iteration applies it `_ROUNDS_PER_CHECK` times: on a GPU, every check of the loop condition waits for
    the device, while a round costs three small kernels.
    """
    suppresses = (_iou_matrix(boxes) > iou[:, None, None]) & _ranks_before(tf.shape(boxes)[1])

    def rule(kept):
        return valid & tf.logical_not(tf.reduce_any(kept[:, :, None] & suppresses, axis=1))

    def rounds(kept):  # (after all rounds but the last, after the last): equal once the rule has settled
        for _ in range(_ROUNDS_PER_CHECK - 1):
            kept = rule(kept)
        return kept, rule(kept)

    _, kept = tf.while_loop(
        lambda previous, kept: tf.reduce_any(previous != kept), lambda _, kept: rounds(kept), rounds(valid)
    )
    return kept


def batched_greedy_nms(boxes_xyxy, scores, classes, conf, iou, max_det):
    """`greedy_nms` for a batch ([N, A, ...] and [N] thresholds) without a loop over images or boxes."""
    order, valid = _candidates(scores, conf)
    return _first_kept(order, _greedy_kept(_offset_by_class(boxes_xyxy, classes, order, 4), valid, iou), max_det)


def batched_rotated_nms(rboxes, scores, classes, conf, iou, max_det):
    """Fast-NMS over probabilistic IoU for a batch (xywhr [N, A, 5]); same return as `batched_greedy_nms`.

    A box is dropped when any higher-ranked candidate, kept or not, overlaps it by more than `iou`. Not
    compiled by XLA, unlike greedy NMS: XLA's log and exp move the probabilistic IoU (by up to 0.05 for
    degenerate boxes, on a CPU), so it would keep other boxes.
    """
    order, valid = _candidates(scores, conf)
    boxes = _offset_by_class(rboxes, classes, order, 2)
    earlier = _ranks_before(tf.shape(order)[1])
    overlapping = (probiou_matrix(boxes) > iou[:, None, None]) & earlier & valid[:, :, None]
    return _first_kept(order, valid & tf.logical_not(tf.reduce_any(overlapping, axis=1)), max_det)


# Candidates `capped_greedy_nms` ranks per image. Its suppression matrix is [N, cap, cap] (8 MB of flags at
# batch 8).
CANDIDATE_CAP = 1024


@tf.function(jit_compile=True, autograph=False)
def capped_greedy_nms(boxes_xyxy, scores, classes, conf, iou, max_det, cap: int):
    """`batched_greedy_nms` over each image's `cap` best candidates only, with static shapes, so that XLA
    compiles it into a few kernels (on a GPU, the dynamic version is bound by the host launching its ~125
    small ones). Returns (indices [N, cap], count [N], exact []).

    A box's fate depends only on the boxes ranked above it, so the kept flags of the first `cap`
    candidates are those of all candidates; the result is exact unless some image has more than `cap`
    candidates and fewer than max_det of its first `cap` kept. `exact` says so for the batch: callers fall
    back to the dynamic version when it is false (`cap` must be at most the number of anchors).
    """
    is_candidate = scores > conf[:, None]
    # TopK ranks as `_candidates`' stable sort does: by descending score, ties by index
    order = tf.math.top_k(tf.where(is_candidate, scores, -float("inf")), k=cap).indices
    valid = tf.gather(is_candidate, order, batch_dims=1)
    positions, kept = kept_first(_greedy_kept(_offset_by_class(boxes_xyxy, classes, order, 4), valid, iou))
    exact = tf.reduce_all((_count(is_candidate, axis=1) <= cap) | (kept >= max_det))
    return tf.gather(order, positions, batch_dims=1), tf.minimum(kept, max_det), exact


def compiled_greedy_nms(boxes_xyxy, scores, classes, conf, iou, max_det, cap: int = CANDIDATE_CAP):
    """What the XLA backend runs on a GPU: `capped_greedy_nms`, and `batched_greedy_nms` where that is not
    exact. Same return as `batched_greedy_nms`."""
    args = (boxes_xyxy, scores, classes, conf, iou, max_det)
    selected, counts, exact = capped_greedy_nms(*args, min(cap, boxes_xyxy.shape[1]))
    return tf.cond(exact, lambda: (selected, counts), lambda: batched_greedy_nms(*args))
