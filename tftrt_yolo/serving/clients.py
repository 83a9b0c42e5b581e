"""REST and gRPC clients of TensorFlow Serving that return the same `Result`s as `tftrt_yolo.load(...).predict`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from tftrt_yolo import inputs
from tftrt_yolo.errors import InputError
from tftrt_yolo.metadata import read_metadata
from tftrt_yolo.results import Result
from tftrt_yolo.serving.protocol import (
    DEFAULT_SIGNATURE,
    ServingError,
    decode_predict_response,
    decode_rest_response,
    predict_request,
    rest_predict_body,
    rest_url,
)
from tftrt_yolo.signatures import ARRAYS, PREDICT_DEFAULTS, check_thresholds


class _Client:
    """What both clients share: the model's names, task and batch size, and splitting images into requests."""

    def __init__(self, model_name, *, version, label, model_dir, names, task, batch_size, timeout, signature_name):
        if version is not None and label is not None:
            raise InputError("pass a version or a label, not both")
        self.model_name, self.version, self.label = model_name, version, label
        self.signature_name, self.timeout = signature_name, timeout
        metadata = read_metadata(model_dir) if model_dir is not None else None
        self.names = dict(names) if names is not None else (metadata.info.names if metadata else None)
        self.task = task or (metadata.info.task if metadata else None)
        self.batch_size = batch_size or (metadata.batch if metadata else 1)
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")

    def predict(self, x, conf: float = PREDICT_DEFAULTS["conf"], iou: float = PREDICT_DEFAULTS["iou"],
                max_det: int = PREDICT_DEFAULTS["max_det"]) -> list[Result]:
        """Results for every image in `x` (anything `tftrt_yolo.load(...).predict` takes), `batch_size` per request."""
        check_thresholds(conf, iou, max_det)
        results = []
        for batch in inputs.batches(x, self.batch_size):
            results.extend(self._predict_batch(batch, conf, iou, max_det))
        if not results:
            raise InputError("no images to predict on: the source is empty")
        return results

    __call__ = predict

    def _images(self, batch):
        """What a request carries: encoded images for `serving_default`, one uint8 RGB batch for
        `predict_images`."""
        if self.signature_name == ARRAYS:
            return inputs.rgb_batch([image for _, image in batch])
        return [inputs.encoded(image) for _, image in batch]


class RestClient(_Client):
    """Predictions from TensorFlow Serving's REST API (`POST /v1/models/NAME[...]:predict`).

    Args:
        url: the server's REST address, e.g. "http://localhost:8501".
        model_name: the name in models.config.
        version, label: a version number or a version label (default: what the policy serves).
        model_dir: a local copy of the served model: gives the class names, task and batch size.
        names: class names without `model_dir` (default: class ids as names).
        task: without `model_dir` it is read from the outputs.
        batch_size: images per request (default: the model's batch, else 1).
        timeout: seconds per request.
        signature_name: "serving_default" (encoded images) or "predict_images" (the client sends pixels:
            one uint8 RGB batch per request, its images of one size, files decoded here with OpenCV).

    `predict(x, conf, iou, max_det)` takes anything `tftrt_yolo.load(...).predict` takes and
    returns one `Result` per image; the server's errors raise ServingError.

    Example::

        from tftrt_yolo import serving

        client = serving.RestClient("http://localhost:8501", "yolov8n", model_dir="saved_models/yolov8n/1")
        for r in client.predict("images/", conf=0.25):
            print(r.path, len(r), r.to_json())
    """

    def __init__(self, url: str, model_name: str, *,
                 version: int | None = None, label: str | None = None, model_dir=None, names=None,
                 task: str | None = None, batch_size: int | None = None, timeout: float = 60.0,
                 signature_name: str = DEFAULT_SIGNATURE):
        super().__init__(model_name, version=version, label=label, model_dir=model_dir, names=names, task=task,
                         batch_size=batch_size, timeout=timeout, signature_name=signature_name)
        self.url = rest_url(url, model_name, version=version, label=label)

    def _predict_batch(self, batch, conf, iou, max_det) -> list[Result]:
        body = rest_predict_body(self._images(batch), conf=conf, iou=iou, max_det=max_det,
                                 signature_name=self.signature_name)
        answer = self._post(json.dumps(body).encode())
        return decode_rest_response(answer, items=batch, names=self.names, task=self.task)

    def _post(self, data: bytes) -> bytes:
        request = urllib.request.Request(self.url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as e:  # TensorFlow Serving explains errors in a JSON body
            return e.read()
        except (urllib.error.URLError, OSError) as e:
            raise ServingError(f"cannot reach TensorFlow Serving at {self.url}: {e}") from None


class GrpcClient(_Client):
    """Predictions from TensorFlow Serving's gRPC API (`PredictionService.Predict`).

    Args:
        target: the server's gRPC address, e.g. "localhost:8500".
        model_name, version, label, model_dir, names, task, batch_size, timeout, signature_name:
            as RestClient's.

    `predict` is RestClient's. Masks at full resolution can be large, so the channel has no
    message size limit.

    Example::

        from tftrt_yolo import serving

        client = serving.GrpcClient("localhost:8500", "yolov8n", label="stable", model_dir="saved_models/yolov8n/1")
        results = client.predict(["bus.jpg", "zidane.jpg"])
    """

    def __init__(self, target: str, model_name: str, *,
                 version: int | None = None, label: str | None = None, model_dir=None, names=None,
                 task: str | None = None, batch_size: int | None = None, timeout: float = 60.0,
                 signature_name: str = DEFAULT_SIGNATURE):
        super().__init__(model_name, version=version, label=label, model_dir=model_dir, names=names, task=task,
                         batch_size=batch_size, timeout=timeout, signature_name=signature_name)
        self.target = target
        self._stub = None

    def _predict_batch(self, batch, conf, iou, max_det) -> list[Result]:
        request = predict_request(self._images(batch), model_name=self.model_name, conf=conf, iou=iou,
                                  max_det=max_det, signature_name=self.signature_name, version=self.version,
                                  label=self.label)
        return decode_predict_response(self._predict(request), items=batch, names=self.names, task=self.task)

    def _predict(self, request):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        if self._stub is None:  # masks at full resolution can be large: no receive limit
            channel = grpc.insecure_channel(self.target, options=[("grpc.max_receive_message_length", -1),
                                                                  ("grpc.max_send_message_length", -1)])
            self._stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return self._stub.Predict(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise ServingError(f"TensorFlow Serving at {self.target}: {e.code().name}: {e.details()}") from None
