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
    """JPEG/PNG/BMP/GIF bytes -> uint8 [H, W, 3] RGB (first frame of an animation).

    JPEGs use the accurate integer IDCT, as OpenCV's `imread` does (TensorFlow's
    default fast IDCT is up to 4 levels off on real photos).
    """
    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(encoded, channels=3, expand_animations=False),
    )


def letterbox_geometry(hw: tf.Tensor, size: int):
    """(new_h, new_w, top, left) of images of shape `hw` ([..., 2]) letterboxed to `size`, as int32."""
    hw = tf.cast(hw, tf.float64)
    gain = tf.minimum(size / hw[..., 0], size / hw[..., 1])
    new_h = tf.maximum(tf.round(hw[..., 0] * gain), 1.0)
    new_w = tf.maximum(tf.round(hw[..., 1] * gain), 1.0)
    top = tf.round((size - new_h) / 2.0 - 0.1)
    left = tf.round((size - new_w) / 2.0 - 0.1)
    return tuple(tf.cast(v, tf.int32) for v in (new_h, new_w, top, left))


_CV2_COEF_SCALE = 2048.0  # OpenCV's INTER_RESIZE_COEF_SCALE: 11-bit fixed-point interpolation weights


def _cv2_linear_taps(src, dst, clamp_weights: bool):
    """Source indices and fixed-point weights of cv2.INTER_LINEAR along one axis.

    OpenCV computes the position in float32 and rounds each weight to 11 bits;
    it zeroes the fraction at the left/right borders but not at the top/bottom
    (there it only clamps the row index), hence `clamp_weights`.
    """
    scale = 1.0 / (tf.cast(dst, tf.float64) / tf.cast(src, tf.float64))
    pos = tf.cast((tf.range(dst, dtype=tf.float64) + 0.5) * scale - 0.5, tf.float32)
    first = tf.floor(pos)
    frac = pos - first
    first = tf.cast(first, tf.int32)
    if clamp_weights:
        frac = tf.where((first < 0) | (first >= src - 1), 0.0, frac)
    w0 = tf.cast(tf.round((1.0 - frac) * _CV2_COEF_SCALE), tf.int32)
    w1 = tf.cast(tf.round(frac * _CV2_COEF_SCALE), tf.int32)
    return tf.clip_by_value(first, 0, src - 1), tf.clip_by_value(first + 1, 0, src - 1), w0, w1


def _resize_like_cv2(image: tf.Tensor, new_h, new_w) -> tf.Tensor:
    """cv2.resize(INTER_LINEAR) of a uint8-valued image, bit for bit (float32 out, 0..255).

    OpenCV interpolates uint8 images in 11-bit fixed point (columns, then rows
    with its SIMD rounding) and switches to 2x2 averaging for an exact 2x
    downscale; a float bilinear resize is one level off on about a tenth of the values
    (benchmarks/results/cpu/preprocess.md).
    """
    pixels = tf.cast(image, tf.int32)
    h, w = tf.shape(pixels)[0], tf.shape(pixels)[1]

    def linear():
        x0, x1, a0, a1 = _cv2_linear_taps(w, new_w, clamp_weights=True)
        y0, y1, b0, b1 = _cv2_linear_taps(h, new_h, clamp_weights=False)

        def columns(rows):  # horizontal pass, scaled by 2048, then >> 4 as OpenCV's SIMD vertical pass does
            hor = tf.gather(rows, x0, axis=1) * a0[None, :, None] + tf.gather(rows, x1, axis=1) * a1[None, :, None]
            return tf.bitwise.right_shift(hor, 4)

        def every_row_once():  # cheaper unless the image shrinks to less than half its height
            hor = columns(pixels)
            return tf.gather(hor, y0), tf.gather(hor, y1)

        def rows_read():
            return columns(tf.gather(pixels, y0)), columns(tf.gather(pixels, y1))

        top, bottom = tf.cond(h <= 2 * new_h, every_row_once, rows_read)
        weighted = lambda rows, weight: tf.bitwise.right_shift(rows * weight[:, None, None], 16)  # noqa: E731
        return tf.bitwise.right_shift(weighted(top, b0) + weighted(bottom, b1) + 2, 2)

    def halve():  # (sum of each 2x2 block + 2) >> 2
        blocks = tf.reshape(pixels[: 2 * new_h, : 2 * new_w], [new_h, 2, new_w, 2, 3])
        return tf.bitwise.right_shift(tf.reduce_sum(blocks, axis=[1, 3]) + 2, 2)

    return tf.cast(tf.cond((h == 2 * new_h) & (w == 2 * new_w), halve, linear), tf.float32)  # within 0..255


def letterbox(image: tf.Tensor, size: int) -> tf.Tensor:
    """float32 [H, W, 3] with uint8 values -> float32 [size, size, 3] in [0, 1]."""
    new_h, new_w, top, left = letterbox_geometry(tf.shape(image)[:2], size)
    resized = _resize_like_cv2(image, new_h, new_w)
    padding = [[top, size - new_h - top], [left, size - new_w - left], [0, 0]]
    padded = tf.pad(resized, padding, constant_values=PAD_VALUE)
    return tf.ensure_shape(padded / 255.0, [size, size, 3])


_PIL_PRECISION_BITS = 22  # Pillow's fixed-point weights for 8-bit images


def _pil_bilinear_taps(src, dst):
    """First source index [dst] and fixed-point weights [dst, K] of Pillow's antialiased bilinear resize.

    A transcription of Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc`
    (float64, the same operation order, the weight sum accumulated in order).
    """
    scale = tf.cast(src, tf.float64) / tf.cast(dst, tf.float64)
    filterscale = tf.maximum(scale, 1.0)
    support = filterscale  # the bilinear filter's support is 1
    ksize = tf.cast(tf.math.ceil(support), tf.int32) * 2 + 1
    center = (tf.range(dst, dtype=tf.float64) + 0.5) * scale
    first = tf.maximum(tf.cast(center - support + 0.5, tf.int32), 0)  # C casts truncate toward zero
    count = tf.minimum(tf.cast(center + support + 0.5, tf.int32), src) - first
    taps = tf.range(ksize)
    distance = (tf.cast(taps[None, :] + first[:, None], tf.float64) - center[:, None] + 0.5) * (1.0 / filterscale)
    weights = tf.where(taps[None, :] < count[:, None], tf.maximum(1.0 - tf.abs(distance), 0.0), 0.0)
    total = tf.foldl(lambda acc, column: acc + column, tf.transpose(weights), initializer=tf.zeros_like(center))
    weights = tf.where(total[:, None] != 0.0, weights / total[:, None], weights)
    return first, tf.cast(tf.floor(0.5 + weights * (1 << _PIL_PRECISION_BITS)), tf.int32)


def _pil_resample_axis(pixels: tf.Tensor, dst, axis: int) -> tf.Tensor:
    """One Pillow resampling pass of int32 uint8-valued pixels along `axis` (0 rows, 1 columns)."""
    src = tf.shape(pixels)[axis]
    first, weights = _pil_bilinear_taps(src, dst)
    shape = [-1, 1, 1] if axis == 0 else [1, -1, 1]

    def add_tap(acc, k):  # one tap at a time: memory stays at one output-sized buffer
        index = tf.minimum(first + k, src - 1)
        return acc + tf.gather(pixels, index, axis=axis) * tf.reshape(weights[:, k], shape)

    out_shape = tf.tensor_scatter_nd_update(tf.shape(pixels), [[axis]], [dst])
    acc = tf.fill(out_shape, tf.constant(1 << (_PIL_PRECISION_BITS - 1), tf.int32))
    acc = tf.foldl(add_tap, tf.range(tf.shape(weights)[1]), initializer=acc)
    return tf.clip_by_value(tf.bitwise.right_shift(acc, _PIL_PRECISION_BITS), 0, 255)


def resize_and_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    """Classify: short side to `size`, centre crop, like Ultralytics' torchvision transforms; float32 [0, 1].

    torchvision resizes PIL images with Pillow's antialiased bilinear filter,
    one axis at a time, rounding to uint8 after each pass; this reproduces it bit for bit.
    """
    hw = tf.cast(tf.shape(image)[:2], tf.float64)
    short = tf.minimum(hw[0], hw[1])
    # torchvision.transforms.Resize(int) truncates the long side
    new_hw = tf.cast(tf.where(hw == short, tf.constant(size, tf.float64), tf.floor(size * hw / short)), tf.int32)
    pixels = tf.cast(image, tf.int32)
    h, w = tf.shape(pixels)[0], tf.shape(pixels)[1]
    resized = tf.cast(
        tf.cond(  # Pillow >= 13 runs the vertical pass first when the height shrinks, by over twice the width
            (new_hw[0] < h) & ((h - new_hw[0]) > 2 * (w - new_hw[1])),
            lambda: _pil_resample_axis(_pil_resample_axis(pixels, new_hw[0], axis=0), new_hw[1], axis=1),
            lambda: _pil_resample_axis(_pil_resample_axis(pixels, new_hw[1], axis=1), new_hw[0], axis=0),
        ),
        tf.float32,
    )
    top = tf.cast(tf.round(tf.cast(new_hw[0] - size, tf.float64) / 2.0), tf.int32)
    left = tf.cast(tf.round(tf.cast(new_hw[1] - size, tf.float64) / 2.0), tf.int32)
    cropped = resized[top : top + size, left : left + size]
    return tf.ensure_shape(cropped / 255.0, [size, size, 3])


def preprocess_one(image: tf.Tensor, size: int, letterboxed: bool) -> tf.Tensor:
    return letterbox(image, size) if letterboxed else resize_and_crop(image, size)
