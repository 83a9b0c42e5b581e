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

Server-side batching concatenates the inputs of concurrent requests along
their first axis, and TensorFlow Serving refuses it for a signature with scalar
inputs ("Batching Run() input tensors must have at least one dimension"): this
is why the end-to-end signatures take `conf`, `iou` and `max_det` per image.

The clients build requests and decode responses with pure functions
(`rest_predict_body`, `decode_rest_response`, `predict_request`,
`decode_predict_response`), tested without a server; only `RestClient._post`
and `GrpcClient._predict` touch the network.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import itertools
import json
import os
import re
import shlex
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from tftrt_yolo import sources
from tftrt_yolo.convert import staging_dir
from tftrt_yolo.errors import InputError, TftrtYoloError
from tftrt_yolo.metadata import ModelMetadata, read_metadata
from tftrt_yolo.results import Result, from_outputs
from tftrt_yolo.tasks import PREDICT_DEFAULTS, SPECS, check_thresholds, threshold_inputs

CONFIG_FILE = "models.config"
BATCHING_FILE = "batching_parameters.txt"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
SERVING_IMAGE = "tensorflow/serving:2.17.0-gpu"  # the last TensorFlow Serving with TF-TRT ops (2.18 dropped them)
CONTAINER_ROOT = "/models"  # where the tensorflow/serving image looks for models
GRPC_PORT, REST_PORT = 8500, 8501
VERSION_POLICIES = ("latest", "all", "specific")
DEFAULT_SIGNATURE = "serving_default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Signature outputs: dtype and rank. JSON loses both (and the trailing axes of an empty axis).
_OUTPUTS = {
    "boxes": (np.float32, 3),
    "scores": (np.float32, 2),
    "classes": (np.int32, 2),
    "num_detections": (np.int32, 1),
    "masks": (np.uint8, 4),
    "keypoints": (np.float32, 4),
    "rboxes": (np.float32, 3),
    "probs": (np.float32, 2),
    "top5_classes": (np.int32, 2),
    "top5_scores": (np.float32, 2),
    "image_sizes": (np.int32, 2),
}


class ServingError(TftrtYoloError, RuntimeError):
    """TensorFlow Serving answered with an error, or with something that is not a prediction."""


# ----------------------------------------------------------------------------- repository


@dataclasses.dataclass(frozen=True)
class _Entry:
    source: Path
    name: str
    version: int
    metadata: ModelMetadata


def write_model_repository(
    models: Sequence[str | os.PathLike] | str | os.PathLike,
    repo: str | os.PathLike,
    *,
    names: Sequence[str] | None = None,
    version_policy: str = "latest",
    labels: Mapping[str, int] | Mapping[str, Mapping[str, int]] | None = None,
    batching: bool = True,
    warmup: bool = True,
    serving_root: str | None = CONTAINER_ROOT,
    batch_timeout_micros: int = 1000,
    num_batch_threads: int = 4,
    max_enqueued_batches: int = 100,
    warmup_image: str | os.PathLike | bytes | None = None,
) -> Path:
    """Put converted models into a TensorFlow Serving model repository and return its folder.

    `models` are SavedModel folders written by `tftrt_yolo.convert` (`output/NAME/VERSION`);
    each becomes `repo/NAME/VERSION` (`names` overrides NAME; a folder already in place is
    kept, not copied). Copies are staged in a hidden folder inside `repo` and renamed into
    place, so a server polling `repo` never sees half a model. `models.config` keeps the
    entries of other models already in `repo`.

    `version_policy` is `latest` (serve the newest version), `all` or `specific` (every
    version in the repository); `labels` maps label -> version (`{"stable": 1, "canary": 2}`),
    or model name -> such a mapping. `serving_root` is where the server sees `repo`
    (`/models` in the tensorflow/serving container; None: this machine's absolute path).
    """
    models = [models] if isinstance(models, (str, os.PathLike)) else list(models)
    if not models:
        raise InputError("no models given: pass one or more SavedModel folders written by tftrt_yolo.convert")
    if version_policy not in VERSION_POLICIES:
        raise InputError(f"version_policy must be one of {', '.join(VERSION_POLICIES)}, got {version_policy!r}")
    if names is not None and len(names) != len(models):
        raise InputError(f"got {len(names)} names for {len(models)} models: pass one name per model")
    repo = Path(repo).absolute()
    if repo.exists() and not repo.is_dir():
        raise InputError(f"{repo} is a file: pass a folder for the model repository")
    root = str(repo) if serving_root is None else serving_root.rstrip("/") or "/"
    entries = _plan(models, names, repo)
    touched = list(dict.fromkeys(e.name for e in entries))
    labels = _labels_by_name(labels, touched)
    if batching:  # one batching file serves every model of the server: all must share the batch
        served = {p.resolve(): read_metadata(p) for p in _existing_model_dirs(repo, touched)}
        served.update({e.source.resolve(): e.metadata for e in entries})
        _check_same_batch(served)
    versions = {n: sorted({*_versions_on_disk(repo / n), *(e.version for e in entries if e.name == n)}) for n in touched}
    config = _merged_config(repo, root, versions, version_policy, labels)  # checked before anything is written
    image = _warmup_image(warmup_image, max(e.metadata.info.imgsz for e in entries)) if warmup else None

    with staging_dir(repo) as stage:
        staged = []
        for e in entries:
            destination = repo / e.name / str(e.version)
            if destination.exists():  # the model is already in place (_plan checked it is this one)
                if warmup:
                    tmp = write_warmup_requests(e.source, image, model_name=e.name, path=stage / f"{e.name}-{e.version}")
                    os.replace(tmp, destination / WARMUP_FILE)
                continue
            target = stage / e.name / str(e.version)
            shutil.copytree(e.source, target)
            if warmup:
                write_warmup_requests(target, image, model_name=e.name)
            staged.append((target, destination))
        for target, destination in staged:  # publish: one rename per version
            destination.parent.mkdir(parents=True, exist_ok=True)
            target.rename(destination)

    _write_atomically(repo / CONFIG_FILE, config_text(config))
    if batching:
        params = batching_parameters(
            entries[0].metadata,
            batch_timeout_micros=batch_timeout_micros,
            num_batch_threads=num_batch_threads,
            max_enqueued_batches=max_enqueued_batches,
        )
        _write_atomically(repo / BATCHING_FILE, batching_text(params))
    return repo


def _plan(models, names, repo: Path) -> list[_Entry]:
    """Name and version of each model in the repository, refusing to overwrite anything."""
    entries, planned = [], {}
    for i, source in enumerate(models):
        source = Path(source)
        metadata = read_metadata(source)  # checks saved_model.pb and our metadata are there
        name = names[i] if names is not None else source.absolute().parent.name
        if not _NAME.match(name or ""):
            raise InputError(
                f"model name {name!r} (from {source}) is not usable in TensorFlow Serving URLs: use letters, "
                "digits, '_', '.' and '-' (pass names=...)"
            )
        used = planned.setdefault(name, set(_versions_on_disk(repo / name)))
        version = int(source.name) if source.name.isdigit() and int(source.name) > 0 else max(used, default=0) + 1
        destination = repo / name / str(version)
        if any(e.name == name and e.version == version for e in entries):
            raise InputError(
                f"two models would become {name}/{version}: give them different names (names=...) "
                "or different version folders"
            )
        if destination.exists() and destination.resolve() != source.resolve():
            raise InputError(
                f"{destination} already exists and a server may be serving it: write the new model under "
                "another version folder (convert(..., version=N)) or remove the old one first"
            )
        used.add(version)
        entries.append(_Entry(source, name, version, metadata))
    return entries


def _existing_model_dirs(repo: Path, extra_names: Iterable[str] = ()) -> list[Path]:
    """Version folders of the models in `repo`'s models.config (and of `extra_names`) now on disk."""
    names = list(extra_names)
    if (repo / CONFIG_FILE).exists():
        names += [c.name for c in read_model_config(repo / CONFIG_FILE).model_config_list.config]
    return [repo / n / str(v) for n in dict.fromkeys(names) for v in _versions_on_disk(repo / n)]


def _labels_by_name(labels, touched: list[str]) -> dict[str, dict[str, int]]:
    if not labels:
        return {}
    if all(isinstance(v, Mapping) for v in labels.values()):
        unknown = set(labels) - set(touched)
        if unknown:
            raise InputError(f"labels name models not written here: {', '.join(sorted(unknown))}")
        nested = {n: dict(v) for n, v in labels.items()}
    elif len(touched) == 1:
        nested = {touched[0]: dict(labels)}
    else:
        raise InputError(
            "with several models, pass labels per model name: {'yolov8n': {'stable': 1, 'canary': 2}}"
        )
    for name, mapping in nested.items():
        for label, version in mapping.items():
            if not _NAME.match(str(label)) or str(label).isdigit():
                raise InputError(f"version label {label!r} of {name}: use a word such as stable or canary")
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise InputError(f"version label {label}={version!r} of {name}: the version must be an integer >= 1")
    return nested


def _check_same_batch(served: Mapping[Path, ModelMetadata]) -> None:
    if len({(m.batch, m.dynamic) for m in served.values()}) > 1:
        described = ", ".join(f"{p.parent.name}/{p.name}: {_describe_batch(m)}" for p, m in served.items())
        raise InputError(
            "TensorFlow Serving applies one batching_parameters_file to every model, but these models were "
            f"converted for different batches ({described}): write them to separate repositories, convert "
            "them with the same batch, or pass batching=False (--nobatching)"
        )


def _describe_batch(m: ModelMetadata) -> str:
    return f"{'dynamic up to' if m.dynamic else 'static'} {m.batch}"


def _versions_on_disk(model_root: Path) -> list[int]:
    if not model_root.is_dir():
        return []
    return sorted(int(p.name) for p in model_root.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) > 0)


def _merged_config(repo: Path, root: str, versions: Mapping[str, list[int]], version_policy, labels):
    """models.config: the entries of `repo`'s other models, and one per name in `versions` (its versions)."""
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    old = {}
    if (repo / CONFIG_FILE).exists():
        old = {c.name: c for c in read_model_config(repo / CONFIG_FILE).model_config_list.config}
    for name in dict.fromkeys([*old, *versions]):  # keep the order: existing models first
        if name not in versions:
            config.model_config_list.config.add().CopyFrom(old[name])
            continue
        merged = dict(old[name].version_labels) if name in old else {}
        merged.update(labels.get(name, {}))
        loaded = versions[name][-1:] if version_policy == "latest" else versions[name]
        for label, version in merged.items():
            if version not in loaded:
                raise InputError(
                    f"label {label} of {name} points at version {version}, which the {version_policy!r} policy "
                    f"does not serve (it serves {', '.join(map(str, loaded))}): TensorFlow Serving refuses labels "
                    "on versions it has not loaded; pass version_policy='specific' (--version_policy=specific)"
                )
        entry = config.model_config_list.config.add()
        entry.name = name
        entry.base_path = f"{root.rstrip('/')}/{name}"
        entry.model_platform = "tensorflow"
        if version_policy == "latest":
            entry.model_version_policy.latest.num_versions = 1
        elif version_policy == "all":
            entry.model_version_policy.all.SetInParent()
        else:
            entry.model_version_policy.specific.versions.extend(versions[name])
        for label, version in sorted(merged.items()):
            entry.version_labels[label] = version
    return config


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def config_text(config) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def read_model_config(path: str | os.PathLike):
    """Parse a `models.config` (text-format `ModelServerConfig`) as TensorFlow Serving does."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    try:
        return text_format.Parse(Path(path).read_text(), model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as e:
        raise InputError(f"{path} is not a text-format ModelServerConfig: {e}") from None


# ----------------------------------------------------------------------------- batching


def batching_parameters_class():
    """The `tensorflow.serving.BatchingParameters` message class.

    tensorflow-serving-api does not ship `session_bundle_config_pb2`, so when it is missing
    the message is declared here with the fields and numbers of
    tensorflow_serving/servables/tensorflow/session_bundle_config.proto (1-7), in a private
    descriptor pool; text format depends on names only, so the file reads the same.
    """
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2  # type: ignore

        return session_bundle_config_pb2.BatchingParameters
    except ImportError:
        pass
    return _declared_batching_parameters()


_BATCHING_CLASS = None


def _declared_batching_parameters():
    global _BATCHING_CLASS
    if _BATCHING_CLASS is not None:
        return _BATCHING_CLASS
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    f = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    m = f.message_type.add(name="BatchingParameters")
    fd = descriptor_pb2.FieldDescriptorProto
    for number, (name, wrapper) in enumerate(
        [
            ("max_batch_size", "Int64Value"),
            ("batch_timeout_micros", "Int64Value"),
            ("max_enqueued_batches", "Int64Value"),
            ("num_batch_threads", "Int64Value"),
            ("thread_pool_name", "StringValue"),
        ],
        start=1,
    ):
        m.field.add(name=name, number=number, label=fd.LABEL_OPTIONAL, type=fd.TYPE_MESSAGE,
                    type_name=f".google.protobuf.{wrapper}")
    m.field.add(name="allowed_batch_sizes", number=6, label=fd.LABEL_REPEATED, type=fd.TYPE_INT64)
    m.field.add(name="pad_variable_length_inputs", number=7, label=fd.LABEL_OPTIONAL, type=fd.TYPE_BOOL)
    pool.Add(f)
    _BATCHING_CLASS = message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))
    return _BATCHING_CLASS


def batching_parameters(
    metadata: ModelMetadata,
    *,
    batch_timeout_micros: int = 1000,
    num_batch_threads: int = 4,
    max_enqueued_batches: int = 100,
):
    """`BatchingParameters` for a model: batches up to the batch its engines were built for.

    A static-batch model runs exactly `batch` images (TF-TRT built one engine of that shape),
    so `allowed_batch_sizes` is `[batch]` and the server pads smaller batches; a dynamic one
    takes any size up to `batch`, so no sizes are fixed. Inputs are never padded: the images
    of `predict_images` would be padded with image content, which changes their sizes.
    """
    if batch_timeout_micros < 0 or num_batch_threads < 1 or max_enqueued_batches < 1:
        raise InputError("batch_timeout_micros must be >= 0, num_batch_threads and max_enqueued_batches >= 1")
    params = batching_parameters_class()()
    params.max_batch_size.value = metadata.batch
    params.batch_timeout_micros.value = batch_timeout_micros
    params.max_enqueued_batches.value = max_enqueued_batches
    params.num_batch_threads.value = num_batch_threads
    params.thread_pool_name.value = "tftrt_yolo_batch_threads"
    if not metadata.dynamic:
        params.allowed_batch_sizes.append(metadata.batch)
    params.pad_variable_length_inputs = False
    return params


def batching_text(params) -> str:
    """The text of `batching_parameters.txt`: a short header, then the parameters."""
    from google.protobuf import text_format

    lines = [
        "# TensorFlow Serving batching parameters (text-format tensorflow.serving.BatchingParameters),",
        "# for --enable_batching --batching_parameters_file=<this file>. Written by tftrt_yolo.serving.",
        "# pad_variable_length_inputs is false: padding would change the sizes of predict_images' images.",
    ]
    return "\n".join(lines) + "\n" + text_format.MessageToString(params)


def read_batching_parameters(path: str | os.PathLike):
    """Parse a batching parameters file as TensorFlow Serving does (comments allowed)."""
    from google.protobuf import text_format

    try:
        return text_format.Parse(Path(path).read_text(), batching_parameters_class()())
    except text_format.ParseError as e:
        raise InputError(f"{path} is not a text-format BatchingParameters: {e}") from None


def signature_defs(model_dir: str | os.PathLike) -> dict:
    """The SignatureDefs of a SavedModel's `serve` graph, read from `saved_model.pb` (no TensorFlow graph load)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString((Path(model_dir) / "saved_model.pb").read_bytes())
    for graph in proto.meta_graphs:
        if "serve" in graph.meta_info_def.tags:
            return {k: v for k, v in graph.signature_def.items() if not k.startswith("__")}
    raise InputError(f"{model_dir} has no 'serve' graph: it is not a servable SavedModel")


# ----------------------------------------------------------------------------- warmup


def _default_warmup_image() -> Path | None:
    spec = importlib.util.find_spec("ultralytics")  # finds the package without importing it
    for folder in spec.submodule_search_locations if spec and spec.submodule_search_locations else []:
        path = Path(folder) / "assets" / "bus.jpg"
        if path.is_file():
            return path
    return None


def _warmup_image(image, imgsz: int) -> bytes:
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


# ----------------------------------------------------------------------------- command line


def serve_command(
    repo: str | os.PathLike,
    *,
    docker: bool | None = None,
    gpu: bool = True,
    image: str = SERVING_IMAGE,
    grpc_port: int = GRPC_PORT,
    rest_port: int = REST_PORT,
) -> str:
    """The command that serves `repo`: `docker run` of the TensorFlow Serving image when the
    config's base paths are under /models, else `tensorflow_model_server` on this machine.
    `grpc_port` / `rest_port` are the ports on this machine.

    `--enable_batching` is added when `batching_parameters.txt` exists. Warmup is on by default in
    the server.
    """
    repo = Path(repo).absolute()
    config = read_model_config(repo / CONFIG_FILE)
    root = CONTAINER_ROOT if docker or (docker is None and _base_paths_under(config, CONTAINER_ROOT)) else str(repo)
    if not _base_paths_under(config, root):
        raise InputError(
            f"the base paths in {repo / CONFIG_FILE} are not under {root}: write the repository with "
            f"serving_root={'None' if root == str(repo) else repr(CONTAINER_ROOT)} for this command"
        )
    flags = [f"--model_config_file={root}/{CONFIG_FILE}"]
    if (repo / BATCHING_FILE).exists():
        flags += ["--enable_batching", f"--batching_parameters_file={root}/{BATCHING_FILE}"]
    if root != CONTAINER_ROOT:
        ports = [f"--port={grpc_port}", f"--rest_api_port={rest_port}"]
        return " ".join(["tensorflow_model_server", *(shlex.quote(f) for f in ports + flags)])
    # the image's entrypoint runs tensorflow_model_server --port=8500 --rest_api_port=8501 "$@"
    run = ["docker run --rm", "--gpus all" if gpu else "", f"-p {grpc_port}:{GRPC_PORT} -p {rest_port}:{REST_PORT}",
           f"-v {shlex.quote(f'{repo}:{CONTAINER_ROOT}')}", image]
    return " \\\n  ".join(part for part in [*run, *flags] if part)


def _base_paths_under(config, root: str) -> bool:
    return all(c.base_path.startswith(root.rstrip("/") + "/") for c in config.model_config_list.config)


# ----------------------------------------------------------------------------- clients: pure functions


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
    images: Sequence[bytes],
    *,
    conf: float = PREDICT_DEFAULTS["conf"],
    iou: float = PREDICT_DEFAULTS["iou"],
    max_det: int = PREDICT_DEFAULTS["max_det"],
    signature_name: str = DEFAULT_SIGNATURE,
) -> dict:
    """A REST `:predict` body in the columnar ("inputs") format: images as {"b64": ...}, thresholds per image."""
    if not images:
        raise InputError("no images to send")
    thresholds = threshold_inputs(len(images), conf, iou, max_det)
    return {
        "signature_name": signature_name,
        "inputs": {
            "images": [{"b64": base64.b64encode(bytes(b)).decode("ascii")} for b in images],
            **{k: v.tolist() for k, v in thresholds.items()},  # max_det stays JSON integers (DT_INT32)
        },
    }


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
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise InputError(f"image arrays must be uint8 [N, H, W, 3] RGB, got {images.dtype} {images.shape}")
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(images, dtype=tf.uint8))
    else:
        if not images:
            raise InputError("no images to send")
        request.inputs["images"].CopyFrom(tf.make_tensor_proto([bytes(b) for b in images], dtype=tf.string))
    for key, value in threshold_inputs(len(images), conf, iou, max_det).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request



def infer_task(output_names: Iterable[str]) -> str:
    """The task whose signature has exactly these outputs (besides `image_sizes`)."""
    names = set(output_names) - {"image_sizes"}
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
    arrays = {name: np.asarray(value, dtype=_OUTPUTS.get(name, (None,))[0]) for name, value in outputs.items()}
    sizes = arrays.get("image_sizes")
    for name, arr in arrays.items():
        rank = _OUTPUTS.get(name, (None, None))[1]
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
    items: Sequence[tuple[str | None, bytes | None]],
    names: Mapping[int, str] | None = None,
    task: str | None = None,
) -> list[Result]:
    """A REST `:predict` response -> one `Result` per image in `items` ((name, encoded) as sent).

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
    items: Sequence[tuple[str | None, bytes | None]],
    names: Mapping[int, str] | None = None,
    task: str | None = None,
) -> list[Result]:
    """A gRPC `PredictResponse` -> one `Result` per image in `items` ((name, encoded) as sent)."""
    import tensorflow as tf

    return _results({k: tf.make_ndarray(v) for k, v in response.outputs.items()}, items, names, task)


def _results(arrays, items, names, task) -> list[Result]:
    task = task or infer_task(arrays)
    n = len(arrays["image_sizes"])
    if n != len(items):
        raise ServingError(f"the answer holds {n} images but {len(items)} were sent")
    return from_outputs(arrays, task, dict(names) if names else _Names(), list(items))


# ----------------------------------------------------------------------------- clients


class _Client:
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
        items, results = sources.iterate(x), []
        while batch := list(itertools.islice(items, self.batch_size)):
            results.extend(self._predict_batch(batch, conf, iou, max_det))
        if not results:
            raise InputError("no images to predict on: the source is empty")
        return results

    __call__ = predict


class RestClient(_Client):
    """Predictions from TensorFlow Serving's REST API (`POST /v1/models/NAME[...]:predict`).

    `model_dir` (a local copy of the served model) gives the class names, task and batch size;
    without it pass `names=` or get class ids as names, and the task is read from the outputs.
    """

    def __init__(self, url: str, model_name: str, *,
                 version: int | None = None, label: str | None = None, model_dir=None, names=None,
                 task: str | None = None, batch_size: int | None = None, timeout: float = 60.0,
                 signature_name: str = DEFAULT_SIGNATURE):
        super().__init__(model_name, version=version, label=label, model_dir=model_dir, names=names, task=task,
                         batch_size=batch_size, timeout=timeout, signature_name=signature_name)
        self.url = rest_url(url, model_name, version=version, label=label)

    def _predict_batch(self, batch, conf, iou, max_det) -> list[Result]:
        body = rest_predict_body([encoded for _, encoded in batch], conf=conf, iou=iou, max_det=max_det,
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
    """Predictions from TensorFlow Serving's gRPC API (`PredictionService.Predict`)."""

    def __init__(self, target: str, model_name: str, *,
                 version: int | None = None, label: str | None = None, model_dir=None, names=None,
                 task: str | None = None, batch_size: int | None = None, timeout: float = 60.0,
                 signature_name: str = DEFAULT_SIGNATURE):
        super().__init__(model_name, version=version, label=label, model_dir=model_dir, names=names, task=task,
                         batch_size=batch_size, timeout=timeout, signature_name=signature_name)
        self.target = target
        self._stub = None

    def _predict_batch(self, batch, conf, iou, max_det) -> list[Result]:
        request = predict_request([encoded for _, encoded in batch], model_name=self.model_name, conf=conf, iou=iou,
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


__all__ = [
    "BATCHING_FILE",
    "CONFIG_FILE",
    "GrpcClient",
    "RestClient",
    "SERVING_IMAGE",
    "ServingError",
    "WARMUP_FILE",
    "batching_parameters",
    "decode_predict_response",
    "decode_rest_response",
    "predict_request",
    "read_batching_parameters",
    "read_model_config",
    "read_warmup_requests",
    "rest_predict_body",
    "rest_url",
    "serve_command",
    "signature_defs",
    "warmup_requests",
    "write_model_repository",
    "write_warmup_requests",
]
