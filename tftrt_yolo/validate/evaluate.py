"""val(): every val image predicted once by a runner, scored against the labels, metrics as a dict."""

from __future__ import annotations

import time

from tftrt_yolo.errors import InputError
from tftrt_yolo.signatures import check_thresholds
from tftrt_yolo.tasks import task_spec
from tftrt_yolo.validate.runners import open_model
from tftrt_yolo.validate.scoring import Scorer, metrics_dict, oks_sigmas
from tftrt_yolo.validate.targets import load_targets


def val(
    model,
    data=None,
    *,
    batch: int | None = None,
    imgsz: int | None = None,
    conf: float | None = None,
    iou: float = 0.7,
    max_det: int = 300,
    limit: int | None = None,
    verbose: bool = False,
) -> dict:
    """Accuracy of `model` on the val split of `data`, with Ultralytics' metric code.

    Args:
        model: a tftrt_yolo SavedModel folder, a YOLOv8 `.pt` or an Ultralytics
            `.onnx` (or a runner from `open_model`).
        data: a dataset YAML (classify: a folder with `val/<class>/` images);
            default: the demo dataset of the model's task.
        batch: images per call (default: the SavedModel's batch when it is
            static, else 1; results per image do not depend on it).
        imgsz: SavedModels use the size they were converted for; `.pt` default:
            the size it was trained at, else 640.
        conf: default 0.001 (0.01 for obb), as Ultralytics' val.
        iou, max_det: NMS settings, as predict.
        limit: only the first N val images.
        verbose: show a progress bar on stderr.

    Returns a dict: `task`, `model`, `format`, `backend`, `data`, `images`,
    `instances`, `metrics` ({"box": {precision, recall, mAP50, mAP50-95},
    "mask"/"pose": same} or {"top1", "top5"}, plus "fitness"),
    `speed_ms_per_image` (predict, file read included) and `settings`.
    Raises InputError for a missing or unreadable model or dataset (a val split
    without images, or without one readable label); label files Ultralytics
    skips are named in warnings of the `tftrt_yolo` logger.

    Example::

        from tftrt_yolo.validate import format_result, val

        result = val("saved_models/yolov8n-detect-demo/1", "data.yaml", limit=100)
        print(format_result(result), result["metrics"]["box"]["mAP50-95"])
    """
    runner = model if hasattr(model, "predict") and hasattr(model, "task") else open_model(model, imgsz)
    task = runner.task
    spec = task_spec(task)
    conf = spec.val_conf if conf is None else float(conf)
    check_thresholds(conf, iou, max_det)
    if batch is None:
        batch = runner.max_batch if runner.static_batch else 1
    if not isinstance(batch, int) or batch < 1 or (runner.max_batch and batch > runner.max_batch):
        raise InputError(f"batch must be between 1 and {runner.max_batch or 'any'}, got {batch!r}")
    if data is None:
        from tftrt_yolo.demo import demo_data

        data = demo_data(task, val_only=True)
    targets, info = load_targets(task, data, runner.names, runner.imgsz)
    if limit is not None:
        targets = targets[: int(limit)]
    if not targets:
        raise InputError(f"no val images in {data}")
    sigma = oks_sigmas(runner.kpt_shape or info.get("kpt_shape"), info) if "keypoints" in spec.outputs else None
    scorer = Scorer(task, runner.names, sigma)
    bar = None
    if verbose:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(targets), desc=f"val {task}", unit="img", leave=False)
    seconds = 0.0
    try:
        for start in range(0, len(targets), batch):
            chunk = targets[start : start + batch]
            t0 = time.perf_counter()
            preds = runner.predict([t.file for t in chunk], conf=conf, iou=iou, max_det=max_det)
            seconds += time.perf_counter() - t0
            for p, t in zip(preds, chunk):
                scorer.add(p, t)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return {
        "task": task,
        "model": str(runner.path),
        "format": runner.kind,
        "backend": runner.backend,
        "data": str(data),
        "images": scorer.images,
        "instances": scorer.instances,
        "metrics": scorer.results(),
        "speed_ms_per_image": 1000.0 * seconds / max(scorer.images, 1),
        "settings": {"imgsz": runner.imgsz, "batch": batch, "conf": conf, "iou": iou, "max_det": max_det},
    }


def metric_value(metrics: dict, name: str) -> float:
    """A metric by its table name: "top1", or "<group> <key>" such as "mask mAP50-95"."""
    group, _, key = name.rpartition(" ")
    return metrics[group][key] if group else metrics[key]


def headline(result: dict) -> dict:
    """The two numbers a table shows for a val result: mAP50 / mAP50-95 of the task's main metric, or top1 / top5."""
    return {name: metric_value(result["metrics"], name) for name in task_spec(result["task"]).headline}


def format_result(result: dict) -> str:
    """A few lines for people: what was measured and the metrics."""
    s = result["settings"]
    lines = [
        f"{result['task']} {result['format']} ({result['backend']}) {result['model']}",
        f"  data {result['data']}: {result['images']} images, {result['instances']} instances",
        f"  imgsz {s['imgsz']}, batch {s['batch']}, conf {s['conf']}, iou {s['iou']}, max_det {s['max_det']}",
    ]
    m = result["metrics"]
    groups = task_spec(result["task"]).metric_groups
    if not groups:
        lines.append(f"  top1 {m['top1']:.4f}  top5 {m['top5']:.4f}")
    for group, _ in groups:
        g = m[group]
        lines.append(
            f"  {group:<4} P {g['precision']:.4f}  R {g['recall']:.4f}  "
            f"mAP50 {g['mAP50']:.4f}  mAP50-95 {g['mAP50-95']:.4f}"
        )
    lines.append(f"  speed {result['speed_ms_per_image']:.1f} ms/image (predict, file read included)")
    return "\n".join(lines)


def ultralytics_val(model, data, *, imgsz: int | None = None, batch: int = 1, conf: float | None = None,
                    iou: float = 0.7, max_det: int = 300, rect: bool = False) -> dict:
    """Ultralytics' own `YOLO(model).val(...)` in the same shape as `val()`'s `metrics` (for cross-checks)."""
    from tftrt_yolo._ultralytics import YOLO

    yolo = YOLO(str(model))
    kwargs = dict(data=str(data), batch=batch, conf=conf, iou=iou, max_det=max_det, rect=rect, plots=False,
                  verbose=False, device="cpu", workers=0, save_json=False)
    if imgsz:
        kwargs["imgsz"] = imgsz
    return metrics_dict(yolo.task, yolo.val(**kwargs))
