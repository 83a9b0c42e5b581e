"""TensorFlow Serving: a model repository from converted models, and REST / gRPC clients.

`write_model_repository()` lays converted models out as TensorFlow Serving
expects (`<repo>/<name>/<version>/`), with

- `models.config`: a text-format `ModelServerConfig` (names, base paths,
  version policy, version labels such as stable/canary);
- `batching_parameters.txt`: a text-format `BatchingParameters` whose
  `max_batch_size` is the batch the models (and their TF-TRT engines) were
  converted for;
- `<name>/<version>/assets.extra/tf_serving_warmup_requests`: a TFRecord of
  `PredictionLog`s, one `PredictRequest` per signature and batch size the
  engines have, on a real JPEG, so the server loads (and for TF-TRT builds or
  deserialises) every engine before it reports the model available.

`RestClient` and `GrpcClient` send images to the server and return the same
`Result`s as `tftrt_yolo.load(...).predict`.

Modules: `repository` (folders and models.config), `batching`, `warmup`,
`command` (the `docker run` / `tensorflow_model_server` line), `protocol`
(requests and responses as pure functions, tested without a server) and
`clients` (only `RestClient._post` and `GrpcClient._predict` touch the network).
"""

from tftrt_yolo.serving.batching import (
    BATCHING_FILE,
    batching_parameters,
    batching_parameters_class,
    batching_text,
    read_batching_parameters,
)
from tftrt_yolo.serving.clients import GrpcClient, RestClient
from tftrt_yolo.serving.command import GRPC_PORT, REST_PORT, SERVING_IMAGE, serve_command
from tftrt_yolo.serving.protocol import (
    DEFAULT_SIGNATURE,
    ServingError,
    decode_predict_response,
    decode_rest_response,
    infer_task,
    predict_request,
    rest_predict_body,
    rest_url,
)
from tftrt_yolo.serving.repository import (
    CONFIG_FILE,
    CONTAINER_ROOT,
    VERSION_POLICIES,
    config_text,
    read_model_config,
    write_model_repository,
)
from tftrt_yolo.serving.warmup import (
    WARMUP_FILE,
    read_warmup_requests,
    signature_defs,
    warmup_batch_sizes,
    warmup_jpeg,
    warmup_requests,
    write_warmup_requests,
)

__all__ = [
    "BATCHING_FILE",
    "CONFIG_FILE",
    "CONTAINER_ROOT",
    "DEFAULT_SIGNATURE",
    "GRPC_PORT",
    "GrpcClient",
    "REST_PORT",
    "RestClient",
    "SERVING_IMAGE",
    "ServingError",
    "VERSION_POLICIES",
    "WARMUP_FILE",
    "batching_parameters",
    "batching_parameters_class",
    "batching_text",
    "config_text",
    "decode_predict_response",
    "decode_rest_response",
    "infer_task",
    "predict_request",
    "read_batching_parameters",
    "read_model_config",
    "read_warmup_requests",
    "rest_predict_body",
    "rest_url",
    "serve_command",
    "signature_defs",
    "warmup_batch_sizes",
    "warmup_jpeg",
    "warmup_requests",
    "write_model_repository",
    "write_warmup_requests",
]
