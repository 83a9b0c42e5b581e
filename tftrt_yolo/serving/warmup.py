"""Warmup records: `assets.extra/tf_serving_warmup_requests`, which TensorFlow Serving replays at load.

One `PredictRequest` per signature and batch size the engines have, on a real
JPEG, so the server loads (and for TF-TRT builds or deserialises) every engine
before it reports the model available.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np

from tftrt_yolo.errors import InputError
from tftrt_yolo.files import read_saved_model
from tftrt_yolo.metadata import ModelMetadata, read_metadata
from tftrt_yolo.serving.protocol import predict_request
from tftrt_yolo.signatures import PREDICT_DEFAULTS

WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"


def signature_defs(model_dir: str | os.PathLike) -> dict:
    """The SignatureDefs of a SavedModel's `serve` graph, read from `saved_model.pb` (no TensorFlow graph load)."""
    for graph in read_saved_model(model_dir).meta_graphs:
        if "serve" in graph.meta_info_def.tags:
            return {k: v for k, v in graph.signature_def.items() if not k.startswith("__")}
    raise InputError(f"{model_dir} has no 'serve' graph: it is not a servable SavedModel")


def _default_warmup_image() -> Path | None:
    spec = importlib.util.find_spec("ultralytics")  # finds the package without importing it
    for folder in spec.submodule_search_locations if spec and spec.submodule_search_locations else []:
        path = Path(folder) / "assets" / "bus.jpg"
        if path.is_file():
            return path
    return None


def warmup_jpeg(image, imgsz: int) -> bytes:
    """A real JPEG for warmup requests, at most `imgsz` on its long side (small records, same code path)."""
    if image is None:
        image = _default_warmup_image()
        if image is None:
            raise InputError("no warmup image: pass warmup_image= a JPEG/PNG file (or warmup=False)")
    data = bytes(image) if isinstance(image, (bytes, bytearray)) else Path(image).read_bytes()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot decode the warmup image {image if not isinstance(image, bytes) else '(bytes)'}")
    scale = imgsz / max(bgr.shape[:2])
    if scale < 1:
        bgr = cv2.resize(bgr, (round(bgr.shape[1] * scale), round(bgr.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise InputError("cannot encode the warmup image as JPEG")
    return jpeg.tobytes()


def warmup_batch_sizes(metadata: ModelMetadata) -> list[int]:
    """Batch sizes to warm up: 1 and the model's batch (its engines' profile ends there)."""
    return sorted({1, metadata.batch})


def warmup_requests(model_dir: str | os.PathLike, image: bytes, *, model_name: str) -> list:
    """`PredictionLog`s for every signature of the model and every batch size in `warmup_batch_sizes`."""
    from tensorflow.core.framework import types_pb2
    from tensorflow_serving.apis import prediction_log_pb2

    metadata = read_metadata(model_dir)
    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    logs = []
    for signature, definition in sorted(signature_defs(model_dir).items()):  # TF-TRT models keep serving_default only
        if "images" not in definition.inputs:
            continue
        encoded = definition.inputs["images"].dtype == types_pb2.DT_STRING
        for n in warmup_batch_sizes(metadata):
            request = predict_request(
                [image] * n if encoded else np.stack([rgb] * n),
                model_name=model_name,
                signature_name=signature,
                **PREDICT_DEFAULTS,
            )
            logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup_requests(
    model_dir: str | os.PathLike, image: bytes, *, model_name: str, path: str | os.PathLike | None = None
) -> Path:
    """Write `warmup_requests()` as the TFRecord TensorFlow Serving replays at load (`assets.extra/`)."""
    import tensorflow as tf

    path = Path(path) if path is not None else Path(model_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in warmup_requests(model_dir, image, model_name=model_name):
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(path: str | os.PathLike) -> list:
    """The `PredictionLog`s of a warmup file."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    return [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
