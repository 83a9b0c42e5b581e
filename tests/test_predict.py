"""The Keras-style predictor: every kind of source, results that draw and serialise, clear errors."""

import json
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import tensorflow as tf
from conftest import REAL_PHOTOS

from tftrt_yolo.errors import InputError
from tftrt_yolo.inputs import encode_bgr

pytestmark = pytest.mark.slow


def same_detections(a, b, atol=1e-3):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert len(x) == len(y)
        np.testing.assert_allclose(x.boxes, y.boxes, atol=atol)
        np.testing.assert_array_equal(x.classes, y.classes)


@pytest.fixture(scope="module")
def detect(loaded):
    return loaded("detect")


@pytest.fixture(scope="module")
def images(demo_images):
    return demo_images("detect", 3)


@pytest.fixture(scope="module")
def by_path(detect, images):
    results = detect.predict([str(p) for p in images], verbose=False)
    assert sum(len(r) for r in results) > 0
    return results


def test_paths_folder_glob_and_call(detect, images, by_path, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, p in enumerate(images):
        (folder / f"{i}{p.suffix}").write_bytes(p.read_bytes())
    same_detections(by_path, detect.predict(folder, verbose=False))
    same_detections(by_path, detect.predict(str(folder / "*"), verbose=False))
    same_detections(by_path, detect([str(p) for p in images]))
    single = detect.predict(str(images[0]), verbose=False)
    same_detections(by_path[:1], single)
    assert single[0].path == str(images[0])


def test_arrays_video_and_tf_data(detect, images, by_path, tmp_path):
    bgr = [cv2.imread(str(p)) for p in images]
    same_detections(by_path, detect.predict(bgr, verbose=False))
    same_detections(by_path[:1], detect.predict(bgr[0], verbose=False))
    encoded = tf.data.Dataset.from_tensor_slices([p.read_bytes() for p in images])
    same_detections(by_path, detect.predict(encoded, verbose=False))
    same_detections(by_path, detect.predict(encoded.batch(2), verbose=False))
    rgb = tf.data.Dataset.from_generator(
        lambda: (im[..., ::-1] for im in bgr), output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
    )
    same_detections(by_path, detect.predict(rgb, verbose=False))
    # a video: every frame, in order, gives what the same decoded frame gives as an array
    size = bgr[0].shape[1], bgr[0].shape[0]
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, size)
    for frame in bgr:
        writer.write(cv2.resize(frame, size))
    writer.release()
    capture = cv2.VideoCapture(str(video))
    frames = [capture.read()[1] for _ in bgr]
    capture.release()
    from_video = detect.predict(str(video), verbose=False)
    assert [r.path for r in from_video] == [f"{video}:{i}" for i in range(len(bgr))]
    same_detections(detect.predict(frames, verbose=False), from_video)
    assert sum(len(r) for r in from_video) > 0
    # frames of one size go to the graph as pixels (`predict_images`), files encoded: the same results exactly
    from_batch = detect.predict(np.stack(frames), batch_size=2, verbose=False)
    as_bytes = detect.predict([encode_bgr(frame) for frame in frames], verbose=False)
    assert [r.path for r in from_batch] == [f"array:{i}" for i in range(len(frames))]
    for a, b, c, frame in zip(from_batch, from_video, as_bytes, frames):
        for field in ("boxes", "scores", "classes"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
            np.testing.assert_array_equal(getattr(a, field), getattr(c, field))
        np.testing.assert_array_equal(a.image, frame[..., ::-1])


def test_threads_predicting_arrays_at_once(detect, images):
    """Each thread fills its own batch buffer: images of different sizes predicted at once stay their own."""
    frames = [cv2.imread(str(p)) for p in images]
    expected = [detect.predict(frame, verbose=False)[0] for frame in frames]
    with ThreadPoolExecutor(len(frames)) as pool:
        for _ in range(3):
            for results, one in zip(pool.map(lambda f: detect.predict(np.stack([f, f]), verbose=False), frames), expected):
                assert [r.orig_shape for r in results] == [one.orig_shape] * 2
                for r in results:
                    np.testing.assert_array_equal(r.boxes, one.boxes)
                    np.testing.assert_array_equal(r.scores, one.scores)


def test_thresholds_change_results(detect):
    photo = str(REAL_PHOTOS[0])  # shapes the demo model half-recognises: scores spread over (0, 1)
    loose = detect.predict(photo, conf=0.01, verbose=False)[0]
    strict = detect.predict(photo, conf=0.5, verbose=False)[0]
    capped = detect.predict(photo, conf=0.01, max_det=1, verbose=False)[0]
    merged = detect.predict(photo, conf=0.01, iou=0.05, verbose=False)[0]
    assert len(loose) > len(strict) and len(capped) == 1 and len(merged) < len(loose)
    assert (loose.scores > 0.01).all() and (strict.scores > 0.5).all()
    assert capped.scores[0] == loose.scores.max()


def test_result_plot_save_and_json(by_path, tmp_path):
    result = by_path[0]
    image = result.image
    plotted = result.plot()
    assert plotted.shape == image.shape and plotted.dtype == np.uint8
    assert (plotted != image).any()
    saved = result.save(tmp_path / "out" / "annotated.jpg")
    assert cv2.imread(str(saved)).shape == image.shape
    data = json.loads(result.to_json())
    assert (data["height"], data["width"]) == image.shape[:2]
    assert len(data["detections"]) == len(result)
    first = data["detections"][0]
    assert set(first) == {"box", "conf", "class", "name"}
    assert first["name"] == result.names[first["class"]]
    np.testing.assert_allclose(first["box"], result.boxes[0], atol=0.01)


@pytest.mark.parametrize("task, field", [("segment", "polygon"), ("pose", "keypoints"), ("obb", "rbox")])
def test_task_fields(task, field, loaded, demo_images, tmp_path):
    result = loaded(task).predict(str(demo_images(task, 1)[0]), verbose=False)[0]
    assert len(result) > 0
    detection = result.to_dict()["detections"][0]
    assert field in detection
    if task == "segment":
        assert result.masks.shape == (len(result), *result.orig_shape)
        assert result.masks.any(axis=(1, 2)).all()
    if task == "pose":
        assert result.keypoints.shape[1:] == tuple(loaded(task).metadata.info.kpt_shape)
    if task == "obb":
        assert result.rboxes.shape == (len(result), 5)
    assert result.save(tmp_path / f"{task}.png").exists()


def test_classify_result(loaded, demo_images):
    model = loaded("classify")
    path = demo_images("classify", 1)[0]
    result = model.predict(str(path), verbose=False)[0]
    assert len(result.top5) == min(5, len(model.names))
    assert np.isclose(result.probs.sum(), 1.0, atol=1e-3)
    assert result.top5_scores[0] == result.probs.max()
    assert result.to_dict()["top5"][0]["name"] == model.names[int(result.top5[0])]
    assert path.parent.name == model.names[int(result.top5[0])]  # the demo model knows its own val data


def test_bad_inputs(detect, images, tmp_path):
    """(Unreadable images: tests/test_reliability.py.)"""
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "notes.txt").write_text("x")
    cases = [
        (tmp_path / "missing.jpg", "not found"),
        (empty, "no images or videos in folder"),
        (tmp_path / "notes.txt", "unsupported file type"),
        (np.zeros((64, 64), np.uint8), "uint8 arrays of shape \\(H, W, 3\\)"),
        (np.zeros((64, 64, 3), np.float32), "dtype float32"),
        (np.zeros((2, 64, 64, 4), np.uint8), "image array 0 has dtype uint8 and shape \\(64, 64, 4\\)"),
        (np.zeros((0, 64, 64, 3), np.uint8), "the source is empty"),
        ([], "empty"),
        (12, "unsupported image source"),
    ]
    for source, message in cases:
        with pytest.raises(InputError, match=message):
            detect.predict(source, verbose=False)
    with pytest.raises(InputError, match="conf and iou"):
        detect.predict(str(images[0]), conf=1.5)


def test_summary(detect):
    text = detect.summary()
    assert "detect" in text and detect.names[0] in text and "serving_default" in text
