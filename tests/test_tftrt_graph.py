"""The TF-TRT boundary, checked with TensorFlow 2.17.1's own TF-TRT graph pass and save() (no TensorRT needed).

TF-TRT converts the network alone: one engine holding every op of it, nothing of the pre- or
post-processing, which stay fp32 TensorFlow around it. What only a TensorRT machine can show
(built engines, INT8 numerics, latency) is in tests/test_tensorrt.py's integration tests.
"""

from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.compiler.tensorrt import trt_convert as trt
from tensorflow.python.trackable import autotrackable

from conftest import REAL_PHOTOS
from tftrt_offline import save_segmented
from tftrt_yolo.errors import InputError
from tftrt_yolo.graph.end_to_end import build_and_save
from tftrt_yolo.report import ENGINE_ASSET_PREFIX, build_report, engine_names, report_from_graph_def
from tftrt_yolo.tasks import task_spec
from tftrt_yolo.tensorrt import PRECISIONS, make_engine_names_unique, segment_network

CASES = [(task, False) for task in ("detect", "segment", "classify", "pose", "obb")] + [
    (task, True) for task in ("detect", "classify", "pose", "obb")  # onnx2tf converts segment statically only
]


def _ops(graph_def) -> collections.Counter:
    return collections.Counter(n.op for n in graph_def.node)


def _proto(model_dir):
    return saved_model_pb2.SavedModel.FromString((model_dir / "saved_model.pb").read_bytes())


@pytest.mark.slow
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("task,dynamic", CASES, ids=[f"{t}-{'dynamic' if d else 'static'}" for t, d in CASES])
def test_the_whole_network_becomes_one_engine(network, task, dynamic, precision):
    network_dir, info = network(task, dynamic)
    segmented = segment_network(network_dir, precision=precision)
    report = report_from_graph_def(segmented.graph_def, segmented.outputs)
    assert len(report.engines) == 1 and report.problems == [], report.format()
    (engine,) = report.engines
    original = _ops(segmented.frozen.graph.as_graph_def())
    # every compute op of the network is inside the engine; only bookkeeping stays in TensorFlow
    assert engine.ops["Conv2D"] == original["Conv2D"] > 0
    assert report.stayed == () and report.converted_share == 1.0
    assert set(_ops(segmented.graph_def)) == {"Placeholder", "TRTEngineOp", "Identity"}  # no Cast outside it
    assert engine.precision_mode == precision.upper() and engine.dynamic_shape and engine.profile_strategy == "Range"
    node = next(n for n in segmented.graph_def.node if n.op == "TRTEngineOp")
    assert [tf.dtypes.as_dtype(t) for t in node.attr["InT"].list.type] == [tf.float32]
    shape = tf.TensorShape(node.attr["input_shapes"].list.shape[0]).as_list()
    assert shape == [None if dynamic else 2, info.imgsz, info.imgsz, 3]
    assert report.dry_run and "DRY RUN" in report.format()


def _casts_to_half(proto) -> dict[str, int]:
    """Casts to float16 per function of a saved model (the top-level graph as "")."""
    found = collections.Counter()
    meta = proto.meta_graphs[0]
    for name, nodes in [("", meta.graph_def.node)] + [(f.signature.name, f.node_def) for f in meta.graph_def.library.function]:
        found[name] += sum(n.op == "Cast" and n.attr["DstT"].type == tf.float16.as_datatype_enum for n in nodes)
    return {k: v for k, v in found.items() if v}


WRAPPED = [("detect", False, "fp16"), ("segment", False, "fp16"), ("classify", True, "fp32"), ("pose", False, "int8"),
           ("obb", True, "fp16")]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("task,dynamic,precision", WRAPPED, ids=[f"{t}-{p}" for t, _, p in WRAPPED])
def test_the_converted_network_wraps_into_the_end_to_end_model(network, tmp_path, task, dynamic, precision):
    """TF-TRT's save() of the network, renamed engines, wrapped between fp32 pre/post and saved again."""
    network_dir, info = network(task, dynamic)
    converted = save_segmented(network_dir, tmp_path / "tftrt", precision)
    renames = make_engine_names_unique(converted, "t1")  # old names count TF-TRT runs in this process
    assert list(renames.values()) == ["TRTEngineOp_t1_000"] and engine_names(converted) == {"TRTEngineOp_t1_000"}
    report = build_report(converted)
    assert [e.name for e in report.engines] == ["TRTEngineOp_t1_000"] and not report.engines[0].allow_build_at_runtime

    build_and_save(converted, tmp_path / "model", info, batch=2, dynamic=dynamic, jit_compile=False)
    build_and_save(network_dir, tmp_path / "fp32", info, batch=2, dynamic=dynamic, jit_compile=False)
    proto = _proto(tmp_path / "model")
    assert engine_names(tmp_path / "model") == {"TRTEngineOp_t1_000"}  # the engine, and no other
    library = {f.signature.name: f for f in proto.meta_graphs[0].graph_def.library.function}
    (engine,) = [n for f in library.values() for n in f.node_def if n.op == "TRTEngineOp"]
    assert engine.attr["precision_mode"].s.decode() == precision.upper()
    assert not engine.attr["_allow_build_at_runtime"].b
    segment = library[engine.attr["segment_func"].func.name]  # the native segment travels with the engine
    assert sum(n.op == "Conv2D" for n in segment.node_def) == report.engines[0].ops["Conv2D"]
    # TF-TRT's FP16 cast rewrite can only be inside the engine's native segment
    assert set(_casts_to_half(proto)) <= {segment.signature.name}

    loaded = tf.saved_model.load(str(tmp_path / "model"))
    wanted = set(task_spec(task).outputs) | {"image_sizes"}
    for key in ("serving_default", "predict_images"):
        assert set(loaded.signatures[key].structured_outputs) == wanted
        assert set(loaded.signatures[key].structured_input_signature[1]) == {"images", "conf", "iou", "max_det"}
    # the pre-processing runs outside TF-TRT's reach: bit for bit the plain fp32 model's
    encoded = tf.constant([p.read_bytes() for p in REAL_PHOTOS])
    reference = tf.saved_model.load(str(tmp_path / "fp32")).preprocess(encoded).numpy()
    np.testing.assert_array_equal(loaded.preprocess(encoded).numpy(), reference)


def test_engine_names_differ_per_conversion_and_models_share_a_process(network, tmp_path):
    network_dir, info = network("detect")
    models = []
    for tag in ("first", "second"):
        converted = save_segmented(network_dir, tmp_path / f"tftrt-{tag}", "fp16")
        make_engine_names_unique(converted, tag)
        build_and_save(converted, tmp_path / tag, info, batch=2, dynamic=False, jit_compile=False)
        models.append(tf.saved_model.load(str(tmp_path / tag)))
    assert engine_names(tmp_path / "first") == {"TRTEngineOp_first_000"}
    assert engine_names(tmp_path / "second") == {"TRTEngineOp_second_000"}
    assert all("serving_default" in m.signatures for m in models)
    with pytest.raises(InputError, match="letters and digits"):
        make_engine_names_unique(tmp_path / "first", "../x")


def test_renaming_reaches_engine_resources_and_their_files(tmp_path):
    """What TrtGraphConverterV2.save() writes for a built engine: a resource named like the engine and its file.

    No engine can be built here, so the resource is made with TF-TRT's own `_TRTEngineResource` around a
    stand-in file; the SavedModel is only read as a proto (loading would initialise the resource: TensorRT).
    """
    stand_in = tmp_path / "files" / f"{ENGINE_ASSET_PREFIX}TRTEngineOp_000_000"
    stand_in.parent.mkdir()
    stand_in.write_bytes(b"engine bytes")
    root = autotrackable.AutoTrackable()
    root.trt_engine_resources = {"TRTEngineOp_000_000": trt._TRTEngineResource("TRTEngineOp_000_000", str(stand_in), 1, device="CPU")}
    root.serve = tf.function(lambda: tf.constant(1.0), input_signature=[])
    tf.saved_model.save(root, str(tmp_path / "model"), signatures={"serving_default": root.serve})

    assert make_engine_names_unique(tmp_path / "model", "abc") == {}  # no TRTEngineOp: nothing to rename
    proto = _proto(tmp_path / "model")
    graph = proto.meta_graphs[0].graph_def
    handles = [n for f in graph.library.function for n in f.node_def if n.op == "CreateTRTResourceHandle"]
    assert handles and all(n.attr["resource_name"].s == b"TRTEngineOp_000_000" for n in handles)

    # give it the engine node that names the resource, as a converted graph has
    function = next(f for f in graph.library.function if f.signature.name.startswith("__inference"))
    node = function.node_def.add(name="TRTEngineOp_000_000", op="TRTEngineOp")
    (tmp_path / "model" / "saved_model.pb").write_bytes(proto.SerializeToString())
    assert make_engine_names_unique(tmp_path / "model", "abc") == {"TRTEngineOp_000_000": "TRTEngineOp_abc_000"}

    proto = _proto(tmp_path / "model")
    meta = proto.meta_graphs[0]
    names = [n.attr["resource_name"].s for f in meta.graph_def.library.function for n in f.node_def
             if n.op == "CreateTRTResourceHandle"]  # fmt: skip
    assert names and set(names) == {b"TRTEngineOp_abc_000"}
    assert [a.filename for a in meta.asset_file_def] == [f"{ENGINE_ASSET_PREFIX}TRTEngineOp_abc_000"]
    assert sorted(p.name for p in (tmp_path / "model" / "assets").iterdir()) == [f"{ENGINE_ASSET_PREFIX}TRTEngineOp_abc_000"]
    children = {c.local_name for obj in meta.object_graph_def.nodes for c in obj.children}
    assert "TRTEngineOp_abc_000" in children and "TRTEngineOp_000_000" not in children
    assert engine_names(tmp_path / "model") == {"TRTEngineOp_abc_000"} and node.name == "TRTEngineOp_000_000"
