"""The accuracy guard: how much accuracy a conversion loses against its fp32 graph, both scored by val()."""

from __future__ import annotations

from pathlib import Path

from tftrt_yolo.errors import ConversionError, InputError
from tftrt_yolo.tasks import task_spec
from tftrt_yolo.validate.evaluate import metric_value, val
from tftrt_yolo.validate.runners import SavedModelRunner


def _labelled(data) -> bool:
    """Whether `data` is something val() scores against: a dataset YAML, or a folder with val/ (classify)."""
    if data is None:
        return True
    if isinstance(data, (list, tuple)):
        return False
    path = Path(data)
    return path.suffix.lower() in (".yaml", ".yml") or (path.is_dir() and (path / "val").is_dir())


def accuracy_drop(reference_dir, converted_dir, *, data=None, max_drop: float | None = None,
                  verbose: bool = False) -> dict:
    """How much accuracy a conversion (TF-TRT fp16/int8) loses against its fp32 graph, both run through val().

    The metric is the task table's `guarded_metric`: mAP50-95 of the task's main
    kind (box; mask for segment, pose for pose) or top-1 for classify. `data`: a
    dataset YAML (classify: folder with val/); None: the task's demo data; an
    image folder or list carries no labels and gives {"skipped": reason}. A drop
    larger than `max_drop` raises ConversionError. `verbose`: val's progress bars.
    """
    if not _labelled(data):
        if max_drop is not None:
            raise InputError(
                f"max_map_drop needs labelled data to measure accuracy on: pass a dataset YAML (classify: a "
                f"folder with val/<class>/ images), not {data}"
            )
        return {"skipped": f"{data} has no labels: pass a dataset YAML to measure the accuracy drop"}
    converted, reference = SavedModelRunner(converted_dir), SavedModelRunner(reference_dir)
    kwargs = dict(data=data, verbose=verbose)
    before, after = val(reference, **kwargs), val(converted, **kwargs)
    key = task_spec(converted.task).guarded_metric
    b, a = metric_value(before["metrics"], key), metric_value(after["metrics"], key)
    precision = converted.model.metadata.precision
    result = {
        "metric": key,
        "reference": b,
        "converted": a,
        "precision": precision,
        "drop": b - a,
        "data": before["data"],
        "images": before["images"],
        "reference_metrics": before["metrics"],
        "converted_metrics": after["metrics"],
    }
    if max_drop is not None and b - a > max_drop:
        raise ConversionError(
            f"{precision} loses {b - a:.4f} {key} against fp32 ({b:.4f} -> {a:.4f} on {before['images']} images "
            f"of {before['data']}), more than max_map_drop={max_drop}: calibrate on more representative data, "
            "convert at a higher precision or raise max_map_drop"
        )
    return result
