"""In-graph post-processing: NMS, then boxes, masks, keypoints and rotated boxes in original pixels.

Mirrors Ultralytics' predictors (`construct_result` of detect, segment, pose,
obb and classify) so that results match `model.predict` with default arguments.
Detections come back padded to the largest count in the batch (D); entries at
or past `num_detections[i]` have score 0 and class -1.
"""

from __future__ import annotations

import tensorflow as tf

from tftrt_yolo.graph import nms
from tftrt_yolo.graph.preprocess import letterbox_geometry, on_host, per_device
from tftrt_yolo.graph.reductions import largest

# Detections whose masks a CPU computes at the same time (`_masks_box_by_box`).
_PARALLEL_DETECTIONS = 16


def _select(pred, nc, conf, iou, max_det, rotated, compiled=False):
    """NMS over raw head output [N, 4+nc+extra, A] with thresholds [N] -> per-detection tensors [N, D, ...].
    `compiled`: on a GPU, greedy NMS compiled by XLA (`nms.compiled_greedy_nms`), for the XLA backend."""
    pred = tf.transpose(pred, [0, 2, 1])
    xywh, cls, extra = pred[..., :4], pred[..., 4 : 4 + nc], pred[..., 4 + nc :]
    scores = tf.reduce_max(cls, axis=-1)
    classes = tf.argmax(cls, axis=-1, output_type=tf.int32)

    if rotated:
        rboxes = tf.concat([xywh, extra[..., -1:]], -1)
        selected, counts = nms.batched_rotated_nms(rboxes, scores, classes, conf, iou, max_det)
    else:
        args = (nms.xywh_to_xyxy(xywh), scores, classes, conf, iou, max_det)

        def one_by_one():  # NonMaxSuppressionV5's greedy loop per image, every image padded to the largest max_det
            padded = largest(max_det, 1)

            def one_image(args):
                selected, count = nms.greedy_nms(*args[:5], padded)
                return selected, tf.minimum(count, args[5])

            signature = (tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32))
            # map_fn cannot stack zero results of unknown length: an empty batch gets its empty results here
            return tf.cond(
                tf.size(max_det) > 0,
                lambda: tf.map_fn(one_image, args, fn_output_signature=signature),
                lambda: (tf.zeros([0, padded], tf.int32), tf.zeros([0], tf.int32)),
            )

        batched = nms.compiled_greedy_nms if compiled else nms.batched_greedy_nms
        selected, counts = per_device(one_by_one, lambda: batched(*args))
    most = largest(counts, 0)
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
    """Per-image (pad_x, pad_y, gain_x, gain_y, h, w) as float32 [N, 1] each, like
    ultralytics.utils.ops.scale_boxes (h and w: the clip limits)."""
    with on_host():
        new_h, new_w, top, left = letterbox_geometry(image_sizes, imgsz)
        hw = tf.cast(image_sizes, tf.float32)
        h, w = hw[:, 0:1], hw[:, 1:2]
        as_col = lambda v: tf.cast(v, tf.float32)[:, None]  # noqa: E731
        return as_col(left), as_col(top), as_col(new_w) / w, as_col(new_h) / h, h, w


def _boxes_in_original(xyxy, image_sizes, imgsz, valid):
    pad_x, pad_y, gain_x, gain_y, h, w = _scale_to_original(image_sizes, imgsz)
    x1 = tf.clip_by_value((xyxy[..., 0] - pad_x) / gain_x, 0.0, w)
    y1 = tf.clip_by_value((xyxy[..., 1] - pad_y) / gain_y, 0.0, h)
    x2 = tf.clip_by_value((xyxy[..., 2] - pad_x) / gain_x, 0.0, w)
    y2 = tf.clip_by_value((xyxy[..., 3] - pad_y) / gain_y, 0.0, h)
    return tf.where(valid[..., None], tf.stack([x1, y1, x2, y2], -1), 0.0)


def detect(pred, image_sizes, *, nc, imgsz, conf, iou, max_det, compiled=False):
    det = _select(pred, nc, conf, iou, max_det, rotated=False, compiled=compiled)
    boxes = _boxes_in_original(nms.xywh_to_xyxy(det["xywh"]), image_sizes, imgsz, det["valid"])
    return {k: det[k] for k in ("scores", "classes", "num_detections")} | {"boxes": boxes}


def pose(pred, image_sizes, *, nc, kpt_shape, imgsz, conf, iou, max_det, compiled=False):
    det = _select(pred, nc, conf, iou, max_det, rotated=False, compiled=compiled)
    out = {k: det[k] for k in ("scores", "classes", "num_detections")}
    out["boxes"] = _boxes_in_original(nms.xywh_to_xyxy(det["xywh"]), image_sizes, imgsz, det["valid"])
    kpts = tf.reshape(det["extra"], tf.concat([tf.shape(det["extra"])[:2], list(kpt_shape)], 0))
    pad_x, pad_y, gain_x, gain_y, h, w = (v[..., None] for v in _scale_to_original(image_sizes, imgsz))
    x = tf.clip_by_value((kpts[..., 0] - pad_x) / gain_x, 0.0, w)
    y = tf.clip_by_value((kpts[..., 1] - pad_y) / gain_y, 0.0, h)
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
    pad_x, pad_y, gain_x, gain_y, _, _ = _scale_to_original(image_sizes, imgsz)
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


def _mask_logits(coeffs, protos):
    """[N, D, h, w]: each detection's mask logits at the prototypes' size (coefficients x prototypes)."""
    return tf.einsum("ndc,nhwc->ndhw", coeffs, protos)


def _letterbox_masks(coeffs, protos, xyxy, imgsz):
    """Binary masks at letterbox size [N, D, S, S] (ultralytics.utils.ops.process_mask, upsample=True).

    Detections stay a batch dimension (masks resized as [N * D, h, w, 1] images): no transposes of
    mask-sized tensors.
    """
    n, d = tf.shape(coeffs)[0], tf.shape(coeffs)[1]
    size = tf.shape(protos)[1:3]
    logits = tf.reshape(_mask_logits(coeffs, protos), tf.concat([[n * d], size, [1]], 0))
    up = tf.reshape(tf.image.resize(logits, [imgsz, imgsz], method="bilinear"), [n, d, imgsz, imgsz])
    pixels = tf.range(imgsz, dtype=tf.float32)
    x1, y1, x2, y2 = (xyxy[..., i][..., None] for i in range(4))  # [N, D, 1]
    cols = (pixels >= x1) & (pixels < x2)  # [N, D, S(w)]
    rows = (pixels >= y1) & (pixels < y2)  # [N, D, S(h)]
    return (up > 0.0) & rows[..., None] & cols[..., None, :]


def _resize_masks(masks, hw, new_h, new_w, top, left):
    """One image's letterbox masks bool [..., S, S] -> uint8 [..., h, w]: the content cropped and resized
    bilinearly, > 0.5, with `tf.image.resize` (the reference the batched resize matches)."""
    content = tf.cast(masks[..., top : top + new_h, left : left + new_w, None], tf.float32)
    flat = tf.reshape(content, tf.concat([[-1], tf.shape(content)[-3:]], 0))  # the resize wants [B, h, w, 1]
    resized = tf.image.resize(flat, hw, method="bilinear")[..., 0] > 0.5
    return tf.reshape(tf.cast(resized, tf.uint8), tf.concat([tf.shape(masks)[:-2], hw], 0))


def _masks_in_original(masks_lb, image_sizes, imgsz):
    """What a GPU runs: crop the letterbox padding and resize each image's masks to its own size (bilinear,
    > 0.5, as `tf.image.resize` does), all masks at once; bool [N, D, S, S] -> uint8 [N, D, Hmax, Wmax].
    One resize when the images share a size (every `predict_images` call), else per-image taps
    (`_resize_masks_batched`)."""
    with on_host():
        new_h, new_w, top, left = letterbox_geometry(image_sizes, imgsz)
        one_size = (tf.shape(image_sizes)[0] > 0) & tf.reduce_all(image_sizes == image_sizes[:1])
    return tf.cond(
        one_size,
        lambda: _resize_masks(masks_lb, image_sizes[0], new_h[0], new_w[0], top[0], left[0]),
        lambda: _resize_masks_batched(masks_lb, image_sizes, new_h, new_w, top, left),
    )


def _bilinear_taps(out_len, in_len, offset, out_max):
    """Per image, `tf.image.resize`'s bilinear taps (half-pixel centres) from `in_len` to `out_len` source
    positions starting at `offset`: (lower, upper) int32 [N, out_max] and the fraction float32 [N, out_max].
    The float32 arithmetic is TensorFlow's ResizeBilinear kernel's, so the thresholded masks are the same."""
    scale = (tf.cast(in_len, tf.float32) / tf.cast(out_len, tf.float32))[:, None]
    position = (tf.range(tf.cast(out_max, tf.float32)) + 0.5)[None, :] * scale - 0.5
    floor = tf.floor(position)
    last = in_len[:, None] - 1  # positions past `out_len` (padding, masked later) read the last row/column
    lower = tf.clip_by_value(tf.cast(floor, tf.int32), 0, last)
    upper = tf.minimum(tf.cast(tf.math.ceil(position), tf.int32), last)
    return lower + offset[:, None], upper + offset[:, None], position - floor


def _lerp(a, b, t):
    """ResizeBilinear's interpolation, in its operation order."""
    return a + (b - a) * t


def _bilinear_in_box(pixels, row0, row1, y_frac, col0, col1, x_frac):
    """`pixels` [H, W] float32 resampled at the taps of some output rows ([R], nondecreasing) and columns
    ([C]) -> [R, C], with ResizeBilinear's arithmetic: source rows interpolated along x (each once), then
    pairs of them interpolated along y."""
    first = tf.reduce_min(tf.concat([row0, tf.shape(pixels)[:1]], 0))
    end = largest(row1 + 1, first)
    source = pixels[first:end]
    along_x = _lerp(tf.gather(source, col0, axis=1), tf.gather(source, col1, axis=1), x_frac)
    return _lerp(tf.gather(along_x, row0 - first), tf.gather(along_x, row1 - first), y_frac[:, None])


def _masks_box_by_box(coeffs, protos, xyxy, valid, image_sizes, imgsz):
    """What a CPU runs: each detection's mask computed only inside its box, with the arithmetic of
    `_letterbox_masks` then `_masks_in_original` (bit for bit): `process_mask` zeroes everything outside
    the box, so the letterbox mask is upsampled there only, and resized back to the image only where its
    taps read the box. A box covering a tenth of the image costs about a tenth of a whole mask.

    -> (mask not empty, bool [N, D]; `masks_of(order)`: the masks of the detections at `order` ([N, K], as
    `nms.kept_first` returns), uint8 [N, K, Hmax, Wmax]). Padding detections (not `valid`) have no mask.
    """
    n, d = tf.shape(coeffs)[0], tf.shape(coeffs)[1]
    which = tf.cast(tf.where(valid), tf.int32)  # [V, 2]: (image, detection)
    image, boxes = which[:, 0], tf.gather_nd(xyxy, which)
    # upsampling to the letterbox: taps shared by all detections (`_bilinear_taps` of a batch of one)
    upsampled = lambda length: [  # noqa: E731
        t[0] for t in _bilinear_taps(tf.fill([1], imgsz), length[None], tf.zeros([1], tf.int32), imgsz)]
    up_rows, up_cols = upsampled(tf.shape(protos)[1]), upsampled(tf.shape(protos)[2])
    # each box's letterbox pixels [start, end): those that `_letterbox_masks`' comparisons keep. The start
    # counts the pixels not at or past the edge, so that a NaN edge (no pixel compares true) leaves none.
    pixels = tf.range(imgsz, dtype=tf.float32)
    start_at = lambda edge: imgsz - tf.reduce_sum(tf.cast(pixels[None, :] >= edge[:, None], tf.int32), 1)  # noqa: E731
    end_before = lambda edge: tf.reduce_sum(tf.cast(pixels[None, :] < edge[:, None], tf.int32), 1)  # noqa: E731
    box_r0, box_c0 = start_at(boxes[:, 1]), start_at(boxes[:, 0])
    box_r1, box_c1 = tf.maximum(end_before(boxes[:, 3]), box_r0), tf.maximum(end_before(boxes[:, 2]), box_c0)
    # back to the image: each detection's taps, relative to its box (outside it: its zero border), and the
    # outputs [start, end) whose taps read the box (the taps grow with the output position)
    new_h, new_w, top, left = letterbox_geometry(image_sizes, imgsz)
    h, w = image_sizes[:, 0], image_sizes[:, 1]
    h_max, w_max = largest(h, 0), largest(w, 0)

    def back(length, new_length, offset, length_max, start, end):
        """(taps relative to the box [start, end), the first and the end output position that read it)."""
        lower, upper, frac = (tf.gather(t, image) for t in _bilinear_taps(length, new_length, offset, length_max))
        inside = tf.range(length_max)[None, :] < tf.gather(length, image)[:, None]
        count = lambda below: tf.reduce_sum(tf.cast(below & inside, tf.int32), 1)  # noqa: E731
        out_first, out_end = count(upper < start[:, None]), count(lower < end[:, None])  # first <= end: upper >= lower
        out_end = tf.where(end > start, out_end, out_first)  # an empty box is read by no output
        local = lambda taps: tf.clip_by_value(taps - start[:, None] + 1, 0, (end - start + 1)[:, None])  # noqa: E731
        return (local(lower), local(upper), frac), out_first, out_end

    rows_back, out_r0, out_r1 = back(h, new_h, top, h_max, box_r0, box_r1)
    cols_back, out_c0, out_c1 = back(w, new_w, left, w_max, box_c0, box_c1)
    spans = tf.stack([box_r0, box_r1, box_c0, box_c1, out_r0, out_r1, out_c0, out_c1], 1)

    def one_detection(args):
        logit, span, row_taps, col_taps = args
        box_r0, box_r1, box_c0, box_c1, out_r0, out_r1, out_c0, out_c1 = tf.unstack(span)
        inside = _bilinear_in_box(
            logit, *(t[box_r0:box_r1] for t in up_rows), *(t[box_c0:box_c1] for t in up_cols)) > 0.0
        border = tf.pad(tf.cast(inside, tf.float32), [[1, 1], [1, 1]])
        resized = _bilinear_in_box(
            border, *(t[out_r0:out_r1] for t in row_taps), *(t[out_c0:out_c1] for t in col_taps)) > 0.5
        placed = tf.pad(tf.cast(resized, tf.uint8), [[out_r0, h_max - out_r1], [out_c0, w_max - out_c1]])
        return tf.reduce_any(inside), placed

    # one more detection, with an empty box: the zero mask that dropped and padding detections get
    with_empty = lambda t: tf.concat([t, tf.zeros(tf.concat([[1], tf.shape(t)[1:]], 0), t.dtype)], 0)  # noqa: E731
    elements = (with_empty(tf.gather_nd(_mask_logits(coeffs, protos), which)), with_empty(spans),
                tuple(map(with_empty, rows_back)), tuple(map(with_empty, cols_back)))
    signature = (tf.TensorSpec([], tf.bool), tf.TensorSpec([None, None], tf.uint8))
    nonempty, masks = tf.map_fn(one_detection, elements, fn_output_signature=signature,
                                parallel_iterations=_PARALLEL_DETECTIONS)
    slots = tf.shape(which)[0]
    nonempty = tf.cast(tf.scatter_nd(which, tf.cast(nonempty[:slots], tf.int32), [n, d]), tf.bool)
    position = tf.tensor_scatter_nd_update(tf.fill([n, d], slots), which, tf.range(slots))
    return nonempty, lambda order: tf.gather(masks, tf.gather(position, order, batch_dims=1))


def _resize_masks_batched(masks_lb, image_sizes, new_h, new_w, top, left):
    """`_masks_in_original` for the batch without a loop: four gathers per pixel through per-image taps."""
    with on_host():
        h, w = image_sizes[:, 0], image_sizes[:, 1]
        h_max, w_max = largest(h, 0), largest(w, 0)
        row0, row1, y_frac = _bilinear_taps(h, new_h, top, h_max)
        col0, col1, x_frac = _bilinear_taps(w, new_w, left, w_max)
        x_frac, y_frac = x_frac[:, None, None, :], y_frac[:, None, :, None]
        rows_inside = tf.range(h_max)[None, :] < h[:, None]
        cols_inside = tf.range(w_max)[None, :] < w[:, None]
    columns = lambda rows, cols: tf.cast(tf.gather(rows, cols, axis=3, batch_dims=1), tf.float32)  # noqa: E731

    def interpolated_row(row):  # [N, D, Hmax, Wmax]: one source row per output row, interpolated along x
        rows = tf.gather(masks_lb, row, axis=2, batch_dims=1)
        return _lerp(columns(rows, col0), columns(rows, col1), x_frac)

    resized = _lerp(interpolated_row(row0), interpolated_row(row1), y_frac) > 0.5
    return tf.cast(resized & rows_inside[:, None, :, None] & cols_inside[:, None, None, :], tf.uint8)


def segment(pred, protos, image_sizes, *, nc, imgsz, conf, iou, max_det, compiled=False):
    det = _select(pred, nc, conf, iou, max_det, rotated=False, compiled=compiled)
    xyxy = nms.xywh_to_xyxy(det["xywh"])

    def kept(nonempty, masks_of):
        """The results, detections whose mask is empty dropped (as Ultralytics does), the kept ones first;
        `masks_of(order, valid)`: their masks in the image."""
        order, counts = nms.kept_first(det["valid"] & nonempty)
        most = largest(counts, 0)
        order = order[:, :most]
        valid = tf.range(most)[None, :] < counts[:, None]
        gather = lambda t: tf.gather(t, order, batch_dims=1)  # noqa: E731
        return {
            "boxes": _boxes_in_original(gather(xyxy), image_sizes, imgsz, valid),
            "scores": tf.where(valid, gather(det["scores"]), 0.0),
            "classes": tf.where(valid, gather(det["classes"]), -1),
            "num_detections": counts,
            "masks": masks_of(order, valid[:, :, None, None]),
        }

    def box_by_box():
        nonempty, masks_of = _masks_box_by_box(det["extra"], protos, xyxy, det["valid"], image_sizes, imgsz)
        # no `valid` needed: past each image's count, `order` holds padding detections (the empty mask) and
        # detections whose mask is empty
        return kept(nonempty, lambda order, _: masks_of(order))

    def whole_masks():
        masks_lb = _letterbox_masks(det["extra"], protos, xyxy, imgsz)
        return kept(tf.reduce_any(masks_lb, axis=[2, 3]), lambda order, valid: _masks_in_original(
            tf.gather(masks_lb, order, batch_dims=1) & valid, image_sizes, imgsz))

    return per_device(box_by_box, whole_masks)


def classify(probs, *, top_k: int = 5):
    k = min(top_k, probs.shape[-1])
    top = tf.math.top_k(probs, k=k)
    return {"probs": probs, "top5_classes": top.indices, "top5_scores": top.values}


# task -> post-processing of the raw head outputs (a list: one tensor, or segment's two)
BY_TASK = {
    "detect": lambda outputs, image_sizes, info, **kw: detect(outputs[0], image_sizes, nc=len(info.names), **kw),
    "segment": lambda outputs, image_sizes, info, **kw: segment(
        outputs[0], outputs[1], image_sizes, nc=len(info.names), **kw
    ),
    "pose": lambda outputs, image_sizes, info, **kw: pose(
        outputs[0], image_sizes, nc=len(info.names), kpt_shape=info.kpt_shape, **kw
    ),
    # rotated NMS is never compiled (see nms.batched_rotated_nms)
    "obb": lambda outputs, image_sizes, info, compiled=False, **kw: obb(
        outputs[0], image_sizes, nc=len(info.names), **kw
    ),
    "classify": lambda outputs, image_sizes, info, **_: classify(outputs[0]),
}
