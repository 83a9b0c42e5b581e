"""In-graph image pre-processing, matching Ultralytics predict.

Detection tasks letterbox (ratio-preserving resize, 114 gray padding, centred)
exactly like `ultralytics.data.augment.LetterBox`; classify resizes the short
side and centre-crops like `classify_transforms`. Geometry is computed in
float64 with round-half-to-even, as Python's `round` does in Ultralytics.
"""

from __future__ import annotations

import tensorflow as tf

PAD_VALUE = 114.0


def decode(encoded: tf.Tensor) -> tf.Tensor:
    """JPEG/PNG/BMP/GIF bytes -> uint8 [H, W, 3] RGB (first frame of an animation)."""
    return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def letterbox_geometry(hw: tf.Tensor, size: int):
    """(new_h, new_w, top, left) of images of shape `hw` ([..., 2]) letterboxed to `size`, as int32."""
    hw = tf.cast(hw, tf.float64)
    gain = tf.minimum(size / hw[..., 0], size / hw[..., 1])
    new_h = tf.maximum(tf.round(hw[..., 0] * gain), 1.0)
    new_w = tf.maximum(tf.round(hw[..., 1] * gain), 1.0)
    top = tf.round((size - new_h) / 2.0 - 0.1)
    left = tf.round((size - new_w) / 2.0 - 0.1)
    return tuple(tf.cast(v, tf.int32) for v in (new_h, new_w, top, left))


def _resize_like_cv2(image: tf.Tensor, new_h, new_w) -> tf.Tensor:
    """Bilinear resize with uint8 rounding, as cv2.INTER_LINEAR gives (float32 out, 0..255)."""
    resized = tf.image.resize(image, tf.stack([new_h, new_w]), method="bilinear")
    return tf.clip_by_value(tf.round(resized), 0.0, 255.0)


def letterbox(image: tf.Tensor, size: int) -> tf.Tensor:
    """float32 [H, W, 3] with uint8 values -> float32 [size, size, 3] in [0, 1]."""
    new_h, new_w, top, left = letterbox_geometry(tf.shape(image)[:2], size)
    resized = _resize_like_cv2(image, new_h, new_w)
    padded = tf.pad(
        resized - PAD_VALUE, [[top, size - new_h - top], [left, size - new_w - left], [0, 0]]
    ) + PAD_VALUE
    return tf.ensure_shape(padded / 255.0, [size, size, 3])


def resize_and_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    """Classify: short side to `size` (antialiased bilinear, as PIL), centre crop; float32 [0, 1]."""
    hw = tf.cast(tf.shape(image)[:2], tf.float64)
    short = tf.minimum(hw[0], hw[1])
    # torchvision.transforms.Resize(int) truncates the long side
    new_hw = tf.cast(tf.where(hw == short, tf.constant(size, tf.float64), tf.floor(size * hw / short)), tf.int32)
    resized = tf.image.resize(image, new_hw, method="bilinear", antialias=True)
    resized = tf.clip_by_value(tf.round(resized), 0.0, 255.0)
    top = tf.cast(tf.round(tf.cast(new_hw[0] - size, tf.float64) / 2.0), tf.int32)
    left = tf.cast(tf.round(tf.cast(new_hw[1] - size, tf.float64) / 2.0), tf.int32)
    cropped = resized[top : top + size, left : left + size]
    return tf.ensure_shape(cropped / 255.0, [size, size, 3])


def preprocess_one(image: tf.Tensor, size: int, letterboxed: bool) -> tf.Tensor:
    return letterbox(image, size) if letterboxed else resize_and_crop(image, size)
