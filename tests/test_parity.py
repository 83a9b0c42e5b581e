"""Parity with Ultralytics PyTorch predict on the trained demo models, for all five tasks.

Two levels, as the issue asks: (1) the same letterboxed input tensor (images
pre-letterboxed to imgsz, so both sides see identical pixels): same detections
(IoU >= 0.99, same class, |conf diff| <= 1e-3), masks IoU >= 0.95, keypoints
within 1 px, oriented boxes within 1 px / 0.01 rad, classify top-5 identical;
(2) end to end from the image file through the in-graph pre-processing:
IoU >= 0.98, |conf diff| <= 0.01, unmatched detections only within 0.01 of
the confidence threshold.
"""

import cv2
import numpy as np
import pytest
from conftest import REAL_PHOTOS
from helpers import mask_iou, match, ultralytics_arrays

from tftrt_yolo._ultralytics import YOLO
from tftrt_yolo.demo import demo_model
from tftrt_yolo.tasks import TASKS

CONF = 0.25


def synthetic_photo(seed: int) -> np.ndarray:
    """A non-square BGR image unlike the training data: gradients, noise, blobs."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(300, 900)), int(rng.integers(300, 900))
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 255 / w), (yy * 255 / h), np.full((h, w), 128.0)], -1)
    img += rng.normal(0, 20, img.shape)
    for _ in range(6):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        cv2.circle(img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(10, 120)), c, -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def letterboxed(bgr: np.ndarray, size: int) -> np.ndarray:
    from ultralytics.data.augment import LetterBox

    return LetterBox(size, auto=False)(image=bgr) if size else bgr


def parity_images(task, demo_images, tmp_path):
    paths = list(REAL_PHOTOS) + demo_images(task, 3)
    for seed in range(2):
        path = tmp_path / f"synthetic{seed}.png"
        cv2.imwrite(str(path), synthetic_photo(seed))
        paths.append(path)
    return paths


def pre_letterboxed(paths, size, letterbox, tmp_path):
    out = []
    for path in paths:
        bgr = cv2.imread(str(path))
        if letterbox:
            bgr = letterboxed(bgr, size)
        else:  # classify: a square image, so resize + centre-crop are the identity on both sides
            bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)
        target = tmp_path / f"lb_{path.stem}.png"
        cv2.imwrite(str(target), bgr)
        out.append(target)
    return out


def compare(ours, ref, *, min_iou, conf_tol, task, strict):
    if task == "classify":
        if strict:
            np.testing.assert_array_equal(ours.top5, ref["top5"])
            np.testing.assert_allclose(ours.top5_scores, ref["top5_scores"], atol=1e-3)
        else:
            assert ours.top5[0] == ref["top5"][0]
            np.testing.assert_allclose(ours.top5_scores[0], ref["top5_scores"][0], atol=conf_tol)
        return
    pairs = match(ours.boxes, ours.classes, ref["boxes"], ref["classes"], min_iou)
    matched_ours = {i for i, _ in pairs}
    matched_ref = {j for _, j in pairs}
    for i, j in pairs:
        assert abs(ours.scores[i] - ref["scores"][j]) <= conf_tol, (ours.path, i, j)
        if task == "pose":
            np.testing.assert_allclose(ours.keypoints[i][:, :2], ref["keypoints"][j][:, :2], atol=1.0)
            np.testing.assert_allclose(ours.keypoints[i][:, 2], ref["keypoints"][j][:, 2], atol=conf_tol)
        if task == "obb" and strict:
            np.testing.assert_allclose(ours.rboxes[i][:4], ref["rboxes"][j][:4], atol=1.0)
            np.testing.assert_allclose(ours.rboxes[i][4], ref["rboxes"][j][4], atol=0.01)
        if task == "segment" and strict:
            assert mask_iou(ours.masks[i], ref["masks"][j]) >= 0.95, (ours.path, i)
    margin = 1e-3 if strict else 0.01
    for i in set(range(len(ours))) - matched_ours:
        assert ours.scores[i] < CONF + margin, f"{ours.path}: unmatched detection {i} conf {ours.scores[i]}"
    for j in set(range(len(ref["scores"]))) - matched_ref:
        assert ref["scores"][j] < CONF + margin, f"{ours.path}: Ultralytics detection {j} not found"
    if strict:
        assert len(pairs) == len(ours) == len(ref["scores"])


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_same_letterboxed_input_matches_pytorch(task, loaded, demo_images, tmp_path):
    model = loaded(task)
    reference = YOLO(str(demo_model(task)))
    paths = pre_letterboxed(parity_images(task, demo_images, tmp_path), model.imgsz, task != "classify", tmp_path)
    ours = model.predict([str(p) for p in paths], conf=CONF, verbose=False)
    found = 0
    for path, result in zip(paths, ours):
        ref = reference.predict(str(path), conf=CONF, imgsz=model.imgsz, verbose=False)[0]
        compare(result, ultralytics_arrays(ref), min_iou=0.99, conf_tol=1e-3, task=task, strict=True)
        found += len(result) if task != "classify" else 1
    assert found > 0, "the demo model found nothing on its own val images"


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_end_to_end_from_files_matches_pytorch(task, loaded, demo_images, tmp_path):
    model = loaded(task)
    reference = YOLO(str(demo_model(task)))
    paths = parity_images(task, demo_images, tmp_path)
    ours = model.predict([str(p) for p in paths], conf=CONF, verbose=False)
    for path, result in zip(paths, ours):
        # rect=False: PyTorch predict otherwise pads to the smallest stride multiple (640x480 for bus.jpg),
        # where every fixed-shape export (ONNX, TensorRT, this SavedModel) takes the full square
        ref = reference.predict(str(path), conf=CONF, imgsz=model.imgsz, rect=False, verbose=False)[0]
        assert result.orig_shape == ref.orig_shape
        compare(result, ultralytics_arrays(ref), min_iou=0.98, conf_tol=0.01, task=task, strict=False)
