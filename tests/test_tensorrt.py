"""The TF-TRT step: network inputs for building and calibration, calibration data, cache keys, the
fail-fast check, and (where TF-TRT is usable) real conversions of a small network."""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tftrt_yolo.environment import check_environment
from tftrt_yolo.errors import EnvironmentNotReady, InputError
from tftrt_yolo.report import build_report
from tftrt_yolo.files import sha256_file
from tftrt_yolo.calibration import MIN_CALIBRATION_IMAGES, CalibrationDataWarning, collect_calibration_images
from tftrt_yolo.conversion_cache import conversion_cache_key, diff_cache_keys
from tftrt_yolo.tensorrt import (
    PRECISIONS,
    build_input_fn,
    calibration_input_fn,
    convert_network,
    encoded_image,
    network_inputs,
)

ASSETS = Path(importlib.util.find_spec("ultralytics").submodule_search_locations[0]) / "assets"


@pytest.fixture(scope="module")
def environment():
    return check_environment()


@pytest.fixture(scope="module")
def pixels():
    """Three real RGB images of different sizes."""
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((48, 64), (33, 20), (64, 64))]


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory, pixels):
    """bus.jpg and zidane.jpg from the ultralytics wheel, plus lossless PNG/BMP images written with cv2."""
    root = tmp_path_factory.mktemp("images")
    for name in ("bus.jpg", "zidane.jpg"):
        (root / name).write_bytes((ASSETS / name).read_bytes())
    for i, rgb in enumerate(pixels):
        assert cv2.imwrite(str(root / f"img{i}.{'bmp' if i == 2 else 'png'}"), rgb[..., ::-1])
    return root


@pytest.fixture(scope="module")
def image_paths(image_dir):
    return sorted(image_dir.iterdir())  # bus.jpg, img0.png, img1.png, img2.bmp, zidane.jpg


def _batches(input_fn):
    return list(input_fn())


# network inputs: what engine building and INT8 calibration feed the network

IMGSZ = 64


def _preprocess(items):
    return network_inputs(items, IMGSZ, letterboxed=True)


def test_network_inputs_are_the_models_own_preprocessing(loaded, image_paths):
    """The calibrator sees exactly what serving feeds the network: the SavedModel's own letterbox, bit for bit."""
    model = loaded("detect")
    files = [image_paths[0], image_paths[1], image_paths[4]]  # bus.jpg, a PNG, zidane.jpg
    ours = network_inputs(files, model.imgsz, letterboxed=True)
    served = model._saved_model.preprocess(tf.constant([p.read_bytes() for p in files])).numpy()
    assert ours.shape == (3, model.imgsz, model.imgsz, 3) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, served)


def test_images_opencv_reads_but_tensorflow_does_not_are_read_like_ultralytics(tmp_path, pixels):
    tiff = tmp_path / "img.tiff"
    assert cv2.imwrite(str(tiff), pixels[0][..., ::-1])
    decoded = tf.io.decode_image(encoded_image(tiff), channels=3).numpy()  # re-encoded losslessly
    np.testing.assert_array_equal(decoded, pixels[0])
    (tmp_path / "fake.jpg").write_text("not an image")
    with pytest.raises(InputError, match="fake.jpg is not an image"):
        encoded_image(tmp_path / "fake.jpg")
    with pytest.raises(InputError, match="cannot read image"):
        encoded_image(tmp_path / "gone.jpg")


def test_build_inputs_static_batch_is_exactly_max_batch(image_paths):
    samples = _preprocess(image_paths[:3])
    (batch,) = _batches(build_input_fn(4, False, samples))
    assert list(batch) == ["images"] and batch["images"].shape == (4, IMGSZ, IMGSZ, 3)
    np.testing.assert_array_equal(batch["images"], samples[[0, 1, 2, 0]])  # samples cycled


def test_build_inputs_dynamic_batch_covers_every_size(image_paths):
    samples = _preprocess(image_paths)
    batches = _batches(build_input_fn(5, True, samples))
    assert [len(b["images"]) for b in batches] == [1, 2, 3, 4, 5]
    assert all((b["images"] == samples[: len(b["images"])]).all() for b in batches)
    assert [len(b["images"]) for b in _batches(build_input_fn(1, True, samples))] == [1]


def test_build_inputs_errors(image_paths):
    with pytest.raises(InputError, match="max_batch"):
        build_input_fn(0, True, _preprocess(image_paths[:1]))
    with pytest.raises(InputError, match="at least one sample image"):
        build_input_fn(4, False, np.zeros((0, IMGSZ, IMGSZ, 3), np.float32))


def test_calibration_batches_wrap_deterministically(image_paths):
    fn = calibration_input_fn(image_paths, 2, _preprocess)
    batches = _batches(fn)
    each = _preprocess(image_paths)
    assert [b["images"].shape for b in batches] == [(2, IMGSZ, IMGSZ, 3)] * 3  # 5 images: all batches one shape
    np.testing.assert_array_equal(np.concatenate([b["images"] for b in batches]), each[[0, 1, 2, 3, 4, 0]])
    again = _batches(fn)  # the generator function can be called again
    assert all((a["images"] == b["images"]).all() for a, b in zip(batches, again))
    (only,) = _batches(calibration_input_fn(image_paths[:2], 4, _preprocess))  # fewer images than a batch
    np.testing.assert_array_equal(only["images"], each[[0, 1, 0, 1]])


def test_calibration_input_errors(tmp_path, image_paths):
    with pytest.raises(InputError, match="at least one image"):
        calibration_input_fn([], 2, _preprocess)
    with pytest.raises(InputError, match="must be >= 1"):
        calibration_input_fn(image_paths, 0, _preprocess)
    (tmp_path / "fake.jpg").write_text("not an image")
    with pytest.raises(InputError, match="fake.jpg is not an image"):
        _batches(calibration_input_fn([tmp_path / "fake.jpg"], 1, _preprocess))


# collect_calibration_images


def _collect(data, task="detect"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = collect_calibration_images(data, task)
    return found, [w for w in caught if issubclass(w.category, CalibrationDataWarning)]


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff")
    return path


def test_collect_from_a_folder_recursively_sorted(tmp_path):
    # every format Ultralytics reads (OpenCV decodes the ones TensorFlow does not)
    wanted = [_touch(tmp_path / n) for n in ("b/2.jpg", "a.PNG", "b/1.bmp", "c/d/e.jpeg", "x.webp", "y.tif")]
    for other in ("notes.txt", "clip.mp4", "labels/y.txt"):
        _touch(tmp_path / other)
    found, warned = _collect(tmp_path)
    assert found == sorted(wanted) and all(p.is_absolute() for p in found)
    assert len(warned) == 1 and f"on 6 images; {MIN_CALIBRATION_IMAGES}+" in str(warned[0].message)


def test_collect_from_a_dataset_yaml(tmp_path, monkeypatch):
    root = tmp_path / "ds"
    val = [_touch(root / "images" / "val" / f"{i}.jpg") for i in range(3)]
    _touch(root / "images" / "train" / "t.jpg")
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames: {0: a}\n")  # no path:
    assert _collect(root / "data.yaml")[0] == val
    # path: relative to the YAML's folder, from any working directory
    (tmp_path / "outside.yaml").write_text("path: ds\nval: images/val\n")
    monkeypatch.chdir(root / "images")
    assert _collect(tmp_path / "outside.yaml")[0] == val
    # Ultralytics .txt image lists ("./" relative to the list) and lists of splits
    (root / "val.txt").write_text("./images/val/2.jpg\n./images/val/0.jpg\n")
    (root / "list.yaml").write_text(f"path: {root}\nval: [val.txt, images/train]\n")
    assert _collect(root / "list.yaml")[0] == sorted([val[0], val[2], root / "images" / "train" / "t.jpg"])


def test_collect_classify_dataset_root_uses_val(tmp_path):
    val = [_touch(tmp_path / "val" / c / "1.jpg") for c in ("cat", "dog")]
    _touch(tmp_path / "train" / "cat" / "2.jpg")
    assert _collect(tmp_path, "classify")[0] == val
    assert len(_collect(tmp_path, "detect")[0]) == 3  # any other task: the whole folder


def test_collect_from_a_list_and_enough_images_do_not_warn(tmp_path):
    paths = [_touch(tmp_path / f"{i:03d}.jpg") for i in range(MIN_CALIBRATION_IMAGES)]
    found, warned = _collect([str(p) for p in reversed(paths)])
    assert found == paths and warned == []


def test_collect_errors(tmp_path):
    with pytest.raises(InputError, match="no calibration data given"):
        collect_calibration_images(None)
    with pytest.raises(InputError, match="does not exist"):
        collect_calibration_images(tmp_path / "coco8.yaml")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no calibration images .*\.bmp, .*\.jpg, .*\.png, .*\.tiff"):
        collect_calibration_images(tmp_path / "empty")
    (tmp_path / "noval.yaml").write_text("train: images\n")
    with pytest.raises(InputError, match="no `val:` split"):
        collect_calibration_images(tmp_path / "noval.yaml")
    (tmp_path / "gone.yaml").write_text("val: images/val\n")
    with pytest.raises(InputError, match="does not exist .datasets are not downloaded"):
        collect_calibration_images(tmp_path / "gone.yaml")
    with pytest.raises(InputError, match="calibration image .*missing.jpg does not exist"):
        collect_calibration_images([tmp_path / "missing.jpg"])
    _touch(tmp_path / "x.mp4")
    with pytest.raises(InputError, match="calibration reads .* files only"):
        collect_calibration_images([tmp_path / "x.mp4"])


# cache keys


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "yolov8n.pt"
    path.write_bytes(b"weights v1")
    return path


def _key(model_file, environment, **changes):
    args = dict(precision="fp16", max_batch=4, dynamic=False, imgsz=640, environment=environment)
    return conversion_cache_key(sha256_file(model_file), **(args | changes))


def test_cache_key_contents(model_file, environment):
    import hashlib

    key = _key(model_file, environment)
    assert json.loads(json.dumps(key)) == key
    assert key["model_sha256"] == hashlib.sha256(b"weights v1").hexdigest()
    assert key["tensorflow"] == "2.17.1" and key["tensorrt_linked"] == "8.6.1"
    assert key["calibration_data_sha256"] is None  # calibration data does not matter below INT8
    assert (key["workspace_gib"], key["minimum_segment_size"], key["max_cached_engines"]) == (4, 3, 1)
    assert diff_cache_keys(key, _key(model_file, environment)) == []


def test_cache_key_changes_are_explained(model_file, environment, image_paths, tmp_path):
    old = _key(model_file, environment)
    model_file.write_bytes(b"weights v2")
    changed = diff_cache_keys(old, _key(model_file, environment, dynamic=True, workspace_gib=8))
    assert changed[0].startswith(f"model file changed: {old['model_sha256'][:12]}... -> ")
    assert changed[1:] == ["dynamic changed: False -> True", "workspace gib changed: 4 -> 8"]

    images = [tmp_path / p.name for p in image_paths]
    for src, dst in zip(image_paths, images):
        dst.write_bytes(src.read_bytes())
    int8 = _key(model_file, environment, precision="int8", calibration_images=images, calibration_batch=8)
    messages = diff_cache_keys(_key(model_file, environment), int8)
    assert messages[0] == "precision changed: fp16 -> int8"
    assert "number of calibration images changed: None -> 5" in messages
    assert "calibration batch changed: None -> 8" in messages

    # Same content, new mtimes: reuse. New content: recalibrate.
    os.utime(images[0], (1, 1))
    assert diff_cache_keys(int8, _key(model_file, environment, precision="int8", calibration_images=images,
                                      calibration_batch=8)) == []  # fmt: skip
    images[1].write_bytes(image_paths[0].read_bytes())
    (message,) = diff_cache_keys(int8, _key(model_file, environment, precision="int8", calibration_images=images,
                                            calibration_batch=8))  # fmt: skip
    assert message.startswith("calibration images (content) changed: ")


def test_cache_key_from_an_older_version(model_file, environment):
    new = _key(model_file, environment)
    old = {k: v for k, v in new.items() if k != "profile_strategy"} | {"retired": 1}
    assert diff_cache_keys(old, new) == [
        "profile strategy changed: <missing> -> Range",
        "retired changed: 1 -> <missing>",
    ]


def test_int8_cache_key_needs_calibration_images(model_file, environment):
    with pytest.raises(InputError, match="calibration images"):
        _key(model_file, environment, precision="int8")


# convert_network: arguments first, then the machine


class TinyNetwork(tf.Module):
    """A network shaped like onnx2tf's: float32 NHWC `images` in, `output_0` [N, 5, cells] out."""

    def __init__(self, batch: int | None):
        super().__init__()
        rng = np.random.default_rng(0)
        self.w1 = tf.constant(rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32))
        self.w2 = tf.constant(rng.normal(0, 0.3, (3, 3, 8, 5)).astype(np.float32))
        self.serve = tf.function(self._serve, input_signature=[tf.TensorSpec([batch, IMGSZ, IMGSZ, 3], tf.float32, name="images")])

    def _serve(self, images):
        y = tf.nn.conv2d(tf.nn.relu(tf.nn.conv2d(images, self.w1, 1, "SAME")), self.w2, 2, "SAME")
        return {"output_0": tf.transpose(tf.reshape(tf.sigmoid(y), [tf.shape(y)[0], -1, 5]), [0, 2, 1])}


@pytest.fixture(scope="module")
def tiny_networks(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_networks")
    out = {}
    for kind, batch in (("dynamic", None), ("static", 4)):
        network = TinyNetwork(batch)
        tf.saved_model.save(network, str(root / kind), signatures={"serving_default": network.serve})
        out[kind] = root / kind
    return out


def _convert(model, out, precision, images, **kw):
    build = build_input_fn(4, False, _preprocess(images))
    calib = calibration_input_fn(images, 4, _preprocess) if precision == "int8" else None
    convert_network(model, out, precision=precision, build_input_fn=build, calibration_input_fn=calib, **kw)


def test_convert_fails_fast_where_tftrt_cannot_run(tiny_networks, tmp_path, environment, image_paths):
    if environment.tftrt_usable:
        pytest.skip("TF-TRT is usable here: the integration tests convert instead")
    out = tmp_path / "trt"
    for precision in PRECISIONS:
        with pytest.raises(EnvironmentNotReady) as err:
            _convert(tiny_networks["static"], out, precision, image_paths[:1])
        assert not out.exists()
    message = str(err.value)
    assert message.startswith("TF-TRT cannot run on this machine")
    assert "libnvinfer.so.8.6.1" in message and "see: BUILD.md#gpu-set-up-where-tf-trt-works" in message
    assert "--dry_run" in message  # what can be checked without TensorRT


def test_convert_checks_arguments_first(tiny_networks, tmp_path, image_paths):
    model, out = tiny_networks["static"], tmp_path / "trt"
    build = build_input_fn(4, False, _preprocess(image_paths[:1]))
    calib = calibration_input_fn(image_paths[:1], 4, _preprocess)
    cases = [
        (dict(precision="int4"), "unknown precision 'int4'"),
        (dict(precision="fp16", profile_strategy="ImplicitBatchModeCompatible"), "unknown profile strategy"),
        (dict(precision="int8"), "INT8 needs calibration_input_fn"),
        (dict(precision="fp16", calibration_input_fn=calib), "fp32 and fp16 take none"),
        (dict(precision="fp16", minimum_segment_size=0), "minimum_segment_size"),
    ]
    for kwargs, match in cases:
        with pytest.raises(InputError, match=match):
            convert_network(model, out, build_input_fn=build, **kwargs)
    with pytest.raises(InputError, match="not a SavedModel directory"):
        convert_network(tmp_path, out, precision="fp16", build_input_fn=build)
    (out / "old").mkdir(parents=True)
    with pytest.raises(InputError, match="exists and is not empty"):
        convert_network(model, out, precision="fp16", build_input_fn=build)
    assert os.listdir(out) == ["old"]


# TF-TRT integration: only where check_environment() says TF-TRT is usable.

TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "int8": 0.1}  # on sigmoid scores in [0, 1]
MAX_BATCH = 4


@pytest.fixture(scope="module")
def tftrt_usable(environment):
    if not environment.tftrt_usable:
        pytest.skip(environment.reason())
    return environment


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_tftrt_conversion(tftrt_usable, tiny_networks, kind, precision, image_paths, tmp_path):
    model, out = tiny_networks[kind], tmp_path / "trt"
    dynamic = kind == "dynamic"
    convert_network(
        model,
        out,
        precision=precision,
        build_input_fn=build_input_fn(MAX_BATCH, dynamic, _preprocess(image_paths)),
        calibration_input_fn=calibration_input_fn(image_paths, MAX_BATCH, _preprocess) if precision == "int8" else None,
        engine_tag="tiny",
    )
    report = build_report(out)
    assert len(report.engines) == 1 and not report.problems, report.format()
    (engine,) = report.engines
    assert engine.name == "TRTEngineOp_tiny_000" and engine.ops.get("Conv2D") == 2
    assert report.engine_assets == ("trt-serialized-engine.TRTEngineOp_tiny_000",)
    assert engine.precision_mode == precision.upper() and engine.dynamic_shape
    assert engine.serialized and not engine.allow_build_at_runtime  # served models never build
    assert engine.calibrated == (precision == "int8")

    reference = tf.saved_model.load(str(model)).signatures["serving_default"]
    converted = tf.saved_model.load(str(out)).signatures["serving_default"]
    samples = _preprocess(image_paths)
    sizes = range(1, MAX_BATCH + 2) if dynamic else (MAX_BATCH,)  # dynamic: N > max_batch runs the native segment
    for n in sizes:
        batch = tf.constant(samples[np.arange(n) % len(samples)])
        want, got = reference(images=batch)["output_0"].numpy(), converted(images=batch)["output_0"].numpy()
        np.testing.assert_allclose(got, want, atol=TOLERANCE[precision])
