"""The TF-TRT step: input generators, calibration data, cache keys, the fail-fast check,
and (where TF-TRT is usable) real conversions of a small end-to-end model."""

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

from test_report import save_tiny_model
from tftrt_yolo.environment import check_environment
from tftrt_yolo.errors import EnvironmentNotReady, InputError
from tftrt_yolo.report import build_report
from tftrt_yolo.source import sha256_file
from tftrt_yolo.tensorrt import (
    MIN_CALIBRATION_IMAGES,
    PRECISIONS,
    CalibrationDataWarning,
    build_input_fn,
    calibration_input_fn,
    collect_calibration_images,
    conversion_cache_key,
    convert_with_tensorrt,
    diff_cache_keys,
)

ASSETS = Path(importlib.util.find_spec("ultralytics").submodule_search_locations[0]) / "assets"
THRESHOLDS = {"conf": 0.25, "iou": 0.7, "max_det": 300}


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


# build_input_fn


def test_build_inputs_static_batch_is_exactly_max_batch(image_paths):
    (batch,) = _batches(build_input_fn(4, False, image_paths[:3], **THRESHOLDS))
    assert batch["images"].shape == (4,) and batch["images"].dtype == object
    assert list(batch["images"]) == [image_paths[i % 3].read_bytes() for i in range(4)]  # samples cycled
    tensors = {k: tf.convert_to_tensor(v) for k, v in batch.items()}
    assert tensors["images"].dtype == tf.string and tensors["images"].shape == (4,)
    assert (tensors["conf"].dtype, tensors["iou"].dtype, tensors["max_det"].dtype) == (tf.float32, tf.float32, tf.int32)
    assert tensors["conf"].shape == tensors["iou"].shape == tensors["max_det"].shape == (4,)  # one per image
    assert (batch["conf"] == 0.25).all() and np.allclose(batch["iou"], 0.7) and (batch["max_det"] == 300).all()


def test_build_inputs_dynamic_batch_covers_every_size(image_paths):
    data = [p.read_bytes() for p in image_paths]
    batches = _batches(build_input_fn(5, True, data, **THRESHOLDS))
    assert [len(b["images"]) for b in batches] == [1, 2, 3, 4, 5]
    assert all(list(b["images"]) == data[: len(b["images"])] for b in batches)
    assert [len(b["images"]) for b in _batches(build_input_fn(1, True, data, **THRESHOLDS))] == [1]


def test_build_inputs_errors(image_paths):
    with pytest.raises(InputError, match="max_batch"):
        build_input_fn(0, True, image_paths, **THRESHOLDS)
    with pytest.raises(InputError, match="at least one sample image"):
        build_input_fn(4, False, [], **THRESHOLDS)


# calibration_input_fn


def test_calibration_batches_wrap_deterministically(image_paths):
    fn = calibration_input_fn(image_paths, batch=2, max_batch=8, **THRESHOLDS)  # 2 x 2 = 4 per batch
    batches = _batches(fn)
    data = [p.read_bytes() for p in image_paths]
    assert [len(b["images"]) for b in batches] == [4, 4]  # 5 images: all batches one shape
    assert list(batches[0]["images"]) == data[0:4]
    assert list(batches[1]["images"]) == [data[4], data[0], data[1], data[2]]  # wrapped, nothing lost
    assert {x for b in batches for x in b["images"]} == set(data)
    again = _batches(fn)  # the generator function can be called again (TF-TRT calls it once per run)
    assert all(list(a["images"]) == list(b["images"]) for a, b in zip(batches, again))
    assert all(b["conf"].dtype == np.float32 and b["max_det"].dtype == np.int32 for b in batches)


def test_calibration_batch_is_capped_by_what_the_model_accepts(image_paths):
    capped = _batches(calibration_input_fn(image_paths, 2, max_batch=3, **THRESHOLDS))
    assert [len(b["images"]) for b in capped] == [3, 3]
    # Fewer images than a batch: one batch, the images repeated in order.
    (only,) = _batches(calibration_input_fn(image_paths[:2], 4, max_batch=8, **THRESHOLDS))
    assert list(only["images"]) == [p.read_bytes() for p in image_paths[:2]] * 4


def test_calibration_bytes_decode_to_the_original_pixels(image_paths, pixels):
    (batch,) = _batches(calibration_input_fn(image_paths, 3, max_batch=6, **THRESHOLDS))
    decoded = [tf.io.decode_image(b, channels=3, expand_animations=False).numpy() for b in batch["images"][:5]]
    for rgb, got in zip(pixels, decoded[1:4]):  # img0.png, img1.png, img2.bmp: lossless
        np.testing.assert_array_equal(got, rgb)
    for path, got in ((image_paths[0], decoded[0]), (image_paths[4], decoded[4])):  # the JPEGs
        assert got.shape == cv2.imread(str(path)).shape
        assert batch["images"][image_paths.index(path)] == path.read_bytes()


def test_calibration_input_errors(tmp_path, image_paths):
    with pytest.raises(InputError, match="at least one image"):
        calibration_input_fn([], 2, max_batch=4, **THRESHOLDS)
    with pytest.raises(InputError, match="must be >= 1"):
        calibration_input_fn(image_paths, 0, max_batch=4, **THRESHOLDS)
    (tmp_path / "fake.jpg").write_text("not an image")
    with pytest.raises(InputError, match="fake.jpg is not a JPEG, PNG or BMP"):
        _batches(calibration_input_fn([tmp_path / "fake.jpg"], 1, max_batch=2, **THRESHOLDS))
    with pytest.raises(InputError, match="cannot read image"):
        _batches(calibration_input_fn([tmp_path / "gone.jpg"], 1, max_batch=2, **THRESHOLDS))


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
    wanted = [_touch(tmp_path / n) for n in ("b/2.jpg", "a.PNG", "b/1.bmp", "c/d/e.jpeg")]
    for other in ("notes.txt", "x.webp", "y.tif"):
        _touch(tmp_path / other)
    found, warned = _collect(tmp_path)
    assert found == sorted(wanted) and all(p.is_absolute() for p in found)
    assert len(warned) == 1 and f"on 4 images; {MIN_CALIBRATION_IMAGES}+" in str(warned[0].message)


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
    with pytest.raises(InputError, match=r"no calibration images .*\.jpg, \.jpeg, \.png, \.bmp"):
        collect_calibration_images(tmp_path / "empty")
    (tmp_path / "noval.yaml").write_text("train: images\n")
    with pytest.raises(InputError, match="no `val:` split"):
        collect_calibration_images(tmp_path / "noval.yaml")
    (tmp_path / "gone.yaml").write_text("val: images/val\n")
    with pytest.raises(InputError, match="does not exist .datasets are not downloaded"):
        collect_calibration_images(tmp_path / "gone.yaml")
    with pytest.raises(InputError, match="calibration image .*missing.jpg does not exist"):
        collect_calibration_images([tmp_path / "missing.jpg"])
    _touch(tmp_path / "x.webp")
    with pytest.raises(InputError, match="decodes .* files only"):
        collect_calibration_images([tmp_path / "x.webp"])


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


# convert_with_tensorrt: arguments first, then the machine


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    return {"dynamic": save_tiny_model(root / "dynamic", None), "static": save_tiny_model(root / "static", 4)}


def _convert(model, out, precision="fp16", images=(ASSETS / "bus.jpg",), **kw):
    build = build_input_fn(4, False, list(images), **THRESHOLDS)
    calib = calibration_input_fn(list(images), 2, max_batch=4, **THRESHOLDS) if precision == "int8" else None
    convert_with_tensorrt(model, out, precision=precision, build_input_fn=build, calibration_input_fn=calib, **kw)


def test_convert_fails_fast_where_tftrt_cannot_run(tiny_models, tmp_path, environment):
    if environment.tftrt_usable:
        pytest.skip("TF-TRT is usable here: the integration tests convert instead")
    out = tmp_path / "trt"
    for precision in PRECISIONS:
        with pytest.raises(EnvironmentNotReady) as err:
            _convert(tiny_models["static"], out, precision)
        assert not out.exists()
    message = str(err.value)
    assert message.startswith("TF-TRT cannot run on this machine")
    assert "libnvinfer.so.8.6.1" in message and "see: BUILD.md#gpu-set-up-where-tf-trt-works" in message


def test_convert_checks_arguments_first(tiny_models, tmp_path):
    model, out = tiny_models["static"], tmp_path / "trt"
    build = build_input_fn(4, False, [ASSETS / "bus.jpg"], **THRESHOLDS)
    calib = calibration_input_fn([ASSETS / "bus.jpg"], 2, max_batch=4, **THRESHOLDS)
    cases = [
        (dict(precision="int4"), "unknown precision 'int4'"),
        (dict(precision="fp16", profile_strategy="ImplicitBatchModeCompatible"), "unknown profile strategy"),
        (dict(precision="int8"), "INT8 needs calibration_input_fn"),
        (dict(precision="fp16", calibration_input_fn=calib), "fp32 and fp16 take none"),
        (dict(precision="fp16", minimum_segment_size=0), "minimum_segment_size"),
    ]
    for kwargs, match in cases:
        with pytest.raises(InputError, match=match):
            convert_with_tensorrt(model, out, build_input_fn=build, **kwargs)
    with pytest.raises(InputError, match="not a SavedModel directory"):
        convert_with_tensorrt(tmp_path, out, precision="fp16", build_input_fn=build)
    (out / "old").mkdir(parents=True)
    with pytest.raises(InputError, match="exists and is not empty"):
        convert_with_tensorrt(model, out, precision="fp16", build_input_fn=build)
    assert os.listdir(out) == ["old"]


# TF-TRT integration: only where check_environment() says TF-TRT is usable.

TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "int8": 0.1}  # on sigmoid scores in [0, 1]
MAX_BATCH = 4


@pytest.fixture(scope="module")
def tftrt_usable(environment):
    if not environment.tftrt_usable:
        pytest.skip(environment.reason())
    return environment


def _call(fn, images):
    out = fn(
        images=tf.constant(images),
        conf=tf.constant(0.25),
        iou=tf.constant(0.7),
        max_det=tf.constant(300, tf.int32),
    )
    return {k: v.numpy() for k, v in out.items()}


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind", ["static", "dynamic"])
def test_tftrt_conversion(tftrt_usable, tiny_models, kind, precision, image_paths, tmp_path):
    model, out = tiny_models[kind], tmp_path / "trt"
    data = [p.read_bytes() for p in image_paths]
    dynamic = kind == "dynamic"
    calib = calibration_input_fn(data, 2, max_batch=MAX_BATCH, **THRESHOLDS) if precision == "int8" else None
    convert_with_tensorrt(
        model,
        out,
        precision=precision,
        build_input_fn=build_input_fn(MAX_BATCH, dynamic, data, **THRESHOLDS),
        calibration_input_fn=calib,
    )

    report = build_report(out)
    assert report.engines, report.format()
    assert sum(e.ops.get("Conv2D", 0) for e in report.engines) == 2
    assert {a.removeprefix("trt-serialized-engine.") for a in report.engine_assets} == {e.name for e in report.engines}
    for engine in report.engines:
        assert engine.precision_mode == precision.upper() and engine.dynamic_shape
        assert engine.serialized and not engine.allow_build_at_runtime  # served models never build
        assert engine.calibrated == (precision == "int8")

    reference = tf.saved_model.load(str(model)).signatures["serving_default"]
    converted = tf.saved_model.load(str(out)).signatures["serving_default"]
    sizes = range(1, MAX_BATCH + 2) if dynamic else range(1, MAX_BATCH + 1)  # dynamic: N > max_batch runs in TF
    for n in sizes:
        batch = [data[i % len(data)] for i in range(n)]
        want, got = _call(reference, batch), _call(converted, batch)
        assert got["scores"].shape == want["scores"].shape == (n, 256)
        np.testing.assert_allclose(got["scores"], want["scores"], atol=TOLERANCE[precision])
