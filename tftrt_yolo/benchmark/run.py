"""benchmark(): convert a .pt per row, time every runtime on the same images, score each with val()."""

from __future__ import annotations

import datetime
import gc
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tftrt_yolo.benchmark.machine import tftrt_status, machine_info
from tftrt_yolo.benchmark.runtimes import saved_model_timers, timing_images, ultralytics_onnx, ultralytics_timers
from tftrt_yolo.benchmark.stats import time_calls
from tftrt_yolo.benchmark.table import BenchmarkTable, Row
from tftrt_yolo.validate import SavedModelRunner, UltralyticsRunner, val
from tftrt_yolo.environment import PRECISIONS
from tftrt_yolo.errors import InputError

RUNTIMES = ("tensorrt", "tensorflow", "xla", "pytorch", "onnxruntime")
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def _check_reused(runner, pt: Path, backend: str, precision: str, batch: int, imgsz: int) -> None:
    from tftrt_yolo.files import sha256_file

    m = runner.model.metadata
    problems = []
    if m.info.source_sha256 != sha256_file(pt):
        problems.append(f"it was converted from {m.info.source}, not {pt}")
    if (m.backend, m.precision) != (backend, precision):
        problems.append(f"it is {m.backend} {m.precision}, not {backend} {precision}")
    if (m.batch, m.info.imgsz) != (batch, imgsz):
        problems.append(f"it takes batch {m.batch} at imgsz {m.info.imgsz}, not batch {batch} at imgsz {imgsz}")
    if problems:
        raise InputError(f"cannot reuse {runner.path} for this benchmark: " + "; ".join(problems))


def _unavailable(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"unavailable: {type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def benchmark(
    model,
    precisions=PRECISIONS,
    batch: int = 8,
    data=None,
    imgsz: int | None = None,
    warmup: int = 3,
    iterations: int = 10,
    *,
    val_images: int | None = None,
    saved_models: dict | None = None,
    workdir: str | Path | None = None,
    runtimes=RUNTIMES,
    verbose: bool = False,
) -> BenchmarkTable:
    """Benchmark a YOLOv8 `.pt` through TF-TRT (`precisions`), TensorFlow, XLA, PyTorch and ONNX Runtime.

    Args:
        model: a YOLOv8 `.pt` checkpoint (Ultralytics' format; each SavedModel row is converted from it).
        precisions: TF-TRT rows, any of "fp32", "fp16", "int8" (rows say "unavailable" without TF-TRT).
        batch: images per timed call; the SavedModels are converted for it.
        data: gives the timing images and the val split for accuracy (default: the demo data of the
            model's task).
        imgsz: default: the size the model was trained at, else 640.
        warmup, iterations: untimed and timed calls per timing.
        val_images: val on the first N images only (None: all, 0: no accuracy).
        saved_models: conversions made before, reused instead of converting, keyed by backend
            ("tensorflow", "xla") or "tensorrt-<precision>" (each must come from `model` at this
            batch and imgsz).
        workdir: keeps the conversions (default: a temporary folder, removed at the end).
        runtimes: which rows to run, any of RUNTIMES.
        verbose: show progress bars on stderr.

    Returns a BenchmarkTable (`to_json`, `to_markdown`, `plot`). A row that cannot run says why in
    its status; a bad argument or a model that is not a YOLOv8 checkpoint raises InputError.

    Example::

        import tftrt_yolo

        table = tftrt_yolo.benchmark("best.pt", precisions=("fp16",), batch=8, data="data.yaml")
        print(table.to_markdown()); table.plot("bench.png"); table.to_json("bench.json")
    """
    pt = Path(model)
    if pt.is_dir():
        raise InputError(f"{model} is a folder: benchmark needs a YOLOv8 .pt checkpoint (it converts it per row)")
    if pt.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise InputError(f"benchmark needs a YOLOv8 .pt checkpoint, got {model} (the tool converts it per row)")
    if not pt.is_file():
        raise InputError(f"model not found: {model}")
    if not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a positive integer, got {batch!r}")
    precisions = [p for p in precisions]
    unknown = set(precisions) - set(PRECISIONS)
    if unknown:
        raise InputError(f"unknown precision(s) {', '.join(sorted(unknown))}: use {', '.join(PRECISIONS)}")
    reference = UltralyticsRunner(pt, imgsz)
    task, imgsz = reference.task, reference.imgsz
    if data is None:
        from tftrt_yolo.demo import demo_data

        data = demo_data(task, val_only=True)
    files = timing_images(data, task, batch, reference.names, imgsz)
    own_workdir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="tftrt_yolo-bench-")) if own_workdir else Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []

    def measure(row: Row, runner, timers):
        try:
            e2e, net, net_status = timers(runner, files, task)
            row.end_to_end = time_calls(e2e, warmup=warmup, iterations=iterations, batch=batch,
                                        desc=f"{row.name} end-to-end", verbose=verbose)
            if getattr(e2e, "speeds", None):
                timed = e2e.speeds[-iterations:]
                row.ultralytics_speed = {k: float(np.mean([s[k] for s in timed])) for k in timed[0]}
            row.network_status = net_status
            if net is not None:
                row.network = time_calls(net, warmup=warmup, iterations=iterations, batch=batch,
                                         desc=f"{row.name} network", verbose=verbose)
        except Exception as e:  # noqa: BLE001 - a row that cannot run says why
            row.status = _unavailable(e)
            return
        if val_images == 0:
            row.val_status = "not measured"
            return
        try:
            row.val = val(runner, data, batch=None, limit=val_images, verbose=verbose)
        except Exception as e:  # noqa: BLE001
            row.val_status = _unavailable(e)

    def saved_model_row(name, backend, precision):
        row = Row(name, backend, precision)
        rows.append(row)
        try:
            key = backend if backend != "tensorrt" else f"tensorrt-{precision}"
            if key in (saved_models or {}):
                path = Path(saved_models[key])
                runner = SavedModelRunner(path)
                _check_reused(runner, pt, backend, precision, batch, imgsz)
            else:
                from tftrt_yolo.conversion import convert

                path = convert(pt, imgsz=imgsz, batch=batch, backend=backend, precision=precision, data=data,
                               output=workdir / "saved_models", name=key, verbose=False)
                runner = SavedModelRunner(path)
            row.model_path = str(path)
        except Exception as e:  # noqa: BLE001
            row.status = _unavailable(e)
            return
        measure(row, runner, saved_model_timers)
        del runner
        gc.collect()

    try:
        if "tensorrt" in runtimes and precisions:
            usable, reason = tftrt_status()
            for p in precisions:
                if usable:
                    saved_model_row(f"TF-TRT {p.upper()}", "tensorrt", p)
                else:
                    rows.append(Row(f"TF-TRT {p.upper()}", "tensorrt", p, status=f"unavailable: {reason}"))
        if "tensorflow" in runtimes:
            saved_model_row("TensorFlow SavedModel", "tensorflow", "fp32")
        if "xla" in runtimes:
            saved_model_row("TensorFlow + XLA", "xla", "fp32")
        if "pytorch" in runtimes:
            row = Row("Ultralytics PyTorch", "pytorch", "fp32", model_path=str(pt))
            rows.append(row)
            measure(row, reference, ultralytics_timers)
        if "onnxruntime" in runtimes:
            row = Row("ONNX Runtime (Ultralytics)", "onnxruntime", "fp32")
            rows.append(row)
            try:
                onnx_path = ultralytics_onnx(pt, workdir, imgsz=imgsz, batch=batch)
                row.model_path = str(onnx_path)
                runner = UltralyticsRunner(onnx_path)
            except Exception as e:  # noqa: BLE001
                row.status = _unavailable(e)
            else:
                measure(row, runner, ultralytics_timers)
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return BenchmarkTable(
        model=str(pt),
        task=task,
        batch=batch,
        imgsz=imgsz,
        data=str(data),
        images=[str(f) for f in files],
        warmup=warmup,
        iterations=iterations,
        val_images=val_images,
        rows=rows,
        machine=machine_info(),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
