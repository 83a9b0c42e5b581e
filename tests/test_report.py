"""The conversion report, built from real SavedModels.

`save_tiny_model()` writes a small model shaped like tftrt_yolo's end-to-end
models (encoded images in, in-graph decode with tf.map_fn, a conv net,
tf.image.non_max_suppression); tests/test_tensorrt.py converts it with TF-TRT.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tftrt_yolo.errors import InputError
from tftrt_yolo.report import EXCLUDED_OPS, REASONS, ConversionReport, build_report, registered_converters

SIZE = 32  # the tiny network's input size
CELLS = (SIZE // 2) ** 2  # candidates after the stride-2 conv


class TinyEndToEnd(tf.Module):
    """Encoded images -> decode + resize (map_fn) -> 2 convs -> sigmoid scores -> NMS on image 0."""

    def __init__(self, batch: int | None = None):
        super().__init__()
        rng = np.random.default_rng(0)
        self.batch = batch  # None: dynamic batch; B: zero-pads any N <= B to B, like tftrt_yolo
        self.w1 = tf.Variable(rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32))
        self.b1 = tf.Variable(rng.normal(0, 0.1, (8,)).astype(np.float32))
        self.w2 = tf.Variable(rng.normal(0, 0.3, (3, 3, 8, 5)).astype(np.float32))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="images"),
            tf.TensorSpec([], tf.float32, name="conf"),
            tf.TensorSpec([], tf.float32, name="iou"),
            tf.TensorSpec([], tf.int32, name="max_det"),
        ]
    )
    def serve(self, images, conf, iou, max_det):
        def decode(encoded):
            image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
            return tf.image.resize(tf.cast(image, tf.float32) / 255.0, (SIZE, SIZE))

        x = tf.map_fn(decode, images, fn_output_signature=tf.TensorSpec([SIZE, SIZE, 3], tf.float32))
        n = tf.shape(x)[0]
        if self.batch is not None:
            # A data-dependent tf.pad loses the static shape: TF-TRT then rejects the first conv
            # ("Channel dimension must be static"). The reshape restores it.
            x = tf.reshape(tf.pad(x, [[0, self.batch - n], [0, 0], [0, 0], [0, 0]]), [self.batch, SIZE, SIZE, 3])
        y = tf.nn.relu(tf.nn.conv2d(x, self.w1, 1, "SAME") + self.b1)
        y = tf.reshape(tf.nn.conv2d(y, self.w2, 2, "SAME"), [-1, CELLS, 5])[:n]
        boxes, scores = y[..., :4], tf.sigmoid(y[..., 4])
        keep = tf.image.non_max_suppression(boxes[0], scores[0], max_det, iou, conf)
        return {"scores": scores, "boxes": tf.gather(boxes[0], keep), "num_detections": tf.size(keep)}


def save_tiny_model(path, batch: int | None = None):
    model = TinyEndToEnd(batch)
    tf.saved_model.save(model, str(path), signatures={"serving_default": model.serve})
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def _by_op(report: ConversionReport) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in report.stayed:
        counts[s.op] = counts.get(s.op, 0) + s.count
    return counts


def test_plain_model_has_no_engines_and_every_op_stays_in_tensorflow(tiny_model):
    report = build_report(tiny_model)
    assert report.engines == () and report.engine_assets == ()
    assert report.converted_ops == 0 and report.converted_share == 0.0
    ops = _by_op(report)
    # One of each op the model's code writes, wherever it sits (top level or loop body).
    for op, n in {"Conv2D": 2, "Relu": 1, "Sigmoid": 1, "NonMaxSuppressionV3": 1, "DecodeImage": 1,
                  "ResizeBilinear": 1, "StatelessWhile": 1, "Size": 1}.items():  # fmt: skip
        assert ops[op] == n, op
    assert not set(ops) & EXCLUDED_OPS
    assert report.tensorflow_ops == sum(ops.values())

    reasons = {s.op: s.reason for s in report.stayed}
    assert reasons["DecodeImage"] == REASONS["string"]
    assert reasons["NonMaxSuppressionV3"] == REASONS["nms"]
    assert reasons["StatelessWhile"] == REASONS["control_flow"]
    assert reasons["TensorListStack"] == REASONS["control_flow"]
    assert reasons["Conv2D"] == REASONS["not_segmented"]  # TF-TRT has a Conv2D converter
    assert reasons["Size"] == REASONS["no_converter"]  # ... and none for Size


def test_every_op_of_the_signature_is_counted_once(tiny_model):
    """All ops of the serving functions, none of the checkpoint save/restore functions."""
    proto = saved_model_pb2.SavedModel.FromString((tiny_model / "saved_model.pb").read_bytes())
    graph = proto.meta_graphs[0].graph_def
    serving = [f for f in graph.library.function if "_traced_" not in f.signature.name]
    assert {f.signature.name.split("_")[-2] for f in serving} >= {"cond", "body"}  # map_fn's loop functions
    # Top-level nodes the signature reaches: 4 input placeholders, the call, 3 variable handles.
    expected = sum(len(f.node_def) for f in serving) + 4 + 1 + len(TinyEndToEnd().variables)
    report = build_report(tiny_model)
    assert report.tensorflow_ops + sum(report.excluded.values()) == expected
    assert "SaveV2" not in _by_op(report) and "RestoreV2" not in _by_op(report)


def test_report_round_trips_and_formats(tiny_model):
    report = build_report(tiny_model)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["converted_share"] == 0.0 and data["tensorflow_ops"] == report.tensorflow_ops
    assert ConversionReport.from_dict(data) == report
    text = report.format()
    assert "TensorRT engines: 0" in text
    assert f"Compute ops converted: 0 of {report.tensorflow_ops} (0.0%)" in text
    assert "NonMaxSuppressionV3" in text and REASONS["nms"] in text
    assert str(report) == text


def test_bad_inputs(tmp_path, tiny_model):
    with pytest.raises(InputError, match="not a SavedModel directory"):
        build_report(tmp_path)
    with pytest.raises(InputError, match=r"no signature 'predict'.*serving_default"):
        build_report(tiny_model, signature="predict")


def test_converter_table_is_this_tensorflows():
    table = registered_converters()
    assert {"Conv2D", "Sigmoid", "CombinedNonMaxSuppression", "ResizeBilinear"} <= table
    assert not {"NonMaxSuppressionV5", "DecodeImage", "SplitV"} & table


def tftrt_segment(saved_model_dir, output_dir, precision: str = "FP16"):
    """Rewrite a SavedModel's serving_default as TF-TRT's own segmenter does; no engines.

    This runs the grappler pass TrtGraphConverterV2.convert() runs (dynamic-op, explicit
    batch), which builds no engine and needs no TensorRT library, then saves the rewritten
    signature the way save() does, minus engines: none can be built without TensorRT.
    It shows which ops TF-TRT would put into engines on a machine without a GPU.
    """
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.compiler.tensorrt import trt_convert as trt
    from tensorflow.python.framework import convert_to_constants
    from tensorflow.python.grappler import tf_optimizer
    from tensorflow.python.training import saver

    loaded = tf.saved_model.load(str(saved_model_dir))
    func = loaded.signatures["serving_default"]
    frozen = convert_to_constants.convert_variables_to_constants_v2(func)
    meta = saver.export_meta_graph(graph_def=frozen.graph.as_graph_def(), graph=frozen.graph)
    fetch = meta_graph_pb2.CollectionDef()
    fetch.node_list.value.extend(t.name for t in frozen.inputs + frozen.outputs)
    meta.collection_def["train_op"].CopyFrom(fetch)
    config = config_pb2.ConfigProto()
    config.graph_options.rewrite_options.CopyFrom(
        trt._get_tensorrt_rewriter_config(
            trt.TrtConversionParams(precision_mode=precision), is_dynamic_op=True, is_v2=True, use_implicit_batch=False
        )
    )
    converted = tf_optimizer.OptimizeGraph(config, meta, graph_id=b"tf_graph")
    rewritten = trt._construct_function_from_graph_def(func, converted, frozen)
    tf.saved_model.save(tf.Module(), str(output_dir), signatures={"serving_default": rewritten})
    return output_dir


@pytest.mark.parametrize("batch", [None, 4], ids=["dynamic", "static"])
def test_tftrt_segmented_model(batch, tmp_path):
    """The report of a model as TF-TRT's segmenter rewrites it: engines, native segments, what stayed."""
    tftrt_segment(save_tiny_model(tmp_path / "model", batch), tmp_path / "trt")
    report = build_report(tmp_path / "trt")
    assert report.engines, report.format()
    for engine in report.engines:
        assert engine.name.startswith("TRTEngineOp_")
        assert engine.precision_mode == "FP16" and engine.dynamic_shape and engine.profile_strategy == "Range"
        assert engine.compute_ops >= 1 and not engine.calibrated
        assert engine.allow_build_at_runtime  # save() of TrtGraphConverterV2 turns it off; not run here
        assert not engine.serialized
    assert sum(e.ops.get("Conv2D", 0) for e in report.engines) == 2  # both convs inside engines
    stayed = _by_op(report)
    assert "Conv2D" not in stayed and stayed["DecodeImage"] == 1 and stayed["NonMaxSuppressionV3"] == 1
    assert 0 < report.converted_share < 1
    assert report.converted_ops == sum(e.compute_ops for e in report.engines)
    text = report.format()
    assert f"TensorRT engines: {len(report.engines)}" in text and "FP16" in text and "dynamic (Range)" in text
    assert ConversionReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report


def test_engine_instances_counts_the_records_of_an_engine_file(tmp_path):
    from tftrt_yolo.report import engine_instances

    path = tmp_path / "trt-serialized-engine.TRTEngineOp_x_000"
    with tf.io.TFRecordWriter(str(path)) as writer:  # TF-TRT writes one record per built engine
        writer.write(b"engine one")
        writer.write(b"engine two")
    assert engine_instances(path) == 2
    path.write_bytes(b"")
    assert engine_instances(path) == 0 and engine_instances(tmp_path / "missing") == 0
