"""convert(): a YOLOv8 model -> an end-to-end TensorFlow SavedModel (plain, XLA or TF-TRT).

Steps: Ultralytics -> ONNX -> onnx2tf (child process) -> EndToEndModel saved
with its signatures -> optionally TF-TRT. Everything is written under a hidden
temporary folder beside the destination and renamed into place at the end, so
an error or an interrupt leaves no half-written model.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from tftrt_yolo.errors import InputError
from tftrt_yolo.source import resolve_model_path
from tftrt_yolo.metadata import ModelMetadata, write_metadata
from tftrt_yolo.tasks import task_spec

BACKENDS = ("tensorflow", "xla", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_OUTPUT = Path("saved_models")


def package_versions() -> dict:
    names = ("tensorflow", "ultralytics", "onnx2tf", "onnx", "tftrt-yolo")
    return {n: importlib.metadata.version(n) for n in names}


def _check_arguments(imgsz, batch, backend, precision):
    if not isinstance(imgsz, int) or imgsz < 32 or imgsz % 32:
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
    imgsz: int = 640,
    batch: int = 1,
    dynamic: bool | None = None,
    backend: str = "tensorflow",
    precision: str = "fp32",
    output: str | Path = DEFAULT_OUTPUT,
    name: str | None = None,
    version: int | None = None,
    verbose: bool = True,
) -> Path:
    """Convert a YOLOv8 `.pt`, model `.yaml` or Ultralytics `.onnx` and return the SavedModel folder.

    The folder is `output/name/version` (TensorFlow Serving's layout). `batch`
    is the largest batch the model takes; `dynamic` lets it take any batch up
    to that without padding (default: True for int8, else False).
    """
    if model is None:
        from tftrt_yolo.demo import demo_model

        model = demo_model("detect")
    model = resolve_model_path(model)
    dynamic = (precision == "int8") if dynamic is None else bool(dynamic)
    _check_arguments(imgsz, batch, backend, precision)
    model_root = Path(output) / (name or default_name(model, backend, precision))
    if version is not None:
        if not isinstance(version, int) or version < 1:
            raise InputError(f"version must be a positive integer, got {version!r}")
        if (model_root / str(version)).exists():
            raise InputError(f"{model_root / str(version)} already exists: pass another version or remove it")
    with _Progress(verbose, total=4) as steps, staging_dir(Path(output)) as stage, \
            tempfile.TemporaryDirectory(prefix="tftrt_yolo-") as work:
        work = Path(work)
        steps.next("export ONNX")
        from tftrt_yolo.source import export_onnx

        onnx_path, info = export_onnx(model, work, imgsz=imgsz, batch=batch, dynamic=dynamic)
        if dynamic and not task_spec(info.task).supports_dynamic_batch:
            raise InputError(
                f"{info.task} models convert only with a static batch (onnx2tf cannot convert the mask "
                "head with a dynamic one): pass dynamic=False (--nodynamic)"
            )
        steps.next("onnx2tf")
        from tftrt_yolo.onnx_to_tf import onnx_to_saved_model

        network_dir = onnx_to_saved_model(onnx_path, work / "network", work)
        steps.next("build end-to-end graph")
        from tftrt_yolo.graph.end_to_end import build_and_save

        signatures = build_and_save(
            network_dir, stage, info, batch=batch, dynamic=dynamic, jit_compile=backend == "xla"
        )
        steps.next("write metadata")
        metadata = ModelMetadata(
            info=info,
            batch=batch,
            dynamic=dynamic,
            backend=backend,
            precision=precision,
            versions=package_versions(),
            signatures=signatures,
        )
        write_metadata(stage, metadata)
        return publish(stage, model_root, version)


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
