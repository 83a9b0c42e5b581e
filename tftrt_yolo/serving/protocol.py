"""TensorFlow Serving's predict API as pure functions: requests built, responses decoded, no network.

`rest_predict_body` / `decode_rest_response` (REST, JSON) and `predict_request`
/ `decode_predict_response` (gRPC protos) are tested without a server; the
clients only add the transport.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from tftrt_yolo.errors import InputError, TftrtYoloError
from tftrt_yolo.results import Result, from_outputs
from tftrt_yolo.signatures import ENCODED as DEFAULT_SIGNATURE
from tftrt_yolo.signatures import IMAGE_SIZES, IMAGES, OUTPUT_TYPES, PREDICT_DEFAULTS, threshold_inputs
from tftrt_yolo.tasks import SPECS


class ServingError(TftrtYoloError, RuntimeError):
    """TensorFlow Serving answered with an error, or with something that is not a prediction."""


def rest_url(base_url: str, model_name: str, *, version: int | None = None, label: str | None = None,
             verb: str = "predict") -> str:
    """`{base}/v1/models/NAME[/versions/N | /labels/L]:VERB` (TensorFlow Serving's REST API)."""
    if version is not None and label is not None:
        raise InputError("pass a version or a label, not both")
    url = f"{base_url.rstrip('/')}/v1/models/{model_name}"
    if version is not None:
        url += f"/versions/{int(version)}"
    elif label is not None:
        url += f"/labels/{label}"
    return f"{url}:{verb}"


def rest_predict_body(
    images: Sequence[bytes] | np.ndarray,
    *,
    conf: float = PREDICT_DEFAULTS["conf"],
    iou: float = PREDICT_DEFAULTS["iou"],
    max_det: int = PREDICT_DEFAULTS["max_det"],
    signature_name: str = DEFAULT_SIGNATURE,
) -> dict:
    """A REST `:predict` body in the columnar ("inputs") format: encoded images as {"b64": ...} or, for
    `predict_images`, uint8 [N, H, W, 3] RGB as nested lists; thresholds per image."""
    if isinstance(images, np.ndarray):
        _check_pixels(images)
        sent = images.tolist()
    elif not images:
        raise InputError("no images to send")
    else:
        sent = [{"b64": base64.b64encode(bytes(b)).decode("ascii")} for b in images]
    thresholds = threshold_inputs(len(images), conf, iou, max_det)
    return {
        "signature_name": signature_name,
        "inputs": {
            IMAGES: sent,
            **{k: v.tolist() for k, v in thresholds.items()},  # max_det stays JSON integers (DT_INT32)
        },
    }


def _check_pixels(images: np.ndarray) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or not len(images):
        raise InputError(f"image arrays must be uint8 [N, H, W, 3] RGB, got {images.dtype} {images.shape}")


def predict_request(
    images: Sequence[bytes] | np.ndarray,
    *,
    model_name: str,
    conf: float = PREDICT_DEFAULTS["conf"],
    iou: float = PREDICT_DEFAULTS["iou"],
    max_det: int = PREDICT_DEFAULTS["max_det"],
    signature_name: str = DEFAULT_SIGNATURE,
    version: int | None = None,
    label: str | None = None,
):
    """A gRPC `PredictRequest`: encoded images (string [N]) or, for `predict_images`, uint8 [N, H, W, 3] RGB."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    if version is not None and label is not None:
        raise InputError("pass a version or a label, not both")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    elif label is not None:
        request.model_spec.version_label = label
    if isinstance(images, np.ndarray):
        _check_pixels(images)
        request.inputs[IMAGES].CopyFrom(tf.make_tensor_proto(images, dtype=tf.uint8))
    else:
        if not images:
            raise InputError("no images to send")
        request.inputs[IMAGES].CopyFrom(tf.make_tensor_proto([bytes(b) for b in images], dtype=tf.string))
    for key, value in threshold_inputs(len(images), conf, iou, max_det).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def infer_task(output_names: Iterable[str]) -> str:
    """The task whose signature has exactly these outputs (besides `image_sizes`)."""
    names = set(output_names) - {IMAGE_SIZES}
    for spec in SPECS.values():
        if names == set(spec.outputs):
            return spec.name
    raise ServingError(f"the response outputs {sorted(names)} are not those of a tftrt_yolo model")


class _Names(dict):
    """Class names when none were given: the class id as text."""

    def __missing__(self, key):
        return str(key)


def _arrays(outputs: Mapping[str, object]) -> dict[str, np.ndarray]:
    """JSON values -> arrays of the signature's dtypes, restoring the axes an empty detection axis loses."""
    arrays = {name: np.asarray(value, dtype=OUTPUT_TYPES.get(name, (None,))[0]) for name, value in outputs.items()}
    sizes = arrays.get(IMAGE_SIZES)
    for name, arr in arrays.items():
        rank = OUTPUT_TYPES.get(name, (None, None))[1]
        if rank is None or arr.ndim == rank:
            continue
        if arr.size or arr.ndim != 2:
            raise ServingError(f"output {name} has shape {arr.shape}; a tftrt_yolo model returns rank {rank}")
        trailing = {"boxes": (4,), "rboxes": (5,), "keypoints": (0, 3)}.get(name)
        if name == "masks":
            trailing = tuple(int(v) for v in sizes.max(axis=0)) if sizes is not None and len(sizes) else (0, 0)
        arrays[name] = arr.reshape(arr.shape + trailing)
    return arrays


def decode_rest_response(
    body: bytes | str | Mapping,
    *,
    items: Sequence[tuple[str | None, bytes | np.ndarray | None]],
    names: Mapping[int, str] | None = None,
    task: str | None = None,
) -> list[Result]:
    """A REST `:predict` response -> one `Result` per image in `items` ((name, image) as `inputs.iterate` gave them).

    Takes the columnar answer (`{"outputs": {name: nested lists}}`) and the row answer
    (`{"predictions": [{name: ...}, ...]}`); `{"error": ...}` raises `ServingError`.
    """
    if not isinstance(body, Mapping):
        try:
            body = json.loads(body)  # Python's json reads the NaN / Infinity TensorFlow Serving may write
        except ValueError as e:
            raise ServingError(f"TensorFlow Serving's answer is not JSON: {e}") from None
    if "error" in body:
        raise ServingError(f"TensorFlow Serving: {body['error']}")
    if "outputs" in body:
        outputs = body["outputs"]
    elif "predictions" in body:
        rows = body["predictions"]
        if not rows or not isinstance(rows[0], Mapping):
            raise ServingError("the row-format answer has no named outputs")
        outputs = {k: [row[k] for row in rows] for k in rows[0]}
    else:
        raise ServingError(f"TensorFlow Serving's answer has neither 'outputs' nor 'predictions': keys {sorted(body)}")
    if not isinstance(outputs, Mapping):
        raise ServingError("the answer has a single unnamed output; a tftrt_yolo model returns named outputs")
    return _results(_arrays(outputs), items, names, task)


def decode_predict_response(
    response,
    *,
    items: Sequence[tuple[str | None, bytes | np.ndarray | None]],
    names: Mapping[int, str] | None = None,
    task: str | None = None,
) -> list[Result]:
    """A gRPC `PredictResponse` -> one `Result` per image in `items` ((name, image) as `inputs.iterate` gave them)."""
    import tensorflow as tf

    return _results({k: tf.make_ndarray(v) for k, v in response.outputs.items()}, items, names, task)


def _results(arrays, items, names, task) -> list[Result]:
    task = task or infer_task(arrays)
    n = len(arrays[IMAGE_SIZES])
    if n != len(items):
        raise ServingError(f"the answer holds {n} images but {len(items)} were sent")
    return from_outputs(arrays, task, dict(names) if names else _Names(), list(items))
