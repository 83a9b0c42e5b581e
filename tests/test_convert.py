"""convert(): metadata, signatures, batching, XLA, and clear errors that leave nothing behind."""

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import tensorflow as tf
import torch
from conftest import REAL_PHOTOS
from tensorflow.core.protobuf import saved_model_pb2

import tftrt_yolo
from tftrt_yolo.demo import demo_model
from tftrt_yolo.errors import InputError
from tftrt_yolo.metadata import read_metadata
from tftrt_yolo.files import sha256_file
from tftrt_yolo.tasks import SPECS, TASKS


def model_folders(root):
    """Every file under root (a failed conversion must leave none)."""
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_signatures_and_metadata(task, converted):
    path = converted(task)
    meta = read_metadata(path)
    assert meta.info.task == task
    assert meta.info.source_sha256 == sha256_file(demo_model(task))
    assert meta.batch == 2 and meta.dynamic is False and meta.backend == "tensorflow"
    assert {"tensorflow", "ultralytics", "onnx2tf"} <= set(meta.versions)
    assert meta.info.names == tftrt_yolo._ultralytics.YOLO(str(demo_model(task))).names
    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == {"serving_default", "predict_images"}
    serve = loaded.signatures["serving_default"]
    inputs = serve.structured_input_signature[1]
    assert inputs["images"].dtype == tf.string and inputs["images"].shape.as_list() == [None]
    assert {"conf", "iou", "max_det"} <= set(inputs)
    assert set(serve.structured_outputs) == set(SPECS[task].outputs) | {"image_sizes"}
    assert path.parent.name == task and path.name == "1"  # TensorFlow Serving layout: <name>/<version>


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_empty_batch_gives_empty_results(task, converted):
    """Signatures called directly (as TensorFlow Serving may) with no images return empty results."""
    saved = tf.saved_model.load(str(converted(task)))
    thresholds = dict(conf=tf.constant([0.25]), iou=tf.constant([0.7]), max_det=tf.constant([300]))
    for name, images in (("serving_default", tf.constant([], tf.string)),
                         ("predict_images", tf.zeros([0, 480, 640, 3], tf.uint8))):
        outputs = saved.signatures[name](images=images, **thresholds)
        assert set(outputs) == set(SPECS[task].outputs) | {"image_sizes"}
        assert all(value.shape[0] == 0 for value in outputs.values()), (name, outputs)


@pytest.mark.slow
def test_image_tensor_signature_matches_encoded(loaded):
    model = loaded("detect")
    encoded = [p.read_bytes() for p in REAL_PHOTOS]
    saved = tf.saved_model.load(str(model.path))
    thresholds = dict(conf=tf.constant([0.25]), iou=tf.constant([0.7]), max_det=tf.constant([300]))
    by_bytes = saved.signatures["serving_default"](images=tf.constant(encoded[:1]), **thresholds)
    rgb = cv2.cvtColor(cv2.imread(str(REAL_PHOTOS[0])), cv2.COLOR_BGR2RGB)[None]  # the graph decodes JPEG as OpenCV does
    by_tensor = saved.signatures["predict_images"](images=rgb, **thresholds)
    for key in ("boxes", "scores", "classes", "num_detections", "image_sizes"):
        np.testing.assert_allclose(by_bytes[key].numpy(), by_tensor[key].numpy(), atol=1e-4)


@pytest.mark.slow
def test_static_batch_pads_and_refuses_larger_batches(loaded, demo_images):
    model = loaded("detect")  # batch 2, static
    images = [p.read_bytes() for p in demo_images("detect", 3)]
    one = model.predict_encoded(images[:1], conf=0.25, iou=0.7, max_det=300)
    two = model.predict_encoded(images[:2], conf=0.25, iou=0.7, max_det=300)
    n = one["num_detections"][0]
    np.testing.assert_allclose(one["boxes"][0, :n], two["boxes"][0, :n], atol=1e-3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 2 images"):
        model.predict_encoded(images, conf=0.25, iou=0.7, max_det=300)
    with pytest.raises(InputError, match="between 1 and 2"):
        model.predict(str(demo_images("detect", 1)[0]), batch_size=3)


def xla_compiled_functions(saved_model_dir) -> list[str]:
    """The functions of a SavedModel that XLA must compile (attribute `_XlaMustCompile` true)."""
    saved = saved_model_pb2.SavedModel.FromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    return [f.signature.name for f in saved.meta_graphs[0].graph_def.library.function if f.attr["_XlaMustCompile"].b]


@pytest.mark.slow
def test_dynamic_batch_and_xla_give_the_same_detections(converted, loaded, demo_images):
    paths = [str(p) for p in demo_images("detect", 4)]
    reference = loaded("detect").predict(paths, verbose=False)
    dynamic = tftrt_yolo.load(converted("detect", batch=4, dynamic=True))
    assert dynamic.metadata.dynamic and dynamic.batch == 4
    xla_dir = converted("detect", backend="xla")
    xla = tftrt_yolo.load(xla_dir)
    compiled = xla_compiled_functions(xla_dir)  # the network, the letterbox and, on a GPU, NMS
    pieces = ("preprocess_image_batch", "capped_greedy_nms")
    assert all(any(piece in f for f in compiled) for piece in pieces)
    assert [f for f in compiled if not any(piece in f for piece in pieces)]  # the network function
    # the plain graph has no XLA in it: TensorFlow Serving 2.17 has no XLA compiler for GPUs
    assert xla_compiled_functions(loaded("detect").path) == []
    for other in (dynamic.predict(paths, batch_size=3, verbose=False), xla.predict(paths, verbose=False)):
        for a, b in zip(reference, other):
            assert len(a) == len(b)
            np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
            np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    # predict_images: XLA compiles the batched letterbox as well
    rgb = np.stack([cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in paths[:1]] * 2)
    thresholds = dict(conf=tf.constant([0.25]), iou=tf.constant([0.7]), max_det=tf.constant([300]))
    plain, compiled = (
        tf.saved_model.load(str(d)).signatures["predict_images"] for d in (loaded("detect").path, xla_dir)
    )
    expected, got = plain(images=rgb, **thresholds), compiled(images=rgb, **thresholds)
    assert got["num_detections"].numpy().tolist() == expected["num_detections"].numpy().tolist()
    np.testing.assert_allclose(got["boxes"].numpy(), expected["boxes"].numpy(), atol=0.05)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(imgsz=100), "multiple of 32"),
        (dict(batch=0), "positive integer"),
        (dict(backend="onnx"), "unsupported backend"),
        (dict(precision="int4"), "unsupported precision"),
        (dict(backend="xla", precision="fp16"), "backend='tensorrt'"),
        (dict(version=0), "version must be"),
    ],
)
def test_bad_arguments_fail_before_any_work(kwargs, message, tmp_path):
    with pytest.raises(InputError, match=message):
        tftrt_yolo.convert(demo_model("detect"), output=tmp_path / "out", verbose=False, **kwargs)
    assert model_folders(tmp_path / "out") == []


def test_bad_model_files(tmp_path):
    out = tmp_path / "out"
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(demo_model("detect").read_bytes()[:5000])
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    not_onnx = tmp_path / "model.onnx"
    not_onnx.write_bytes(b"not a protobuf at all")
    cases = {
        tmp_path / "missing.pt": "not found",
        truncated: "cannot read .*truncated.pt as an Ultralytics YOLO checkpoint",
        foreign: "cannot read .*foreign.pt as an Ultralytics YOLO checkpoint",
        not_onnx: "cannot read .* as ONNX",
        tmp_path / "weights.h5": "not found",
    }
    (tmp_path / "weights.h5").write_bytes(b"x")
    cases[tmp_path / "weights.h5"] = "unsupported model file"
    for path, message in cases.items():
        with pytest.raises(InputError, match=message):
            tftrt_yolo.convert(path, output=out, verbose=False)
    assert model_folders(out) == []


def test_unsupported_task_and_foreign_onnx(tmp_path):
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(
            [onnx.helper.make_node("Identity", ["images"], ["out"])],
            "g",
            [onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, 64, 64])],
            [onnx.helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, 3, 64, 64])],
        )
    )
    onnx.save(proto, tmp_path / "plain.onnx")
    with pytest.raises(InputError, match="no Ultralytics metadata"):
        tftrt_yolo.convert(tmp_path / "plain.onnx", output=tmp_path / "out", verbose=False)
    onnx.helper.set_model_props(proto, {"task": "depth", "names": "{0: 'a'}"})
    onnx.save(proto, tmp_path / "depth.onnx")
    with pytest.raises(InputError, match="unsupported task 'depth'"):
        tftrt_yolo.convert(tmp_path / "depth.onnx", output=tmp_path / "out", verbose=False)
    assert model_folders(tmp_path / "out") == []


@pytest.mark.slow
def test_segment_needs_a_static_batch(tmp_path):
    with pytest.raises(InputError, match="static batch"):
        tftrt_yolo.convert(demo_model("segment"), dynamic=True, output=tmp_path / "out", verbose=False)
    assert model_folders(tmp_path / "out") == []


@pytest.mark.slow
def test_interrupted_conversion_leaves_nothing(tmp_path, monkeypatch):
    import tftrt_yolo.graph.end_to_end as end_to_end

    real = end_to_end.build_and_save

    def save_then_interrupt(network_dir, output_dir, *args, **kwargs):
        real(network_dir, output_dir, *args, **kwargs)  # a complete SavedModel is on disk, in staging
        raise KeyboardInterrupt

    monkeypatch.setattr(end_to_end, "build_and_save", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        tftrt_yolo.convert("yolov8n.yaml", output=tmp_path / "out", verbose=False)
    assert model_folders(tmp_path / "out") == []


@pytest.mark.slow
def test_onnx_and_yaml_sources(tmp_path):
    from tftrt_yolo._ultralytics import YOLO

    checkpoint = tmp_path / "exported.pt"  # Ultralytics writes the .onnx next to the checkpoint
    checkpoint.write_bytes(demo_model("detect").read_bytes())
    target = Path(YOLO(str(checkpoint)).export(format="onnx", imgsz=320, dynamic=True, verbose=False))
    path = tftrt_yolo.convert(target, output=tmp_path / "out", verbose=False)
    meta = read_metadata(path)
    assert meta.info.imgsz == 320 and meta.info.task == "detect"
    assert json.loads((path / "assets.extra" / "tftrt_yolo.json").read_text())["info"]["source"] == str(target)
    assert tftrt_yolo.convert(target, output=tmp_path / "out", verbose=False) == path  # unchanged: reused
    fresh = tftrt_yolo.convert(target, output=tmp_path / "out", recalibrate=True, verbose=False)
    assert fresh.name == "2" and path.is_dir()  # forced: the next version in the same model folder
