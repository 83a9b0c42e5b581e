"""convert(): a YOLOv8 model -> an end-to-end TensorFlow SavedModel (plain, XLA or TF-TRT).

Steps: Ultralytics -> ONNX -> onnx2tf (child process) -> EndToEndModel saved
with its signatures -> optionally TF-TRT. Everything is written under a hidden
temporary folder beside the destination and renamed into place at the end, so
an error or an interrupt leaves no half-written model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.metadata
import logging
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from tftrt_yolo.environment import PRECISIONS
from tftrt_yolo.errors import InputError
from tftrt_yolo.conversion_cache import find_cached
from tftrt_yolo.files import check_writable_dir, publish, staging_dir, work_dir
from tftrt_yolo.onnx_export import resolve_model_path
from tftrt_yolo.metadata import ModelMetadata, write_metadata
from tftrt_yolo.tasks import task_spec

if TYPE_CHECKING:
    from tftrt_yolo.report import ConversionReport

BACKENDS = ("tensorflow", "xla", "tensorrt")
DEFAULT_OUTPUT = Path("saved_models")
logger = logging.getLogger("tftrt_yolo")


def package_versions() -> dict:
    names = ("tensorflow", "ultralytics", "onnx2tf", "onnx", "tftrt-yolo")
    return {n: importlib.metadata.version(n) for n in names}


MAX_IMGSZ, MAX_BATCH = 4096, 256  # beyond these the export dies in torch's allocator minutes later
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # one folder: a TensorFlow Serving model name


def _check_arguments(imgsz, batch, backend, precision, name, version):
    """Argument errors, found before any work (and before TensorFlow is imported)."""
    if imgsz is not None and (not isinstance(imgsz, int) or not 32 <= imgsz <= MAX_IMGSZ or imgsz % 32):
        raise InputError(f"imgsz must be a multiple of 32 (the YOLOv8 stride) up to {MAX_IMGSZ}, got {imgsz!r}")
    if not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise InputError(f"batch must be a positive integer up to {MAX_BATCH}, got {batch!r}")
    if backend not in BACKENDS:
        raise InputError(f"unsupported backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise InputError(f"unsupported precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision != "fp32" and backend != "tensorrt":
        raise InputError(f"precision {precision} runs on TensorRT, not {backend}: leave backend out or pass "
                         "backend='tensorrt' (or precision='fp32')")  # fmt: skip
    if name is not None and not (isinstance(name, str) and _NAME.fullmatch(name)):
        raise InputError(f"name must be one folder name of letters, digits, '_', '.', '-' (a TensorFlow Serving "
                         f"model name), got {name!r}")  # fmt: skip
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise InputError(f"version must be a positive integer, got {version!r}")


def _check_data(data) -> None:
    """A data path that does not exist is an error even where the conversion would not read it."""
    for item in data if isinstance(data, (list, tuple)) else [data]:
        if isinstance(item, (str, Path)) and not Path(item).exists():
            raise InputError(f"data not found: {item} (pass a dataset YAML, an image folder or a list of images)")


def default_name(model: Path, backend: str, precision: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", model.stem).lstrip(".-") or "model"  # never a hidden folder
    return stem if backend == "tensorflow" else f"{stem}-{'trt-' + precision if backend == 'tensorrt' else 'xla'}"


def convert(
    model: str | Path | None = None,
    *,
    imgsz: int | None = None,
    batch: int = 1,
    dynamic: bool | None = None,
    backend: str | None = None,
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
    dry_run: bool = False,
    verbose: bool = False,
) -> Path | ConversionReport:
    """Convert a YOLOv8 `.pt`, model `.yaml` or Ultralytics `.onnx` and return the SavedModel folder.

    TF-TRT converts the network alone; decoding, letterboxing and the post-processing stay in
    TensorFlow, in fp32, around it. A conversion whose inputs all match one already in
    `output/name` is reused unless `recalibrate`.

    Args:
        model: the model file (default: the built-in detect demo model).
        imgsz: square input size, a multiple of 32 (default: the size the model was trained at; 640
            for a .yaml).
        batch: the largest batch the model takes.
        dynamic: take any batch up to `batch` without padding (default: True for int8, else False).
        backend: "tensorflow" (the plain graph; the default for fp32), "xla" (the network compiled
            with XLA) or "tensorrt" (TF-TRT at `precision`, the default for fp16 and int8; engines
            built before saving).
        precision: "fp32", "fp16" or "int8".
        workspace: TensorRT builder workspace in GiB.
        data: INT8 calibration, engine building and accuracy data: a dataset YAML (its val split), an
            image folder or a list of images (default: the task's demo data).
        minimum_segment_size: smallest TensorFlow subgraph TF-TRT turns into an engine.
        max_cached_engines: TF-TRT engines kept per subgraph.
        recalibrate: convert again even when an identical conversion is in `output/name`.
        max_map_drop: after fp16/int8 the mAP50-95 (top-1) drop against the same network in fp32 is
            measured on `data` (a demo model: its demo data; another model without `data`: not
            measured) and stored; a larger drop than this raises ConversionError (needs labelled data).
        output, name, version: the folder is `output/name/version`, TensorFlow Serving's layout (name
            default: from the model file, plus -xla or -trt-PRECISION; version: the next free number).
        dry_run: run TF-TRT's own segmentation of the network on any machine (no TensorRT or GPU
            needed), build no engine, write nothing and return the `report.ConversionReport` instead.
        verbose: show a progress bar of the steps on stderr.

    Example:
        >>> path = tftrt_yolo.convert("best.pt", batch=8)                 # saved_models/best/1
        >>> report = tftrt_yolo.convert("best.pt", precision="fp16", dry_run=True)
        >>> print(report.format())
    """
    if model is None:
        from tftrt_yolo.demo import demo_model

        model = demo_model("detect")
    model = resolve_model_path(model)
    backend = backend or ("tensorrt" if precision != "fp32" or dry_run else "tensorflow")  # int8/fp16 mean TensorRT
    dynamic = (precision == "int8") if dynamic is None else bool(dynamic)
    _check_arguments(imgsz, batch, backend, precision, name, version)
    _check_data(data)
    model_root = check_writable_dir(output, "output") / (name or default_name(model, backend, precision))
    if model_root.exists() and not model_root.is_dir():
        raise InputError(f"{model_root} is a file: pass another name or output")
    if version is not None and (model_root / str(version)).exists():
        raise InputError(f"{model_root / str(version)} already exists: pass another version or remove it")
    if dry_run and backend != "tensorrt":
        raise InputError("dry_run shows what TF-TRT would convert: pass backend='tensorrt' (or a precision)")
    accuracy_data = _accuracy_data(model, data, backend, precision, max_map_drop)
    environment = _environment(backend, precision, dry_run)  # fails fast, before any work, without TF-TRT
    steps_total = 3 if dry_run else 4 + (backend == "tensorrt") + (accuracy_data is not None)
    with contextlib.ExitStack() as stack:
        steps = stack.enter_context(_Progress(verbose, total=steps_total))
        work = Path(stack.enter_context(work_dir()))
        stage = None if dry_run else stack.enter_context(staging_dir(Path(output)))
        steps.next("export ONNX")
        from tftrt_yolo.onnx_export import export_onnx

        onnx_path, info = export_onnx(model, work, imgsz=imgsz, batch=batch, dynamic=dynamic)
        if dynamic and not task_spec(info.task).supports_dynamic_batch:
            raise InputError(
                f"{info.task} models convert only with a static batch (onnx2tf cannot convert the mask "
                "head with a dynamic one): pass dynamic=False (--nodynamic)"
            )
        images = _data_images(data, info.task, needed=backend == "tensorrt" and not dry_run)
        key = _cache_key(info, backend, precision, batch, dynamic, environment, images, workspace,
                         minimum_segment_size, max_cached_engines)  # fmt: skip
        cached = None if recalibrate or dry_run else find_cached(model_root, key)
        if cached is not None:
            logger.info("reusing %s: same model, data, settings and versions (pass recalibrate=True to redo)", cached)
            return cached
        steps.next("onnx2tf")
        from tftrt_yolo.onnx_to_tf import onnx_to_saved_model

        network_dir = onnx_to_saved_model(onnx_path, work / "network", work)
        if dry_run:
            steps.next(f"TF-TRT {precision} segmentation (dry run)")
            return _segmentation_report(network_dir, precision, minimum_segment_size)
        from tftrt_yolo.graph.end_to_end import build_and_save

        report = None
        if backend == "tensorrt":
            steps.next(f"TF-TRT {precision}: convert, calibrate, build engines")
            network_dir, report = _run_tftrt(network_dir, work / "network-tftrt", info, precision, batch, dynamic,
                                             images, workspace, minimum_segment_size, max_cached_engines)  # fmt: skip
        steps.next("build end-to-end graph")
        signatures = build_and_save(network_dir, stage, info, batch=batch, dynamic=dynamic,
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
            report=report.to_dict() if report else {},
        )
        if report is not None:
            _check_wrapped_engines(stage, report)
        if accuracy_data is not None:
            steps.next("accuracy against fp32")
            metadata = dataclasses.replace(
                metadata, accuracy=_accuracy(work / "network", work / "fp32", stage, metadata, accuracy_data,
                                             max_map_drop)  # fmt: skip
            )
        steps.next("metadata")
        write_metadata(stage, metadata)
        return publish(stage, model_root, version)


def _environment(backend: str, precision: str, dry_run: bool):
    """The machine's TF-TRT findings; raises EnvironmentNotReady for backend tensorrt without usable TF-TRT.

    A dry run only segments the graph, which TensorFlow does without TensorRT or a GPU.
    """
    from tftrt_yolo.environment import check_environment, require_tftrt

    report = check_environment()
    if backend == "tensorrt" and not dry_run:
        require_tftrt(precision, report)
    return report


def _accuracy_data(model: Path, data, backend: str, precision: str, max_map_drop):
    """Labelled data to measure an fp16/int8 conversion's accuracy drop on, or None to skip the measurement.

    `data` if given; for a shipped demo model its demo data. Any other model without `data` is
    not measured (scoring it on the demo shapes would mean nothing); `max_map_drop` then is an error.
    """
    if backend != "tensorrt" or precision == "fp32":
        if max_map_drop is not None:
            raise InputError("max_map_drop guards fp16/int8 TF-TRT conversions against their fp32 graph: "
                             f"it does not apply to backend={backend} precision={precision}")  # fmt: skip
        return None
    if data is not None:
        return data
    from tftrt_yolo.demo import demo_data

    task = _demo_task(model)
    if task is None:
        if max_map_drop is not None:
            raise InputError("max_map_drop needs labelled data to measure the drop on: pass data= (a dataset "
                             "YAML; classify: a folder with val/<class>/ images)")  # fmt: skip
        logger.warning("no data= given: the %s accuracy drop against fp32 is not measured", precision)
        return None
    return demo_data(task)


def _accuracy(network_dir, reference_dir, stage, metadata, data, max_map_drop) -> dict:
    """The converted model's accuracy drop against the same network as a plain fp32 graph."""
    from tftrt_yolo.graph.end_to_end import build_and_save
    from tftrt_yolo.validate import accuracy_drop

    signatures = build_and_save(network_dir, reference_dir, metadata.info, batch=metadata.batch,
                                dynamic=metadata.dynamic, jit_compile=False)  # fmt: skip
    # both load like any other model (the staged one gets its final metadata afterwards)
    write_metadata(reference_dir, dataclasses.replace(metadata, backend="tensorflow", precision="fp32",
                                                      signatures=signatures, report={}))  # fmt: skip
    write_metadata(stage, metadata)
    return accuracy_drop(reference_dir, stage, data=data, max_drop=max_map_drop)


def _data_images(data, task: str, needed: bool) -> list[Path]:
    """Images for INT8 calibration and engine building: `data`, else the task's demo val images."""
    if not needed:
        return []
    from tftrt_yolo.calibration import collect_calibration_images

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
    from tftrt_yolo.conversion_cache import conversion_cache_key

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


def _segmentation_report(network_dir: Path, precision: str, minimum_segment_size: int):
    """The dry run's result: what TF-TRT's own segmenter makes of the network, no engine built."""
    from tftrt_yolo.report import ENGINE_OP, report_from_graph_def
    from tftrt_yolo.tensorrt import segment_network

    segmented = segment_network(network_dir, precision=precision, minimum_segment_size=minimum_segment_size)
    for node in segmented.graph_def.node:
        if node.op == ENGINE_OP:  # as convert_network's save() marks them: served models never build engines
            node.attr["_allow_build_at_runtime"].b = False
    return report_from_graph_def(segmented.graph_def, segmented.outputs)


def _run_tftrt(network_dir, output_dir, info, precision, batch, dynamic, images, workspace, min_segment, max_engines):
    """TF-TRT on the network alone; returns the converted network's folder and its report."""
    import uuid

    from tftrt_yolo.report import build_report
    from tftrt_yolo.tensorrt import build_input_fn, calibration_input_fn, convert_network, network_inputs

    letterboxed = task_spec(info.task).letterbox
    preprocess = functools.partial(network_inputs, imgsz=info.imgsz, letterboxed=letterboxed)
    convert_network(
        network_dir,
        output_dir,
        precision=precision,
        build_input_fn=build_input_fn(batch, dynamic, preprocess(images[:batch])),
        calibration_input_fn=calibration_input_fn(images, batch, preprocess) if precision == "int8" else None,
        workspace_gib=workspace,
        minimum_segment_size=min_segment,
        max_cached_engines=max_engines,
        engine_tag=uuid.uuid4().hex[:12],  # unique engine names: two models can share a process
    )
    return output_dir, build_report(output_dir)


def _check_wrapped_engines(model_dir: Path, report) -> None:
    """The end-to-end model holds exactly the converted network's engines, and every built one's file."""
    from tftrt_yolo.errors import ConversionError
    from tftrt_yolo.report import ENGINE_ASSET_PREFIX, engine_instances, engine_names

    found, expected = engine_names(model_dir), {e.name for e in report.engines}
    assets = model_dir / "assets"
    lost = [e.name for e in report.engines
            if e.serialized and not engine_instances(assets / (ENGINE_ASSET_PREFIX + e.name))]  # fmt: skip
    if found != expected or lost:
        raise ConversionError(
            f"wrapping the TF-TRT network changed its engines: it had {sorted(expected)}, the end-to-end model "
            f"has {sorted(found)}, serialized engines lost: {lost or 'none'}; please report this with the output "
            "of `tftrt-yolo doctor`"
        )


def _demo_task(model: Path) -> str | None:
    """The task of the shipped demo model that `model` is a copy of, else None."""
    from tftrt_yolo.demo import demo_model
    from tftrt_yolo.files import sha256_file
    from tftrt_yolo.tasks import TASKS

    if model.suffix.lower() != ".pt" or not model.is_file():
        return None
    digest = sha256_file(model)
    return next((t for t in TASKS if sha256_file(demo_model(t)) == digest), None)


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
