"""The TF-TRT step: the network alone in, a TF-TRT network SavedModel with built engines out.

TF-TRT is given only what onnx2tf wrote: float32 [B or None, S, S, 3] letterboxed
images in, the raw head tensors out. Pre-processing (decode, letterbox) and
post-processing (NMS, masks, keypoints, rotated boxes) stay in TensorFlow, in
fp32, outside the converted graph: TF-TRT's FP16 mode rewrites every
`Cast(-> float32)` of the graph it converts, and freezing an end-to-end graph
lowers its loops into segments TensorRT cannot calibrate. `graph.end_to_end`
then wraps the converted network between the two.

`segment_network()` runs TF-TRT's own graph pass (what `TrtGraphConverterV2.convert()`
does before any engine is built); it needs neither TensorRT nor a GPU, so the dry
run and the tests use it anywhere. `convert_network()` is the real conversion
(TensorRT 8.6 and a GPU): convert, calibrate, build every engine, save.
`make_engine_names_unique()` renames the engines of a saved conversion so that
two converted models can share one process (TF-TRT names engine resources by a
per-process counter: tensorflow/tensorrt#267).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from tftrt_yolo.environment import PRECISIONS, require_tftrt
from tftrt_yolo.errors import ConversionError, InputError
from tftrt_yolo.files import read_saved_model
from tftrt_yolo.report import ENGINE_ASSET_PREFIX, ENGINE_OP, all_nodes

# TF-TRT 2.17's strategies, less the deprecated "ImplicitBatchModeCompatible".
PROFILE_STRATEGIES = ("Range", "Optimal", "Range+Optimal")
NETWORK_SIGNATURE = "serving_default"  # onnx2tf's signature: `images` in, `output_0..` out

_TF_DECODES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"GIF8")  # JPEG, PNG, BMP, GIF magic

InputFn = Callable[[], Iterator[dict]]


def _check_settings(precision: str, profile_strategy: str, minimum_segment_size: int) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if profile_strategy not in PROFILE_STRATEGIES:
        raise InputError(f"unknown profile strategy {profile_strategy!r}: use one of {', '.join(PROFILE_STRATEGIES)}")
    if minimum_segment_size < 1:
        raise InputError(f"minimum_segment_size must be >= 1, got {minimum_segment_size}")


def _check_network_dir(network_dir: Path) -> None:
    if not (network_dir / "saved_model.pb").is_file():
        raise InputError(f"{network_dir} is not a SavedModel directory (no saved_model.pb)")


@dataclasses.dataclass(frozen=True)
class SegmentedNetwork:
    """The network as TF-TRT's graph pass rewrote it, before any engine is built."""

    graph_def: object  # GraphDef: TRTEngineOp nodes, their *_native_segment functions in the library
    function: object  # the network's signature function, as loaded
    frozen: object  # the frozen function the pass ran on (what TF-TRT rebuilds the converted function from)

    @property
    def outputs(self) -> list[str]:
        return [t.name for t in self.frozen.outputs]


def segment_network(
    network_dir: str | os.PathLike,
    *,
    precision: str,
    minimum_segment_size: int = 3,
    profile_strategy: str = "Range",
) -> SegmentedNetwork:
    """TF-TRT's graph pass over the network SavedModel at `network_dir`.

    The same steps as `TrtGraphConverterV2.convert()` up to its grappler run (freeze the
    signature, clear devices, fetch inputs and outputs, TF-TRT's own rewriter config in
    explicit-batch mode), without its TensorRT version check and GPU requirement, which only
    engine building needs. The result holds the `TRTEngineOp` nodes and their
    `*_native_segment` functions exactly as a GPU machine's conversion would.
    """
    _check_settings(precision, profile_strategy, minimum_segment_size)
    network_dir = Path(network_dir)
    _check_network_dir(network_dir)
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
    from tensorflow.python.compiler.tensorrt import trt_convert as trt
    from tensorflow.python.framework import convert_to_constants
    from tensorflow.python.grappler import tf_optimizer
    from tensorflow.python.training import saver

    func = tf.saved_model.load(str(network_dir)).signatures[NETWORK_SIGNATURE]
    frozen = convert_to_constants.convert_variables_to_constants_v2(func)
    graph_def = frozen.graph.as_graph_def()
    for node in graph_def.node:
        node.device = ""
    meta = saver.export_meta_graph(graph_def=graph_def, graph=frozen.graph)
    fetch = meta_graph_pb2.CollectionDef()
    fetch.node_list.value.extend(t.name for t in frozen.inputs + frozen.outputs)
    meta.collection_def["train_op"].CopyFrom(fetch)
    params = trt.TrtConversionParams(
        precision_mode=precision.upper(),
        minimum_segment_size=minimum_segment_size,
        use_calibration=precision == "int8",
        allow_build_at_runtime=True,  # as convert() does: engines are built offline, by build()
    )
    config = config_pb2.ConfigProto()
    config.graph_options.rewrite_options.CopyFrom(
        trt._get_tensorrt_rewriter_config(  # the helper TrtGraphConverterV2 itself calls
            params, is_dynamic_op=True, max_batch_size=None, is_v2=True, use_implicit_batch=False,
            profile_strategy=profile_strategy,
        )
    )  # fmt: skip
    return SegmentedNetwork(tf_optimizer.OptimizeGraph(config, meta, graph_id=b"tf_graph"), func, frozen)


def convert_network(
    network_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    precision: str,
    build_input_fn: InputFn,
    calibration_input_fn: InputFn | None = None,
    workspace_gib: float = 4,
    minimum_segment_size: int = 3,
    max_cached_engines: int = 1,
    profile_strategy: str = "Range",
    engine_tag: str | None = None,
) -> None:
    """Convert the network SavedModel at `network_dir` with TF-TRT; engines built and saved in `output_dir`.

    `build_input_fn` yields network inputs (`build_input_fn()`), one batch per shape the model
    accepts, so every engine is built before saving and serving never builds one. INT8 needs
    `calibration_input_fn` (`calibration_input_fn()`); other precisions must not get one.
    `engine_tag` renames the engines (`make_engine_names_unique`). Arguments are checked first,
    then the machine (`require_tftrt`); a failed conversion leaves no `output_dir` behind.
    """
    network_dir, output_dir = Path(network_dir), Path(output_dir)
    _check_settings(precision, profile_strategy, minimum_segment_size)
    if (precision == "int8") != (calibration_input_fn is not None):
        raise InputError("INT8 needs calibration_input_fn; fp32 and fp16 take none")
    if workspace_gib <= 0 or max_cached_engines < 1:
        raise InputError("workspace_gib must be > 0 and max_cached_engines >= 1")
    _check_network_dir(network_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise InputError(f"{output_dir} exists and is not empty: remove it or choose another output directory")
    require_tftrt(precision)

    import tensorflow as tf
    from tensorflow.python.compiler.tensorrt import trt_convert as trt

    # Explicit-batch ("dynamic shape") mode, static batch or not: TensorRT 8 deprecates implicit
    # batch. The shapes build() runs define the profiles: [B] for a static batch, [1, max_batch]
    # for a dynamic one; INT8 calibration is deferred to build(), after the profiles exist.
    # allow_build_at_runtime=False: save() marks every engine so, and an input outside every
    # profile runs the native TensorFlow segment instead of building an engine (minutes, GBs)
    # in production. The network's outputs are named output_0.. either way, which the
    # rebuild save() then does keeps.
    step = "set-up"
    try:
        converter = tf.experimental.tensorrt.Converter(
            input_saved_model_dir=str(network_dir),
            input_saved_model_signature_key=NETWORK_SIGNATURE,
            use_dynamic_shape=True,
            dynamic_shape_profile_strategy=profile_strategy,
            max_workspace_size_bytes=int(workspace_gib * 2**30),
            precision_mode=getattr(trt.TrtPrecisionMode, precision.upper()),
            minimum_segment_size=minimum_segment_size,
            maximum_cached_engines=max_cached_engines,
            use_calibration=precision == "int8",  # YOLOv8 has no QDQ nodes: INT8 ranges come from calibration
            allow_build_at_runtime=False,
        )
        step = "convert"
        converter.convert(calibration_input_fn=calibration_input_fn)
        step = "build (profiles" + (", INT8 calibration" if precision == "int8" else "") + ", engines)"
        converter.build(input_fn=build_input_fn)
        step = "save"
        converter.save(str(output_dir), save_gpu_specific_engines=True)
        if engine_tag:
            step = "rename engines"
            make_engine_names_unique(output_dir, engine_tag)
    except InputError:
        shutil.rmtree(output_dir, ignore_errors=True)
        raise
    except Exception as e:  # noqa: BLE001 - TF-TRT raises RuntimeError, ValueError and tf.errors.*
        shutil.rmtree(output_dir, ignore_errors=True)
        raise ConversionError(
            f"TF-TRT {step} failed at {precision}: {type(e).__name__}: {e}\n"
            "Run again with TF_TRT_SHOW_DETAILED_REPORT=1 for what TF-TRT converted and why."
        ) from e


def make_engine_names_unique(saved_model_dir: str | os.PathLike, tag: str) -> dict[str, str]:
    """Rename every TF-TRT engine of a saved conversion `TRTEngineOp_<n>_<i>` -> `TRTEngineOp_<tag>_<i>`.

    An engine's resource is looked up by its node name (the part after the last '/') in the
    process-wide "TF-TRT" container, and TF-TRT numbers conversions per process, so models
    converted by fresh processes all carry `TRTEngineOp_000_000` and collide in one process.
    The name lives in four places, all renamed here: the engine nodes (and the edges that
    name them), the `resource_name` of the ops that create and restore the engine resource,
    the serialized engine files in assets/ and the object graph's resource entries.
    Returns {old: new}.
    """
    if not re.fullmatch(r"[A-Za-z0-9]+", tag):
        raise InputError(f"engine tag must be letters and digits, got {tag!r}")
    root = Path(saved_model_dir)
    proto = read_saved_model(root)
    renames: dict[str, str] = {}
    for meta in proto.meta_graphs:
        for node in all_nodes(meta):
            if node.op == ENGINE_OP:
                old = node.name.split("/")[-1]
                renames.setdefault(old, re.sub(r"^TRTEngineOp_[^_]+_", f"TRTEngineOp_{tag}_", old))
    if not renames:
        return {}
    pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, renames)) + r")(?![A-Za-z0-9_])")
    rename = lambda text: pattern.sub(lambda m: renames[m.group(1)], text)  # noqa: E731
    for meta in proto.meta_graphs:
        for function in meta.graph_def.library.function:
            for key, value in function.ret.items():
                function.ret[key] = rename(value)
        for node in all_nodes(meta):
            node.name = rename(node.name)
            node.input[:] = [rename(i) for i in node.input]
            if "resource_name" in node.attr:
                node.attr["resource_name"].s = rename(node.attr["resource_name"].s.decode()).encode()
        for asset in meta.asset_file_def:
            asset.filename = rename(asset.filename)
        for obj in meta.object_graph_def.nodes:
            for child in obj.children:
                child.local_name = rename(child.local_name)
    for old, new in renames.items():
        engine_file = root / "assets" / (ENGINE_ASSET_PREFIX + old)
        if engine_file.exists():
            engine_file.rename(root / "assets" / (ENGINE_ASSET_PREFIX + new))
    (root / "saved_model.pb").write_bytes(proto.SerializeToString())
    return renames


def build_input_fn(max_batch: int, dynamic: bool, samples: np.ndarray) -> InputFn:
    """Network inputs for `Converter.build()`: every batch size the model accepts.

    `samples` are letterboxed images, float32 [k, S, S, 3] (`network_inputs()`), cycled to fill
    each batch. Static batch B: one batch of exactly B. Dynamic: one batch of every size
    1..max_batch. With the "Range" strategy TF-TRT takes the min and max shapes it sees (one
    profile [1, max_batch]); "Optimal" and "Range+Optimal" make a profile per size seen.
    """
    if max_batch < 1:
        raise InputError(f"max_batch must be >= 1, got {max_batch}")
    if len(samples) == 0:
        raise InputError("build_input_fn needs at least one sample image")
    sizes = range(1, max_batch + 1) if dynamic else (max_batch,)

    def input_fn():
        for n in sizes:
            yield {"images": samples[np.arange(n) % len(samples)]}

    return input_fn


def calibration_input_fn(
    images: Sequence[bytes | os.PathLike | str], batch: int, preprocess: Callable[[list], np.ndarray]
) -> InputFn:
    """INT8 calibration batches for the network: every image once, in order, `batch` images each.

    `preprocess` turns a list of images into the network's input (float32 [n, S, S, 3]) with
    the model's own in-graph pre-processing (`network_inputs`), so TensorRT's calibrator sees
    exactly what serving feeds the network. Every batch has the same shape, as TF-TRT
    requires: the last is filled up by wrapping around to the first images. `batch` is the
    most images the model takes per call, the top of its engine profile. Images are read and
    pre-processed lazily, one batch at a time.
    """
    if batch < 1:
        raise InputError(f"batch must be >= 1, got {batch}")
    if not images:
        raise InputError("INT8 calibration needs at least one image")
    count = math.ceil(len(images) / batch)

    def input_fn():
        for b in range(count):
            yield {"images": preprocess([images[(b * batch + i) % len(images)] for i in range(batch)])}

    return input_fn


def network_inputs(items: Sequence[bytes | os.PathLike | str], imgsz: int, letterboxed: bool) -> np.ndarray:
    """Images (paths or encoded bytes) -> float32 [n, imgsz, imgsz, 3] through the model's own pre-processing."""
    import tensorflow as tf

    encoded = tf.constant([encoded_image(x) for x in items], tf.string)
    return _preprocess_function(imgsz, letterboxed)(encoded).numpy()


@functools.cache
def _preprocess_function(imgsz: int, letterboxed: bool):
    import tensorflow as tf

    from tftrt_yolo.graph.preprocess import preprocess_encoded

    return tf.function(lambda encoded: preprocess_encoded(encoded, imgsz, letterboxed)[0])


def encoded_image(item: bytes | os.PathLike | str) -> bytes:
    """Bytes the in-graph decoder reads: a file read as predict reads it (`inputs.read_image`: formats
    TensorFlow does not decode go through OpenCV, as in Ultralytics), bytes as given."""
    from tftrt_yolo.inputs import read_image

    data = item if isinstance(item, bytes) else read_image(Path(item))
    if not data.startswith(_TF_DECODES):
        name = f"an image of {len(item)} bytes" if isinstance(item, bytes) else str(item)
        raise InputError(f"{name} is not an image: the file is corrupt or in no format the model reads")
    return data
