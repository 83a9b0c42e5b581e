"""Comparison helpers shared by the tests: matching detections of two models."""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes [n, 4] x [m, 4]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def match(ours_boxes, ours_classes, ref_boxes, ref_classes, min_iou):
    """Greedy one-to-one matches [(i_ours, j_ref)] of same-class boxes with IoU >= min_iou."""
    if not len(ours_boxes) or not len(ref_boxes):
        return []
    iou = box_iou(np.asarray(ours_boxes, float), np.asarray(ref_boxes, float))
    iou[np.asarray(ours_classes)[:, None] != np.asarray(ref_classes)[None, :]] = 0
    pairs = []
    while iou.size and iou.max() >= min_iou:
        i, j = np.unravel_index(iou.argmax(), iou.shape)
        pairs.append((int(i), int(j)))
        iou[i, :], iou[:, j] = 0, 0
    return pairs


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def ultralytics_arrays(result) -> dict:
    """An Ultralytics Results object as plain arrays in the shape tftrt_yolo's Result uses."""
    out = {}
    if result.probs is not None:
        out["top5"] = np.array(result.probs.top5)
        out["top5_scores"] = result.probs.top5conf.numpy()
        return out
    det = result.obb if result.obb is not None else result.boxes
    out["boxes"], out["scores"], out["classes"] = det.xyxy.numpy(), det.conf.numpy(), det.cls.numpy().astype(int)
    if result.obb is not None:
        out["rboxes"] = result.obb.xywhr.numpy()
    if result.keypoints is not None:
        out["keypoints"] = result.keypoints.data.numpy()
    if result.masks is not None:
        out["masks"] = result.masks.data.numpy()
    return out
