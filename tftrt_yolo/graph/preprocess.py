"""In-graph image pre-processing, matching Ultralytics predict.

Detection tasks letterbox (ratio-preserving resize, 114 gray padding, centred)
exactly like `ultralytics.data.augment.LetterBox`; classify resizes the short
side and centre-crops like `classify_transforms`. Geometry is computed in
float64 with round-half-to-even, as Python's `round` does in Ultralytics.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.python.ops import gen_functional_ops

from tftrt_yolo.graph.reductions import largest

PAD_VALUE = 114.0
# uint8 levels -> [0, 1] as a multiplication: Grappler turns `x / 255.0` into this in graphs but not in
# eager mode or inside some functions; written out, every path gives the same floats.
_TO_UNIT = 1.0 / 255.0
_PADDING_IN_UNITS = float(np.float32(PAD_VALUE) * np.float32(_TO_UNIT))  # as float32 arithmetic rounds it


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


def on_host():
    """The device scope of arithmetic on image sizes (letterbox geometry, resampling tables, crop offsets):
    the CPU. On a GPU each of these tiny ops would be a kernel launch, and each int32 result a copy back to
    the host that waits for the GPU; a SavedModel takes images of any size, so none of it folds into
    constants. Inside an XLA-compiled function the scope is ignored and XLA folds them for its static shapes.
    `tf.shape` of an image tensor stays outside: a Shape op on the host would copy the tensor there."""
    return tf.device("/CPU:0")


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


def _cv2_linear_taps(dst_index, src, dst, clamp_weights: bool):
    """Source indices and fixed-point weights of cv2.INTER_LINEAR along one axis.

    `dst_index` [..., S] are output positions (any values: callers mask those past `dst`), `src` and `dst`
    [...] the input and output lengths (one per image of a batch). OpenCV computes the position in float32
    and rounds each weight to 11 bits; it zeroes the fraction at the left/right borders but not at the
    top/bottom (there it only clamps the row index), hence `clamp_weights`. The weights are integers held
    in float32 (see `_shift_right`).
    """
    src, dst = src[..., None], dst[..., None]
    scale = 1.0 / (tf.cast(dst, tf.float64) / tf.cast(src, tf.float64))
    pos = tf.cast((tf.cast(dst_index, tf.float64) + 0.5) * scale - 0.5, tf.float32)
    first = tf.floor(pos)
    frac = pos - first
    first = tf.cast(first, tf.int32)
    if clamp_weights:
        frac = tf.where((first < 0) | (first >= src - 1), 0.0, frac)
    w0 = tf.round((1.0 - frac) * _CV2_COEF_SCALE)
    w1 = tf.round(frac * _CV2_COEF_SCALE)
    return tf.clip_by_value(first, 0, src - 1), tf.clip_by_value(first + 1, 0, src - 1), w0, w1


def _shift_right(integers: tf.Tensor, bits: int) -> tf.Tensor:
    """`integers >> bits` of non-negative integers held in floats: exact while they fit the mantissa.

    OpenCV's fixed-point arithmetic is written with floats, not int32, because a GPU has no int32
    arithmetic kernels in TensorFlow (they run on the host) and no uint8 gather.
    """
    return tf.floor(integers * (0.5**bits))


def _letterbox(images: tf.Tensor, image_sizes: tf.Tensor, size: int) -> tf.Tensor:
    """Letterbox bit for bit as Ultralytics (cv2.INTER_LINEAR, 114 padding): uint8 -> float32 in [0, 1].

    One image ([H, W, 3], `image_sizes` [2]), a batch of one size ([N, H, W, 3], [2]), or a batch of
    different sizes ([N, H, W, 3] holding image i in its top-left `image_sizes[i]` corner, [N, 2]); uint8
    levels in any dtype (a GPU gathers float32, not uint8). Output pixels read their taps through tables of
    source indices and fixed-point weights, one per image size, so one gather per tap serves a batch of
    different sizes. Only the box that holds some image's content is computed; the rest is padding for all.

    OpenCV interpolates uint8 images in 11-bit fixed point: columns (scaled by 2048, then >> 4 as its
    SIMD vertical pass does), then rows; for an exact 2x downscale it averages 2x2 blocks, which these
    weights (1024, 1024 on both axes) reproduce. The column pass stays below 2**21 (exact in float32), the
    row pass below 2**27 (float64). A float bilinear resize is one level off on about a tenth of the
    values (benchmarks/results/cpu/preprocess.md).
    """
    batch_dims = images.shape.rank - 3
    per_image = image_sizes.shape.rank - 1  # 1: a table per image (the gathers' batch dimension), 0: shared
    input_rows = tf.shape(images)[-3]  # not on the host: a Shape op there would copy the images to it
    with on_host():
        h, w = image_sizes[..., 0], image_sizes[..., 1]
        new_h, new_w, top, left = letterbox_geometry(image_sizes, size)
        # the content box; `size` and the first row/column stand in for an empty batch's missing values
        first_row, first_col = (tf.reduce_min(tf.concat([tf.reshape(v, [-1]), [size]], 0)) for v in (top, left))
        end_row = largest(top + new_h, first_row)
        end_col = largest(left + new_w, first_col)
        rows = tf.range(first_row, end_row) - top[..., None]  # output row -> row in the resized image
        cols = tf.range(first_col, end_col) - left[..., None]
        x0, x1, a0, a1 = _cv2_linear_taps(cols, w, new_w, clamp_weights=True)
        # each column weight once per channel: a CPU multiplies by a [columns, 3] table 3x faster than by
        # [columns, 1]. Repeated by a gather, whose tensors stay at rank 1 or 2 (`tf.repeat` would go
        # through rank 3 here, where only image data should have that rank), reshaped off the host below
        a0, a1 = (tf.gather(a, tf.range(3 * tf.shape(a)[-1]) // 3, axis=-1) for a in (a0, a1))
        y0, y1, b0, b1 = _cv2_linear_taps(rows, h, new_h, clamp_weights=False)
        b0, b1 = tf.cast(b0, tf.float64), tf.cast(b1, tf.float64)
        read_every_row = input_rows <= 2 * (end_row - first_row)
        if per_image:
            row_inside, col_inside = (rows >= 0) & (rows < new_h[:, None]), (cols >= 0) & (cols < new_w[:, None])
        padding = [[0, 0]] * batch_dims + [[first_row, size - end_row], [first_col, size - end_col], [0, 0]]

    a0, a1 = (tf.reshape(a, tf.concat([tf.shape(a)[:-1], [1, -1, 3]], 0)) for a in (a0, a1))  # [..., 1, columns, 3]

    def columns(rows):  # horizontal pass [..., R, columns, 3], float64 integers
        tap = lambda x: tf.cast(tf.gather(rows, x, axis=-2, batch_dims=per_image), tf.float32)  # noqa: E731
        weighted = tap(x0) * a0 + tap(x1) * a1
        return tf.cast(_shift_right(weighted, 4), tf.float64)

    def every_row_once():  # cheaper unless the images shrink to less than half their height
        hor = columns(images)
        return tuple(tf.gather(hor, y, axis=-3, batch_dims=per_image) for y in (y0, y1))

    def rows_read():
        return tuple(columns(tf.gather(images, y, axis=-3, batch_dims=per_image)) for y in (y0, y1))

    upper, lower = tf.cond(read_every_row, every_row_once, rows_read)
    weighted = lambda rows, weight: _shift_right(rows * weight[..., None, None], 16)  # noqa: E731
    content = tf.cast(_shift_right(weighted(upper, b0) + weighted(lower, b1) + 2.0, 2), tf.float32)
    if per_image:  # the box holds the largest images: pad the others inside it
        content = tf.where((row_inside[:, :, None] & col_inside[:, None, :])[..., None], content, PAD_VALUE)
    # scaled before padding (the padding's value scaled the same way): fewer pixels to multiply
    padded = tf.pad(content * _TO_UNIT, padding, constant_values=_PADDING_IN_UNITS)
    return tf.ensure_shape(padded, images.shape[:-3] + [size, size, 3])


def letterbox(image: tf.Tensor, size: int) -> tf.Tensor:
    """One image [H, W, 3] with uint8 values (any dtype) -> float32 [size, size, 3] in [0, 1]."""
    return _letterbox(tf.cast(image, tf.uint8), tf.shape(image)[:2], size)


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
    return first, tf.floor(0.5 + weights * (1 << _PIL_PRECISION_BITS))


def _pil_resample_axis(pixels: tf.Tensor, dst, axis: int, start, count: int) -> tf.Tensor:
    """One Pillow resampling pass of uint8-valued pixels held in float64 [..., H, W, 3] along `axis` (-3 rows,
    -2 columns) to `dst` positions, of which only `count` from `start` are computed (each output position is
    its own weighted sum: the crop can come first). Pillow's int32 sums stay below 2**31, exact in float64
    whatever the order of the terms, so all taps are read by one gather and summed at once (see `_shift_right`)."""
    src = tf.shape(pixels)[axis]
    with on_host():
        first, weights = (t[start : start + count] for t in _pil_bilinear_taps(src, dst))
        taps = tf.minimum(first[:, None] + tf.range(tf.shape(weights)[1])[None, :], src - 1)  # [count, K]
        weights = tf.reshape(weights, [count, -1, 1, 1] if axis == -3 else [count, -1, 1])
    read = tf.gather(pixels, taps, axis=axis)  # [..., count, K, ...]
    acc = (1 << (_PIL_PRECISION_BITS - 1)) + tf.reduce_sum(read * weights, axis=axis)
    return tf.clip_by_value(_shift_right(acc, _PIL_PRECISION_BITS), 0.0, 255.0)


def resize_and_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    """Classify: short side to `size`, centre crop, like Ultralytics' torchvision transforms; float32 [0, 1].

    `image` is [..., H, W, 3] with uint8 values (any dtype; a batch shares one size). torchvision resizes
    PIL images with Pillow's antialiased bilinear filter, one axis at a time, rounding to uint8 after each
    pass; this reproduces it bit for bit, computing only the pixels the crop keeps.
    """
    pixels = tf.cast(image, tf.float64)
    h, w = tf.shape(pixels)[-3], tf.shape(pixels)[-2]
    with on_host():
        hw = tf.cast(tf.stack([h, w]), tf.float64)
        short = tf.minimum(hw[0], hw[1])
        # torchvision.transforms.Resize(int) truncates the long side
        new_hw = tf.cast(tf.where(hw == short, tf.constant(size, tf.float64), tf.floor(size * hw / short)), tf.int32)
        # Pillow >= 13 runs the vertical pass first when the height shrinks, by over twice the width
        rows_first = (new_hw[0] < h) & ((h - new_hw[0]) > 2 * (w - new_hw[1]))
        top = tf.cast(tf.round(tf.cast(new_hw[0] - size, tf.float64) / 2.0), tf.int32)
        left = tf.cast(tf.round(tf.cast(new_hw[1] - size, tf.float64) / 2.0), tf.int32)
    rows = lambda x: _pil_resample_axis(x, new_hw[0], -3, top, size)  # noqa: E731
    columns = lambda x: _pil_resample_axis(x, new_hw[1], -2, left, size)  # noqa: E731
    cropped = tf.cast(tf.cond(rows_first, lambda: columns(rows(pixels)), lambda: rows(columns(pixels))), tf.float32)
    return tf.ensure_shape(cropped * _TO_UNIT, image.shape[:-3] + [size, size, 3])


# Images the per-image loops (decoding has no batched op) may process at the same time.
_PARALLEL_IMAGES = 16


def _decode_padded(images: tf.Tensor):
    """Decode every image -> (float32 [N, Hmax, Wmax, 3], each image top-left, int32 [N, 2] (h, w)).

    Decoding runs on the CPU (no TensorFlow op decodes on a GPU), images in parallel. Each image then goes
    to the graph's device as it is and is padded there: the host copies no batch-sized buffer (on an H200
    with 16 cores, 0.1-0.3 of the 1.3-1.4 ms per image that decoding and padding on the host took).
    """
    n = tf.size(images)
    flat_images = lambda dtype: tf.TensorArray(  # noqa: E731  one image's pixels per entry, any sizes
        dtype, size=n, infer_shape=False, element_shape=tf.TensorShape([None])
    )
    with tf.device("/CPU:0"):

        def decode_one(i, pixels, sizes):
            image = decode(images[i])
            return i + 1, pixels.write(i, tf.reshape(image, [-1])), sizes.write(i, tf.shape(image)[:2])

        _, pixels, sizes = tf.while_loop(
            lambda i, *_: i < n,
            decode_one,
            (tf.constant(0), flat_images(tf.uint8), tf.TensorArray(tf.int32, size=n, element_shape=tf.TensorShape([2]))),
            parallel_iterations=_PARALLEL_IMAGES,
        )
        sizes = sizes.stack()
        h_max, w_max = largest(sizes[:, 0], 0), largest(sizes[:, 1], 0)

    def pad_one(i, padded):
        with tf.device("/CPU:0"):
            image = tf.reshape(pixels.read(i), tf.concat([sizes[i], [3]], 0))
            padding = [[0, h_max - sizes[i, 0]], [0, w_max - sizes[i, 1]], [0, 0]]
        image = tf.pad(tf.cast(image, tf.float32), padding)  # where the graph runs
        return i + 1, padded.write(i, tf.reshape(image, [-1]))

    _, padded = tf.while_loop(
        lambda i, *_: i < n, pad_one, (tf.constant(0), flat_images(tf.float32)), parallel_iterations=_PARALLEL_IMAGES
    )
    return tf.reshape(padded.concat(), [n, h_max, w_max, 3]), sizes


def per_device(one_by_one, batched):
    """The same results two ways, chosen where the graph runs: `one_by_one` on a CPU, which runs separate
    images in parallel faster than one op over the batch (TensorFlow shards one big gather poorly over
    few cores, and a batch of different sizes computes the largest image's box for every image), and
    `batched` elsewhere: a GPU needs the batch in few kernels, without a loop over images.

    DeviceIndex says where it was placed, like `tf.__internal__.execute_fn_for_device`, whose Case op
    is not lowered, so that a loop inside it loses its parallel iterations; a cond is lowered.
    """
    on_cpu = tf.equal(gen_functional_ops.device_index(device_names=["CPU"]), 0)
    return tf.cond(on_cpu, one_by_one, batched)


def preprocess_encoded(images: tf.Tensor, size: int, letterboxed: bool):
    """Encoded images (string [N], any sizes) -> (float32 [N, size, size, 3] in [0, 1], int32 [N, 2] original hw)."""

    def one_by_one(resize):
        def one(encoded):
            image = decode(encoded)
            return resize(image, size), tf.shape(image)[:2]

        signature = (tf.TensorSpec([size, size, 3], tf.float32), tf.TensorSpec([2], tf.int32))
        return tf.map_fn(one, images, fn_output_signature=signature, parallel_iterations=_PARALLEL_IMAGES)

    if not letterboxed:  # Pillow's filter width and pass order depend on each image's size
        return one_by_one(resize_and_crop)

    return per_device(lambda: one_by_one(letterbox), lambda: letterbox_encoded_batch(images, size))


def letterbox_encoded_batch(images: tf.Tensor, size: int):
    """`preprocess_encoded` of letterboxed tasks for the whole batch at once: what a GPU runs."""
    padded, image_sizes = _decode_padded(images)
    return _letterbox(padded, image_sizes, size), image_sizes


def preprocess_image_batch(images: tf.Tensor, size: int, letterboxed: bool) -> tf.Tensor:
    """`preprocess_images`' network input computed for the whole batch at once, with no loop: what a GPU
    runs, and what XLA compiles (once per input shape)."""
    if letterboxed:  # one geometry for the batch: the tables need no batch dimension
        return _letterbox(tf.cast(images, tf.float32), tf.shape(images)[1:3], size)
    return resize_and_crop(images, size)  # the images share one size: Pillow's filters are the batch's


# `preprocess_image_batch` compiled by XLA (a few fused kernels instead of ~110 launched one by one), once
# per input shape: what the XLA backend's `predict_images` runs.
compiled_image_batch = tf.function(preprocess_image_batch, jit_compile=True, autograph=False)


def image_sizes_of(images: tf.Tensor) -> tf.Tensor:
    """int32 [N, 2]: the (h, w) of every image of a uint8 [N, H, W, 3] batch."""
    n, hw = tf.shape(images)[0], tf.shape(images)[1:3]
    with on_host():
        return tf.tile(hw[None], [n, 1])


def preprocess_images(images: tf.Tensor, size: int, letterboxed: bool):
    """uint8 [N, H, W, 3] RGB -> (float32 [N, size, size, 3] in [0, 1], int32 [N, 2] original hw)."""
    hw = tf.shape(images)[1:3]
    one = (lambda image: _letterbox(image, hw, size)) if letterboxed else (lambda image: resize_and_crop(image, size))

    def one_by_one():
        signature = tf.TensorSpec([size, size, 3], tf.float32)
        return tf.map_fn(one, images, fn_output_signature=signature, parallel_iterations=_PARALLEL_IMAGES)

    return per_device(one_by_one, lambda: preprocess_image_batch(images, size, letterboxed)), image_sizes_of(images)
