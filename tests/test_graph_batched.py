"""The batched pre/post-processing equals the per-image one it replaces on GPUs, exactly.

The graph picks per device (`preprocess.per_device`): images one by one on a CPU, the whole batch at once
elsewhere. Tests run on a CPU, so these call the batched branch directly and compare it with the per-image
functions that tests/test_preprocess.py and tests/test_parity.py check against Ultralytics.
"""

import cv2
import numpy as np
import pytest
import tensorflow as tf
from conftest import REAL_PHOTOS

from tftrt_yolo.graph import nms, postprocess, preprocess


def mixed_batch(seed):
    """Encoded images of different sizes and formats: real photos, an exact 2x downscale, a >2x shrink
    (the row-reading path), upscaling, thin and square images."""
    rng = np.random.default_rng(seed)
    encoded = [p.read_bytes() for p in REAL_PHOTOS]
    for i, (h, w) in enumerate([(1280, 720), (1500, 300), (100, 160), (9, 700), (640, 640), (333, 517)]):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        encoded.append(cv2.imencode(".png" if i % 2 else ".jpg", image)[1].tobytes())
    return tf.constant(encoded)


@pytest.mark.parametrize("size", [320, 640])
def test_batched_letterbox_of_different_sizes_equals_one_by_one(size):
    encoded = mixed_batch(size)
    batched, image_sizes = tf.function(preprocess.letterbox_encoded_batch)(encoded, size)
    on_cpu, cpu_sizes = tf.function(preprocess.preprocess_encoded)(encoded, size, True)
    np.testing.assert_array_equal(image_sizes.numpy(), cpu_sizes.numpy())
    np.testing.assert_array_equal(batched.numpy(), on_cpu.numpy())
    for i, one in enumerate(encoded):
        expected = tf.function(preprocess.letterbox)(preprocess.decode(one), size)
        np.testing.assert_array_equal(batched[i].numpy(), expected.numpy(), err_msg=f"image {i}")


@pytest.mark.parametrize("letterboxed", [True, False])
def test_preprocess_images_equals_one_by_one(letterboxed):
    rng = np.random.default_rng(3)
    images = tf.constant(rng.integers(0, 256, (3, 481, 367, 3), dtype=np.uint8))
    size = 640 if letterboxed else 224
    floats, image_sizes = tf.function(preprocess.preprocess_images)(images, size, letterboxed)
    assert image_sizes.numpy().tolist() == [[481, 367]] * 3
    one = preprocess.letterbox if letterboxed else preprocess.resize_and_crop
    for i in range(3):
        np.testing.assert_array_equal(floats[i].numpy(), tf.function(one)(images[i], size).numpy())
    batched = tf.function(preprocess.preprocess_image_batch)(images, size, letterboxed)  # the branch a GPU takes
    np.testing.assert_array_equal(batched.numpy(), floats.numpy())
    compiled = preprocess.compiled_image_batch(images, size, letterboxed)  # what the XLA backend runs
    np.testing.assert_array_equal(compiled.numpy(), floats.numpy())


def random_detections(seed, n=4, anchors=600, nc=3):
    """Boxes in clusters (so that NMS has work), a few degenerate ones, random classes and scores."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 640, (n, 12, 2))
    xy = centres[:, rng.integers(0, 12, anchors)] + rng.normal(0, 8, (n, anchors, 2))
    wh = np.abs(rng.normal(60, 25, (n, anchors, 2)))
    wh[:, ::97] = 0.0
    xywh = np.concatenate([xy, wh], -1).astype(np.float32)
    scores = rng.uniform(0, 1, (n, anchors)).astype(np.float32)
    scores[:, 1::50] = scores[:, ::50]  # ties
    classes = rng.integers(0, nc, (n, anchors)).astype(np.int32)
    return xywh, scores, classes


@pytest.mark.parametrize("seed", range(3))
def test_batched_greedy_nms_keeps_what_nonmaxsuppression_keeps(seed):
    xywh, scores, classes = random_detections(seed)
    xyxy = nms.xywh_to_xyxy(tf.constant(xywh))
    conf = tf.constant([0.25, 0.5, 0.01, 1.5])  # the last image has no candidate
    iou = tf.constant([0.7, 0.45, 0.3, 0.7])
    max_det = tf.constant([300, 7, 1000, 300])
    selected, counts = tf.function(nms.batched_greedy_nms)(xyxy, scores, classes, conf, iou, max_det)
    for i in range(len(scores)):
        one, count = nms.greedy_nms(xyxy[i], scores[i], classes[i], conf[i], iou[i], max_det[i])
        assert counts[i] == count
        np.testing.assert_array_equal(selected[i, :count].numpy(), one[:count].numpy())


def test_batched_greedy_nms_follows_long_suppression_chains():
    """A row of boxes, each overlapping the next by more than iou, by descending score: greedy NMS keeps every
    other box, and the suppression rule settles one box per round, so the loop needs several of its checks
    (`nms._ROUNDS_PER_CHECK` rounds each) before it stops."""
    k = 6 * nms._ROUNDS_PER_CHECK + 1
    x = np.arange(k, dtype=np.float32) * 10.0
    xyxy = np.stack([x, np.zeros(k), x + 40.0, np.full(k, 40.0)], -1).astype(np.float32)[None]  # IoU 0.6 with the next
    scores = np.linspace(0.9, 0.5, k, dtype=np.float32)[None]
    classes = np.zeros((1, k), np.int32)
    thresholds = (tf.constant([0.25]), tf.constant([0.5]), tf.constant([300]))
    selected, counts = tf.function(nms.batched_greedy_nms)(xyxy, scores, classes, *thresholds)
    one, count = nms.greedy_nms(xyxy[0], scores[0], classes[0], 0.25, 0.5, 300)
    assert counts[0] == count == (k + 1) // 2
    np.testing.assert_array_equal(selected[0, :count].numpy(), one[:count].numpy())


@pytest.mark.parametrize("batched_nms", [nms.batched_greedy_nms, nms.batched_rotated_nms])
def test_batched_nms_without_candidates(batched_nms):
    boxes = tf.random.uniform([2, 50, 5 if batched_nms is nms.batched_rotated_nms else 4], 0, 100)
    scores, classes = tf.random.uniform([2, 50]), tf.zeros([2, 50], tf.int32)
    selected, counts = batched_nms(boxes, scores, classes, tf.fill([2], 2.0), tf.fill([2], 0.7), tf.fill([2], 300))
    assert counts.numpy().tolist() == [0, 0] and selected.shape == (2, 0)


@pytest.mark.parametrize("cap", [600, 64], ids=["every candidate", "capped"])
def test_compiled_greedy_nms_equals_the_dynamic_one(cap):
    """The XLA version (the XLA backend's, on a GPU) keeps exactly what the dynamic one keeps: within its cap, and through the
    fallback when an image has more candidates than the cap and fewer than max_det kept among them."""
    xywh, scores, classes = random_detections(4)
    xyxy = nms.xywh_to_xyxy(tf.constant(xywh))
    thresholds = (tf.constant([0.25, 0.5, 0.01, 1.5]), tf.constant([0.7, 0.45, 0.3, 0.7]), tf.constant([300, 7, 1000, 300]))
    expected, expected_counts = tf.function(nms.batched_greedy_nms)(xyxy, scores, classes, *thresholds)
    selected, counts = tf.function(nms.compiled_greedy_nms)(xyxy, scores, classes, *thresholds, cap)
    np.testing.assert_array_equal(counts.numpy(), expected_counts.numpy())
    for i, count in enumerate(counts.numpy()):
        np.testing.assert_array_equal(selected[i, :count].numpy(), expected[i, :count].numpy(), err_msg=f"image {i}")


def test_capped_greedy_nms_says_when_it_is_exact():
    xywh, scores, classes = random_detections(5, n=2)
    xyxy = nms.xywh_to_xyxy(tf.constant(xywh))
    conf, iou = tf.constant([0.1, 0.1]), tf.constant([0.7, 0.7])
    assert (scores > 0.1).sum(axis=1).min() > 64
    for max_det, exact in (([300, 300], False), ([5, 300], False), ([5, 5], True)):
        *_, is_exact = nms.capped_greedy_nms(xyxy, scores, classes, conf, iou, tf.constant(max_det), 64)
        assert bool(is_exact) is exact, max_det
    *_, is_exact = nms.capped_greedy_nms(xyxy, scores, classes, conf, iou, tf.constant([300, 300]), scores.shape[1])
    assert bool(is_exact)


def fast_nms_reference(rboxes, scores, classes, conf, iou, max_det):
    """Ultralytics' TorchNMS.fast_nms over batch_probiou, for one image, in numpy."""
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] > conf]
    boxes = rboxes[order].copy()
    boxes[:, :2] += classes[order, None] * nms.CLASS_OFFSET
    ious = np.triu(nms.probiou_matrix(tf.constant(boxes)).numpy(), k=1)
    return np.array(order, dtype=np.int64)[~(ious > iou).any(0)][:max_det]


def test_batched_rotated_nms_is_fast_nms():
    xywh, scores, classes = random_detections(7)
    angles = np.random.default_rng(7).uniform(0, np.pi / 2, scores.shape + (1,)).astype(np.float32)
    rboxes = np.concatenate([xywh, angles], -1)
    conf, iou, max_det = [0.25, 0.6, 0.05, 0.3], [0.7, 0.3, 0.5, 0.7], [300, 5, 300, 300]
    selected, counts = tf.function(nms.batched_rotated_nms)(
        rboxes, scores, classes, tf.constant(conf), tf.constant(iou), tf.constant(max_det)
    )
    for i in range(len(scores)):
        expected = fast_nms_reference(rboxes[i], scores[i], classes[i], conf[i], iou[i], max_det[i])
        assert counts[i] == len(expected)
        np.testing.assert_array_equal(selected[i, : counts[i]].numpy(), expected)


def test_batched_letterbox_of_no_image():
    floats, image_sizes = tf.function(preprocess.letterbox_encoded_batch)(tf.constant([], tf.string), 320)
    assert floats.shape == (0, 320, 320, 3) and image_sizes.shape == (0, 2)


@pytest.mark.parametrize(
    "image_sizes",
    [[[1080, 810], [300, 517], [37, 640]], [[481, 367]] * 3],
    ids=["different sizes (per-image taps)", "one size (one resize for the batch)"],
)
def test_batched_mask_resize_equals_one_by_one(image_sizes):
    """Masks back to original sizes (down, up, and a thin image), the batch at once as a GPU does, equal
    `tf.image.resize` image by image: blobby masks, whose edges fall between pixels at every scale."""
    rng = np.random.default_rng(5)
    coarse = rng.normal(size=(3, 5, 40, 40, 1)).astype(np.float32)
    masks_lb = tf.image.resize(coarse.reshape(15, 40, 40, 1), [640, 640])[..., 0] > 0.3
    masks_lb = tf.reshape(masks_lb, [3, 5, 640, 640])
    image_sizes = tf.constant(image_sizes, tf.int32)
    batched = tf.function(postprocess._masks_in_original)(masks_lb, image_sizes, 640).numpy()
    assert batched.shape == (3, 5, *np.max(image_sizes, axis=0))
    assert 0.05 < batched.mean() < 0.5  # the masks are neither empty nor full
    geometry = preprocess.letterbox_geometry(image_sizes, 640)
    for i in range(3):
        one = postprocess._resize_masks(masks_lb[i], image_sizes[i], *(g[i] for g in geometry)).numpy()
        np.testing.assert_array_equal(batched[i, :, : one.shape[1], : one.shape[2]], one)
        assert not batched[i, :, one.shape[1] :].any() and not batched[i, :, :, one.shape[2] :].any()
    with_taps = tf.function(postprocess._resize_masks_batched)(masks_lb, image_sizes, *geometry)
    np.testing.assert_array_equal(with_taps.numpy(), batched)


# Letterbox boxes (x1, y1, x2, y2) of the box-by-box masks test: inside, across the letterbox's edges, the
# whole letterbox, one pixel wide, empty, in the padding band of a wide image, not a number, and others.
MASK_BOXES = [[100, 120, 300, 400], [-20, -10, 90, 60], [600.5, 0, 700, 50], [0, 0, 640, 640],
              [200.5, 200.5, 201.2, 260], [300, 300, 300, 300], [100, 10, 300, 60], [np.nan, 100, 200, 300],
              [50, 50, 600, 600]]


@pytest.mark.parametrize(
    "image_sizes",
    [[[1080, 810], [300, 517], [37, 640]], [[481, 367]] * 3, [[640, 640]] * 3],
    ids=["different sizes", "one size", "the letterbox's size"],
)
def test_masks_box_by_box_equal_whole_masks(image_sizes):
    """A CPU computes each mask only inside its box (`_masks_box_by_box`); a GPU computes whole letterbox
    masks and resizes them all (`_letterbox_masks`, `_masks_in_original`). Bit for bit the same masks, the
    same empty ones, for blobby logits, the boxes of MASK_BOXES, and padding detections, in any order."""
    rng = np.random.default_rng(7)
    coarse = rng.normal(size=(3, 20, 20, 32)).astype(np.float32)
    protos = tf.image.resize(coarse, [160, 160])
    coeffs = tf.constant(rng.normal(size=(3, len(MASK_BOXES), 32)).astype(np.float32))
    xyxy = tf.constant([MASK_BOXES[i:] + MASK_BOXES[:i] for i in range(3)], tf.float32)  # each box in each image
    d = len(MASK_BOXES)
    valid = tf.constant([[True] * d, [True] * 5 + [False] * (d - 5), [True] * (d - 1) + [False]])
    image_sizes = tf.constant(image_sizes, tf.int32)
    order = tf.constant([list(range(d)), list(range(d))[::-1], list(rng.permutation(d))], tf.int32)

    @tf.function
    def box_by_box():
        nonempty, masks_of = postprocess._masks_box_by_box(coeffs, protos, xyxy, valid, image_sizes, 640)
        return nonempty, masks_of(order)

    @tf.function
    def whole():
        masks_lb = postprocess._letterbox_masks(coeffs, protos, xyxy, 640) & valid[..., None, None]
        resized = postprocess._masks_in_original(tf.gather(masks_lb, order, batch_dims=1), image_sizes, 640)
        return tf.reduce_any(masks_lb, axis=[2, 3]), resized

    (nonempty, masks), (expected_nonempty, expected) = box_by_box(), whole()
    np.testing.assert_array_equal(nonempty.numpy(), expected_nonempty.numpy())
    np.testing.assert_array_equal(masks.numpy(), expected.numpy())
    assert 10 < nonempty.numpy().sum() < 3 * d - 6  # empty boxes, padding detections, and masks
    assert 0.01 < masks.numpy().mean() < 0.5


@pytest.mark.parametrize("image_sizes", [[[300, 400], [20, 30]], []], ids=["two images", "no image"])
def test_masks_box_by_box_without_detections(image_sizes):
    n = len(image_sizes)
    sizes = tf.constant(image_sizes, tf.int32, shape=[n, 2])

    @tf.function
    def no_detections():
        nonempty, masks_of = postprocess._masks_box_by_box(
            tf.zeros([n, 0, 32]), tf.zeros([n, 160, 160, 32]), tf.zeros([n, 0, 4]), tf.zeros([n, 0], tf.bool), sizes, 640)
        return nonempty, masks_of(tf.zeros([n, 0], tf.int32))

    nonempty, masks = no_detections()
    assert nonempty.shape == (n, 0)
    assert masks.shape == (n, 0, *(np.max(image_sizes, axis=0) if n else (0, 0)))


def graph_ops(fn, *specs) -> list:
    """Every op of `fn`'s graph traced for `specs`, with its branch and loop bodies'."""
    found, seen = [], set()

    def walk(graph):
        found.extend(graph.get_operations())
        for name, function in graph._functions.items():  # cond branches and loop bodies
            if name not in seen:
                seen.add(name)
                walk(function.graph)

    walk(tf.function(fn).get_concrete_function(*specs).graph)
    return found


def image_sized_host_work(fn, *specs) -> list[str]:
    """Ops of `fn`'s graph (and its branch and loop bodies) that a GPU would run on the host at image or
    matrix size (rank >= 3): TensorFlow keeps int32 arithmetic in host memory and has no uint8 GPU gather.
    Ops pinned to the CPU on purpose (decoding) are left out."""
    found = []
    for op in graph_ops(fn, *specs):
        if "CPU" in op.device:
            continue
        for out in op.outputs:
            if out.shape.rank is None or out.shape.rank < 3:
                continue
            if out.dtype == tf.int32 and op.type not in ("Shape", "Const", "Placeholder", "Identity"):
                found.append(f"{op.type} {op.name} -> int32 {out.shape}")
            if op.type == "GatherV2" and op.inputs[0].dtype == tf.uint8:
                found.append(f"{op.type} {op.name}: uint8 gather")
    return found


def test_gpu_branches_keep_image_sized_work_on_the_device():
    batch = tf.TensorSpec([8, 480, 640, 3], tf.uint8)
    thresholds = (tf.TensorSpec([8]), tf.TensorSpec([8]), tf.TensorSpec([8], tf.int32))
    geometry = [tf.TensorSpec([8], tf.int32)] * 4
    functions = {
        "letterbox": (lambda x: preprocess.preprocess_image_batch(x, 640, True), batch),
        "resize and crop": (lambda x: preprocess.preprocess_image_batch(x, 224, False), batch),
        "decode + letterbox": (lambda x: preprocess.letterbox_encoded_batch(x, 640), tf.TensorSpec([8], tf.string)),
        "greedy NMS": (nms.batched_greedy_nms, tf.TensorSpec([8, 8400, 4]), tf.TensorSpec([8, 8400]),
                       tf.TensorSpec([8, 8400], tf.int32), *thresholds),
        "rotated NMS": (nms.batched_rotated_nms, tf.TensorSpec([8, 8400, 5]), tf.TensorSpec([8, 8400]),
                        tf.TensorSpec([8, 8400], tf.int32), *thresholds),
        "mask resize": (postprocess._resize_masks_batched, tf.TensorSpec([8, 10, 640, 640], tf.bool),
                        tf.TensorSpec([8, 2], tf.int32), *geometry),
        "mask resize, one size": (postprocess._resize_masks, tf.TensorSpec([8, 10, 640, 640], tf.bool),
                                  tf.TensorSpec([2], tf.int32), *[tf.TensorSpec([], tf.int32)] * 4),
    }
    for name, (fn, *specs) in functions.items():
        assert image_sized_host_work(fn, *specs) == [], name


def test_size_arithmetic_runs_on_the_host_and_image_data_on_the_device():
    """Traced as a SavedModel's signatures are (any batch, any image size), the geometry and resampling
    tables are float and int arithmetic on small tensors: pinned to the CPU, not GPU kernels each waited
    for; and nothing pinned there reads an image-sized tensor (a host op would copy it off the GPU)."""
    any_images = tf.TensorSpec([None, None, None, 3], tf.uint8)
    sizes = tf.TensorSpec([None, 2], tf.int32)
    geometry = [tf.TensorSpec([None], tf.int32)] * 4
    functions = {
        "letterbox": (lambda x: preprocess.preprocess_image_batch(x, 640, True), any_images),
        "resize and crop": (lambda x: preprocess.preprocess_image_batch(x, 224, False), any_images),
        "boxes to the original": (lambda s: postprocess._scale_to_original(s, 640), sizes),
        "mask resize": (postprocess._resize_masks_batched, tf.TensorSpec([None, None, 640, 640], tf.bool), sizes,
                        *geometry),
    }
    for name, (fn, *specs) in functions.items():
        ops = graph_ops(fn, *specs)
        small_float_math = [
            f"{op.type} {op.name}" for op in ops
            if "CPU" not in op.device and op.type not in ("Const", "Placeholder", "Identity")
            and op.outputs and all(o.dtype.is_floating and o.shape.rank is not None and o.shape.rank <= 2 for o in op.outputs)
        ]
        host_reads_images = [
            f"{op.type} {op.name}" for op in ops
            if "CPU" in op.device and any(i.shape.rank is None or i.shape.rank >= 3 for i in op.inputs)
        ]
        assert small_float_math == [] and host_reads_images == [], name
        assert any("CPU" in op.device for op in ops), name  # the arithmetic is there, pinned to the host
