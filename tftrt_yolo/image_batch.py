"""uint8 image batches handed to TensorFlow without TensorFlow's own copy.

A signature called with a numpy array converts it with `tf.convert_to_tensor`, which copies the array into
freshly allocated memory, touching every page for the first time: on the H200 machine that was 0.36 of the
0.44 ms per image a detect batch took to reach the GPU (benchmarks/results/gpu/variants/transfer.json).
TensorFlow wraps aligned host memory through DLPack without a copy instead. A `ImageBatchBuffer` keeps one
aligned buffer and refills it batch after batch, so its pages stay mapped; converting BGR to RGB (which
needs a copy anyway) writes straight into it.
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

    def tensor(self, images: np.ndarray, *, bgr: bool):
        """uint8 [N, H, W, 3] RGB host tensor of `images` (uint8 [N, H, W, 3], RGB, or BGR when `bgr`).

        An aligned, contiguous RGB batch is wrapped as it is; anything else is copied (and converted)
        into the buffer once.
        """
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise InputError(f"an image batch must be uint8 [N, H, W, 3], got {images.dtype} {list(images.shape)}")
        if not bgr and _shares_without_copy(images):
            return _wrap(images)
        batch = self._batch(images.shape)
        if bgr:
            for source, target in zip(images, batch):
                cv2.cvtColor(np.ascontiguousarray(source), cv2.COLOR_BGR2RGB, dst=target)
        else:
            np.copyto(batch, images)
        return _wrap(batch)
