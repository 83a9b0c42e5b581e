"""The task table: one TaskSpec per YOLOv8 task holds every fact that differs between tasks.

Modelled on optimum's per-task export configs: conversion, post-processing,
validation, serving, the demo data and the demo models ask this table instead
of comparing task names (tests/test_tasks.py checks that every task-keyed
mapping covers exactly TASKS).
"""

from __future__ import annotations

import dataclasses

from tftrt_yolo.errors import InputError

TASKS = ("detect", "segment", "classify", "pose", "obb")  # this order seeds the demo data: keep it


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    ultralytics_yaml: str  # the yolov8n architecture in the ultralytics wheel the demo models are built from
    network_outputs: int  # tensors onnx2tf's SavedModel returns (output_0, output_1, ...)
    outputs: tuple[str, ...]  # end-to-end signature outputs, besides `image_sizes`
    letterbox: bool  # detection tasks letterbox; classify resizes + centre-crops
    supports_dynamic_batch: bool  # onnx2tf cannot convert the segment proto head with a dynamic batch
    class_folders: bool  # datasets are class folders (train/<class>/, val/<class>/), not a YAML with labels
    metrics_class: str  # the ultralytics.utils.metrics class that averages val results
    metric_groups: tuple[tuple[str, str], ...]  # val's metric groups: (our name, attribute of metrics_class)
    headline: tuple[str, str]  # the two numbers a table shows for a val result
    guarded_metric: str  # what the accuracy guard compares between fp32 and TF-TRT
    val_conf: float  # Ultralytics' val confidence threshold (its OBB validator picks 0.01)
    demo_imgsz: int  # demo data image size (sides drawn from 0.5..1.25x) and training size
    demo_n_train: int  # demo training images
    card_metrics: tuple[tuple[str, str], ...]  # Ultralytics results_dict keys in the model cards, with labels
    quality_bars: tuple[tuple[str, float], ...]  # (Ultralytics results_dict key, minimum the shipped demo model reaches)

    @property
    def has_detections(self) -> bool:
        """Whether results are detections (boxes, scores, classes; one row each) rather than class probabilities."""
        return "num_detections" in self.outputs


_DETECTION_OUTPUTS = ("boxes", "scores", "classes", "num_detections")
_BOX_CARD = (("metrics/mAP50(B)", "box mAP50"), ("metrics/mAP50-95(B)", "box mAP50-95"))


def _detection(name, yaml, outputs, *, network_outputs=1, dynamic=True, metrics_class, groups=(("box", "box"),),
               val_conf=0.001, card=_BOX_CARD, bars) -> TaskSpec:
    primary = groups[-1][0]
    return TaskSpec(
        name, yaml, network_outputs, _DETECTION_OUTPUTS + outputs, letterbox=True, supports_dynamic_batch=dynamic,
        class_folders=False, metrics_class=metrics_class, metric_groups=groups,
        headline=(f"{primary} mAP50", f"{primary} mAP50-95"), guarded_metric=f"{primary} mAP50-95",
        val_conf=val_conf, demo_imgsz=640, demo_n_train=3000, card_metrics=card, quality_bars=bars,
    )


SPECS = {
    "detect": _detection("detect", "yolov8n.yaml", (), metrics_class="DetMetrics",
                         bars=(("metrics/mAP50-95(B)", 0.6),)),
    "segment": _detection(
        "segment", "yolov8n-seg.yaml", ("masks",), network_outputs=2, dynamic=False, metrics_class="SegmentMetrics",
        groups=(("box", "box"), ("mask", "seg")),
        card=_BOX_CARD + (("metrics/mAP50(M)", "mask mAP50"), ("metrics/mAP50-95(M)", "mask mAP50-95")),
        bars=(("metrics/mAP50-95(B)", 0.6), ("metrics/mAP50-95(M)", 0.6)),
    ),
    "classify": TaskSpec(
        "classify", "yolov8n-cls.yaml", 1, ("probs", "top5_classes", "top5_scores"), letterbox=False,
        supports_dynamic_batch=True, class_folders=True, metrics_class="ClassifyMetrics", metric_groups=(),
        headline=("top1", "top5"), guarded_metric="top1", val_conf=0.001, demo_imgsz=224, demo_n_train=3000,
        card_metrics=(("metrics/accuracy_top1", "top1"), ("metrics/accuracy_top5", "top5")),
        quality_bars=(("metrics/accuracy_top1", 0.9),),
    ),
    "pose": _detection(
        "pose", "yolov8n-pose.yaml", ("keypoints",), metrics_class="PoseMetrics",
        groups=(("box", "box"), ("pose", "pose")),
        card=_BOX_CARD + (("metrics/mAP50(P)", "pose mAP50"), ("metrics/mAP50-95(P)", "pose mAP50-95")),
        bars=(("metrics/mAP50-95(B)", 0.6), ("metrics/mAP50-95(P)", 0.6)),
    ),
    "obb": _detection(
        "obb", "yolov8n-obb.yaml", ("rboxes",), metrics_class="OBBMetrics", val_conf=0.01,
        card=(("metrics/mAP50(B)", "box (rotated) mAP50"), ("metrics/mAP50-95(B)", "box (rotated) mAP50-95")),
        bars=(("metrics/mAP50-95(B)", 0.6),),
    ),
}


def task_spec(task: str) -> TaskSpec:
    """The spec of `task`, or an InputError naming the supported tasks."""
    try:
        return SPECS[task]
    except (KeyError, TypeError):
        raise InputError(
            f"unsupported task {task!r}: tftrt_yolo converts YOLOv8 models for {', '.join(TASKS)}"
        ) from None


def check_task(task: str) -> str:
    """`task` itself when it is one of TASKS, else the InputError of `task_spec`."""
    return task_spec(task).name
