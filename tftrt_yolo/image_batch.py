"""uint8 image batches handed to TensorFlow without TensorFlow's own copy.

A signature called with a numpy array converts it with `tf.convert_to_tensor`, which copies the array into
freshly allocated memory, touching every page for the first time: on the H200 machine that was 0.36 of the
0.44 ms per image a detect batch took to reach the GPU (benchmarks/results/gpu/variants/transfer.json).
TensorFlow wraps aligned host memory through DLPack without a copy instead. An `ImageBatchBuffer` keeps
one aligned buffer and refills it batch after batch, so its pages stay mapped; converting BGR to RGB
(which needs a copy anyway) writes straight into it. On the H200 a detect batch from numpy then took 1.29
instead of 1.41 ms per image end to end (benchmarks/results/gpu/variants/97e94c4-image-batch.json).
"""

from __future__ import annotations

import cv2
import numpy as np

from tftrt_yolo.errors import InputError

# A page: more than TensorFlow's own requirement (64 bytes); a misaligned DLPack tensor aborts the process.
ALIGNMENT = 4096


def _wrap(batch: np.ndarray):
    """A TensorFlow host tensor sharing `batch`'s memory (aligned, C-contiguous, writable)."""
    import tensorflow as tf

    return tf.experimental.dlpack.from_dlpack(batch.__dlpack__())


def _shares_without_copy(batch: np.ndarray) -> bool:
    return batch.flags.c_contiguous and batch.flags.writeable and batch.ctypes.data % ALIGNMENT == 0


class ImageBatchBuffer:
    """One reusable aligned uint8 batch. A tensor from `tensor()` is valid until the next call: use it for
    one signature call whose outputs are read before the buffer is filled again."""

    def __init__(self):
        self._memory = np.empty(0, np.uint8)

    def _batch(self, shape: tuple[int, ...]) -> np.ndarray:
        size = int(np.prod(shape))
        if self._memory.size < size + ALIGNMENT:
            self._memory = np.empty(size + ALIGNMENT, np.uint8)
        start = -self._memory.ctypes.data % ALIGNMENT
        return self._memory[start : start + size].reshape(shape)

    def tensor(self, images, *, bgr: bool):
        """uint8 [N, H, W, 3] RGB host tensor of `images`: a uint8 [N, H, W, 3] array or a sequence of N uint8
        [H, W, 3] arrays of one size, RGB, or BGR when `bgr`.

        An aligned, contiguous RGB batch array is wrapped as it is; anything else is copied (and converted)
        into the buffer once.
        """
        if isinstance(images, np.ndarray):
            shape = images.shape if images.dtype == np.uint8 else ()
            if not bgr and len(shape) == 4 and shape[-1] == 3 and _shares_without_copy(images):
                return _wrap(images)
        else:
            images = list(images)
            shapes = {image.shape if image.dtype == np.uint8 else () for image in images}
            shape = (len(images), *shapes.pop()) if len(shapes) == 1 else ()
        if len(shape) != 4 or shape[-1] != 3:
            raise InputError("an image batch must be a uint8 [N, H, W, 3] array or N uint8 [H, W, 3] arrays of one "
                             f"size, got {_describe(images)}")
        batch = self._batch(shape)
        for source, target in zip(images, batch):
            if bgr:
                cv2.cvtColor(np.ascontiguousarray(source), cv2.COLOR_BGR2RGB, dst=target)
            else:
                target[...] = source
        return _wrap(batch)


def _describe(images) -> str:
    if isinstance(images, np.ndarray):
        return f"{images.dtype} {list(images.shape)}"
    return ", ".join(sorted({f"{image.dtype} {list(image.shape)}" for image in images})) or "no arrays"
