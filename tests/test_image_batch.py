"""Image batches handed to TensorFlow through DLPack: shared memory when aligned, one copy otherwise."""

import cv2
import numpy as np
import pytest

from tftrt_yolo.errors import InputError
from tftrt_yolo.image_batch import ALIGNMENT, ImageBatchBuffer


def aligned_copy(array: np.ndarray, offset: int = 0) -> np.ndarray:
    """`array` copied to memory starting `offset` bytes past an ALIGNMENT boundary."""
    memory = np.empty(array.nbytes + 2 * ALIGNMENT, np.uint8)
    start = -memory.ctypes.data % ALIGNMENT + offset
    out = memory[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    return out


@pytest.fixture
def batch():
    return np.random.default_rng(0).integers(0, 256, (3, 17, 23, 3), dtype=np.uint8)


def test_an_aligned_rgb_batch_is_shared_not_copied(batch):
    rgb = aligned_copy(batch)
    tensor = ImageBatchBuffer().tensor(rgb, bgr=False)
    rgb[1, 2, 3, 0] = 255 - rgb[1, 2, 3, 0]  # written after wrapping: the tensor sees it
    np.testing.assert_array_equal(tensor.numpy(), rgb)


def test_misaligned_or_strided_batches_are_copied_once(batch):
    buffer = ImageBatchBuffer()
    for source in (aligned_copy(batch, offset=16), batch[:, ::2], batch[::-1]):
        tensor = buffer.tensor(source, bgr=False)
        expected = source.copy()
        source[0, 0, 0, 0] = 255 - source[0, 0, 0, 0]  # a copy: the tensor does not see it
        np.testing.assert_array_equal(tensor.numpy(), expected)
        source[0, 0, 0, 0] = expected[0, 0, 0, 0]


def test_bgr_is_converted_into_the_buffer_which_grows_and_is_reused(batch):
    buffer = ImageBatchBuffer()
    small = buffer.tensor(batch[:1, :5], bgr=True)
    np.testing.assert_array_equal(small.numpy(), batch[:1, :5, :, ::-1])
    large = np.concatenate([batch, batch])
    np.testing.assert_array_equal(buffer.tensor(large, bgr=True).numpy(), large[..., ::-1])
    flipped = batch[..., ::-1]  # a strided view: read through a contiguous copy
    np.testing.assert_array_equal(buffer.tensor(flipped, bgr=True).numpy(), batch)
    assert cv2.cvtColor(batch[0], cv2.COLOR_BGR2RGB).tobytes() == flipped[0].tobytes()


def test_a_list_of_frames_of_one_size_is_a_batch(batch):
    tensor = ImageBatchBuffer().tensor(list(batch), bgr=True)
    np.testing.assert_array_equal(tensor.numpy(), batch[..., ::-1])


@pytest.mark.parametrize("bad", [np.zeros((2, 4, 4, 3), np.float32), np.zeros((4, 4, 3), np.uint8),
                                 np.zeros((2, 4, 4, 4), np.uint8), [np.zeros((4, 4, 3), np.uint8)] * 0,
                                 [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8)]])
def test_wrong_dtype_or_shape_is_an_input_error(bad):
    with pytest.raises(InputError, match=r"uint8 \[N, H, W, 3\] array or N uint8 \[H, W, 3\] arrays of one size"):
        ImageBatchBuffer().tensor(bad, bgr=False)
