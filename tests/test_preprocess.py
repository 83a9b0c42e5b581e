"""The in-graph pre-processing reproduces Ultralytics' pixel for pixel.

Detect/segment/pose/obb letterbox with OpenCV (JPEG decoding, INTER_LINEAR in
fixed point, 2x2 averaging for an exact 2x downscale); classify resizes with
Pillow through torchvision. Any one-level difference moves low-confidence
detections, so these compare exact uint8 values on real photos and on random
sizes that reach every code path (down/up-scaling, odd sizes, the 2x case,
Pillow's vertical-first pass order).
"""

import cv2
import numpy as np
import pytest
import tensorflow as tf
from conftest import REAL_PHOTOS
from PIL import Image
from ultralytics.data.augment import LetterBox, classify_transforms

from tftrt_yolo.graph.preprocess import decode, letterbox, resize_and_crop

letterbox_graph = tf.function(letterbox, reduce_retracing=True)
resize_and_crop_graph = tf.function(resize_and_crop, reduce_retracing=True)


def random_images(seed, n, sizes):
    rng = np.random.default_rng(seed)
    for h, w in sizes:
        yield rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(8, 1400, 2))
        yield rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def as_uint8(floats: tf.Tensor) -> np.ndarray:
    return np.round(floats.numpy() * 255.0).astype(np.uint8)


@pytest.mark.parametrize("path", REAL_PHOTOS, ids=lambda p: p.name)
def test_jpeg_decoding_matches_opencv(path):
    ours = decode(tf.constant(path.read_bytes())).numpy()
    np.testing.assert_array_equal(ours, cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))


@pytest.mark.parametrize("size", [320, 640])
def test_letterbox_matches_ultralytics(size):
    photos = [cv2.imread(str(p)) for p in REAL_PHOTOS]
    # exact 2x (1280x720 -> 640x360), upscaling, square, thin
    special = [(2 * size, 2 * size * 9 // 16), (size // 4, size // 3), (size, size), (5, 900)]
    for bgr in photos + list(random_images(size, 25, special)):
        expected = LetterBox(size, auto=False)(image=bgr)[..., ::-1]
        ours = as_uint8(letterbox_graph(tf.constant(bgr[..., ::-1], tf.float32), size))
        np.testing.assert_array_equal(ours, expected, err_msg=f"image of shape {bgr.shape}")


@pytest.mark.parametrize("size", [224, 640])
def test_classify_resize_and_crop_matches_ultralytics(size):
    transform = classify_transforms(size)
    photos = [cv2.imread(str(p)) for p in REAL_PHOTOS]
    # tall images whose height shrinks by over twice the width (Pillow's vertical-first order), upscaling
    special = [(1186, 261), (730, 360), (size // 2, size // 3), (size, size)]
    for bgr in photos + list(random_images(size + 1, 20, special)):
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        expected = np.round(transform(Image.fromarray(rgb)).numpy().transpose(1, 2, 0) * 255.0).astype(np.uint8)
        ours = as_uint8(resize_and_crop_graph(tf.constant(rgb, tf.float32), size))
        np.testing.assert_array_equal(ours, expected, err_msg=f"image of shape {bgr.shape}")
