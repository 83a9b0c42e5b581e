"""convert(): a YOLOv8 model -> an end-to-end TensorFlow SavedModel (plain, XLA or TF-TRT).

Steps: Ultralytics -> ONNX -> onnx2tf (child process) -> EndToEndModel saved
with its signatures -> optionally TF-TRT. Everything is written under a hidden
temporary folder beside the destination and renamed into place at the end, so
an error or an interrupt leaves no half-written model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import logging
import re
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path

from tftrt_yolo.errors import InputError
from tftrt_yolo.source import resolve_model_path
from tftrt_yolo.metadata import ModelMetadata, write_metadata
from tftrt_yolo.tasks import task_spec

BACKENDS = ("tensorflow", "xla", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_OUTPUT = Path("saved_models")
logger = logging.getLogger("tftrt_yolo")


def package_versions() -> dict:
    names = ("tensorflow", "ultralytics", "onnx2tf", "onnx", "tftrt-yolo")
    return {n: importlib.metadata.version(n) for n in names}


def _check_arguments(imgsz, batch, backend, precision):
    if imgsz is not None and (not isinstance(imgsz, int) or imgsz < 32 or imgsz % 32):
        raise InputError(f"imgsz must be a multiple of 32 (the YOLOv8 stride), got {imgsz!r}")
    if not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a positive integer, got {batch!r}")
    if backend not in BACKENDS:
        raise InputError(f"unsupported backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise InputError(f"unsupported precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision != "fp32" and backend != "tensorrt":
        raise InputError(f"precision {precision} runs on TensorRT: pass backend='tensorrt' (or precision='fp32')")


def default_name(model: Path, backend: str, precision: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", model.stem)
    return stem if backend == "tensorflow" else f"{stem}-{'trt-' + precision if backend == 'tensorrt' else 'xla'}"


def next_version(model_root: Path) -> int:
    versions = [int(p.name) for p in model_root.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


@contextlib.contextmanager
def staging_dir(parent: Path):
    """A hidden temporary folder under `parent`, removed unless its content was moved away."""
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / f".tmp-{uuid.uuid4().hex[:12]}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def convert(
    model: str | Path | None = None,
    *,
    imgsz: int | None = None,
    batch: int = 1,
    dynamic: bool | None = None,
    backend: str = "tensorflow",
    precision: str = "fp32",
    workspace: float = 4,
    data: str | Path | list | None = None,
    minimum_segment_size: int = 3,
    max_cached_engines: int = 1,
    recalibrate: bool = False,
    max_map_drop: float | None = None,
    output: str | Path = DEFAULT_OUTPUT,
    name: str | None = None,
    version: int | None = None,
    verbose: bool = True,
) -> Path:
    """Convert a YOLOv8 `.pt`, model `.yaml` or Ultralytics `.onnx` and return the SavedModel folder.

    The folder is `output/name/version` (TensorFlow Serving's layout). `imgsz`
    defaults to the size the model was trained at (640 for a .yaml). `batch`
    is the largest batch the model takes; `dynamic` lets it take any batch up
    to that without padding (default: True for int8, else False).

    `backend`: "tensorflow" (the plain graph), "xla" (the network compiled with
    XLA) or "tensorrt" (TF-TRT at `precision`, engines built before saving;
    INT8 calibrates on `data`: a dataset YAML's val split, an image folder or a
    list of images, by default the task's demo data). A conversion whose inputs
    all match one already in `output/name` is reused unless `recalibrate`.
    After fp16/int8, the mAP50-95 (top-1) drop against fp32 is measured on
    `data` and stored; `max_map_drop` makes a larger drop an error.
    """
    if model is None:
        from tftrt_yolo.demo import demo_model

        model = demo_model("detect")
    model = resolve_model_path(model)
    dynamic = (precision == "int8") if dynamic is None else bool(dynamic)
    _check_arguments(imgsz, batch, backend, precision)
    environment = _environment(backend, precision)  # fails fast, before any work, without TF-TRT
    model_root = Path(output) / (name or default_name(model, backend, precision))
    if version is not None:
        if not isinstance(version, int) or version < 1:
            raise InputError(f"version must be a positive integer, got {version!r}")
        if (model_root / str(version)).exists():
            raise InputError(f"{model_root / str(version)} already exists: pass another version or remove it")
    with _Progress(verbose, total=6 if backend == "tensorrt" else 4) as steps, \
            staging_dir(Path(output)) as stage, tempfile.TemporaryDirectory(prefix="tftrt_yolo-") as work:
        work = Path(work)
        steps.next("export ONNX")
        from tftrt_yolo.source import export_onnx

        onnx_path, info = export_onnx(model, work, imgsz=imgsz, batch=batch, dynamic=dynamic)
        if dynamic and not task_spec(info.task).supports_dynamic_batch:
            raise InputError(
                f"{info.task} models convert only with a static batch (onnx2tf cannot convert the mask "
                "head with a dynamic one): pass dynamic=False (--nodynamic)"
            )
        images = _data_images(data, info.task, needed=backend == "tensorrt")
        key = _cache_key(info, backend, precision, batch, dynamic, environment, images, workspace,
                         minimum_segment_size, max_cached_engines)  # fmt: skip
        cached = None if recalibrate else find_cached(model_root, key)
        if cached is not None:
            logger.info("reusing %s: same model, data, settings and versions (pass recalibrate=True to redo)", cached)
            return cached
        steps.next("onnx2tf")
        from tftrt_yolo.onnx_to_tf import onnx_to_saved_model

        network_dir = onnx_to_saved_model(onnx_path, work / "network", work)
        steps.next("build end-to-end graph")
        from tftrt_yolo.graph.end_to_end import build_and_save

        plain_dir = work / "plain" if backend == "tensorrt" else stage
        signatures = build_and_save(network_dir, plain_dir, info, batch=batch, dynamic=dynamic,
                                    jit_compile=backend == "xla")  # fmt: skip
        metadata = ModelMetadata(
            info=info,
            batch=batch,
            dynamic=dynamic,
            backend=backend,
            precision=precision,
            versions=package_versions(),
            signatures=signatures,
            cache_key=key,
        )
        if backend == "tensorrt":
            steps.next(f"TF-TRT {precision}: convert, calibrate, build engines")
            _run_tftrt(plain_dir, stage, precision, batch, dynamic, images, workspace, minimum_segment_size,
                       max_cached_engines)  # fmt: skip
            # TF-TRT keeps only the signature it converted
            metadata = dataclasses.replace(metadata, signatures=("serving_default",))
            if precision != "fp32":
                steps.next("accuracy against fp32")
                from tftrt_yolo.validate import accuracy_drop

                # both models load like any other (the staged one gets its final metadata below)
                write_metadata(plain_dir, dataclasses.replace(metadata, backend="tensorflow", precision="fp32",
                                                              signatures=signatures))  # fmt: skip
                write_metadata(stage, metadata)
                accuracy = accuracy_drop(plain_dir, stage, data=data, max_drop=max_map_drop)
                metadata = dataclasses.replace(metadata, accuracy=accuracy)
        steps.next("report and metadata")
        from tftrt_yolo.report import build_report

        metadata = dataclasses.replace(metadata, report=build_report(stage).to_dict())
        write_metadata(stage, metadata)
        return publish(stage, model_root, version)


def _environment(backend: str, precision: str):
    """The machine's TF-TRT findings; raises EnvironmentNotReady for backend tensorrt without usable TF-TRT."""
    from tftrt_yolo.environment import check_environment, require_tftrt

    report = check_environment()
    if backend == "tensorrt":
        require_tftrt(precision, report)
    return report


def _data_images(data, task: str, needed: bool) -> list[Path]:
    """Images for INT8 calibration and engine building: `data`, else the task's demo val images."""
    if not needed:
        return []
    from tftrt_yolo.tensorrt import collect_calibration_images

    if data is None:
        from tftrt_yolo.demo import demo_data

        warnings.warn(
            f"no data= given: calibrating and building engines on tftrt_yolo's synthetic {task} demo data, "
            "not on your images; pass data= (a dataset YAML, folder or image list) for your model",
            stacklevel=3,
        )
        data = demo_data(task, val_only=True)
    return collect_calibration_images(data, task)


def _cache_key(info, backend, precision, batch, dynamic, environment, images, workspace, min_segment, max_engines):
    from tftrt_yolo.tensorrt import conversion_cache_key

    key = conversion_cache_key(
        info.source_sha256,
        precision=precision,
        max_batch=batch,
        dynamic=dynamic,
        imgsz=info.imgsz,
        environment=environment,
        calibration_images=images if precision == "int8" else None,
        calibration_batch=batch if precision == "int8" else None,
        workspace_gib=workspace,
        minimum_segment_size=min_segment,
        max_cached_engines=max_engines,
    )
    return key | {"backend": backend, "tftrt_yolo": package_versions()["tftrt-yolo"]}


def find_cached(model_root: Path, key: dict) -> Path | None:
    """The newest version in `model_root` made from exactly `key`; logs what changed otherwise."""
    from tftrt_yolo.metadata import read_metadata
    from tftrt_yolo.tensorrt import diff_cache_keys

    versions = sorted((p for p in model_root.glob("*") if p.name.isdigit()), key=lambda p: int(p.name), reverse=True)
    for path in versions:
        try:
            old = read_metadata(path).cache_key
        except InputError:
            continue
        changes = diff_cache_keys(old, key)
        if not changes:
            return path
        if path == versions[0]:
            logger.info("converting again, %s differs from this conversion: %s", path, "; ".join(changes))
    return None


def _run_tftrt(plain_dir, stage, precision, batch, dynamic, images, workspace, min_segment, max_engines):
    from tftrt_yolo.tasks import PREDICT_DEFAULTS
    from tftrt_yolo.tensorrt import build_input_fn, calibration_input_fn, convert_with_tensorrt

    convert_with_tensorrt(
        plain_dir,
        stage,
        precision=precision,
        build_input_fn=build_input_fn(batch, dynamic, images[:8], **PREDICT_DEFAULTS),
        calibration_input_fn=(
            calibration_input_fn(images, batch, max_batch=batch, **PREDICT_DEFAULTS) if precision == "int8" else None
        ),
        workspace_gib=workspace,
        minimum_segment_size=min_segment,
        max_cached_engines=max_engines,
    )


def publish(stage: Path, model_root: Path, version: int | None) -> Path:
    """Move a finished model from its staging folder to `model_root/version` (rename: atomic)."""
    model_root.mkdir(parents=True, exist_ok=True)
    destination = model_root / str(version or next_version(model_root))
    if destination.exists():
        raise InputError(f"{destination} already exists: pass another version or remove it")
    stage.rename(destination)
    return destination


class _Progress:
    """A step bar on stderr (tqdm) while converting, or nothing when not verbose."""

    def __init__(self, verbose: bool, total: int):
        self._verbose, self._total, self._bar = verbose, total, None

    def __enter__(self):
        if self._verbose:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self._total, desc="convert", unit="step", leave=False)
        return self

    def next(self, what: str):
        if self._bar is not None:
            self._bar.update(1 if self._bar.desc.startswith("convert:") else 0)
            self._bar.set_description(f"convert: {what}")

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.close()
